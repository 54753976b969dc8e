"""The gradient-flow lab's additions to /run: clipping, interventions, the per-path flow of
the cell-state gradient, and connectivity — checked against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

import gatescope
from gatescope.core import engine, jacobians
from gatescope.core.cells import CELLS
from gatescope.core.params import pytorch_init

REQ = {"cell": "lstm", "hidden_size": 5, "num_layers": 2, "input": {"text": "the cat sat"},
       "weights": {"seed": 3}}


def test_clip_scales_every_gradient_like_clip_grad_norm():
    plain = gatescope.run(REQ)
    total = np.sqrt(sum(np.sum(g ** 2) for g in plain.param_grads.values()))
    clipped = gatescope.run({**REQ, "clip": {"max_norm": total / 4}})
    coef = (total / 4) / (total + 1e-6)
    for name, g in plain.param_grads.items():
        np.testing.assert_allclose(clipped.param_grads[name], g * coef, rtol=1e-14)
    assert clipped.grad_norm["total"] == pytest.approx(total, rel=1e-14)
    assert clipped.grad_norm["clipped"] == pytest.approx(total * coef, rel=1e-14)
    loose = gatescope.run({**REQ, "clip": {"max_norm": 10 * total}})
    for name, g in plain.param_grads.items():
        np.testing.assert_array_equal(loose.param_grads[name], g)  # coefficient capped at 1
    assert loose.to_json()["grad_norm"]["clipped"] == loose.grad_norm["total"]
    np.testing.assert_array_equal(clipped.layers[0].grads["h"], plain.layers[0].grads["h"])


def test_interventions_replace_values_downstream():
    req = {**REQ, "interventions": [
        {"layer": 0, "target": "f", "start": 2, "stop": 6, "units": [1, 3], "value": 1.0},
        {"layer": 1, "target": "c", "start": 0, "units": None, "value": 0.0},
        {"layer": 0, "target": "h", "start": 4, "stop": 5, "value": 0.5}]}
    result = gatescope.run(req)
    f0 = result.layers[0].gates["f"]
    assert np.all(f0[2:6, [1, 3]] == 1.0) and not np.any(f0[:2, [1, 3]] == 1.0)
    assert np.all(result.layers[1].c == 0.0)  # stop defaults to T
    assert np.all(result.layers[0].h[4] == 0.5)
    # downstream: c_t of the clamped units follows f = 1 exactly
    c, i, g = result.layers[0].c, result.layers[0].gates["i"], result.layers[0].gates["g"]
    np.testing.assert_allclose(c[3, [1, 3]], c[2, [1, 3]] + (i * g)[3, [1, 3]], rtol=1e-15)
    # no gradient into what produced a replaced value: a_f at those units, and c of layer 1
    assert np.all(result.layers[0].grads["gates"]["f"][2:6, [1, 3]] == 0.0)
    for gate in "ifg":
        assert np.all(result.layers[1].grads["gates"][gate] == 0.0)
    assert np.all(result.layers[0].grads["gates"]["o"][4] == 0.0)
    # the Jacobian terms agree with the replaced graph
    jac = gatescope.jacobian(req, step=3, layer=0)
    assert np.all(jac.terms["forget"][[1, 3]] == 0.0)
    np.testing.assert_allclose(np.diag(jac.terms["direct"])[[1, 3]], 1.0)


@pytest.mark.parametrize(("intervention", "loc", "words"), [
    ({"layer": 2, "target": "f"}, ["layer"], "2 layer(s)"),
    ({"target": "r"}, ["target"], "no 'r'"),
    ({"target": "f", "start": 5, "stop": 3}, ["stop"], "start < stop"),
    ({"target": "f", "stop": 99}, ["stop"], "11-step"),
    ({"target": "h", "units": [5]}, ["units"], "hidden_size 5"),
])
def test_interventions_are_checked_against_the_model(intervention, loc, words):
    with pytest.raises(ValidationError) as info:
        gatescope.run({**REQ, "interventions": [{"value": 0.0, **intervention}]})
    error = info.value.errors()[0]
    assert list(error["loc"]) == ["interventions", 0, *loc] and words in error["msg"]


def test_gru_and_rnn_targets():
    with pytest.raises(ValidationError, match="no 'c'"):
        gatescope.run({**REQ, "cell": "gru", "interventions": [{"target": "c", "value": 0}]})
    with pytest.raises(ValidationError, match="no 'f'"):
        gatescope.run({**REQ, "cell": "rnn_tanh", "interventions": [{"target": "f", "value": 0}]})
    r = gatescope.run({**REQ, "cell": "gru", "interventions": [{"target": "z", "value": 1.0}]})
    np.testing.assert_allclose(r.layers[0].h, 0.0, atol=0)  # z = 1: h_t = h_{t−1} = h_0 = 0


def test_flow_is_each_terms_transpose_applied_to_dc():
    cell = CELLS["lstm"]
    T, D, H = 7, 3, 4
    params = {k: 2 * v for k, v in pytorch_init(cell, D, H, 1, 1, None, np.float64).items()}
    X = np.random.default_rng(0).normal(size=(T, 1, D))
    traces = engine.forward(cell, params, X, np.zeros((1, 1, H)), np.zeros((1, 1, H)))
    dH = np.random.default_rng(1).normal(size=(T, 1, H))
    for truncate in (None, 3):
        grads = engine.backward(cell, params, X, traces, dH, truncate)
        dC = grads.layers[0].c
        flow = jacobians.flow(cell, traces[0], params["weight_hh_l0"], dC, truncate)
        for t in range(T):
            stopped = t == 0 or (truncate and t % truncate == 0)
            mats = jacobians.matrices(cell, traces[0], params["weight_hh_l0"], t)
            for name, M in mats["terms"].items():
                want = 0.0 if stopped else np.linalg.norm(M.T @ dC[t, 0])
                np.testing.assert_allclose(flow[name][t, 0], want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("cell_name", ["lstm", "gru", "rnn_tanh"])
def test_connectivity_is_one_backward_pass_per_output(cell_name):
    req = {"cell": cell_name, "hidden_size": 4, "num_layers": 2, "input": {"text": "abcabca"},
           "connectivity": True, "truncate": 2}
    result = gatescope.run(req)
    T = result.steps
    for k, layer in enumerate(result.layers):
        conn = layer.connectivity
        assert conn.shape == (T, T) and np.all(np.triu(conn, 1) == 0.0)
        for t in range(T):
            # ∂(Σ_j h_t[j]) / ∂x via hidden_unit losses (full BPTT), summed over units
            grad = sum(gatescope.run({**{k2: v for k2, v in req.items()
                                         if k2 not in ("connectivity", "truncate")},
                                      "num_layers": 2,
                                      "loss": {"type": "hidden_unit", "step": t, "unit": j}}
                                     ).input_grad for j in range(4)) if k == 1 else None
            if grad is not None:
                np.testing.assert_allclose(conn[t], np.linalg.norm(grad, axis=1), rtol=1e-10,
                                           atol=1e-300)
    assert result.layers[0].connectivity[3, 3] > 0


def test_connectivity_is_limited_to_512_steps():
    with pytest.raises(ValidationError, match="at most 512 steps"):
        gatescope.run({"hidden_size": 2, "input": {"text": "ab" * 300}, "connectivity": True})


def test_recurrent_scale_multiplies_weight_hh_only_and_can_explode_an_rnn():
    base = {"cell": "rnn_tanh", "hidden_size": 16, "input": {"text": "abcdefgh" * 8},
            "weights": {"seed": 2}}
    plain = gatescope.run(base)
    tensors = pytorch_init(CELLS["rnn_tanh"], 8, 16, 1, 2, None, np.float64, 3.0)
    same = pytorch_init(CELLS["rnn_tanh"], 8, 16, 1, 2, None, np.float64)
    np.testing.assert_array_equal(tensors["weight_hh_l0"], 3.0 * same["weight_hh_l0"])
    np.testing.assert_array_equal(tensors["weight_ih_l0"], same["weight_ih_l0"])
    loud = gatescope.run({**base, "weights": {"seed": 2, "recurrent_scale": 3.0}})
    # the gradient at the first step: vanishing at scale 1, orders of magnitude larger at 3
    assert loud.layers[0].grads["h_norm"][0] > 1e3 * plain.layers[0].grads["h_norm"][0]
    with pytest.raises(ValidationError, match="random init"):
        gatescope.run({**base, "weights": {"model_id": "0123456789abcdef",
                                           "recurrent_scale": 2.0}})
