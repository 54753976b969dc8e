"""The request's loss: checked against the sequence and the model (`plan`), then evaluated
on the top layer's states (`evaluate`) into L, ∂L/∂h_t and, for a model with a readout,
its outputs and gradients.

Shapes: T steps, N sequences (1 for a request), H hidden size, K readout outputs.

    hidden-state losses (losses.py)   L(h)                     last_hidden_sum, hidden_unit,
                                                               all_hidden_sum, mse
    readout losses (readout.py)       L(z), z_t = W h_t + b    cross_entropy, next_token,
                                                               task (targets: gatescope.tasks)

A readout model's outputs are returned whatever the loss; under a hidden-state loss the
readout is not part of L, so its gradients are exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import losses, readout, tasks
from .engine import StateDict
from .errors import invalid
from .numerics import finite_array
from .readout import BIAS, NO_TARGET, WEIGHT
from .schemas import (
    MSE,
    READOUT_LOSSES,
    AllHiddenSum,
    CrossEntropy,
    HiddenUnit,
    LastHiddenSum,
    NextToken,
    RunRequest,
    TaskLoss,
)

HIDDEN_LOSSES = "last_hidden_sum, hidden_unit, all_hidden_sum or mse"


@dataclass
class Objective:
    """A request's loss, ready to evaluate.

    targets: (T, 1, H) for mse. classes: (T, 1) class indices for a readout loss, NO_TARGET
    (−1) at the steps without a target.
    """

    request: RunRequest
    targets: np.ndarray | None = None
    classes: np.ndarray | None = None


@dataclass
class Evaluated:
    """loss: L. dh: (T, N, H) ∂L/∂h_t of the top layer. outputs: {"logits", "probs"}, each
    (T, N, K), when the model has a readout. readout_grads: ∂L/∂readout.weight (K, H) and
    ∂L/∂readout.bias (K), PyTorch's names, when the model has a readout."""

    loss: float
    dh: np.ndarray
    outputs: dict[str, np.ndarray] | None = None
    readout_grads: StateDict | None = None


def plan(req: RunRequest, T: int, H: int, dtype: np.dtype, weights: StateDict | None,
         labels: list[str] | None, vocab: str | None, task: str | None = None) -> Objective:
    """Check the loss against the sequence (T steps), the top layer (H units) and the
    readout (`weights`, None without one); resolve its targets.

    `labels`: the model's K output names; next_token falls back to the input `vocab` when
    the model has none and the vocab has K characters (a character model's readout).
    `task`: the task a stored model was trained on (for the task loss).
    Errors name the field as the schema does: ("loss", <type>, <field>).
    """
    loss = req.loss
    if isinstance(loss, READOUT_LOSSES):
        if weights is None:
            raise invalid(("loss", loss.type), f"{loss.type} is a loss on a readout's outputs, "
                          "and these weights have no readout: load a model with "
                          "readout.weight and readout.bias (or give both in weights.tensors), "
                          f"or use a loss on the hidden states ({HIDDEN_LOSSES})", loss.type)
        K = weights[WEIGHT].shape[0]
        return Objective(req, classes=_classes(req, T, K, labels, vocab, task)[:, None])
    if isinstance(loss, HiddenUnit):
        if loss.step is not None and loss.step >= T:
            raise invalid(("loss", loss.type, "step"), f"step {loss.step} is past the last "
                          f"step ({T - 1}) of this {T}-step sequence", loss.step)
        if loss.unit >= H:
            raise invalid(("loss", loss.type, "unit"), f"unit {loss.unit} is past the last "
                          f"hidden unit ({H - 1}) of hidden_size {H}", loss.unit)
    if not isinstance(loss, MSE):
        return Objective(req)
    loc = ("loss", loss.type, "targets")
    shape = (len(loss.targets), *{len(r) for r in loss.targets})
    if shape != (T, H):
        raise invalid(loc, f"targets must be T×H = {T}×{H} (one hidden_size vector per "
                      f"step), got {shape[0]} rows of {'/'.join(map(str, shape[1:]))}", None)
    return Objective(req, targets=finite_array(loss.targets, dtype, loc)[:, None, :])


def _classes(req: RunRequest, T: int, K: int, labels: list[str] | None, vocab: str | None,
             task: str | None) -> np.ndarray:
    """(T,) class indices of a readout loss, NO_TARGET where a step has none; at least one
    step has a target."""
    loss = req.loss
    if isinstance(loss, CrossEntropy):
        loc = ("loss", loss.type, "targets")
        if len(loss.targets) != T:
            raise invalid(loc, f"targets must have T = {T} entries, one class index per step "
                          f"(null where a step has none), got {len(loss.targets)}", None)
        for t, k in enumerate(loss.targets):
            if k is not None and k >= K:
                raise invalid((*loc, t), f"target {k} at step {t} is not an output of this "
                              f"readout: it has K = {K}, so a target is 0 … {K - 1} or null",
                              k)
        return np.array([NO_TARGET if k is None else k for k in loss.targets], dtype=np.intp)
    if isinstance(loss, NextToken):
        return _next_characters(req, T, K, labels, vocab)
    if isinstance(loss, TaskLoss):
        return _task_targets(req, K, labels, task)
    raise AssertionError(f"no targets for the loss {loss.type!r}")


