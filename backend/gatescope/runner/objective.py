"""The request's loss, evaluated on the top layer's states: L, ∂L/∂h_t and, for a model with
a readout, its outputs and gradients. prepare.py checks the loss against the sequence and
the model and resolves its targets into an `Objective`.

Shapes: T steps, N sequences (1 for a request), H hidden size, K readout outputs.

    hidden-state losses (core/losses.py)  L(h)                  last_hidden_sum, hidden_unit,
                                                                all_hidden_sum, mse
    readout losses (core/readout.py)      L(z), z_t = W h_t + b  cross_entropy, next_token,
                                                                task (targets: gatescope.tasks),
                                                                bce_with_logits (K = 1)

A readout model's outputs are returned whatever the loss; under a hidden-state loss the
readout is not part of L, so its gradients are exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract.schemas import MSE, AllHiddenSum, HiddenUnit, LastHiddenSum, Loss
from ..core import losses, readout
from ..core.params import StateDict
from ..core.readout import BIAS, WEIGHT

HIDDEN_LOSSES = "last_hidden_sum, hidden_unit, all_hidden_sum or mse"


@dataclass
class Objective:
    """A request's loss, checked and ready to evaluate.

    targets: (T, 1, H) for mse. classes: (T, 1) class indices for a readout loss, NO_TARGET
    (−1) at the steps without a target. binary: (T, 1) targets of bce_with_logits, NaN at
    the steps without one.
    """

    loss: Loss
    targets: np.ndarray | None = None
    classes: np.ndarray | None = None
    binary: np.ndarray | None = None


@dataclass
class Evaluated:
    """loss: L. dh: (T, N, H) ∂L/∂h_t of the top layer. outputs: {"logits", "probs"}, each
    (T, N, K), when the model has a readout. readout_grads: ∂L/∂readout.weight (K, H) and
    ∂L/∂readout.bias (K), PyTorch's names, when the model has a readout."""

    loss: float
    dh: np.ndarray
    outputs: dict[str, np.ndarray] | None = None
    readout_grads: StateDict | None = None


def evaluate(objective: Objective, h: np.ndarray, weights: StateDict | None) -> Evaluated:
    """L, ∂L/∂h_t, and the readout's outputs and gradients, from the top layer's states
    h: (T, N, H); `weights` the readout's (None without one)."""
    if weights is None:
        loss, dH = _hidden_loss(objective, h)
        return Evaluated(loss, dH)
    W, b = weights[WEIGHT], weights[BIAS]
    z = readout.logits(h, W, b)  # z_t = W h_t + b
    # p_t = softmax(z_t); a one-output head is a binary classifier: p_t = σ(z_t)
    probs = readout.sigmoid(z) if z.shape[-1] == 1 else readout.softmax(z)
    outputs = {"logits": z, "probs": probs}
    if objective.binary is not None:
        # L = mean over targeted steps of −[y log σ(z) + (1 − y) log(1 − σ(z))];
        # ∂L/∂z_t = (σ(z_t) − y_t) / n
        loss, dz = readout.bce_with_logits(z, objective.binary)
    elif objective.classes is not None:
        # L = mean over targeted steps of −log p_t[k_t]; ∂L/∂z_t = (p_t − onehot(k_t)) / n
        loss, dz = readout.cross_entropy(z, objective.classes)
    else:  # the readout is not in L: its gradients are zero
        loss, dH = _hidden_loss(objective, h)
        return Evaluated(loss, dH, outputs, {WEIGHT: np.zeros_like(W), BIAS: np.zeros_like(b)})
    # ∂L/∂h_t = Wᵀ ∂L/∂z_t, ∂L/∂W = Σ_t ∂L/∂z_t h_tᵀ, ∂L/∂b = Σ_t ∂L/∂z_t
    dH, dW, db = readout.backward(dz, h, W)
    return Evaluated(loss, dH, outputs, {WEIGHT: dW, BIAS: db})


def _hidden_loss(objective: Objective, h: np.ndarray) -> tuple[float, np.ndarray]:
    """L and ∂L/∂h_t of a loss on the top layer's states h: (T, N, H)."""
    loss = objective.loss
    if isinstance(loss, LastHiddenSum):
        return losses.last_hidden_sum(h)
    if isinstance(loss, HiddenUnit):
        step = h.shape[0] - 1 if loss.step is None else loss.step
        return losses.hidden_unit(h, step, loss.unit)
    if isinstance(loss, AllHiddenSum):
        return losses.all_hidden_sum(h)
    assert isinstance(loss, MSE) and objective.targets is not None
    return losses.mse(h, objective.targets)
