"""LSTM cell, PyTorch's equations and gate order (i, f, g, o).

    i = σ(W_ii x + b_ii + W_hi h + b_hi)
    f = σ(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)
    o = σ(W_io x + b_io + W_ho h + b_ho)
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(c')

Shapes: N sequences, H hidden units, the four gate blocks stacked as (N, 4H). The input
projection xw = x W_ihᵀ + b_ih + b_hh of every step is one matrix product done by the engine
before the time loop (the two biases only ever appear summed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ..numerics import dsigmoid, dtanh, sigmoid
from .clamps import Clamp, apply

GATES = ("i", "f", "g", "o")
HAS_CELL_STATE = True


class Step(NamedTuple):
    """The named cache of one step: views into a Trace, every array (N, H) or (N, 4H)."""

    h_prev: np.ndarray  # h_{t−1}
    c_prev: np.ndarray  # c_{t−1}
    pre: np.ndarray  # (N, 4H) pre-activations of i, f, g, o
    act: np.ndarray  # (N, 4H) σ(i), σ(f), tanh(g), σ(o)
    c: np.ndarray  # c_t
    tanh_c: np.ndarray  # tanh(c_t)
    h: np.ndarray  # h_t


class Local(NamedTuple):
    """Local derivatives of a step, computed for all steps at once before the backward loop
    (leading axes (T, N) or, for one step, (N,)). They are also the Jacobian's factors.

    dh_dc: ∂h_t/∂c_t = o ⊙ (1 − tanh²(c_t))                                        (…, H)
    dc_dpre: ∂c_t/∂ pre-activation of i, f, g = [g ⊙ σ'(i), c_{t−1} ⊙ σ'(f), i ⊙ (1 − g²)]
                                                                                 (…, 3, H)
    dh_dpre_o: ∂h_t/∂ pre-activation of o = tanh(c_t) ⊙ σ'(o)                      (…, H)
    """

    dh_dc: np.ndarray
    dc_dpre: np.ndarray
    dh_dpre_o: np.ndarray
    f: np.ndarray  # ∂c_t/∂c_{t−1} along the direct path


@dataclass
class Trace:
    """Everything the forward pass of one layer computed, time first.

    h, c: (T+1, N, H) with the initial state at index 0, so step t reads index t and writes t+1.
    pre, act: (T, N, 4H); tanh_c: (T, N, H).
    """

    h: np.ndarray
    c: np.ndarray
    pre: np.ndarray
    act: np.ndarray
    tanh_c: np.ndarray
    # target → (T, N, H) bool: entries an intervention replaced (no gradient into their producer)
    clamped: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def empty(cls, T: int, h0: np.ndarray, c0: np.ndarray) -> Trace:
        N, H = h0.shape
        dt = h0.dtype
        h = np.empty((T + 1, N, H), dt)
        c = np.empty((T + 1, N, H), dt)
        h[0], c[0] = h0, c0
        return cls(h, c, np.empty((T, N, 4 * H), dt), np.empty((T, N, 4 * H), dt),
                   np.empty((T, N, H), dt))

    def step(self, t: int) -> Step:
        return Step(self.h[t], self.c[t], self.pre[t], self.act[t], self.c[t + 1],
                    self.tanh_c[t], self.h[t + 1])

    def gates(self) -> dict[str, np.ndarray]:
        """Post-activation gate values, each (T, N, H)."""
        return split_gates(self.act)

    def pre_activations(self) -> dict[str, np.ndarray]:
        return split_gates(self.pre)

    @cached_property
    def local(self) -> Local:
        """Local derivatives of every step, (T, N, …)."""
        i, f, g, o = split_gates(self.act).values()
        dc_dpre = np.stack([g * dsigmoid(i), self.c[:-1] * dsigmoid(f), i * dtanh(g)], axis=-2)
        local = Local(o * dtanh(self.tanh_c), dc_dpre, self.tanh_c * dsigmoid(o), f)
        return _cut(local, self.clamped) if self.clamped else local


def _cut(local: Local, clamped: dict[str, np.ndarray]) -> Local:
    """Zero the local derivatives through replaced entries: a replaced value is a constant
    to what produced it (as torch.where(mask, v, x))."""
    f = local.f.copy()
    for k, gate in enumerate("ifg"):
        if gate in clamped:
            local.dc_dpre[..., k, :][clamped[gate]] = 0.0
    if "o" in clamped:
        local.dh_dpre_o[clamped["o"]] = 0.0
    if "c" in clamped:  # c_t = v: nothing flows from c_t into f, c_{t−1}, i, g
        local.dc_dpre[clamped["c"][..., None, :].repeat(3, axis=-2)] = 0.0
        f[clamped["c"]] = 0.0
    if "h" in clamped:  # h_t = v: nothing flows from h_t into o, c_t
        local.dh_dc[clamped["h"]] = 0.0
        local.dh_dpre_o[clamped["h"]] = 0.0
    return local._replace(f=f)


def split_gates(block: np.ndarray) -> dict[str, np.ndarray]:
    """(…, 4H) → {"i", "f", "g", "o"}: views of each (…, H) block."""
    H = block.shape[-1] // 4
    return {name: block[..., k * H:(k + 1) * H] for k, name in enumerate(GATES)}


def split_recurrent_bias(b_hh: np.ndarray) -> tuple[np.ndarray, None]:
    """(the part of b_hh folded into xw, the part the step adds itself): all of it, none."""
    return b_hh, None


def step_forward(xw: np.ndarray, W_hhT: np.ndarray, b_step: None, s: Step,
                 clamps: tuple[Clamp, ...] = ()) -> None:
    """One step: reads s.h_prev, s.c_prev; writes s.pre, s.act, s.c, s.tanh_c, s.h.

    xw: (N, 4H) = x_t W_ihᵀ + b_ih + b_hh.   W_hhT: (H, 4H) = W_hhᵀ.   b_step: unused.
    clamps: interventions at this step, each applied right after its target is computed.
    """
    H = s.h.shape[-1]
    np.matmul(s.h_prev, W_hhT, out=s.pre)
    np.add(s.pre, xw, out=s.pre)
    sigmoid(s.pre, out=s.act)  # i, f, o; the g block is overwritten next
    np.tanh(s.pre[:, 2 * H:3 * H], out=s.act[:, 2 * H:3 * H])
    i, f, g, o = s.act[:, :H], s.act[:, H:2 * H], s.act[:, 2 * H:3 * H], s.act[:, 3 * H:]
    if clamps:  # most runs have none: skip building the dict
        apply(clamps, {"i": i, "f": f, "g": g, "o": o})
    np.multiply(f, s.c_prev, out=s.c)  # c' = f ⊙ c + i ⊙ g
    np.add(s.c, i * g, out=s.c)
    if clamps:  # most runs have none: skip building the dict
        apply(clamps, {"c": s.c})
    np.tanh(s.c, out=s.tanh_c)
    np.multiply(o, s.tanh_c, out=s.h)  # h' = o ⊙ tanh(c')
    if clamps:  # most runs have none: skip building the dict
        apply(clamps, {"h": s.h})


def step_backward(local: Local, dh: np.ndarray, dc_next: np.ndarray, W_hh: np.ndarray,
                  da: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward through one step.

    dh: (N, H) total ∂L/∂h_t.   dc_next: (N, H) ∂L/∂c_t arriving from step t+1.
    local: this step's local derivatives (N, …), from Trace.local.
    Writes da (N, 4H) = ∂L/∂(pre-activations). Returns (dc, dh_prev, dc_prev): the total
    ∂L/∂c_t, and ∂L/∂h_{t−1}, ∂L/∂c_{t−1} through this step.
    """
    N, H = dh.shape
    dc = dh * local.dh_dc  # h = o ⊙ tanh(c)
    np.add(dc, dc_next, out=dc)
    np.multiply(local.dc_dpre, dc[:, None, :], out=da[:, :3 * H].reshape(N, 3, H))
    np.multiply(dh, local.dh_dpre_o, out=da[:, 3 * H:])
    dh_prev = da @ W_hh
    dc_prev = dc * local.f  # c_t = f ⊙ c_{t−1} + …
    return dc, dh_prev, dc_prev
