"""Every gradient of the engine against central finite differences, in float64.

The loss is L = Σ_t R_t · h_t (top layer) with a random R, so every path is exercised.
Truncated BPTT is checked against the finite differences of the truncated objective: the
same forward, run window by window from the unperturbed states at each window's start
(values carry on, gradients stop). N = 2 sequences, so the batched path is checked too.
With a readout the loss is the cross-entropy of softmax(W h_t + b) (readout.py), with
steps that have no target.
"""

from __future__ import annotations

import numpy as np
import pytest

import gatescope
from gatescope.core import engine, readout
from gatescope.core.cells import CELLS
from gatescope.core.params import pytorch_init

EPS = 1e-6
T, N, D, H = 7, 2, 3, 4


def make_problem(cell_name: str, L: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    cell = CELLS[cell_name]
    params = pytorch_init(cell, D, H, L, seed=seed, forget_bias=None, dtype=np.float64)
    params = {k: v * 2.0 for k, v in params.items()}  # larger weights: less linear, harder test
    X = rng.normal(size=(T, N, D))
    h0 = rng.normal(scale=0.5, size=(L, N, H))
    c0 = rng.normal(scale=0.5, size=(L, N, H)) if cell.has_cell_state else None
    R = rng.normal(size=(T, N, H))
    return cell, params, X, h0, c0, R


def objective(cell, params, X, h0, c0, R, truncate, base=None) -> float:
    """Σ_t R_t·h_t; with truncation each window starts from the *base* run's states."""
    if truncate is None:
        traces = engine.forward(cell, params, X, h0, c0)
        return float(np.sum(R * traces[-1].h[1:]))
    total = 0.0
    for s in range(0, X.shape[0], truncate):
        e = min(s + truncate, X.shape[0])
        if s == 0:
            hs, cs = h0, c0
        else:
            hs = np.stack([tr.h[s] for tr in base])
            cs = None if c0 is None else np.stack([tr.c[s] for tr in base])
        traces = engine.forward(cell, params, X[s:e], hs, cs)
        total += float(np.sum(R[s:e] * traces[-1].h[1:]))
    return total


def numeric_grad(f, a: np.ndarray) -> np.ndarray:
    """Central differences of f() with respect to every entry of a (perturbed in place)."""
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + EPS
        fp = f()
        a[idx] = old - EPS
        fm = f()
        a[idx] = old
        g[idx] = (fp - fm) / (2 * EPS)
    return g


def assert_close(analytic: np.ndarray, numeric: np.ndarray, what: str) -> None:
    scale = max(np.abs(numeric).max(), np.abs(analytic).max(), 1e-12)
    err = np.abs(analytic - numeric).max() / scale
    assert err < 1e-6, f"{what}: relative error {err:.2e}"


def assert_engine_grads(grads: engine.Gradients, f, params: dict[str, np.ndarray],
                        X: np.ndarray, h0: np.ndarray, c0: np.ndarray | None) -> None:
    """Every parameter, input and initial-state gradient of BPTT against central
    differences of the objective f() over the same (perturbed in place) arrays."""
    for name, value in params.items():
        assert_close(grads.params[name], numeric_grad(f, value), name)
    assert_close(grads.input, numeric_grad(f, X), "input")
    assert_close(grads.h0, numeric_grad(f, h0), "h0")
    if c0 is not None:
        assert_close(grads.c0, numeric_grad(f, c0), "c0")


CASES = [(c, L, k) for c in CELLS for L in (1, 2) for k in (None, 3)] + [("lstm", 3, 2),
                                                                           ("gru", 3, 1)]


@pytest.mark.parametrize(("cell_name", "L", "truncate"), CASES)
def test_every_gradient_matches_finite_differences(cell_name, L, truncate):
    cell, params, X, h0, c0, R = make_problem(cell_name, L)
    base = engine.forward(cell, params, X, h0, c0)
    grads = engine.backward(cell, params, X, base, R, truncate)

    def f():
        return objective(cell, params, X, h0, c0, R, truncate, base)

    assert_engine_grads(grads, f, params, X, h0, c0)


@pytest.mark.parametrize("cell_name", list(CELLS))
@pytest.mark.parametrize("truncate", [None, 3])
def test_total_state_gradients_match_finite_differences(cell_name, truncate):
    """∂L/∂h_t and ∂L/∂c_t (total derivatives) of a 1-layer net at every step: perturb the
    state right after step t and run the rest of the sequence from there."""
    cell, params, X, h0, c0, R = make_problem(cell_name, 1, seed=3)
    base = engine.forward(cell, params, X, h0, c0)
    grads = engine.backward(cell, params, X, base, R, truncate)
    tr = base[0]
    for t in range(T):
        # the rest of the sequence after step t, as a function of (h_t, c_t); under
        # truncation only up to the end of t's window (later windows start detached)
        end = T if truncate is None else min((t // truncate + 1) * truncate, T)
        h_t = tr.h[t + 1][None].copy()
        c_t = None if tr.c is None else tr.c[t + 1][None].copy()

        def f(h_t=h_t, c_t=c_t, t=t, end=end):
            own = float(np.sum(R[t] * h_t[0]))
            if t + 1 >= end:
                return own
            rest = engine.forward(cell, params, X[t + 1:end], h_t, c_t)
            return own + float(np.sum(R[t + 1:end] * rest[0].h[1:]))

        assert_close(grads.layers[0].h[t], numeric_grad(f, h_t)[0], f"dh at step {t}")
        if c_t is not None:
            # ∂L/∂c_t with h_t = o_t ⊙ tanh(c_t) following c_t
            o_t = tr.gates()["o"][t]

            def g(c_t=c_t, t=t, end=end, o_t=o_t):
                h = o_t * np.tanh(c_t[0])
                own = float(np.sum(R[t] * h))
                if t + 1 >= end:
                    return own
                rest = engine.forward(cell, params, X[t + 1:end], h[None], c_t)
                return own + float(np.sum(R[t + 1:end] * rest[0].h[1:]))

            assert_close(grads.layers[0].c[t], numeric_grad(g, c_t)[0], f"dc at step {t}")


def test_truncated_gradients_vanish_before_the_last_window():
    """With last_hidden_sum-like loss on the last step only, every gradient before the last
    window is exactly zero — in every layer."""
    cell, params, X, h0, c0, _ = make_problem("lstm", 2)
    dH = np.zeros((T, N, H))
    dH[-1] = 1.0
    base = engine.forward(cell, params, X, h0, c0)
    grads = engine.backward(cell, params, X, base, dH, truncate=3)  # windows 0-2, 3-5, 6
    for layer in grads.layers:
        assert np.all(layer.h[:6] == 0.0) and np.all(layer.c[:6] == 0.0)
        assert np.all(layer.h[6] != 0.0)
    assert np.all(grads.input[:6] == 0.0)
    assert np.all(grads.h0 == 0.0) and np.all(grads.c0 == 0.0)


INTERVENTION_TARGETS = {"lstm": "ifgoch", "gru": "rzhn", "rnn_tanh": "h", "rnn_relu": "h"}


@pytest.mark.parametrize(("cell_name", "target"),
                         [(c, t) for c, ts in INTERVENTION_TARGETS.items() for t in ts])
def test_interventions_match_finite_differences(cell_name, target):
    """With chosen units of a target replaced at some steps, every gradient is that of the
    replaced graph (torch.where semantics): checked against finite differences of the
    same forward with the same interventions, in a 2-layer stack, clamping layer 0."""
    from gatescope.core.cells.clamps import Clamp
    cell, params, X, h0, c0, R = make_problem(cell_name, 2, seed=7)
    step_clamps = [() for _ in range(T)]
    for t in (1, 2, 4):
        step_clamps[t] = (Clamp(target, np.array([0, 2]), 0.3 if target != "f" else 1.0),)
    step_clamps[5] = (Clamp(target, slice(None), 0.0),)
    clamps = [step_clamps, None]
    base = engine.forward(cell, params, X, h0, c0, clamps)
    view = base[0].gates().get(target) if target not in "ch" else getattr(base[0], target)[1:]
    assert np.all(view[1][:, [0, 2]] == (0.3 if target != "f" else 1.0))
    assert np.all(view[5] == 0.0)
    grads = engine.backward(cell, params, X, base, R)

    def f():
        traces = engine.forward(cell, params, X, h0, c0, clamps)
        return float(np.sum(R * traces[-1].h[1:]))

    assert_engine_grads(grads, f, params, X, h0, c0)


# ── a readout on the top layer: cross-entropy through torch.nn.Linear ───────────────

K = 3


def readout_problem(cell_name: str, L: int, seed: int = 11):
    """The problem above plus a readout W (K, H), b (K) and class targets (T, N), some
    steps without one (NO_TARGET), different ones in each sequence."""
    cell, params, X, h0, c0, _ = make_problem(cell_name, L, seed)
    rng = np.random.default_rng(seed + 1)
    W = rng.normal(scale=0.8, size=(K, H))
    b = rng.normal(scale=0.5, size=K)
    classes = rng.integers(0, K, (T, N))
    classes[1, 0] = classes[4, 0] = classes[0, 1] = readout.NO_TARGET
    return cell, params, X, h0, c0, W, b, classes


def readout_objective(cell, params, X, h0, c0, W, b, classes, truncate, base) -> float:
    """L = Σ_n mean over n's targeted steps of −log softmax(W h_t + b)[k_t]; under
    truncation each window's states start from the base run's (values carry on)."""
    tops = []
    for s in range(0, X.shape[0], truncate or X.shape[0]):
        e = min(s + (truncate or X.shape[0]), X.shape[0])
        hs = h0 if s == 0 else np.stack([tr.h[s] for tr in base])
        cs = c0 if s == 0 or c0 is None else np.stack([tr.c[s] for tr in base])
        tops.append(engine.forward(cell, params, X[s:e], hs, cs)[-1].h[1:])
    z = readout.logits(np.concatenate(tops), W, b)
    return readout.cross_entropy(z, classes)[0]


@pytest.mark.parametrize(("cell_name", "truncate"),
                         [(c, k) for c in CELLS for k in (None, 3)])
def test_readout_gradients_match_finite_differences(cell_name, truncate):
    """∂L/∂readout.weight, ∂L/∂readout.bias, and every gradient behind them (parameters,
    input, initial states) of a 2-layer stack under cross-entropy with untargeted steps."""
    cell, params, X, h0, c0, W, b, classes = readout_problem(cell_name, 2)
    base = engine.forward(cell, params, X, h0, c0)
    top = base[-1].h[1:]
    _, dz = readout.cross_entropy(readout.logits(top, W, b), classes)
    dH, dW, db = readout.backward(dz, top, W)
    grads = engine.backward(cell, params, X, base, dH, truncate)

    def f():
        return readout_objective(cell, params, X, h0, c0, W, b, classes, truncate, base)

    assert_close(dW, numeric_grad(f, W), "readout.weight")
    assert_close(db, numeric_grad(f, b), "readout.bias")
    assert_engine_grads(grads, f, params, X, h0, c0)
    assert not dH[1, 0].any() and not dH[0, 1].any()  # no target there: no direct gradient


@pytest.mark.parametrize("loss", [{"type": "next_token"},
                                  {"type": "cross_entropy", "targets": [None, 2, 0, None, 1]}])
def test_run_readout_gradients_match_finite_differences_of_its_loss(loss):
    """Through gatescope.run itself: its param_grads for the readout (and the RNN's input
    weights) against central differences of the loss it reports."""
    tensors = {k: v * 2.0 for k, v in
               pytorch_init(CELLS["gru"], 3, H, 2, seed=5, forget_bias=None,
                            dtype=np.float64).items()}
    rng = np.random.default_rng(6)
    tensors[readout.WEIGHT] = rng.normal(size=(3, H))
    tensors[readout.BIAS] = rng.normal(size=3)
    req = {"cell": "gru", "input": {"text": "cabba", "vocab": "abc"}, "loss": loss}

    def f():
        inline = {k: v.tolist() for k, v in tensors.items()}
        return gatescope.run({**req, "weights": {"tensors": inline}}).loss

    grads = gatescope.run({**req, "weights": {"tensors": {k: v.tolist() for k, v in
                                                          tensors.items()}}}).param_grads
    for name in (readout.WEIGHT, readout.BIAS, "weight_ih_l0", "bias_hh_l1"):
        assert_close(grads[name], numeric_grad(f, tensors[name]), name)
