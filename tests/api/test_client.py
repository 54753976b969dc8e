"""gatescope.Client against a real server: its run returns what gatescope.run returns (every
array bit for bit, over the binary encoding), its 4xx are the in-process errors, and it
uploads and lists models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import gatescope
from gatescope.contract.errors import error_detail
from tests.helpers.compare import walk
from tests.helpers.server import running_server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[gatescope.Client]:
    with running_server(tmp_path_factory.mktemp("client-data")) as url:
        yield gatescope.Client(url)


@pytest.mark.parametrize("request_", [
    {"cell": "lstm", "hidden_size": 5, "num_layers": 2, "input": {"text": "hello world"},
     "truncate": 4, "clip": {"max_norm": 0.5}},
    {"cell": "gru", "hidden_size": 3, "bidirectional": True, "dtype": "float32",
     "input": {"values": np.linspace(-1, 1, 12).reshape(6, 2)},
     "loss": {"type": "upstream", "layer": 0, "dh": [[0.5] * 6, None, None, None, None,
                                                     [1.0] * 6]}},
    {"cell": "rnn_relu", "hidden_size": 4, "input": {"text": "abcab" * 40}, "dtype": "float32",
     "weights": {"recurrent_scale": 100.0}, "fields": ["h", "grads"]},  # overflows: NaN
])
def test_a_run_over_http_is_the_in_process_run(client, request_) -> None:
    local = gatescope.run({**request_, "input": {
        k: (v.tolist() if isinstance(v, np.ndarray) else v)
        for k, v in request_["input"].items()}})
    remote = client.run(request_)
    assert isinstance(remote, gatescope.RunResult)
    want, got = dict(walk(local.as_dict())), dict(walk(remote.as_dict()))
    assert got.keys() == want.keys()
    for path, a in want.items():
        # an overflowed value (NaN or ±inf in process) goes as null and comes back NaN
        finite = np.isfinite(a)
        np.testing.assert_array_equal(np.asarray(got[path])[finite], np.asarray(a)[finite],
                                      err_msg=path)
        assert np.isnan(np.asarray(got[path])[~finite]).all(), path
        assert np.asarray(got[path]).dtype == np.asarray(a).dtype, path
    assert remote.warnings == local.warnings and remote.finite == local.finite
    assert remote.as_dict().keys() == local.as_dict().keys()


def test_a_refusal_is_the_in_process_validation_error(client) -> None:
    bad = {"cell": "gru", "hidden_size": 4, "input": {"text": "abc"},
           "loss": {"type": "hidden_unit", "unit": 9}}
    with pytest.raises(ValidationError) as remote:
        client.run(bad)
    with pytest.raises(ValidationError) as local:
        gatescope.run(bad)
    assert error_detail(remote.value) == error_detail(local.value)
    with pytest.raises(gatescope.ModelNotFoundError):
        client.run({"input": {"text": "a"}, "weights": {"model_id": "0123456789abcdef"}})


def test_upload_models_and_a_jacobian(client) -> None:
    info = client.upload(FIXTURES / "models" / "rnn_relu_classifier.safetensors",
                         cell="rnn_relu")
    assert info.rnn is not None and info.rnn.cell == "rnn_relu" and info.head is not None
    assert info.model_id in {m.model_id for m in client.models()}
    assert client.model(info.model_id) == info
    with pytest.raises(ValidationError) as refused:  # a plain RNN, its cell not given
        client.upload(FIXTURES / "models" / "rnn_relu_classifier.safetensors")
    assert error_detail(refused.value)[0]["loc"] == ["body", "cell"]
    request = {"input": {"values": [[0.5, -1.0, 2.0]] * 4}, "weights": {"model_id":
                                                                       info.model_id}}
    remote = client.jacobian(request, step=2, layer=1)
    run = client.run(request)  # the same weights: the matrix's norm is the run's
    assert remote.total.shape == (4, 4) and (remote.step, remote.layer) == (2, 1)
    assert run.layers[1].jacobian is not None
    assert float(np.linalg.norm(remote.total)) == pytest.approx(
        float(run.layers[1].jacobian["total"][2]), rel=1e-12)


def test_a_batch_over_http_is_the_in_process_batch(client) -> None:
    request = {"cell": "gru", "hidden_size": 4, "input": {"batch": [
        {"text": "hello"}, {"text": "gates"}, {"text": "ok"}]}}
    local, remote = gatescope.run_batch(request), client.run_batch(request)
    assert isinstance(remote, gatescope.BatchResult) and len(remote.batch) == 3
    for mine, theirs in zip(local.batch, remote.batch, strict=True):
        want, got = dict(walk(mine.as_dict())), dict(walk(theirs.as_dict()))
        assert got.keys() == want.keys()
        for path, a in want.items():
            np.testing.assert_array_equal(got[path], a, err_msg=path)
    assert remote.param_grads_total.keys() == local.param_grads_total.keys()
    with pytest.raises(ValidationError):  # a batch is run_batch's, there as here
        client.run(request)


def test_a_float32_batch_that_overflows_comes_back_float32(client) -> None:
    request = {"cell": "rnn_relu", "hidden_size": 4, "dtype": "float32",
               "weights": {"recurrent_scale": 100.0},
               "input": {"batch": [{"values": [1.0] * 60}, {"values": [1.0] * 3}]}}
    remote = client.run_batch(request)
    assert not remote.batch[0].finite and remote.batch[1].finite
    assert remote.batch[0].layers[0].h.dtype == np.float32
    assert remote.param_grads_total["weight_hh_l0"].dtype == np.float32
    with pytest.raises(ValidationError):
        client.run_batch({"input": {"text": "ab"}})


def test_every_422_error_comes_back(client) -> None:
    bad = {"cell": "gru", "hidden_size": 0, "num_layers": 9, "input": {"text": "abc"}}
    with pytest.raises(ValidationError) as remote:
        client.run(bad)
    with pytest.raises(ValidationError) as local:
        gatescope.run(bad)
    assert len(error_detail(local.value)) == 2
    assert error_detail(remote.value) == error_detail(local.value)
