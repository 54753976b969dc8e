"""GRU cell, PyTorch's equations and gate order (r, z, n).

    r = σ(W_ir x + b_ir + W_hr h + b_hr)
    z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h' = (1 − z) ⊙ n + z ⊙ h

Shapes: N sequences, H hidden units, the three gate blocks stacked as (N, 3H). The input
projection xw = x W_ihᵀ + b_ih of every step comes precomputed from the engine; b_hh stays
inside the step because b_hn is gated by r. The pre-activation of n is the argument of its
tanh, W_in x + b_in + r ⊙ (W_hn h + b_hn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..numerics import dsigmoid, dtanh, sigmoid

NAME = "gru"
GATES = ("r", "z", "n")
HAS_CELL_STATE = False


class Step(NamedTuple):
    """The named cache of one step: views into a Trace, every array (N, H) or (N, 3H)."""

    h_prev: np.ndarray  # h_{t−1}
    pre: np.ndarray  # (N, 3H) pre-activations of r, z, n
    act: np.ndarray  # (N, 3H) σ(r), σ(z), tanh(n)
    hn: np.ndarray  # W_hn h_{t−1} + b_hn, the part of n that r gates
    h: np.ndarray  # h_t


@dataclass
class Trace:
    """One layer's forward pass, time first. h: (T+1, N, H), initial state at index 0;
    pre, act: (T, N, 3H); hn: (T, N, H)."""

    h: np.ndarray
    pre: np.ndarray
    act: np.ndarray
    hn: np.ndarray
    c = None  # a GRU has no cell state

    @classmethod
    def empty(cls, T: int, h0: np.ndarray, c0: None = None) -> Trace:
        N, H = h0.shape
        dt = h0.dtype
        h = np.empty((T + 1, N, H), dt)
        h[0] = h0
        return cls(h, np.empty((T, N, 3 * H), dt), np.empty((T, N, 3 * H), dt),
                   np.empty((T, N, H), dt))

    def step(self, t: int) -> Step:
        return Step(self.h[t], self.pre[t], self.act[t], self.hn[t], self.h[t + 1])

    def gates(self) -> dict[str, np.ndarray]:
        return split_gates(self.act)

    def pre_activations(self) -> dict[str, np.ndarray]:
        return split_gates(self.pre)


def split_gates(block: np.ndarray) -> dict[str, np.ndarray]:
    """(…, 3H) → {"r", "z", "n"}: views of each (…, H) block."""
    H = block.shape[-1] // 3
    return {name: block[..., k * H:(k + 1) * H] for k, name in enumerate(GATES)}


def step_forward(xw: np.ndarray, W_hhT: np.ndarray, b_hh: np.ndarray, s: Step) -> None:
    """One step: reads s.h_prev; writes s.pre, s.act, s.hn, s.h.

    xw: (N, 3H) = x_t W_ihᵀ + b_ih.   W_hhT: (H, 3H).   b_hh: (3H,).
    """
    H = s.h.shape[-1]
    hw = s.h_prev @ W_hhT
    hw += b_hh
    np.add(xw[:, :2 * H], hw[:, :2 * H], out=s.pre[:, :2 * H])
    sigmoid(s.pre[:, :2 * H], out=s.act[:, :2 * H])
    r, z = s.act[:, :H], s.act[:, H:2 * H]
    s.hn[...] = hw[:, 2 * H:]
    np.multiply(r, s.hn, out=s.pre[:, 2 * H:])  # n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    s.pre[:, 2 * H:] += xw[:, 2 * H:]
    n = np.tanh(s.pre[:, 2 * H:], out=s.act[:, 2 * H:])
    np.subtract(s.h_prev, n, out=s.h)  # h' = (1 − z) ⊙ n + z ⊙ h = n + z ⊙ (h − n)
    np.multiply(s.h, z, out=s.h)
    np.add(s.h, n, out=s.h)


def step_backward(
    s: Step, dh: np.ndarray, dc_next: None, W_hh: np.ndarray, da: np.ndarray
) -> tuple[None, np.ndarray, None]:
    """Backward through one step.

    dh: (N, H) total ∂L/∂h_t. Writes da (N, 3H) = ∂L/∂(pre-activations of r, z, n).
    Returns (None, dh_prev, None): a GRU has no cell state to carry.
    """
    H = dh.shape[-1]
    r, z, n = s.act[:, :H], s.act[:, H:2 * H], s.act[:, 2 * H:]
    da_n = np.multiply(dh * (1.0 - z), dtanh(n), out=da[:, 2 * H:])
    np.multiply(da_n * s.hn, dsigmoid(r), out=da[:, :H])  # ∂n_pre/∂r = W_hn h + b_hn
    np.multiply(dh * (s.h_prev - n), dsigmoid(z), out=da[:, H:2 * H])
    da_hh = da.copy()
    da_hh[:, 2 * H:] *= r  # the recurrent part of n sits behind r
    dh_prev = dh * z + da_hh @ W_hh
    return None, dh_prev, None


def recurrent_grad(da: np.ndarray, trace: Trace) -> np.ndarray:
    """∂L/∂(W_hh h + b_hh) for every step, (T, N, 3H), from da = ∂L/∂(pre-activations)."""
    H = da.shape[-1] // 3
    da_hh = da.copy()
    da_hh[..., 2 * H:] *= trace.act[..., :H]
    return da_hh
