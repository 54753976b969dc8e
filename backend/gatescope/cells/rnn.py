"""Elman RNN cell, PyTorch's `nn.RNN` with nonlinearity tanh or relu.

    h' = φ(W_ih x + b_ih + W_hh h + b_hh),   φ = tanh or relu

Shapes: N sequences, H hidden units; one block, the pre-activation a (N, H). The input
projection xw = x W_ihᵀ + b_ih + b_hh comes precomputed from the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ..numerics import dtanh
from .clamps import Clamp, apply

GATES: tuple[str, ...] = ()
HAS_CELL_STATE = False


class Step(NamedTuple):
    """The named cache of one step: views into a Trace, every array (N, H)."""

    h_prev: np.ndarray  # h_{t−1}
    pre: np.ndarray  # a = W_ih x + b_ih + W_hh h + b_hh
    h: np.ndarray  # h_t = φ(a)


class Local(NamedTuple):
    """φ'(a) for all steps at once, (…, H): 1 − h² for tanh; 1 where a > 0 for relu
    (0 at a = 0, as PyTorch). It is also the Jacobian's factor, diag(φ'(a)) · W_hh."""

    dh_da: np.ndarray


@dataclass
class Trace:
    """One layer's forward pass, time first. h: (T+1, N, H), initial state at index 0;
    pre: (T, N, H)."""

    h: np.ndarray
    pre: np.ndarray
    relu: bool = False
    clamped: dict[str, np.ndarray] = field(default_factory=dict)  # see lstm.Trace
    c = None

    @classmethod
    def empty(cls, T: int, h0: np.ndarray, c0: None = None, relu: bool = False) -> Trace:
        N, H = h0.shape
        h = np.empty((T + 1, N, H), h0.dtype)
        h[0] = h0
        return cls(h, np.empty((T, N, H), h0.dtype), relu)

    def step(self, t: int) -> Step:
        return Step(self.h[t], self.pre[t], self.h[t + 1])

    def gates(self) -> dict[str, np.ndarray]:
        return {}

    def pre_activations(self) -> dict[str, np.ndarray]:
        return split_gates(self.pre)

    @cached_property
    def local(self) -> Local:
        dh_da = (self.pre > 0).astype(self.pre.dtype) if self.relu else dtanh(self.h[1:])
        if "h" in self.clamped:  # h_t = v: nothing flows into a
            dh_da[self.clamped["h"]] = 0.0
        return Local(dh_da)


def split_gates(block: np.ndarray) -> dict[str, np.ndarray]:
    """The RNN's single block is its pre-activation a."""
    return {"a": block}


def split_recurrent_bias(b_hh: np.ndarray) -> tuple[np.ndarray, None]:
    """(the part of b_hh folded into xw, the part the step adds itself): all of it, none."""
    return b_hh, None


def step_forward(xw: np.ndarray, W_hhT: np.ndarray, b_step: None, s: Step,
                 clamps: tuple[Clamp, ...] = (), relu: bool = False) -> None:
    """One step: reads s.h_prev; writes s.pre and s.h.

    xw: (N, H) = x_t W_ihᵀ + b_ih + b_hh.   W_hhT: (H, H).   b_step: unused.
    """
    np.matmul(s.h_prev, W_hhT, out=s.pre)
    np.add(s.pre, xw, out=s.pre)
    if relu:
        np.maximum(s.pre, 0.0, out=s.h)
    else:
        np.tanh(s.pre, out=s.h)
    if clamps:  # most runs have none: skip building the dict
        apply(clamps, {"h": s.h})


def step_backward(local: Local, dh: np.ndarray, dc_next: None, W_hh: np.ndarray,
                  da: np.ndarray) -> tuple[None, np.ndarray, None]:
    """Writes da (N, H) = ∂L/∂a_t from the total dh = ∂L/∂h_t; returns (None, dh_prev, None)."""
    np.multiply(dh, local.dh_da, out=da)
    return None, da @ W_hh, None
