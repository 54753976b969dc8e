"""GRU cell, PyTorch's equations and gate order (r, z, n).

    r = σ(W_ir x + b_ir + W_hr h + b_hr)
    z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h' = (1 − z) ⊙ n + z ⊙ h

Shapes: N sequences, H hidden units, the three gate blocks stacked as (N, 3H). The input
projection xw = x W_ihᵀ + b_ih of every step, plus b_hr and b_hz, comes precomputed from the
engine; b_hn stays in the step, behind r. The pre-activation of n is the argument of its
tanh, W_in x + b_in + r ⊙ (W_hn h + b_hn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ..numerics import dsigmoid, dtanh, sigmoid
from .clamps import Clamp, apply

GATES = ("r", "z", "n")
HAS_CELL_STATE = False


class Step(NamedTuple):
    """The named cache of one step: views into a Trace, every array (N, H) or (N, 3H)."""

    h_prev: np.ndarray  # h_{t−1}
    pre: np.ndarray  # (N, 3H) pre-activations of r, z, n
    act: np.ndarray  # (N, 3H) σ(r), σ(z), tanh(n)
    hn: np.ndarray  # W_hn h_{t−1} + b_hn, the part of n that r gates
    h: np.ndarray  # h_t


class Local(NamedTuple):
    """Local derivatives of a step, for all steps at once (leading axes (T, N) or (N,)),
    each (…, H). They are also the Jacobian's factors.

    dh_dpre_n: ∂h_t/∂ pre-activation of n = (1 − z) ⊙ (1 − n²)
    dpre_n_dpre_r: ∂(pre-activation of n)/∂(pre-activation of r) = hn ⊙ σ'(r)
    dh_dpre_z: ∂h_t/∂ pre-activation of z = (h_{t−1} − n) ⊙ σ'(z)
    r, z: the gates themselves (r gates the recurrent part of n; z carries h_{t−1} over)
    """

    dh_dpre_n: np.ndarray
    dpre_n_dpre_r: np.ndarray
    dh_dpre_z: np.ndarray
    r: np.ndarray
    z: np.ndarray


@dataclass
class Trace:
    """One layer's forward pass, time first. h: (T+1, N, H), initial state at index 0;
    pre, act: (T, N, 3H); hn: (T, N, H)."""

    h: np.ndarray
    pre: np.ndarray
    act: np.ndarray
    hn: np.ndarray
    clamped: dict[str, np.ndarray] = field(default_factory=dict)  # see lstm.Trace
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

    @cached_property
    def local(self) -> Local:
        r, z, n = split_gates(self.act).values()
        local = Local((1.0 - z) * dtanh(n), self.hn * dsigmoid(r),
                      (self.h[:-1] - n) * dsigmoid(z), r, z)
        return _cut(local, self.clamped) if self.clamped else local


def _cut(local: Local, clamped: dict[str, np.ndarray]) -> Local:
    """Zero the local derivatives through replaced entries (see lstm._cut)."""
    z = local.z.copy()
    if "r" in clamped:
        local.dpre_n_dpre_r[clamped["r"]] = 0.0
    if "z" in clamped:
        local.dh_dpre_z[clamped["z"]] = 0.0
    if "n" in clamped:
        local.dh_dpre_n[clamped["n"]] = 0.0
    if "h" in clamped:  # h_t = v: nothing flows into z, n or h_{t−1}
        local.dh_dpre_n[clamped["h"]] = 0.0
        local.dh_dpre_z[clamped["h"]] = 0.0
        z[clamped["h"]] = 0.0
    return local._replace(z=z)


def split_gates(block: np.ndarray) -> dict[str, np.ndarray]:
    """(…, 3H) → {"r", "z", "n"}: views of each (…, H) block."""
    H = block.shape[-1] // 3
    return {name: block[..., k * H:(k + 1) * H] for k, name in enumerate(GATES)}


def split_recurrent_bias(b_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the part of b_hh folded into xw, the part the step adds itself): b_hr and b_hz are
    summed with the input projection; b_hn is gated by r, so it stays in the step."""
    H = b_hh.shape[0] // 3
    folded = b_hh.copy()
    folded[2 * H:] = 0.0
    return folded, b_hh[2 * H:]


def step_forward(xw: np.ndarray, W_hhT: np.ndarray, b_hn: np.ndarray, s: Step,
                 clamps: tuple[Clamp, ...] = ()) -> None:
    """One step: reads s.h_prev; writes s.pre, s.act, s.hn, s.h.

    xw: (N, 3H) = x_t W_ihᵀ + b_ih + [b_hr, b_hz, 0].   W_hhT: (H, 3H).   b_hn: (H,).
    clamps: interventions at this step, each applied right after its target is computed.
    """
    H = s.h.shape[-1]
    hw = s.h_prev @ W_hhT
    np.add(xw[:, :2 * H], hw[:, :2 * H], out=s.pre[:, :2 * H])
    sigmoid(s.pre[:, :2 * H], out=s.act[:, :2 * H])
    r, z = s.act[:, :H], s.act[:, H:2 * H]
    if clamps:  # most runs have none: skip building the dict
        apply(clamps, {"r": r, "z": z})
    np.add(hw[:, 2 * H:], b_hn, out=s.hn)
    np.multiply(r, s.hn, out=s.pre[:, 2 * H:])  # n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    np.add(s.pre[:, 2 * H:], xw[:, 2 * H:], out=s.pre[:, 2 * H:])
    n = np.tanh(s.pre[:, 2 * H:], out=s.act[:, 2 * H:])
    if clamps:  # most runs have none: skip building the dict
        apply(clamps, {"n": n})
    np.subtract(s.h_prev, n, out=s.h)  # h' = (1 − z) ⊙ n + z ⊙ h = n + z ⊙ (h − n)
    np.multiply(s.h, z, out=s.h)
    np.add(s.h, n, out=s.h)
    if clamps:  # most runs have none: skip building the dict
        apply(clamps, {"h": s.h})


def step_backward(local: Local, dh: np.ndarray, dc_next: None, W_hh: np.ndarray,
                  da: np.ndarray) -> tuple[None, np.ndarray, None]:
    """Backward through one step.

    dh: (N, H) total ∂L/∂h_t. local: this step's local derivatives (N, …).
    Writes da (N, 3H) = ∂L/∂(pre-activations of r, z, n).
    Returns (None, dh_prev, None): a GRU has no cell state to carry.
    """
    H = dh.shape[-1]
    r, z = local.r, local.z
    da_n = np.multiply(dh, local.dh_dpre_n, out=da[:, 2 * H:])
    np.multiply(da_n, local.dpre_n_dpre_r, out=da[:, :H])
    np.multiply(dh, local.dh_dpre_z, out=da[:, H:2 * H])
    dh_prev = dh * z  # h' = … + z ⊙ h, directly
    dh_prev += da[:, :2 * H] @ W_hh[:2 * H]  # through r and z
    dh_prev += (da_n * r) @ W_hh[2 * H:]  # through n, whose recurrent part sits behind r
    return None, dh_prev, None


def recurrent_grad(da: np.ndarray, trace: Trace) -> np.ndarray:
    """∂L/∂(W_hh h + b_hh) for every step, (T, N, 3H), from da = ∂L/∂(pre-activations)."""
    H = da.shape[-1] // 3
    da_hh = da.copy()
    da_hh[..., 2 * H:] *= trace.act[..., :H]
    return da_hh
