"""The four recurrent cells, each a forward / backward pair over the steps of one layer, with
a named cache per step.

`CELLS[name]` gathers what the engine needs to run any of them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from typing import Any, Protocol

import numpy as np

from . import gru, lstm, rnn

__all__ = ["CELLS", "Cell", "Trace", "gru", "head", "lstm", "rnn"]


def head(trace: Any, n: int) -> Any:
    """The first n steps of a trace, as views (states keep their initial row: n + 1)."""
    parts = {}
    for f in fields(trace):
        value = getattr(trace, f.name)
        if f.name in ("h", "c"):
            parts[f.name] = value[:n + 1]
        elif f.name == "clamped":
            parts[f.name] = {target: mask[:n] for target, mask in value.items()}
        elif isinstance(value, np.ndarray):
            parts[f.name] = value[:n]
        else:
            parts[f.name] = value
    return type(trace)(**parts)


def _same(da: np.ndarray, trace: Any) -> np.ndarray:
    return da


@dataclass(frozen=True)
class Trace(Protocol):
    """One layer's forward pass over T steps and N sequences (each cell module's Trace).

    h: (T+1, N, H), the initial state at index 0. c: (T+1, N, H) for the LSTM, else None.
    pre: (T, N, G·H) pre-activations. local: every step's local derivatives (T, N, …).
    """

    h: np.ndarray
    c: np.ndarray | None
    pre: np.ndarray

    @property
    def local(self) -> Any: ...

    def step(self, t: int) -> Any: ...

    def gates(self) -> dict[str, np.ndarray]: ...

    def pre_activations(self) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class Cell:
    """One cell type: its gates in PyTorch's order and its forward and backward loops.

    blocks: G, the number of H-row blocks stacked in weight_ih/weight_hh (4, 3 or 1).
    new_trace(T, h0, c0): empty buffers for T steps of one layer, holding the initial state.
    split_recurrent_bias(b_hh) → (the part of b_hh folded into the input projection, the
        part the step adds itself, or None).
    forward(xw, W_hhT, b_step, trace, clamps): the recurrence over every step of one layer,
        writing the trace; step t's named cache is trace.step(t).
    backward(local, dh_ext, W_hh, truncate, dA, dH, dC) → (∂L/∂h_{−1}, ∂L/∂c_{−1} or None):
        backpropagation through time for one layer; see the cell modules.
    split: (…, G·H) → {gate name: (…, H)} views ({"a": …} for the RNN's pre-activation).
    recurrent_grad: ∂L/∂(W_hh h + b_hh) from ∂L/∂(pre-activations); they differ only in
        the GRU, whose n gate sees W_hn h + b_hn through r.
    """

    name: str
    gates: tuple[str, ...]
    blocks: int
    has_cell_state: bool
    new_trace: Callable[..., Any]
    split_recurrent_bias: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
    forward: Callable[..., None]
    backward: Callable[..., tuple]
    split: Callable[[np.ndarray], dict[str, np.ndarray]]
    recurrent_grad: Callable[[np.ndarray, Any], np.ndarray] = _same


def _cell(module: Any, name: str, **overrides: Any) -> Cell:
    """A Cell from a cell module's constants and functions."""
    fields = dict(
        name=name, gates=module.GATES, blocks=max(len(module.GATES), 1),
        has_cell_state=module.HAS_CELL_STATE, new_trace=module.Trace.empty,
        split_recurrent_bias=module.split_recurrent_bias, forward=module.forward,
        backward=module.backward, split=module.split_gates)
    if hasattr(module, "recurrent_grad"):
        fields["recurrent_grad"] = module.recurrent_grad
    return Cell(**{**fields, **overrides})


CELLS: dict[str, Cell] = {
    "lstm": _cell(lstm, "lstm"),
    "gru": _cell(gru, "gru"),
    "rnn_tanh": _cell(rnn, "rnn_tanh"),
    "rnn_relu": _cell(rnn, "rnn_relu", new_trace=partial(rnn.Trace.empty, relu=True),
                      forward=partial(rnn.forward, relu=True)),
}
