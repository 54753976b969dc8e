"""/health, /run and /jacobian over HTTP: status first, then fields; the body is exactly
what gatescope.run gives in-process."""

from __future__ import annotations

import base64

import numpy as np

import gatescope
from tests.helpers.api import read_binary

REQ = {"cell": "lstm", "hidden_size": 4, "num_layers": 2, "input": {"text": "hello world"},
       "truncate": 3, "loss": {"type": "hidden_unit", "step": 7, "unit": 2}}


def test_health(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": gatescope.__version__}


def test_run_matches_the_python_api_exactly(client):
    r = client.post("/api/v1/run", json=REQ)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == gatescope.run(REQ).to_json()


def test_large_json_is_gzipped_when_accepted(client):
    req = {"hidden_size": 64, "input": {"text": "abcdefgh" * 64}}
    r = client.post("/api/v1/run", json=req, headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    raw = client.post("/api/v1/run", json=req, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert r.json() == raw.json()
    assert int(r.headers["content-length"]) < len(raw.content) / 2


def decode(obj):
    if isinstance(obj, dict) and set(obj) == {"dtype", "bdata", "shape"}:
        dtype = {"f4": "<f4", "f8": "<f8"}[obj["dtype"]]
        shape = tuple(int(n) for n in obj["shape"].split(","))
        return np.frombuffer(base64.b64decode(obj["bdata"]), dtype).reshape(shape)
    if isinstance(obj, dict):
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        return [decode(v) for v in obj]
    return obj


def test_typed_encoding_holds_the_same_numbers(client):
    for dtype in ("float64", "float32"):
        req = {**REQ, "dtype": dtype}
        r = client.post("/api/v1/run?encoding=typed", json=req)
        assert r.status_code == 200
        got = decode(r.json())
        want = gatescope.run(req)
        assert got["layers"][1]["gates"]["f"].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got["layers"][1]["gates"]["f"], want.layers[1].gates["f"])
        np.testing.assert_array_equal(got["param_grads"]["weight_hh_l0"],
                                      want.param_grads["weight_hh_l0"])
        np.testing.assert_array_equal(got["layers"][0]["jacobian"]["forget"],
                                      want.layers[0].jacobian["forget"])
        assert got["tokens"] == list("hello world")


def test_typed_encoding_keeps_overflowed_arrays_as_lists_with_null(client):
    from tests.helpers.requests import exploding_relu_request
    r = client.post("/api/v1/run?encoding=typed", json=exploding_relu_request())
    assert r.status_code == 200
    body = r.json()
    h = body["layers"][0]["h"]
    assert isinstance(h, list) and h[-1] == [None, None]
    assert isinstance(body["layers"][0]["pre"]["a"], list)
    assert any("layer 0, field h overflowed" in w for w in body["warnings"])
    assert b"NaN" not in r.content and b"Infinity" not in r.content


def test_server_timing_says_where_the_time_went(client):
    for path, body in (("run", REQ), ("jacobian", {**REQ, "step": 4, "layer": 1})):
        r = client.post(f"/api/v1/{path}?encoding=binary", json=body)
        assert r.status_code == 200
        parts = dict(part.strip().split(";dur=") for part in
                     r.headers["server-timing"].split(","))
        ms = {name: float(value) for name, value in parts.items()}
        assert list(ms) == ["parse", "run", "encode", "total"]  # the body streams: no copy
        assert all(v >= 0 for v in ms.values()) and ms["run"] > 0
        assert ms["total"] + 0.2 >= ms["parse"] + ms["run"] + ms["encode"]  # 0.1 ms rounding
    r = client.post("/api/v1/run", json={"input": {"text": "abc"}, "hidden_size": 2048})
    assert r.status_code == 422 and "server-timing" not in r.headers


def test_jacobian(client):
    r = client.post("/api/v1/jacobian", json={**REQ, "step": 4, "layer": 1})
    assert r.status_code == 200
    body = r.json()
    assert (body["step"], body["layer"]) == (4, 1)
    assert set(body["terms"]) == {"direct", "forget", "input", "candidate"}
    want = gatescope.jacobian(REQ, step=4, layer=1).to_json()
    assert body == want


def test_run_errors_are_422_with_field_and_limit(client):
    r = client.post("/api/v1/run", json={"input": {"text": "abc"}, "hidden_size": 2048})
    assert r.status_code == 422
    assert r.json() == {"detail": [{"loc": ["hidden_size"], "type": "less_than_equal",
                                    "msg": "Input should be less than or equal to 1024"}]}
    r = client.post("/api/v1/jacobian", json={"input": {"text": "abc"}, "step": 3})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["step"]
    r = client.post("/api/v1/run?encoding=xml", json={"input": {"text": "abc"}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "encoding"]


def test_unknown_model_is_404(client):
    r = client.post("/api/v1/run", json={"input": {"text": "a"},
                                         "weights": {"model_id": "0123456789abcdef"}})
    assert r.status_code == 404
    assert "0123456789abcdef" in r.json()["detail"]


def test_binary_encoding_holds_the_same_numbers(client):
    for dtype in ("float64", "float32"):
        req = {**REQ, "dtype": dtype}
        r = client.post("/api/v1/run?encoding=binary", json=req)
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/octet-stream"
        got = read_binary(r.content)
        want = gatescope.run(req)
        for k, layer in enumerate(want.layers):
            for name, values in layer.gates.items():
                np.testing.assert_array_equal(got["layers"][k]["gates"][name], values)
            np.testing.assert_array_equal(got["layers"][k]["grads"]["c"], layer.grads["c"])
        for name, values in want.param_grads.items():
            np.testing.assert_array_equal(got["param_grads"][name], values)
        assert got["layers"][0]["h"].dtype == np.dtype(dtype)
        assert got["tokens"] == list("hello world") and got["loss"] == want.loss
    r = client.post("/api/v1/run?encoding=binary", json={"input": {}})
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
