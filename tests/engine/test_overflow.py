"""Exploding states and gradients: the JSON-ready result holds null, never NaN or Infinity,
and `warnings` names the layer, the field and the first step."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import gatescope
from gatescope.core.cells import CELLS
from tests.helpers.requests import exploding_relu_request


def test_overflow_becomes_null_with_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks out of the engine
        result = gatescope.run(exploding_relu_request())
    data = result.to_json()
    text = json.dumps(data, allow_nan=False)  # raises if any NaN/inf were left
    assert "NaN" not in text and "Infinity" not in text
    h = data["layers"][0]["h"]
    first_null = next(t for t, row in enumerate(h) if row[0] is None)
    assert 170 < first_null < 200
    assert all(v is not None for row in h[:first_null] for v in row)
    assert any(f"layer 0, field h overflowed from step {first_null} on" in w
               for w in data["warnings"]), data["warnings"]
    assert data["loss"] is None and "loss overflowed; it is sent as null" in data["warnings"]
    assert any("param_grads.weight_hh_l0" in w for w in data["warnings"])


def test_no_warnings_when_everything_is_finite():
    assert gatescope.run(exploding_relu_request(T=20)).warnings == []


SIGMOID_INPUTS = [-1e4, -800.0, -100.0, -88.5, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0, 1e4]


def cell_sigmoids(cell_name: str, dtype: str) -> np.ndarray:
    """(T, gates) σ of every sigmoid gate of a one-unit cell whose pre-activations at step t
    all equal x_t, straight from the cell's own loop (no np.errstate around it)."""
    cell = CELLS[cell_name]
    x = np.asarray(SIGMOID_INPUTS, dtype)
    T, G = len(x), cell.blocks
    xw = np.repeat(x[:, None, None], G, axis=2)  # (T, N=1, G·H) with H = 1
    trace = cell.new_trace(T, np.zeros((1, 1), dtype), None if cell.name == "gru"
                           else np.zeros((1, 1), dtype))
    b_step = np.zeros(1, dtype) if cell.name == "gru" else None
    cell.forward(xw.copy(), np.zeros((1, G), dtype), b_step, trace)  # (it flips xw in place)
    np.testing.assert_array_equal(trace.pre[:, 0], xw[:, 0])  # pre restored exactly
    sig = {"lstm": [0, 1, 3], "gru": [0, 1]}[cell.name]  # i, f, o; r, z
    return trace.act[:, 0, sig]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gate_sigmoid_is_pytorchs_exact_and_quiet_for_any_input(cell, dtype):
    """σ(x) = 1 / (1 + e^(−x)), PyTorch's formula: full relative precision in both tails, 0
    where e^(−x) overflows (as torch.sigmoid gives), and no warning or NaN for any x."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = cell_sigmoids(cell, dtype)
    assert s.dtype == np.dtype(dtype) and np.all(np.isfinite(s))
    exact = 1.0 / (1.0 + np.exp(-np.asarray(SIGMOID_INPUTS, np.longdouble)))
    overflows = -np.asarray(SIGMOID_INPUTS) > np.log(np.finfo(dtype).max)
    assert np.all(s[overflows] == 0.0)  # torch.sigmoid(-100.0) is 0 in float32, too
    tiny = np.finfo(dtype).tiny  # below it, float32/64 keep fewer digits (subnormals)
    kept = ~overflows & (exact >= tiny)
    for gate in s.T:
        np.testing.assert_allclose(gate[kept], exact[kept].astype(np.float64),
                                   rtol={"float32": 3e-7, "float64": 5e-16}[dtype])
    assert np.all(s[SIGMOID_INPUTS.index(-40.0)] > 0)  # the tail keeps its digits: 4.2e−18


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_pre_activations_held_negated_come_back_with_zeros_as_plus_zero(cell):
    """Exact zeros everywhere: the pre-activations are +0, as PyTorch's sums give them, not
    the −0 a negated sum would leave."""
    G, H = CELLS[cell].blocks, 2
    tensors = {"weight_ih_l0": [[0.0]] * G * H, "weight_hh_l0": [[0.0] * H] * G * H,
               "bias_ih_l0": [0.0] * G * H, "bias_hh_l0": [0.0] * G * H}
    result = gatescope.run({"cell": cell, "input": {"values": [0.0, 0.0]},
                            "weights": {"tensors": tensors}})
    for pre in result.layers[0].pre.values():
        assert np.all(pre == 0.0) and not np.any(np.signbit(pre))


def test_results_count_as_finite_only_once_checked():
    assert gatescope.run(exploding_relu_request(T=20)).finite
    assert not gatescope.run(exploding_relu_request()).finite
    from gatescope.contract.results import JacobianResult
    assert not JacobianResult(0, 0, {}, np.zeros((2, 2))).finite  # never checked


def test_all_finite_sees_every_nan_and_inf_and_no_false_alarm():
    from gatescope.core.numerics import all_finite
    big = np.full(10, 3e38, np.float32)  # finite, but its sum overflows float32
    assert all_finite(big) and all_finite(np.zeros(0)) and all_finite(np.ones((3, 4)))
    for bad in (np.nan, np.inf, -np.inf):
        a = np.ones((5, 7))
        a[3, 2] = bad
        assert not all_finite(a)
    mixed = np.array([np.inf, -np.inf, 1.0])  # inf − inf = NaN: still caught
    assert not all_finite(mixed)