def _task_targets(req: RunRequest, K: int, labels: list[str] | None, task: str | None
                  ) -> np.ndarray:
    """k_t = tasks.get(task).targets(text)[t], NO_TARGET where the task sets none: the
    targets the model was trained on, so L is its training loss on this text."""
    loc = ("loss", "task")
    if task is None:
        raise invalid(loc, "the task loss is the loss a model was trained with, and this "
                      "model names no task: load a trained model (model_id) whose metadata "
                      "has a task, or use cross_entropy with targets", "task")
    try:
        definition = tasks.get(task)
    except ValueError as exc:
        raise invalid(loc, f"the model's task {task!r} is not a task gatescope defines "
                      f"({exc}); use cross_entropy with targets", "task") from None
    text = req.input.text
    if text is None:
        raise invalid(loc, f"the {definition.kind} task defines its targets on text, so the "
                      "task loss needs text input; for values use cross_entropy with "
                      "targets", "task")
    try:
        targets = definition.targets(text)
    except ValueError as exc:
        raise invalid(loc, f"this text is not an instance of the model's task "
                      f"{definition.name}: {exc}", "task") from None
    want = list(definition.labels)  # the targets index these, so the readout must too
    if len(want) != K:
        raise invalid(loc, f"the {definition.kind} task has {len(want)} classes but this "
                      f"model's readout has K = {K} outputs, so the task's targets do not "
                      "index it; use cross_entropy with targets", "task")
    if labels is not None and list(labels) != want:
        raise invalid(loc, f"this model's readout labels {_shown(labels)} are not the "
                      f"{definition.kind} task's classes {_shown(want)} in order, so the "
                      "task's targets would pick the wrong outputs; use cross_entropy with "
                      "targets", "task")
    if all(k is None for k in targets):
        raise invalid(loc, f"the {definition.kind} task sets no target anywhere in this text, "
                      "so there is no loss to compute", "task")
    return np.array([NO_TARGET if k is None else k for k in targets], dtype=np.intp)


def _shown(labels: list[str], limit: int = 8) -> str:
    """The first labels, for a message."""
    return "[" + ", ".join(map(repr, labels[:limit])) + (", …]" if len(labels) > limit else "]")


def _next_characters(req: RunRequest, T: int, K: int, labels: list[str] | None,
                     vocab: str | None) -> np.ndarray:
    """k_t = the index of character t + 1 among the labels, for t < T − 1; none at T − 1."""
    loc = ("loss", "next_token")
    text = req.input.text
    if text is None:
        raise invalid(loc, "next_token predicts the next character, so it needs text input; "
                      "for values use cross_entropy with targets", "next_token")
    if T < 2:
        raise invalid(loc, "next_token needs at least 2 characters: the last step has no "
                      "next character to predict", "next_token")
    if labels is None and vocab is not None and len(vocab) == K:
        labels = list(vocab)  # no labels given: the readout predicts the input characters
    if labels is None:
        raise invalid(loc, f"next_token needs the model's labels (the K = {K} characters its "
                      f"readout predicts); this model has none, and the input vocab has "
                      f"{len(vocab or '')} characters, not {K}", "next_token")
    index = {label: k for k, label in enumerate(labels)}
    missing = sorted({ch for ch in text[1:] if ch not in index})
    if missing:
        shown = ", ".join(map(repr, missing[:20])) + (", …" if len(missing) > 20 else "")
        raise invalid(loc, f"next_token's targets are the next characters among the model's "
                      f"{K} labels, which lack {shown}: use only characters among them after "
                      "the first", "next_token")
    return np.array([index[ch] for ch in text[1:]] + [NO_TARGET], dtype=np.intp)


def evaluate(objective: Objective, h: np.ndarray, weights: StateDict | None) -> Evaluated:
    """L, ∂L/∂h_t, and the readout's outputs and gradients, from the top layer's states
    h: (T, N, H); `weights` the readout's (None without one)."""
    if weights is None:
        loss, dH = _hidden_loss(objective, h)
        return Evaluated(loss, dH)
    W, b = weights[WEIGHT], weights[BIAS]
    z = readout.logits(h, W, b)  # z_t = W h_t + b
    outputs = {"logits": z, "probs": readout.softmax(z)}  # p_t = softmax(z_t)
    if objective.classes is None:  # the readout is not in L: its gradients are zero
        loss, dH = _hidden_loss(objective, h)
        return Evaluated(loss, dH, outputs, {WEIGHT: np.zeros_like(W), BIAS: np.zeros_like(b)})
    # L = mean over targeted steps of −log p_t[k_t]; ∂L/∂z_t = (p_t − onehot(k_t)) / n
    loss, dz = readout.cross_entropy(z, objective.classes)
    # ∂L/∂h_t = Wᵀ ∂L/∂z_t, ∂L/∂W = Σ_t ∂L/∂z_t h_tᵀ, ∂L/∂b = Σ_t ∂L/∂z_t
    dH, dW, db = readout.backward(dz, h, W)
    return Evaluated(loss, dH, outputs, {WEIGHT: dW, BIAS: db})


def _hidden_loss(objective: Objective, h: np.ndarray) -> tuple[float, np.ndarray]:
    """L and ∂L/∂h_t of a loss on the top layer's states h: (T, N, H)."""
    loss = objective.request.loss
    if isinstance(loss, LastHiddenSum):
        return losses.last_hidden_sum(h)
    if isinstance(loss, HiddenUnit):
        step = h.shape[0] - 1 if loss.step is None else loss.step
        return losses.hidden_unit(h, step, loss.unit)
    if isinstance(loss, AllHiddenSum):
        return losses.all_hidden_sum(h)
    assert isinstance(loss, MSE) and objective.targets is not None
    return losses.mse(h, objective.targets)
