"""LSTM cell, PyTorch's equations and gate order (i, f, g, o).

    i = σ(W_ii x + b_ii + W_hi h + b_hi)
    f = σ(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)
    o = σ(W_io x + b_io + W_ho h + b_ho)
    c' = f ⊙ c + i ⊙ g
    h' = o ⊙ tanh(c')              (with proj_size P: m' = o ⊙ tanh(c'), h' = W_hr m')

Shapes: N sequences, H hidden units, the four gate blocks stacked as (N, 4H); with a
projection, h is P wide (W_hh is 4H×P, W_hr P×H) and c, the gates and m are H wide. The input
projection xw = x W_ihᵀ + b_ih + b_hh of every step is one matrix product done by the engine
before the time loop (the two biases only ever appear summed).
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

GATES = ("i", "f", "g", "o")


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
    pre, act: (T, N, 4H); tanh_c: (T, N, H). With a projection h is (T+1, N, P) and m, the
    state before it, (T, N, H): m_t = o_t ⊙ tanh(c_t), h_t = W_hr m_t.
    """

    h: np.ndarray
    c: np.ndarray
    pre: np.ndarray
    act: np.ndarray
    tanh_c: np.ndarray
    # target → (T, N, H) bool: entries an intervention replaced (no gradient into their producer)
    clamped: dict[str, np.ndarray] = field(default_factory=dict)
    m: np.ndarray | None = None  # with a projection only

    @classmethod
    def empty(cls, T: int, h0: np.ndarray, c0: np.ndarray | None) -> Trace:
        assert c0 is not None, "an LSTM layer starts from (h0, c0)"
        N, P = h0.shape  # P = H without a projection
        H = c0.shape[-1]
        dt = h0.dtype
        h = np.empty((T + 1, N, P), dt)
        c = np.empty((T + 1, N, H), dt)
        h[0], c[0] = h0, c0
        return cls(h, c, np.empty((T, N, 4 * H), dt), np.empty((T, N, 4 * H), dt),
                   np.empty((T, N, H), dt), m=np.empty((T, N, H), dt) if P != H else None)

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
        dc_dpre = np.empty((*i.shape[:-1], 3, i.shape[-1]), i.dtype)  # written in place
        np.multiply(g, dsigmoid(i), out=dc_dpre[..., 0, :])
        np.multiply(self.c[:-1], dsigmoid(f), out=dc_dpre[..., 1, :])
        np.multiply(i, dtanh(g), out=dc_dpre[..., 2, :])
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


