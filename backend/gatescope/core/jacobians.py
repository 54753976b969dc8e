"""The one-step state Jacobian: ∂c_t/∂c_{t−1} in the lecture's four terms (LSTM), ∂h_t/∂h_{t−1}
(GRU, RNN). Within a layer, the input from the layer below is held fixed.

Every cell's Jacobian has the form (cells/base.py, Factors)

    J_t = diag(p) + Σ_k diag(α_k) · W_k · diag(d),

its factors given by the cell itself, with the equations (`jacobian_factors` in lstm.py,
gru.py, rnn.py). For the LSTM, p = f_t is the direct term and the α_k W_k D_{t−1} are the
forget, input and candidate terms; for an RNN, diag(φ'(a_t)) · W_hh is the lecture's fixed
pattern.

Norms for every step come from batched products, never T matrices of H×H:
    ‖diag(a)·W·diag(b)‖²_F = Σ_i a_i² Σ_j W_ij² b_j² = (a∘a)ᵀ (W∘W) (b∘b),
and the total's square expands into the terms' products pairwise (W_k∘W_l).
"""

from __future__ import annotations

from itertools import combinations_with_replacement
from typing import Any

import numpy as np

from .cells import Cell, Factors, Trace
from .cells.steps import detached


def norms(cell: Cell, trace: Trace, W_hh: np.ndarray) -> dict[str, np.ndarray]:
    """Frobenius norm of each term and of the total, per step: each (T, N).

    LSTM: direct, forget, input, candidate, total. GRU, RNN: total.

    The terms' norms are sums of non-negative products, exact to rounding. The total's
    square adds cross products of mixed sign; where they cancel most of it (the total is
    far smaller than its terms), its rounding error would be large, so those steps are
    recomputed from the explicit H×H matrix.
    """
    fac = cell.jacobian_factors(trace, W_hh)
    names = list(fac.alphas)
    d2 = None if fac.d is None else fac.d * fac.d
    # Q[(k, l)][t, n, i] = Σ_j (W_k ∘ W_l)[i, j] d_j²  — one product for every pair at once.
    pairs = list(combinations_with_replacement(range(len(names)), 2))
    WW = [fac.Ws[names[a]] * fac.Ws[names[b]] for a, b in pairs]
    if d2 is None:
        Q = [ww.sum(axis=1) for ww in WW]
    else:
        H = W_hh.shape[1]
        stacked = np.concatenate([ww.T for ww in WW], axis=1)  # (H, P·H)
        prod = (d2.reshape(-1, H) @ stacked).reshape(*d2.shape[:-1], -1)  # one 2-D product
        Q = [prod[..., m * H:(m + 1) * H] for m in range(len(pairs))]
    squares = {}
    total2 = np.zeros(fac.alphas[names[0]].shape[:2], dtype=W_hh.dtype)  # (T, N)
    magnitude = np.zeros_like(total2)  # Σ |contributions| to total2: the rounding's scale
    for m, (a, b) in enumerate(pairs):
        s = np.vecdot(fac.alphas[names[a]] * fac.alphas[names[b]], Q[m])  # Σ_i α_a α_b Q
        if a == b:
            squares[names[a]] = s
            total2 += s
            magnitude += s
        else:
            total2 += 2.0 * s
            magnitude += 2.0 * np.abs(s)
    if fac.p is not None:
        p2 = np.vecdot(fac.p, fac.p)
        # cross terms 2 Σ_i p_i d_i Σ_k α_k[i] W_k[i, i]
        pd = fac.p if fac.d is None else fac.p * fac.d
        cross = 2.0 * sum(np.vecdot(pd * fac.alphas[name], np.diagonal(fac.Ws[name]))
                          for name in names)
        total2 += p2 + cross
        magnitude += p2 + np.abs(cross)
    cancelled = total2 < magnitude * _CANCELLED[W_hh.dtype.char]
    for t, n in zip(*np.nonzero(cancelled), strict=True):
        total2[t, n] = np.sum(np.square(_explicit(fac, t, n)["total"]))
    out: dict[str, np.ndarray] = {}
    if cell.jacobian_terms:  # the LSTM's four terms, each by name
        assert fac.p is not None, "a Jacobian reported by terms has a direct one"
        out["direct"] = np.sqrt(p2)
        for name in names:
            out[name] = np.sqrt(squares[name])
    out["total"] = np.sqrt(total2)
    return out


# Recompute a total whose square lost more than these parts of its terms' magnitude to
# cancellation: that keeps ~12 significant digits in float64, ~5 in float32.
_CANCELLED = {"d": 1e-4, "f": 1e-2}


def _explicit(fac: Factors, step: int, seq: int) -> dict[str, Any]:
    """The H×H terms and their sum at one step of one sequence."""
    H = next(iter(fac.Ws.values())).shape[1]
    d = np.ones(H, fac.alphas[next(iter(fac.alphas))].dtype) if fac.d is None \
        else fac.d[step, seq]
    terms = {}
    if fac.p is not None:
        terms["direct"] = np.diag(fac.p[step, seq])
    for name, alpha in fac.alphas.items():
        terms[name] = alpha[step, seq][:, None] * fac.Ws[name] * d[None, :]
    return {"terms": terms, "total": sum(terms.values())}


def matrices(cell: Cell, trace: Trace, W_hh: np.ndarray, step: int, seq: int = 0
             ) -> dict[str, Any]:
    """The full H×H matrices at one step of sequence `seq`.

    Returns {"terms": {name: (H, H)}, "total": (H, H)}; terms are the LSTM's four, {} else.
    Row i, column j = ∂(state_t)[i] / ∂(state_{t−1})[j].
    """
    explicit = _explicit(cell.jacobian_factors(trace, W_hh), step, seq)
    return {"terms": explicit["terms"] if cell.jacobian_terms else {},
            "total": explicit["total"]}


def flow(cell: Cell, trace: Trace, W_hh: np.ndarray, dC: np.ndarray,
         truncate: int | None = None) -> dict[str, np.ndarray]:
    """How much gradient reaches c_{t−1} through each path of the lecture's formula (LSTM).

    For each term J_k of ∂c_t/∂c_{t−1}, ‖J_kᵀ · ∂L/∂c_t‖₂ per step, (T, N) each:
        direct:  f_t ⊙ δ                      (δ = ∂L/∂c_t, total)
        term k:  d ⊙ (W_kᵀ (α_k ⊙ δ))          (forget, input, candidate)
    Zero at t = 0 and wherever truncation detaches the state entering t.
    """
    if not cell.jacobian_terms:
        raise ValueError(f"flow follows the terms of ∂c_t/∂c_{{t−1}}; a {cell.name} has none")
    fac = cell.jacobian_factors(trace, W_hh)
    H = W_hh.shape[1]
    assert fac.p is not None and fac.d is not None  # an LSTM's direct path and D_{t−1}
    out = {"direct": _norm(fac.p * dC)}
    for name, alpha in fac.alphas.items():
        back = ((alpha * dC).reshape(-1, H) @ fac.Ws[name]).reshape(dC.shape)  # one product
        out[name] = _norm(back * fac.d)
    stopped = detached(dC.shape[0], truncate)
    stopped[0] = True
    for values in out.values():
        values[stopped] = 0.0
    return out


def _norm(x: np.ndarray) -> np.ndarray:
    """‖x‖₂ along the last axis (np.vecdot: half the time of np.linalg.norm here)."""
    return np.sqrt(np.vecdot(x, x))
