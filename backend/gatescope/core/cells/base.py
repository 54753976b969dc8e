"""What every cell provides: the `Cell` base class the engine, the Jacobians and the runner
call, and the `Trace` each cell's forward pass fills.

Shapes: T steps, N sequences, H hidden units, G gate blocks (4 LSTM, 3 GRU, 1 RNN).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from .clamps import StepClamps


class Trace(Protocol):
    """One layer's forward pass over T steps and N sequences (each cell module's Trace).

    h: (T+1, N, H), the initial state at index 0. c: (T+1, N, H) for the LSTM, else None.
    pre: (T, N, G·H) pre-activations. local: every step's local derivatives (T, N, …).
    clamped: target → (T, N, H) bool, the entries an intervention replaced.
    """

    h: np.ndarray
    pre: np.ndarray
    clamped: dict[str, np.ndarray]

    @property
    def c(self) -> np.ndarray | None: ...

    @property
    def local(self) -> Any: ...

    def step(self, t: int) -> Any: ...

    def gates(self) -> dict[str, np.ndarray]: ...

    def pre_activations(self) -> dict[str, np.ndarray]: ...


AnyTrace = TypeVar("AnyTrace", bound=Trace)


def head(trace: AnyTrace, n: int) -> AnyTrace:
    """The first n steps of a trace, as views (states keep their initial row: n + 1)."""
    parts: dict[str, Any] = {}
    for f in fields(trace):  # type: ignore[arg-type]  # every cell's Trace is a dataclass
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


@dataclass
class Factors:
    """A cell's one-step state Jacobian in factored form, for every step and sequence:

        J_t = diag(p) + Σ_k diag(alphas[k]) · Ws[k] · diag(d)

    p, d: (T, N, H) or None (p = 0, d = 1). alphas[k]: (T, N, H). Ws[k]: (H, H), a block
    of W_hh. The state is c for an LSTM (∂c_t/∂c_{t−1}), h for the others (∂h_t/∂h_{t−1}).
    """

    p: np.ndarray | None
    alphas: dict[str, np.ndarray]
    Ws: dict[str, np.ndarray]
    d: np.ndarray | None


class Cell(ABC):
    """One cell type: its gates in PyTorch's order, its forward and backward loops over one
    layer's steps, and the factors of its one-step Jacobian.

    name: the contract's cell name. gates: the gate names, PyTorch's order ("a", the RNN's
    pre-activation, is not a gate). blocks: G, the number of H-row blocks stacked in
    weight_ih / weight_hh. has_cell_state: whether the cell carries c besides h.
    jacobian_terms: whether its Jacobian is reported term by term (the LSTM's direct,
    forget, input and candidate terms of ∂c_t/∂c_{t−1}) or only as its total.
    """

    name: str
    gates: ClassVar[tuple[str, ...]]
    blocks: ClassVar[int]
    has_cell_state: ClassVar[bool]
    jacobian_terms: ClassVar[bool] = False

    @abstractmethod
    def new_trace(self, T: int, h0: np.ndarray, c0: np.ndarray | None) -> Trace:
        """Empty buffers for T steps of one layer, holding the initial state (N, H)."""

    @abstractmethod
    def split_recurrent_bias(self, b_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(the part of b_hh (G·H,) folded into the input projection, the part the step adds
        itself, or None)."""

    @abstractmethod
    def forward(self, xw: np.ndarray, W_hhT: np.ndarray, b_step: np.ndarray | None,
                trace: Any, clamps: StepClamps | None = None, /) -> None:
        """The recurrence over every step of one layer, writing `trace` (arguments by
        position: each cell names them for what they are).

        xw: (T, N, G·H) input projection plus folded biases (overwritten). W_hhT: (H, G·H).
        b_step: split_recurrent_bias's second part. clamps: one tuple of interventions per
        step, or None. Step t's named cache is then trace.step(t).
        """

    @abstractmethod
    def backward(self, local: Any, dh_ext: np.ndarray, W_hh: np.ndarray,
                 truncate: int | None, dA: np.ndarray, dH: np.ndarray,
                 dC: np.ndarray | None, /) -> tuple[np.ndarray, np.ndarray | None]:
        """Backpropagation through time for one layer, t = T−1 … 0.

        local: the trace's local derivatives. dh_ext: (T, N, H) ∂L/∂h_t from outside the
        recurrence. Writes dH (and dC) (T, N, H), the total ∂L/∂h_t (∂L/∂c_t), and dA
        (T, N, G·H), ∂L/∂ pre-activations. Returns (∂L/∂h_{−1}, ∂L/∂c_{−1} or None), (N, H).
        """

    @abstractmethod
    def split(self, block: np.ndarray) -> dict[str, np.ndarray]:
        """(…, G·H) → {gate name: (…, H)} views ({"a": …} for the RNN's pre-activation)."""

    def recurrent_grad(self, da: np.ndarray, trace: Any) -> np.ndarray:
        """∂L/∂(W_hh h + b_hh) for every step, (T, N, G·H), from da = ∂L/∂ pre-activations.
        They are the same but in the GRU, whose n gate sees W_hn h + b_hn through r."""
        return da

    @abstractmethod
    def jacobian_factors(self, trace: Any, W_hh: np.ndarray) -> Factors:
        """The one-step Jacobian of every step, from the trace's local derivatives."""
