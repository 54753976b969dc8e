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
from .base import Cell, Factors
from .clamps import StepClamps, apply
from .steps import back_through_time

GATES: tuple[str, ...] = ()


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
    def empty(cls, T: int, h0: np.ndarray, c0: np.ndarray | None = None, relu: bool = False
              ) -> Trace:
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


def forward(xw: np.ndarray, W_hhT: np.ndarray, b_step: np.ndarray | None, trace: Trace,
            clamps: StepClamps | None = None, relu: bool = False) -> None:
    """The recurrence over every step t = 0 … T−1, from the initial state in trace.h[0];
    writes trace.pre and trace.h. Step t's named cache is trace.step(t).

    xw: (T, N, H) = x_t W_ihᵀ + b_ih + b_hh.   W_hhT: (H, H).   b_step: unused.
    clamps: None, or one tuple of interventions per step (on h).
    """
    h = trace.h
    for xw_t, pre, h_prev, h_t, clamp in zip(xw, trace.pre, h[:-1], h[1:],
                                             clamps or [()] * len(xw), strict=True):
        np.matmul(h_prev, W_hhT, pre)  # a = W_ih x + b_ih + W_hh h + b_hh
        np.add(pre, xw_t, pre)
        if relu:  # h' = φ(a)
            np.maximum(pre, 0.0, out=h_t)  # (np.maximum wants out= by keyword)
        else:
            np.tanh(pre, h_t)
        if clamp:
            apply(clamp, {"h": h_t})


def backward(local: Local, dh_ext: np.ndarray, W_hh: np.ndarray, truncate: int | None,
             dA: np.ndarray, dH: np.ndarray, dC: np.ndarray | None = None
             ) -> tuple[np.ndarray, None]:
    """Backpropagation through time for one layer, t = T−1 … 0 (see lstm.backward).

    Writes dH (T, N, H), the total ∂L/∂h_t, and dA (T, N, H), ∂L/∂a_t. Returns ∂L/∂h_{−1}
    (N, H), and None: no cell state. Steps as in steps.back_through_time.
    """
    dh0, walk = back_through_time(dh_ext, dH, truncate)
    for (ext, reached, cut, dh, dh_prev), da, dh_da in zip(walk, dA[::-1], local.dh_da[::-1],
                                                           strict=True):
        if reached:  # total ∂L/∂h_t: from step t+1 (already in dh) and from outside
            np.add(dh, ext, dh)
        np.multiply(dh, dh_da, da)  # h = φ(a)
        if cut:  # the state entering t is detached: values carried on, gradients stop
            dh_prev[...] = 0.0
        else:
            np.matmul(da, W_hh, dh_prev)
    return dh0, None


def jacobian_factors(trace: Trace, W_hh: np.ndarray) -> Factors:
    """∂h_t/∂h_{t−1} = diag(φ'(a_t)) · W_hh (p = 0, d = 1): the lecture's fixed pattern."""
    return Factors(p=None, alphas={"a": trace.local.dh_da}, Ws={"a": W_hh}, d=None)


class RNN(Cell):
    """torch.nn.RNN's cell with nonlinearity tanh (name "rnn_tanh") or relu ("rnn_relu").
    Its behaviour is this module's functions, with the nonlinearity passed on."""

    gates = GATES
    blocks = 1
    has_cell_state = False
    split_recurrent_bias = staticmethod(split_recurrent_bias)
    backward = staticmethod(backward)
    split = staticmethod(split_gates)
    jacobian_factors = staticmethod(jacobian_factors)

    def __init__(self, relu: bool) -> None:
        self.relu = relu
        self.name = "rnn_relu" if relu else "rnn_tanh"

    def new_trace(self, T: int, h0: np.ndarray, c0: np.ndarray | None = None) -> Trace:
        return Trace.empty(T, h0, relu=self.relu)

    def forward(self, xw: np.ndarray, W_hhT: np.ndarray, b_step: np.ndarray | None,
                trace: Trace, clamps: StepClamps | None = None) -> None:
        forward(xw, W_hhT, None, trace, clamps, relu=self.relu)
