"""The Python API: run() and jacobian() accept a dict or the pydantic model, return the
response's structure with NumPy inside, and to_json() gives finite, JSON-ready data."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gatescope

SHAPES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn_tanh": (),
          "rnn_relu": ()}


@pytest.mark.parametrize("cell", list(SHAPES))
def test_result_has_the_contract_structure(cell):
    req = {"cell": cell, "hidden_size": 5, "num_layers": 2, "input": {"text": "hello world"}}
    result = gatescope.run(req)
    data = result.to_json()
    json.dumps(data, allow_nan=False)  # plain JSON, no NaN tokens
    T, H, D = 11, 5, len(set("hello world"))
    assert (data["cell"], data["steps"], data["hidden_size"], data["num_layers"]) == (
        cell, T, H, 2)
    assert data["input_size"] == D and data["vocab"] == " dehlorw"
    assert data["tokens"] == list("hello world") and data["dtype"] == "float64"
    assert np.shape(data["input_grad"]) == (T, D)
    for layer in data["layers"]:
        assert np.shape(layer["h"]) == (T, H)
        assert ("c" in layer) == (cell == "lstm")
        assert tuple(layer["gates"]) == SHAPES[cell]
        assert set(layer["pre"]) == (set(SHAPES[cell]) or {"a"})
        grads = layer["grads"]
        assert set(grads["gates"]) == (set(SHAPES[cell]) or {"a"})
        assert np.shape(grads["h"]) == (T, H) and np.shape(grads["h_norm"]) == (T,)
        np.testing.assert_allclose(grads["h_norm"], np.linalg.norm(grads["h"], axis=1))
        assert ("c_norm" in grads) == (cell == "lstm")
        terms = {"direct", "forget", "input", "candidate", "total", "flow"} if cell == "lstm" \
            else {"total"}
        assert set(layer["jacobian"]) == terms
        if cell == "lstm":
            assert set(layer["jacobian"]["flow"]) == {"direct", "forget", "input", "candidate"}
            assert all(np.shape(v) == (T,) and v[0] == 0
                       for v in layer["jacobian"]["flow"].values())
        assert "connectivity" not in layer and "grad_norm" not in data
    G = max(len(SHAPES[cell]), 1)
    assert np.shape(data["param_grads"]["weight_ih_l0"]) == (G * H, D)
    assert np.shape(data["param_grads"]["weight_hh_l1"]) == (G * H, H)
    assert list(data["param_grads"]) == [f"{w}_l{k}" for k in range(2) for w in
                                         ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert np.shape(data["initial_state_grad"]["h"]) == (2, H)
    assert data["warnings"] == []


def test_dict_and_model_give_identical_results():
    req = {"cell": "gru", "hidden_size": 3, "input": {"values": [0.1, -0.2, 0.3]}}
    a = gatescope.run(req).to_json()
    b = gatescope.run(gatescope.RunRequest.model_validate(req)).to_json()
    assert a == b


def test_same_seed_same_weights_different_seed_different():
    req = {"hidden_size": 4, "input": {"text": "abcabc"}}
    a = gatescope.run({**req, "weights": {"seed": 3}}).loss
    b = gatescope.run({**req, "weights": {"seed": 3}}).loss
    c = gatescope.run({**req, "weights": {"seed": 4}}).loss
    assert a == b != c


def test_seeded_weights_are_kept_read_only_for_the_next_run_and_big_ones_are_not(
        monkeypatch):
    from gatescope.core.cells import CELLS
    from gatescope.core.params import pytorch_init
    from gatescope.runner import prepare
    from gatescope.runner.prepare import _seeded, _seeded_kept
    args = ("lstm", 5, 8, 2, 7, 1.0, "<f4", 1.0)
    kept, again = _seeded(*args), _seeded(*args)
    assert kept is not again  # each run gets its own dict: replacing an entry harms none
    fresh = pytorch_init(CELLS["lstm"], 5, 8, 2, 7, 1.0, np.dtype("<f4"), 1.0)
    for name, a in fresh.items():
        np.testing.assert_array_equal(kept[name], a)
        assert np.shares_memory(kept[name], again[name])  # not drawn again
        with pytest.raises(ValueError):  # no run can change them for the next
            kept[name].flags.writeable = True
    # and a run's answers do not depend on whether its weights were kept
    req = {"cell": "lstm", "hidden_size": 8, "num_layers": 2, "dtype": "float32",
           "input": {"values": [[0.1] * 5] * 4}, "weights": {"seed": 7, "forget_bias": 1.0}}
    first = gatescope.run(req).to_json()
    _seeded_kept.cache_clear()
    assert gatescope.run(req).to_json() == first
    # a model over the size limit is drawn each time
    monkeypatch.setattr(prepare, "_SEEDED_MAX_BYTES", 1000)
    big = _seeded(*args)
    assert not np.shares_memory(big["weight_hh_l0"], _seeded(*args)["weight_hh_l0"])
    assert big["weight_hh_l0"].flags.writeable


def test_weights_follow_pytorch_default_init_bounds():
    """U(−1/√H, 1/√H) for every tensor, forget_bias added to b_if and b_hf only."""
    from gatescope.core.cells import CELLS
    from gatescope.core.params import pytorch_init
    H = 16
    params = pytorch_init(CELLS["lstm"], 5, H, 2, seed=0, forget_bias=1.0, dtype=np.float64)
    for name, value in params.items():
        if name.startswith("bias"):
            f = value[H:2 * H]
            assert np.all((f > 1 - 0.25) & (f < 1 + 0.25)), name
            value = np.concatenate([value[:H], value[2 * H:]])
        assert np.all(np.abs(value) <= 1 / np.sqrt(H)), name
        assert np.abs(value).max() > 0.2  # spread over the whole range, not squeezed
    assert {k: v.shape for k, v in params.items()}["weight_ih_l1"] == (4 * H, H)


def test_float32_on_request_close_to_float64():
    req = {"cell": "lstm", "hidden_size": 8, "input": {"text": "the quick brown fox"}}
    r64 = gatescope.run(req)
    r32 = gatescope.run({**req, "dtype": "float32"})
    assert r32.dtype == "float32" and r32.layers[0].h.dtype == np.float32
    assert r32.param_grads["weight_hh_l0"].dtype == np.float32
    assert r32.layers[0].jacobian["total"].dtype == np.float32
    np.testing.assert_allclose(r32.layers[0].h, r64.layers[0].h, atol=1e-5)
    np.testing.assert_allclose(r32.param_grads["weight_hh_l0"], r64.param_grads["weight_hh_l0"],
                               atol=1e-5)


def test_given_vocab_and_explicit_tensors_infer_sizes():
    from gatescope.core.cells import CELLS
    from gatescope.core.params import pytorch_init
    params = pytorch_init(CELLS["gru"], 4, 3, 2, 0, None, np.float64)
    req = {"cell": "gru", "input": {"text": "cab", "vocab": "abcd"},
           "weights": {"tensors": {k: v.tolist() for k, v in params.items()}}}
    result = gatescope.run(req)
    assert (result.hidden_size, result.num_layers, result.input_size) == (3, 2, 4)
    assert result.vocab == "abcd"
    # the same weights drawn from the seed give the same numbers
    same = gatescope.run({"cell": "gru", "hidden_size": 3, "num_layers": 2,
                          "input": {"text": "cab", "vocab": "abcd"}})
    np.testing.assert_array_equal(result.layers[1].h, same.layers[1].h)


def test_unicode_text_is_one_token_per_code_point():
    result = gatescope.run({"hidden_size": 2, "input": {"text": "né🙂"}})
    assert result.tokens == ["n", "é", "🙂"] and result.input_size == 3


def test_jacobian_returns_hxh_matrices():
    req = {"cell": "lstm", "hidden_size": 4, "num_layers": 2, "input": {"text": "hello"}}
    jac = gatescope.jacobian(req, step=2, layer=1)
    data = jac.to_json()
    assert (data["step"], data["layer"]) == (2, 1)
    assert set(data["terms"]) == {"direct", "forget", "input", "candidate"}
    assert np.shape(data["total"]) == (4, 4)
    run = gatescope.run(req)
    np.testing.assert_allclose(np.linalg.norm(jac.total), run.layers[1].jacobian["total"][2],
                               rtol=1e-12)
    # the request's own step/layer fields work too
    again = gatescope.jacobian({**req, "step": 2, "layer": 1})
    np.testing.assert_array_equal(again.total, jac.total)


@pytest.mark.parametrize("cell", list(SHAPES))
def test_float32_runs_in_float32_throughout(cell):
    """No array of a float32 run is silently float64 (an upcast would also slow it down)."""
    from gatescope.contract.encoding import walk_arrays
    T, H = 5, 3
    req = {"cell": cell, "hidden_size": H, "num_layers": 2, "dtype": "float32",
           "input": {"text": "hello"}, "loss": {"type": "mse", "targets": [[0.1] * H] * T},
           "initial_state": {"h": [[0.5] * H] * 2}}
    arrays = list(walk_arrays(gatescope.run(req).as_dict()))
    arrays += list(walk_arrays(gatescope.jacobian(req, step=2, layer=1).as_dict()))
    assert len(arrays) > 20
    for path, a in arrays:
        assert a.dtype == np.float32, path
