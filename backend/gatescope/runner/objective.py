"""The request's loss, evaluated on a layer's states (the top's unless a hidden-state loss
names another): L, ∂L/∂h_t (and ∂L/∂c_t for an upstream loss) and, for a model with a
readout, its outputs and gradients. prepare.py checks the loss against the sequence and
the model and resolves its targets into an `Objective`.

Shapes: T steps, N sequences (1 for a request), H hidden size, K readout outputs.

    hidden-state losses (core/losses.py)  L(h)                  last_hidden_sum, hidden_unit,
                                                                all_hidden_sum, mse,
                                          L(h, c)               upstream (dh, dc given)
    readout losses (core/readout.py)      L(z), z_t = W h_t + b  cross_entropy, next_token,
                                                                task (targets: gatescope.tasks),
                                                                bce_with_logits (K = 1)

A readout model's outputs are returned whatever the loss; under a hidden-state loss the
readout is not part of L, so its gradients are exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract.schemas import MSE, AllHiddenSum, HiddenUnit, LastHiddenSum, Loss, Upstream
from ..core import losses, readout
from ..core.params import StateDict
from ..core.readout import BIAS, WEIGHT

HIDDEN_LOSSES = "last_hidden_sum, hidden_unit, all_hidden_sum, mse or upstream"


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
    dh: np.ndarray | None = None  # upstream: (T, 1, W) ∂L/∂h_t given, zeros for null rows
    dc: np.ndarray | None = None  # upstream: (T, 1, Hc) ∂L/∂c_t given

    @property
    def layer(self) -> int | None:
        """The layer a hidden-state loss reads (None: the top); a readout's: the top."""
        return getattr(self.loss, "layer", None)


@dataclass
class Evaluated:
    """loss: L. dh: (T, N, H) ∂L/∂h_t of the top layer. outputs: {"logits", "probs"}, each
    (T, N, K), when the model has a readout. readout_grads: ∂L/∂readout.weight (K, H) and
    ∂L/∂readout.bias (K), PyTorch's names, when the model has a readout."""

    loss: float
    dh: np.ndarray
    outputs: dict[str, np.ndarray] | None = None
    readout_grads: StateDict | None = None
    dc: np.ndarray | None = None  # ∂L/∂c_t of the loss's layer, from an upstream loss


def evaluate(objective: Objective, h: np.ndarray, weights: StateDict | None,
             top: np.ndarray | None = None, c: np.ndarray | None = None) -> Evaluated:
    """L, ∂L/∂h_t, and the readout's outputs and gradients.

    h: (T, N, W) the states of the loss's layer; top: the top layer's, where the loss reads
    another (None: h is the top's); c: the loss's layer's cell states, for an upstream
    loss's dc; `weights` the readout's (None without one), always on the top layer.
    """
    top = h if top is None else top
    outputs = None
    if weights is not None:
        z = readout.logits(top, weights[WEIGHT], weights[BIAS])  # z_t = W h_t + b
        # p_t = softmax(z_t); a one-output head is a binary classifier: p_t = σ(z_t)
        probs = readout.sigmoid(z) if z.shape[-1] == 1 else readout.softmax(z)
        outputs = {"logits": z, "probs": probs}
        if objective.binary is not None or objective.classes is not None:
            if objective.binary is not None:
                # L = mean over targeted steps of −[y log σ(z) + (1 − y) log(1 − σ(z))];
                # ∂L/∂z_t = (σ(z_t) − y_t) / n
                loss, dz = readout.bce_with_logits(z, objective.binary)
            else:
                # L = mean over targeted steps of −log p_t[k_t];
                # ∂L/∂z_t = (p_t − onehot(k_t)) / n
                assert objective.classes is not None
                loss, dz = readout.cross_entropy(z, objective.classes)
            # ∂L/∂h_t = Wᵀ ∂L/∂z_t, ∂L/∂W = Σ_t ∂L/∂z_t h_tᵀ, ∂L/∂b = Σ_t ∂L/∂z_t
            dH, dW, db = readout.backward(dz, top, weights[WEIGHT])
            return Evaluated(loss, dH, outputs, {WEIGHT: dW, BIAS: db})
    # a loss on a layer's hidden states; a readout, not part of L, gets zero gradients
    zeros = None if weights is None else {WEIGHT: np.zeros_like(weights[WEIGHT]),
                                          BIAS: np.zeros_like(weights[BIAS])}
    if isinstance(objective.loss, Upstream):  # L = Σ_t ⟨dh_t, h_t⟩ + ⟨dc_t, c_t⟩
        loss, dH, dC = losses.upstream(h, c, objective.dh, objective.dc)
        return Evaluated(loss, dH, outputs, zeros, dC)
    loss, dH = _hidden_loss(objective, h)
    return Evaluated(loss, dH, outputs, zeros)


def _hidden_loss(objective: Objective, h: np.ndarray) -> tuple[float, np.ndarray]:
    """L and ∂L/∂h_t of a loss on a layer's states h: (T, N, H)."""
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
