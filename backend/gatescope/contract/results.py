"""What a run returns: the `/run` response's structure with NumPy arrays inside.

`RunResult.to_json()` gives the plain JSON-ready response (finite numbers, null for
overflow). Array shapes: T steps, H hidden, D input, L layers, for one sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.numerics import all_finite
from .encoding import jsonable, walk_arrays


@dataclass
class LayerResult:
    """One layer, or one direction of a bidirectional layer (`layer`, `direction`); every
    array in input order (a reverse direction's step t: its state after reading x_t … x_{T−1}).

    h, c: (T, H) states after each step (c: LSTM only, else None).
    gates: post-activation values {"i", "f", "g", "o"} / {"r", "z", "n"} / {}, each (T, H).
    pre: pre-activations, same names ({"a"} for an RNN), each (T, H).
    grads: {"h": (T, H), "c": (T, H) LSTM only, "gates": {name: (T, H)} of ∂L/∂pre-activation,
            "h_norm": (T,), "c_norm": (T,) LSTM only}.
    jacobian: per-step Frobenius norms, (T,) each: LSTM direct, forget, input, candidate,
              total, and "flow": {direct, forget, input, candidate} — ‖termᵀ ∂L/∂c_t‖₂, the
              gradient reaching c_{t−1} through each path; GRU and RNN total (∂h_t/∂h_{t−1}).
    connectivity: (T, T), row t, column s = ‖∂(Σ_j h_t[j]) / ∂x_s‖₂, when requested.
    """

    h: np.ndarray | None
    c: np.ndarray | None
    gates: dict[str, np.ndarray] | None
    pre: dict[str, np.ndarray] | None
    grads: dict[str, Any] | None
    jacobian: dict[str, Any] | None
    connectivity: np.ndarray | None = None
    layer: int = 0
    direction: str = "forward"  # or "reverse": a bidirectional layer's second unit

    def as_dict(self) -> dict[str, Any]:
        """The parts computed and asked for (`fields`), in the response's order."""
        out: dict[str, Any] = {"layer": self.layer, "direction": self.direction}
        for name in ("h", "c", "gates", "pre", "grads", "jacobian", "connectivity"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass
class RunResult:
    """A forward pass and BPTT over one sequence. docs/API.md describes every field.

    input_grad: (T, D) ∂L/∂x_t (a model with an embedding: ∂L/∂ the embedded vectors, T×E).
    param_grads: ∂L/∂ each parameter under the model's names (an uploaded model's as in its
    file; otherwise PyTorch's plain names, a readout's last: readout.weight (K, H),
    readout.bias (K)); none for a tensor the model lacks (bias=False).
    initial_state_grad: {"h": (L, H), "c": (L, H) LSTM only}, ∂L/∂ the states entering step 0.
    outputs: a readout model's {"logits": (T, K), "probs": (T, K)}, else None.
    """

    cell: str
    dtype: str
    steps: int
    input_size: int
    hidden_size: int
    num_layers: int
    truncate: int | None
    tokens: list[str] | None
    vocab: str | None
    loss: float
    layers: list[LayerResult]
    input_grad: np.ndarray | None  # None: not asked for (fields) or not computed (backward)
    param_grads: dict[str, np.ndarray] | None
    initial_state_grad: dict[str, np.ndarray] | None
    warnings: list[str] = field(default_factory=list)
    # no NaN or ±inf in any array: set with `warnings` (check_overflow), False until then
    finite: bool = False
    grad_norm: dict[str, float] | None = None  # {"total", "clipped"} when clipping
    outputs: dict[str, np.ndarray] | None = None  # {"logits", "probs"} with a readout
    token_ids: list[int] | None = None  # a model with an embedding: the ids it read
    bidirectional: bool = False  # layers then holds two entries per layer
    proj_size: int = 0  # an LSTM's projection: h is P wide, c and the gates H
    backward: bool = True  # False: a forward pass only, no gradient computed
    fields: list[str] | None = None  # the parts asked for; None: every one

    def as_dict(self) -> dict[str, Any]:
        """The response's structure with the arrays left as NumPy arrays."""
        extra = {} if self.grad_norm is None else {"grad_norm": self.grad_norm}
        outputs = {} if self.outputs is None else {"outputs": self.outputs}
        ids = {} if self.token_ids is None else {"token_ids": self.token_ids}
        grads = {name: getattr(self, name) for name in ("input_grad", "param_grads",
                                                         "initial_state_grad")
                 if getattr(self, name) is not None}
        chosen = {} if self.fields is None else {"fields": self.fields}
        return {
            "cell": self.cell, "dtype": self.dtype, "steps": self.steps,
            "input_size": self.input_size, "hidden_size": self.hidden_size,
            "num_layers": self.num_layers, "bidirectional": self.bidirectional,
            "proj_size": self.proj_size, "backward": self.backward, **chosen,
            "truncate": self.truncate,
            "tokens": self.tokens, "vocab": self.vocab, **ids, "loss": self.loss, **outputs,
            "layers": [layer.as_dict() for layer in self.layers],
            **grads, **extra, "warnings": self.warnings,
        }

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready data: lists of finite floats, null where a value overflowed."""
        return jsonable(self.as_dict())


@dataclass
class BatchResult:
    """A batch's runs: `batch`, one RunResult per sequence in the request's order, each what
    a run of that sequence alone returns; `param_grads_total`, their parameter gradients
    summed (PyTorch's reduction="sum" over the batch), when they were computed."""

    batch: list[RunResult]
    param_grads_total: dict[str, np.ndarray] | None = None
    total_warnings: list[str] = field(default_factory=list)  # the sum's own overflow

    @property
    def warnings(self) -> list[str]:
        """Each sequence's overflow warnings, prefixed with its index; then the sum's."""
        return [f"sequence {n}: {w}" for n, r in enumerate(self.batch)
                for w in r.warnings] + self.total_warnings

    @property
    def finite(self) -> bool:
        return not self.warnings

    def as_dict(self) -> dict[str, Any]:
        total = {} if self.param_grads_total is None else {
            "param_grads_total": self.param_grads_total}
        return {"batch": [r.as_dict() for r in self.batch], **total,
                "warnings": self.warnings}

    def to_json(self) -> dict[str, Any]:
        return jsonable(self.as_dict())


@dataclass
class JacobianResult:
    """The one-step Jacobian at `step` of `layer`: terms (LSTM's four, else {}) and total,
    each (H, H), row i, column j = ∂(state_t)[i] / ∂(state_{t−1})[j]."""

    step: int
    layer: int
    terms: dict[str, np.ndarray]
    total: np.ndarray
    warnings: list[str] = field(default_factory=list)
    finite: bool = False  # as in RunResult
    direction: str = "forward"  # or "reverse", of a bidirectional layer

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "layer": self.layer, "direction": self.direction,
                "terms": self.terms, "total": self.total, "warnings": self.warnings}

    def to_json(self) -> dict[str, Any]:
        return jsonable(self.as_dict())


def check_overflow(result: RunResult | JacobianResult, data: dict[str, Any],
                   finite_roots: dict[int, bool] | None = None) -> None:
    """Set the result's `warnings` from its arrays in `data`, and `finite` with them.
    finite_roots: buffers already checked (id → all finite), shared by a batch's results,
    whose arrays are views of the same few buffers."""
    result.warnings = overflow_warnings(data, finite_roots)
    result.finite = not result.warnings


def overflow_warnings(data: dict[str, Any], finite_roots: dict[int, bool] | None = None
                      ) -> list[str]:
    """One message per array holding NaN or ±inf: where, and from which step on."""
    messages = []
    loss = data.get("loss")
    if loss is not None and not np.isfinite(loss):
        messages.append("loss overflowed; it is sent as null")
    arrays = list(walk_arrays(data))
    # Most arrays are views into a few engine buffers (the gates of one (T, N, 4H) block,
    # say): one check of each whole contiguous buffer is twice as fast as one per view,
    # and only a buffer holding NaN/inf has its views looked at one by one.
    roots = {id(_root(a)): _root(a) for _, a in arrays}
    known = {} if finite_roots is None else finite_roots
    for key, root in roots.items():
        if key not in known:
            known[key] = all_finite(root)
    clean = {key for key in roots if known[key]}
    for path, a in arrays:
        if id(_root(a)) in clean or all_finite(a):
            continue
        bad = ~np.isfinite(a)
        where = _describe(path)
        has_time = path.startswith(("layers.", "outputs.")) or path == "input_grad"
        if has_time and a.ndim >= 1:
            first = int(np.argmax(bad.reshape(a.shape[0], -1).any(axis=1)))
            messages.append(f"{where} overflowed from step {first} on; "
                            "those values are sent as null")
        else:
            messages.append(f"{where} overflowed; those values are sent as null")
    return messages


def _root(a: np.ndarray) -> np.ndarray:
    """The array that owns a view's memory (a itself if it owns its own)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _describe(path: str) -> str:
    """'layers.0.grads.h' → 'layer 0, field grads.h'."""
    parts = path.split(".")
    if parts[0] == "layers":
        return f"layer {parts[1]}, field {'.'.join(parts[2:])}"
    return f"field {path}"
