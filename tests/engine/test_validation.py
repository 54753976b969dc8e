"""Every validation rule of the request: a pydantic ValidationError whose loc names the
field and whose message names the limit or the fix."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

import gatescope
from gatescope.contract.limits import Limits
from gatescope.core.cells import CELLS
from gatescope.core.params import pytorch_init


def error_of(request, **kwargs) -> tuple[tuple, str]:
    with pytest.raises(ValidationError) as info:
        if "step" in kwargs:
            gatescope.jacobian(request, **kwargs)
        else:
            gatescope.run(request, **kwargs)
    errors = info.value.errors()
    assert errors, "a ValidationError with no errors"
    return tuple(errors[0]["loc"]), errors[0]["msg"]


def lstm_tensors(D=3, H=2, L=1):
    params = pytorch_init(CELLS["lstm"], D, H, L, 0, None, np.float64)
    return {k: v.tolist() for k, v in params.items()}


TEXT = {"text": "abc"}

CASES = [
    # (request, expected loc, words the message must contain)
    ({"input": TEXT, "hidden_size": 0}, ("hidden_size",), "greater than or equal to 1"),
    ({"input": TEXT, "hidden_size": 1025}, ("hidden_size",), "1024"),
    ({"input": TEXT, "hidden_size": 10**100}, ("hidden_size",), "1024"),
    ({"input": TEXT, "num_layers": 5}, ("num_layers",), "4"),
    ({"input": TEXT, "num_layers": 0}, ("num_layers",), "1"),
    ({"input": {"text": "a" * 4097}}, ("input", "text"), "4096"),
    ({"input": {"values": [0.0] * 4097}}, ("input", "values"), "4096"),
    ({"input": {"values": [[0.0] * 1025]}}, ("input", "values", 0), "1024"),
    ({"input": {"text": "ab" * 2048}, "hidden_size": 1024, "num_layers": 1}, ("input",),
     "2,097,152"),
    ({"input": {"values": [[0.0]] * 2048}, "hidden_size": 512, "num_layers": 3}, ("input",),
     "2,097,152"),
    ({"input": {"text": "abc", "vocab": "ab"}}, ("input", "text"), "'c'"),
    ({"input": {"text": "abc", "vocab": "abca"}}, ("input", "vocab"), "twice"),
    ({"input": {"text": "".join(map(chr, range(0x4E00, 0x4E00 + 1100)))}}, ("input", "text"),
     "1024"),
    ({"input": {"values": [1.0, float("nan")]}}, ("input", "values", 1, 0), "finite"),
    ({"input": {"values": [[1.0], [float("inf")]]}}, ("input", "values", 1, 0), "finite"),
    ({"input": {"values": [[1.0, 2.0], [3.0]]}}, ("input", "values", 1), "same input size"),
    ({"input": {"values": []}}, ("input", "values"), "at least 1"),
    ({"input": {"text": ""}}, ("input", "text"), "at least 1"),
    ({"input": {"text": "a", "values": [1.0]}}, ("input",), "exactly one"),
    ({"input": {}}, ("input",), "exactly one"),
    ({"input": {"values": [1.0], "vocab": "a"}}, ("input",), "vocab goes with text"),
    ({}, ("input",), "required"),
    ({"input": TEXT, "hiden_size": 4}, ("hiden_size",), "not permitted"),
    ({"input": TEXT, "cell": "transformer"}, ("cell",), "'lstm'"),
    ({"input": TEXT, "dtype": "float16"}, ("dtype",), "float64"),
    ({"input": TEXT, "truncate": 0}, ("truncate",), "greater than or equal to 1"),
    ({"input": TEXT, "weights": {"seed": -1}}, ("weights", "seed"), "0"),
    ({"input": TEXT, "weights": {"seed": 2**64}}, ("weights", "seed"), "9223372036854775807"),
    ({"input": TEXT, "weights": {"init": "xavier"}}, ("weights", "init"), "pytorch"),
    ({"input": TEXT, "cell": "gru", "weights": {"forget_bias": 1.0}},
     ("weights", "forget_bias"), "LSTM"),
    ({"input": TEXT, "weights": {"forget_bias": float("inf")}}, ("weights", "forget_bias"),
     "finite"),
    ({"input": TEXT, "weights": {"model_id": "../etc/passwd"}}, ("weights", "model_id"),
     "pattern"),
    ({"input": TEXT, "weights": {"model_id": "abc", "tensors": {}}}, ("weights",), "not both"),
    ({"input": TEXT, "weights": {"seed": 3, "tensors": lstm_tensors()}}, ("weights",),
     "random init"),
    ({"input": TEXT, "weights": {"tensors": {k: v for k, v in lstm_tensors().items()
                                             if k != "bias_hh_l0"}}},
     ("weights", "tensors", "bias_hh_l0"), "missing"),
    ({"input": TEXT, "weights": {"tensors": {**lstm_tensors(), "weight_ih_l1": [[0.0]]}}},
     ("weights", "tensors", "weight_hh_l1"), "missing"),
    ({"input": TEXT, "weights": {"tensors": {**lstm_tensors(), "readout": [0.0]}}},
     ("weights", "tensors", "readout"), "not a tensor of a recurrent layer"),
    ({"input": TEXT, "weights": {"tensors": {**lstm_tensors(), "bias_ih_l0": [0.0] * 7}}},
     ("weights", "tensors", "bias_ih_l0"), "(8,)"),
    ({"input": TEXT, "weights": {"tensors": {**lstm_tensors(),
                                             "weight_ih_l0": [[0.0] * 3] * 7 + [[0.0] * 2]}}},
     ("weights", "tensors", "weight_ih_l0"), "ragged"),
    ({"input": TEXT, "cell": "gru", "weights": {"tensors": lstm_tensors()}},
     ("weights", "tensors", "weight_ih_l0"), "(6, 3)"),
    ({"input": TEXT, "hidden_size": 3, "weights": {"tensors": lstm_tensors()}},
     ("hidden_size",), "leave hidden_size out"),
    ({"input": {"text": "abcd"}, "weights": {"tensors": lstm_tensors()}}, ("input",),
     "the vocab has 4 characters"),
    ({"input": {"values": [1.0, 2.0]}, "weights": {"tensors": lstm_tensors()}}, ("input",),
     "each step has 1 numbers"),
    ({"input": TEXT, "hidden_size": 2, "initial_state": {"h": [[0.0, 0.0, 0.0]]}},
     ("initial_state", "h"), "1×2"),
    ({"input": TEXT, "hidden_size": 2, "num_layers": 2, "initial_state": {"h": [[0.0, 0.0]]}},
     ("initial_state", "h"), "2×2"),
    ({"input": TEXT, "cell": "gru", "initial_state": {"c": [[0.0] * 16]}},
     ("initial_state", "c"), "no cell state"),
    ({"input": TEXT, "loss": {"type": "hidden_unit", "step": 3}}, ("loss", "hidden_unit", "step"),
     "last step (2)"),
    ({"input": TEXT, "loss": {"type": "hidden_unit", "unit": 16}},
     ("loss", "hidden_unit", "unit"),
     "hidden_size 16"),
    ({"input": TEXT, "loss": {"type": "mse", "targets": [[0.0] * 16] * 2}},
     ("loss", "mse", "targets"), "3×16"),
    ({"input": TEXT, "loss": {"type": "mse"}}, ("loss", "mse", "targets"), "required"),
    ({"input": TEXT, "loss": {"type": "no_such_loss"}}, ("loss",), "last_hidden_sum"),
    ({"input": TEXT, "loss": {"type": "cross_entropy"}}, ("loss", "cross_entropy", "targets"),
     "required"),
    # float32 holds ±3.4e38: a finite JSON number beyond it is refused, not turned into inf
    ({"input": {"values": [1e39, 1.0]}, "dtype": "float32"}, ("input", "values"),
     "beyond the range of float32"),
    ({"input": {"values": [1.0]}, "dtype": "float32", "initial_state": {"h": [[1e39] * 16]}},
     ("initial_state", "h"), "beyond the range of float32"),
    ({"input": TEXT, "dtype": "float32", "hidden_size": 2,
      "loss": {"type": "mse", "targets": [[0.0, 1e39]] * 3}}, ("loss", "mse", "targets"),
     "beyond the range of float32"),
    ({"input": TEXT, "dtype": "float32", "weights": {"tensors": {
        **lstm_tensors(), "bias_hh_l0": [1e39] * 8}}}, ("weights", "tensors", "bias_hh_l0"),
     "beyond the range of float32"),
    # layer numbers are one or two ASCII digits: no 5000-digit int(), no other scripts' digits
    ({"input": TEXT, "weights": {"tensors": {**lstm_tensors(), "weight_ih_l" + "9" * 5000:
                                             [0.0]}}},
     ("weights", "tensors", "weight_ih_l" + "9" * 5000), "not a tensor of a recurrent layer"),
    ({"input": TEXT, "weights": {"tensors": {**lstm_tensors(), "weight_ih_l\u0661": [0.0]}}},
     ("weights", "tensors", "weight_ih_l\u0661"), "not a tensor of a recurrent layer"),
    ({"input": TEXT, "weights": {"tensors": {**lstm_tensors(), "bias_ih_l0\n": [0.0]}}},
     ("weights", "tensors", "bias_ih_l0\n"), "not a tensor of a recurrent layer"),
]


@pytest.mark.parametrize(("request_", "loc", "words"), CASES,
                         ids=[f"{'.'.join(map(str, c[1]))}-{n}" for n, c in enumerate(CASES)])
def test_bad_request_names_field_and_limit(request_, loc, words):
    got_loc, msg = error_of(request_)
    assert got_loc == loc, msg
    assert words in msg


def test_server_limits_can_be_lowered():
    limits = Limits(max_steps=10, max_hidden=8, max_layers=2, max_work=100)
    assert error_of({"input": {"text": "a" * 11}}, limits=limits) == (
        ("input",), "the sequence has 11 steps, over the limit of 10")
    assert error_of({"input": TEXT, "hidden_size": 9}, limits=limits)[0] == ("hidden_size",)
    assert error_of({"input": TEXT, "hidden_size": 4, "num_layers": 3},
                    limits=limits)[0] == ("num_layers",)
    assert "100" in error_of({"input": {"text": "a" * 10}, "hidden_size": 8, "num_layers": 2},
                             limits=limits)[1]


@pytest.mark.parametrize("request_", [None, [1, 2], "text", 3])
def test_a_request_that_is_not_an_object_is_a_validation_error(request_):
    with pytest.raises(ValidationError):
        gatescope.run(request_)
    with pytest.raises(ValidationError):
        gatescope.jacobian(request_, step=0)


def test_inline_tensors_of_a_wide_lstm_fit_the_schema():
    """A bias of an LSTM with H = 300 has 1200 entries: more than D's 1024, within 4·H."""
    tensors = {k: v.tolist() for k, v in
               pytorch_init(CELLS["lstm"], 2, 300, 1, 0, None, np.float64).items()}
    result = gatescope.run({"input": {"values": [[0.0, 1.0]]}, "weights": {"tensors": tensors}})
    assert result.hidden_size == 300


def test_jacobian_step_and_layer_must_exist():
    assert error_of({"input": TEXT}, step=3)[0] == ("step",)
    assert "1 layer(s)" in error_of({"input": TEXT}, step=0, layer=1)[1]


def test_unknown_model_is_not_found():
    with pytest.raises(gatescope.ModelNotFoundError):
        gatescope.run({"input": TEXT, "weights": {"model_id": "0123abcd"}})
