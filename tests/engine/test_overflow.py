"""Exploding states and gradients: the JSON-ready result holds null, never NaN or Infinity,
and `warnings` names the layer, the field and the first step."""

from __future__ import annotations

import json
import warnings

import numpy as np

import gatescope
from gatescope.numerics import sigmoid


def exploding_relu_request(T: int = 200) -> dict:
    """An rnn_relu whose recurrent weights multiply the state by 50 each step: h grows like
    50^t and passes float64's 1.8e308 after about 180 steps."""
    H = 2
    tensors = {
        "weight_ih_l0": [[1.0], [1.0]],
        "weight_hh_l0": [[50.0, 0.0], [0.0, 50.0]],
        "bias_ih_l0": [0.0, 0.0],
        "bias_hh_l0": [0.0, 0.0],
    }
    return {"cell": "rnn_relu", "hidden_size": H, "input": {"values": [1.0] * T},
            "weights": {"tensors": tensors}}


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


def test_sigmoid_is_exact_and_quiet_for_any_input():
    x = np.array([-1e4, -800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0, 1e4, np.inf, -np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float64, np.float32):
            s = sigmoid(x.astype(dtype))
            assert s.dtype == dtype and np.all(np.isfinite(s))
            assert np.all((s >= 0) & (s <= 1))
    s = sigmoid(x)
    np.testing.assert_allclose(s[2:8], 1 / (1 + np.exp(-x[2:8])), rtol=1e-15)
    assert s[2] == np.exp(-40.0) / (1 + np.exp(-40.0))  # the tail keeps its digits
    assert s[0] == 0.0 and s[8] == 1.0 and s[9] == 1.0 and s[10] == 0.0


def test_all_finite_sees_every_nan_and_inf_and_no_false_alarm():
    from gatescope.numerics import all_finite
    big = np.full(10, 3e38, np.float32)  # finite, but its sum overflows float32
    assert all_finite(big) and all_finite(np.zeros(0)) and all_finite(np.ones((3, 4)))
    for bad in (np.nan, np.inf, -np.inf):
        a = np.ones((5, 7))
        a[3, 2] = bad
        assert not all_finite(a)
    mixed = np.array([np.inf, -np.inf, 1.0])  # inf − inf = NaN: still caught
    assert not all_finite(mixed)
