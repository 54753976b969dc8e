"""The one-step Jacobian: the four terms sum to the total, the total matches finite
differences of the cell's own step, and the batched per-step norms equal the Frobenius
norms of the explicit matrices at every step."""

from __future__ import annotations

import numpy as np
import pytest

from gatescope.core import engine, jacobians
from gatescope.core.cells import CELLS
from gatescope.core.params import param_names, pytorch_init

T, D, H = 6, 3, 5
EPS = 1e-6


def setup(cell_name: str, L: int = 2, seed: int = 1):
    rng = np.random.default_rng(seed)
    cell = CELLS[cell_name]
    params = {k: 2.0 * v for k, v in
              pytorch_init(cell, D, H, L, seed, None, np.float64).items()}
    X = rng.normal(size=(T, 1, D))
    h0 = rng.normal(scale=0.5, size=(L, 1, H))
    c0 = rng.normal(scale=0.5, size=(L, 1, H)) if cell.has_cell_state else None
    return cell, params, X, engine.forward(cell, params, X, h0, c0)


def next_state(cell, params, traces, X, k: int, t: int, state_prev: np.ndarray) -> np.ndarray:
    """state_t of layer k as a function of state_{t−1} (c for an LSTM, h otherwise), with the
    layer's input at step t held fixed. For the LSTM, h_{t−1} = o_{t−1} ⊙ tanh(c_{t−1})."""
    W_ih, W_hh, b_ih, b_hh = (params[n] for n in param_names(k))
    x = X[t] if k == 0 else traces[k - 1].h[t + 1]
    tr = traces[k]
    if cell.has_cell_state:
        c_prev = state_prev
        # at t = 0, h_{−1} is an independent input: it does not follow c_{−1}
        h_prev = tr.h[0] if t == 0 else tr.gates()["o"][t - 1] * np.tanh(c_prev)
        one = cell.new_trace(1, h_prev, c_prev)
    else:
        one = cell.new_trace(1, state_prev, None)
    folded, b_step = cell.split_recurrent_bias(b_hh)
    cell.forward((x @ W_ih.T + b_ih + folded)[None], np.ascontiguousarray(W_hh.T), b_step, one)
    s = one.step(0)
    return s.c.copy() if cell.has_cell_state else s.h.copy()


@pytest.mark.parametrize("cell_name", list(CELLS))
@pytest.mark.parametrize("k", [0, 1])
def test_total_matches_finite_differences_and_terms_sum(cell_name, k):
    cell, params, X, traces = setup(cell_name)
    tr = traces[k]
    W_hh = params[param_names(k)[1]]
    for t in range(T):
        mats = jacobians.matrices(cell, tr, W_hh, t)
        prev = (tr.c if cell.has_cell_state else tr.h)[t].copy()  # (1, H)
        numeric = np.zeros((H, H))
        for j in range(H):
            up, down = prev.copy(), prev.copy()
            up[0, j] += EPS
            down[0, j] -= EPS
            numeric[:, j] = (next_state(cell, params, traces, X, k, t, up)
                             - next_state(cell, params, traces, X, k, t, down))[0] / (2 * EPS)
        err = np.abs(mats["total"] - numeric).max() / np.abs(numeric).max()
        assert err < 1e-6, f"step {t}: relative error {err:.2e}"
        if cell.name == "lstm":
            assert set(mats["terms"]) == {"direct", "forget", "input", "candidate"}
            np.testing.assert_allclose(sum(mats["terms"].values()), mats["total"],
                                       rtol=0, atol=1e-15)
            np.testing.assert_array_equal(mats["terms"]["direct"],
                                          np.diag(tr.gates()["f"][t, 0]))
            if t == 0:
                for name in ("forget", "input", "candidate"):
                    assert not mats["terms"][name].any()
        else:
            assert mats["terms"] == {}


@pytest.mark.parametrize("cell_name", list(CELLS))
def test_batched_norms_equal_norms_of_the_matrices(cell_name):
    cell, params, _, traces = setup(cell_name, L=1, seed=4)
    W_hh = params["weight_hh_l0"]
    norms = jacobians.norms(cell, traces[0], W_hh)
    expected_keys = {"direct", "forget", "input", "candidate", "total"} if cell.name == "lstm" \
        else {"total"}
    assert set(norms) == expected_keys
    for t in range(T):
        mats = jacobians.matrices(cell, traces[0], W_hh, t)
        named = {**mats["terms"], "total": mats["total"]}
        for name, value in norms.items():
            np.testing.assert_allclose(value[t, 0], np.linalg.norm(named[name]), rtol=1e-12,
                                       err_msg=f"{name} at step {t}")


def test_total_norm_is_exact_where_the_terms_cancel():
    """One LSTM unit whose candidate term nearly cancels the direct one: the total is ~1e−15
    while each term is ~0.1–1. The batched formula's cross terms would leave an error of
    ~1e−8 here; such steps are recomputed from the explicit matrix."""
    import gatescope
    tensors = {"weight_ih_l0": [[0.5]] * 4,
               "weight_hh_l0": [[0.3], [0.2], [-12.440055475867622], [0.4]],
               "bias_ih_l0": [0.0] * 4, "bias_hh_l0": [0.0] * 4}
    for dtype, rtol in (("float64", 1e-12), ("float32", 1e-5)):
        req = {"input": {"values": [1.0, 1.0]}, "weights": {"tensors": tensors},
               "dtype": dtype}
        total = gatescope.run(req).layers[0].jacobian["total"][1]
        explicit = np.linalg.norm(gatescope.jacobian(req, step=1).total)
        terms = gatescope.jacobian(req, step=1).terms
        assert explicit < 1e-5 * np.linalg.norm(terms["direct"])  # it really cancels
        np.testing.assert_allclose(total, explicit, rtol=rtol)
