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

from ..numerics import dsigmoid, dtanh
from .base import Cell, Factors
from .clamps import StepClamps, apply
from .steps import back_through_time, negate_sigmoid_blocks, restore_sigmoid_blocks

GATES = ("r", "z", "n")


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
    def empty(cls, T: int, h0: np.ndarray, c0: np.ndarray | None = None) -> Trace:
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


def forward(xw: np.ndarray, W_hhT: np.ndarray, b_hn: np.ndarray | None, trace: Trace,
            clamps: StepClamps | None = None) -> None:
    """The recurrence over every step t = 0 … T−1, from the initial state in trace.h[0];
    writes trace.pre, act, hn, h. Step t's named cache is trace.step(t).

    xw: (T, N, 3H) = x_t W_ihᵀ + b_ih + [b_hr, b_hz, 0] (overwritten).   W_hhT: (H, 3H).
    b_hn: (H,).
    clamps: None, or one tuple of interventions per step, each applied right after its
    target is computed.

    As in the LSTM, r's and z's pre-activations are held negated inside the loop (their rows
    of W_hh and xw flipped once), so σ(x) = 1 / (1 + e^(−x)) costs one exp, one add, one
    reciprocal; `pre` is restored exactly after the loop (a zero as +0).
    """
    assert b_hn is not None, "a GRU step adds b_hn itself"
    H = trace.h.shape[-1]
    sigmoids = (slice(0, 2 * H),)  # r, z
    W_hhT = negate_sigmoid_blocks(xw, W_hhT, sigmoids)  # xw: the engine's own, flipped in place
    pre, act, h = trace.pre, trace.act, trace.h
    steps = zip(xw[..., :2 * H], xw[..., 2 * H:], pre, pre[..., :2 * H], pre[..., 2 * H:],
                act[..., :2 * H], act[..., :H], act[..., H:2 * H], act[..., 2 * H:], trace.hn,
                h[:-1], h[1:], clamps or [()] * len(xw), strict=True)
    with np.errstate(over="ignore"):  # e^(−x) → inf gives σ = 0
        for xw_rz, xw_n, pre_t, pre_rz, pre_n, rz, r, z, n, hn, h_prev, h_t, clamp in steps:
            np.matmul(h_prev, W_hhT, pre_t)  # −(W_hr h), −(W_hz h), W_hn h
            np.add(xw_rz, pre_rz, pre_rz)
            np.exp(pre_rz, rz)  # σ(x) = 1 / (1 + e^(−x)) for r, z
            np.add(rz, 1.0, rz)
            np.reciprocal(rz, rz)
            if clamp:
                apply(clamp, {"r": r, "z": z})
            np.add(pre_n, b_hn, hn)  # hn = W_hn h + b_hn
            np.multiply(r, hn, pre_n)  # n = tanh(W_in x + b_in + r ⊙ hn)
            np.add(pre_n, xw_n, pre_n)
            np.tanh(pre_n, n)
            if clamp:
                apply(clamp, {"n": n})
            np.subtract(h_prev, n, h_t)  # h' = (1 − z) ⊙ n + z ⊙ h = n + z ⊙ (h − n)
            np.multiply(h_t, z, h_t)
            np.add(h_t, n, h_t)
            if clamp:
                apply(clamp, {"h": h_t})
    restore_sigmoid_blocks(pre, sigmoids)