def forward(xw: np.ndarray, W_hhT: np.ndarray, b_step: np.ndarray | None, trace: Trace,
            clamps: StepClamps | None = None, W_hrT: np.ndarray | None = None) -> None:
    """The recurrence over every step t = 0 … T−1, from the initial state in trace.h[0],
    trace.c[0]; writes trace.pre, act, c, tanh_c, h. Step t's named cache is trace.step(t).

    xw: (T, N, 4H) = x_t W_ihᵀ + b_ih + b_hh for every step (overwritten). W_hhT: (H, 4H),
    or (P, 4H) with a projection W_hrT: (H, P), h_t = m_t W_hrᵀ. clamps: None, or one tuple of
    interventions per step, each applied right after its target is computed.

    Speed: the loop makes the fewest NumPy calls the equations allow (each costs ~1 µs next
    to a ~20 µs product) and passes `out` positionally (as a keyword it costs ~0.2 µs more).
    The pre-activations of i, f and o are held negated inside the loop (their rows of W_hh
    and xw flipped once), so σ(x) = 1 / (1 + e^(−x)) is one exp, one add, one reciprocal
    over all four blocks at once; g's block is then overwritten by its tanh. Negation is
    exact, so `pre` is restored bit for bit after the loop (a zero as +0). As in PyTorch,
    σ(x) = 0 where e^(−x) overflows (x < −88.7 in float32, −709.8 in float64).
    """
    H = trace.c.shape[-1]
    if W_hrT is not None and trace.m is None:  # a projection keeps m = o ⊙ tanh(c) apart
        trace.m = np.empty(trace.tanh_c.shape, trace.tanh_c.dtype)
    sigmoids = (slice(0, 2 * H), slice(3 * H, 4 * H))  # i, f; o
    W_hhT = negate_sigmoid_blocks(xw, W_hhT, sigmoids)  # xw: the engine's own, flipped in place
    act, c, h = trace.act, trace.c, trace.h
    i, f, g, o = split_gates(act).values()
    ig = np.empty_like(c[0])  # i ⊙ g
    # m_t = o ⊙ tanh(c_t): h_t itself, or with a projection its own buffer, h_t = m_t W_hrᵀ
    ms = h[1:] if trace.m is None else trace.m
    steps = zip(xw, trace.pre, trace.pre[..., 2 * H:3 * H], act, i, f, g, o,
                h[:-1], c[:-1], c[1:], trace.tanh_c, ms, h[1:], clamps or [()] * len(xw),
                strict=True)
    with np.errstate(over="ignore"):  # e^(−x) → inf gives σ = 0
        for xw_t, pre, pre_g, act_t, i_t, f_t, g_t, o_t, h_prev, c_prev, c_t, tanh_c, m_t, h_t, \
                clamp in steps:
            np.matmul(h_prev, W_hhT, pre)  # −i, −f, g, −o pre-activations
            np.add(pre, xw_t, pre)
            np.exp(pre, act_t)  # σ(x) = 1 / (1 + e^(−x)) for i, f, o
            np.add(act_t, 1.0, act_t)
            np.reciprocal(act_t, act_t)
            np.tanh(pre_g, g_t)  # g = tanh(·)
            if clamp:
                apply(clamp, {"i": i_t, "f": f_t, "g": g_t, "o": o_t})
            np.multiply(f_t, c_prev, c_t)  # c' = f ⊙ c + i ⊙ g
            np.multiply(i_t, g_t, ig)
            np.add(c_t, ig, c_t)
            if clamp:
                apply(clamp, {"c": c_t})
            np.tanh(c_t, tanh_c)
            np.multiply(o_t, tanh_c, m_t)  # h' = o ⊙ tanh(c')
            if W_hrT is not None:
                np.matmul(m_t, W_hrT, h_t)  # h' = W_hr m'
            if clamp:
                apply(clamp, {"h": h_t})
    restore_sigmoid_blocks(trace.pre, sigmoids)