def backward(local: Local, dh_ext: np.ndarray, W_hh: np.ndarray, truncate: int | None,
             dA: np.ndarray, dH: np.ndarray, dC: np.ndarray | None = None
             ) -> tuple[np.ndarray, None]:
    """Backpropagation through time for one layer, t = T−1 … 0.

    local: every step's local derivatives, (T, N, …) (from Trace.local; N may be 1 and
    broadcast). dh_ext: (T, N, H) ∂L/∂h_t from outside the recurrence. truncate: window k or
    None (see lstm.backward). Writes dH (T, N, H), the total ∂L/∂h_t, and dA (T, N, 3H),
    ∂L/∂(pre-activations of r, z, n). Returns ∂L/∂h_{−1} (N, H), and None: no cell state.
    Each step writes ∂L/∂h_{t−1} straight into row t−1 of dH (steps.back_through_time).
    """
    N, H = dH.shape[1:]
    dh0, walk = back_through_time(dh_ext, dH, truncate)
    W_rz, W_n = W_hh[:2 * H], W_hh[2 * H:]
    through_rz, through_n, gated = (np.empty((N, H), dH.dtype) for _ in range(3))
    own = zip(dA[::-1, :, :H], dA[::-1, :, H:2 * H], dA[::-1, :, :2 * H], dA[::-1, :, 2 * H:],
              local.dh_dpre_n[::-1], local.dpre_n_dpre_r[::-1], local.dh_dpre_z[::-1],
              local.r[::-1], local.z[::-1], strict=True)
    for (ext, reached, cut, dh, dh_prev), (da_r, da_z, da_rz, da_n, dh_dpre_n, dpre_n_dpre_r,
                                          dh_dpre_z, r, z) in zip(walk, own, strict=True):
        if reached:  # total ∂L/∂h_t: from step t+1 (already in dh) and from outside
            np.add(dh, ext, dh)
        np.multiply(dh, dh_dpre_n, da_n)
        np.multiply(da_n, dpre_n_dpre_r, da_r)
        np.multiply(dh, dh_dpre_z, da_z)
        if cut:  # the state entering t is detached: values carried on, gradients stop
            dh_prev[...] = 0.0
        else:
            np.multiply(dh, z, dh_prev)  # h' = … + z ⊙ h, directly
            np.add(dh_prev, np.matmul(da_rz, W_rz, through_rz), dh_prev)  # through r, z
            np.multiply(da_n, r, gated)  # through n, whose recurrent part sits behind r
            np.add(dh_prev, np.matmul(gated, W_n, through_n), dh_prev)
    return dh0, None


def recurrent_grad(da: np.ndarray, trace: Trace) -> np.ndarray:
    """∂L/∂(W_hh h + b_hh) for every step, (T, N, 3H), from da = ∂L/∂(pre-activations)."""
    H = da.shape[-1] // 3
    da_hh = da.copy()
    da_hh[..., 2 * H:] *= trace.act[..., :H]
    return da_hh


def jacobian_factors(trace: Trace, W_hh: np.ndarray) -> Factors:
    """∂h_t/∂h_{t−1} (d = 1), with hn = W_hn h_{t−1} + b_hn:

        diag(z) + diag((h_{t−1} − n) ⊙ z(1 − z)) W_hz
                + diag((1 − z)(1 − n²) ⊙ r) W_hn + diag((1 − z)(1 − n²) ⊙ hn ⊙ r(1 − r)) W_hr
    """
    H = W_hh.shape[1]
    W_r, W_z, W_n = (W_hh[k * H:(k + 1) * H] for k in range(3))
    local = trace.local
    r = trace.gates()["r"]
    return Factors(
        p=local.z,  # the direct path (zero where an intervention replaced h_t)
        alphas={"z": local.dh_dpre_z, "n": local.dh_dpre_n * r,
                "r": local.dh_dpre_n * local.dpre_n_dpre_r},
        Ws={"z": W_z, "n": W_n, "r": W_r},
        d=None,
    )


class GRU(Cell):
    """torch.nn.GRU's cell: one state h; b_hn stays in the step, behind r. Its behaviour is
    this module's functions."""

    name = "gru"
    gates = GATES
    blocks = 3
    has_cell_state = False
    new_trace = staticmethod(Trace.empty)
    split_recurrent_bias = staticmethod(split_recurrent_bias)
    forward = staticmethod(forward)
    backward = staticmethod(backward)
    split = staticmethod(split_gates)
    recurrent_grad = staticmethod(recurrent_grad)
    jacobian_factors = staticmethod(jacobian_factors)