def backward(local: Local, dh_ext: np.ndarray, W_hh: np.ndarray, truncate: int | None,
             dA: np.ndarray, dH: np.ndarray, dC: np.ndarray | None,
             W_hr: np.ndarray | None = None, dc_ext: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Backpropagation through time for one layer, t = T−1 … 0.

    local: every step's local derivatives, (T, N, …) (from Trace.local; N may be 1 and
    broadcast). dh_ext: (T, N, H) ∂L/∂h_t from outside the recurrence (the loss or the layer
    above). truncate: window k, or None for full BPTT; the state entering t is detached where
    t is a positive multiple of k. Writes dH, dC (T, N, H), the total ∂L/∂h_t and ∂L/∂c_t, and
    dA (T, N, 4H), ∂L/∂(pre-activations). Returns ∂L/∂h_{−1}, ∂L/∂c_{−1}: (N, H) each.
    Steps that dh_ext does not reach (all but the last for a loss on h_{T−1}) skip adding it.
    With a projection W_hr (P, H), h and dh_ext are P wide (W_hh is 4H×P) and the gradient
    reaches m_t = o ⊙ tanh(c_t) as ∂L/∂m_t = ∂L/∂h_t W_hr. dc_ext: (T, N, H) ∂L/∂c_t from
    outside (an upstream gradient into the cell state), or None.

    The loop runs backwards over views of every array at once (steps.back_through_time:
    ∂L/∂h_{t−1} through step t, da_t W_hh, goes straight into row t−1 of dH). dc_carry holds
    ∂L/∂c_t from step t+1 on entry to step t, ∂L/∂c_{t−1} on exit.
    """
    assert dC is not None, "an LSTM layer writes ∂L/∂c_t"
    T, N, H = dC.shape
    dh0, walk = back_through_time(dh_ext, dH, truncate)
    dc_carry = np.zeros((N, H), dH.dtype)
    dm = np.empty((N, H), dH.dtype)  # ∂L/∂m_t, with a projection
    dA_ifg = dA[..., :3 * H].reshape(T, N, 3, H)
    into_c = [None] * T if dc_ext is None else dc_ext[::-1]
    own = zip(dC[::-1], dC[::-1, :, None, :], dA[::-1], dA_ifg[::-1], dA[::-1, :, 3 * H:],
              local.dh_dc[::-1], local.dc_dpre[::-1], local.dh_dpre_o[::-1], local.f[::-1],
              into_c, strict=True)
    for (ext, reached, cut, dh, dh_prev), (dc, dc_bcast, da, da_ifg, da_o, dh_dc, dc_dpre,
                                          dh_dpre_o, f, dc_in) in zip(walk, own, strict=True):
        if reached:  # total ∂L/∂h_t: from step t+1 (already in dh) and from outside
            np.add(dh, ext, dh)
        dm_t = dh if W_hr is None else np.matmul(dh, W_hr, dm)  # through h = W_hr m
        np.multiply(dm_t, dh_dc, dc)  # total ∂L/∂c_t: through m = o ⊙ tanh(c), and from t+1
        np.add(dc, dc_carry, dc)
        if dc_in is not None:  # and from outside, into c_t itself
            np.add(dc, dc_in, dc)
        np.multiply(dc_dpre, dc_bcast, da_ifg)  # ∂L/∂ pre-activations of i, f, g
        np.multiply(dm_t, dh_dpre_o, da_o)  # … and of o
        if cut:  # the state entering t is detached: values carried on, gradients stop
            dh_prev[...] = 0.0
            dc_carry[...] = 0.0
        else:
            np.matmul(da, W_hh, dh_prev)
            np.multiply(dc, f, dc_carry)  # c_t = f ⊙ c_{t−1} + …
    return dh0, dc_carry


def jacobian_factors(trace: Trace, W_hh: np.ndarray) -> Factors:
    """∂c_t/∂c_{t−1} in the lecture's four terms, with D_{t−1} = diag(∂h_{t−1}/∂c_{t−1}) =
    diag(o_{t−1} ⊙ (1 − tanh²(c_{t−1}))):

        direct    = diag(f_t)                                          p = f_t
        forget    = diag(c_{t−1} ⊙ f_t ⊙ (1 − f_t)) · W_hf · D_{t−1}
        input     = diag(g_t ⊙ i_t ⊙ (1 − i_t))     · W_hi · D_{t−1}
        candidate = diag(i_t ⊙ (1 − g_t²))          · W_hg · D_{t−1}

    At t = 0, h_{−1} is an independent input, so d = 0 and the three terms through it vanish.
    """
    H = W_hh.shape[1]
    W_i, W_f, W_g = (W_hh[k * H:(k + 1) * H] for k in range(3))
    local = trace.local
    d = np.zeros_like(local.dh_dc)  # d_t = ∂h_{t−1}/∂c_{t−1}; 0 at t = 0
    d[1:] = local.dh_dc[:-1]
    di, df, dg = (local.dc_dpre[..., k, :] for k in range(3))  # ∂c_t/∂ pre of i, f, g
    return Factors(
        p=local.f,  # the direct path (zero where an intervention replaced c_t)
        alphas={"forget": df, "input": di, "candidate": dg},
        Ws={"forget": W_f, "input": W_i, "candidate": W_g},
        d=d,
    )


class LSTM(Cell):
    """torch.nn.LSTM's cell: the state is (h, c); its Jacobian is reported in four terms.
    Its behaviour is this module's functions."""

    name = "lstm"
    gates = GATES
    blocks = 4
    has_cell_state = True
    jacobian_terms = True
    new_trace = staticmethod(Trace.empty)
    split_recurrent_bias = staticmethod(split_recurrent_bias)
    forward = staticmethod(forward)
    backward = staticmethod(backward)
    split = staticmethod(split_gates)
    jacobian_factors = staticmethod(jacobian_factors)
