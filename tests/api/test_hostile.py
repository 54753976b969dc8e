"""Whatever a client sends, the answer is a clear 4xx — never a 500, never a hang."""

from __future__ import annotations

import time

import pytest

from tests.helpers.api import make_client

HOSTILE_BODIES = {
    "NaN token": b'{"input": {"values": [NaN, 1]}}',
    "Infinity token": b'{"input": {"values": [1, Infinity]}}',
    "-Infinity token": b'{"input": {"text": "a"}, "weights": {"forget_bias": -Infinity}}',
    "1e400": b'{"input": {"values": [1e400]}}',
    "100-digit integer": b'{"input": {"text": "a"}, "hidden_size": ' + b"9" * 100 + b"}",
    "5000-digit integer": b'{"input": {"text": "a"}, "weights": {"seed": ' + b"7" * 5000 + b"}}",
    "50,000 nested brackets": b'{"input": {"values": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}",
    "50,000 nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "not JSON": b"hello",
    "truncated JSON": b'{"input": {"text": "a"',
    "not an object": b"[1, 2, 3]",
    "null": b"null",
    "empty": b"",
    "invalid UTF-8": b'{"input": {"text": "\xff\xfe"}}',
    "lone surrogate": b'{"input": {"text": "\\ud800"}}',
    "huge T*H*L": b'{"input": {"text": "' + b"ab" * 2048 + b'"}, "hidden_size": 1024, '
                  b'"num_layers": 4}',
    "string for a number": b'{"input": {"values": ["1", "x"]}}',
    "bool for a number": b'{"input": {"text": "a"}, "hidden_size": true}',
    "unknown field": b'{"input": {"text": "a"}, "__proto__": {}}',
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
@pytest.mark.parametrize("path", ["/api/v1/run", "/api/v1/jacobian"])
def test_hostile_bodies_get_a_422_quickly(client, path, body):
    t0 = time.perf_counter()
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert time.perf_counter() - t0 < 5
    detail = r.json()["detail"]
    assert detail and all({"loc", "msg", "type"} <= set(d) for d in detail)
    assert len(r.content) < 20_000  # the input is never echoed back


def test_validation_messages_name_the_limit(client):
    json_type = {"content-type": "application/json"}
    r = client.post("/api/v1/run", content=b'{"input": {"text": "a"}, "hidden_size": '
                    + b"9" * 100 + b"}", headers=json_type)
    assert r.json()["detail"] == [{"loc": ["hidden_size"], "type": "less_than_equal",
                                   "msg": "Input should be less than or equal to 1024"}]
    r = client.post("/api/v1/run", content=b'{"input": {"values": [1e400]}}',
                    headers=json_type)
    assert r.json()["detail"][0]["loc"] == ["input", "values", 0, 0]
    assert "finite" in r.json()["detail"][0]["msg"]


def test_body_over_the_limit_is_413_from_content_length(tmp_path):
    with make_client(tmp_path, max_body_bytes=4096) as small:
        r = small.post("/api/v1/run", content=b" " * 5000,
                       headers={"content-type": "application/json"})
        assert r.status_code == 413 and "4096 bytes" in r.json()["detail"]


def test_bad_content_length_is_400(client):
    r = client.post("/api/v1/run", content=b"{}", headers={"content-length": "abc"})
    assert r.status_code == 400


@pytest.mark.parametrize("path", [
    "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/docs/../../../etc/passwd",
    "/static/docs/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
    "/index.html%00.js", "/vendor/../../pyproject.toml", "/api/v1/models/..%2f..%2f",
])
def test_path_tricks_never_leave_the_served_directories(client, path):
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert b"root:" not in r.content and b"[project]" not in r.content


def test_unknown_routes_and_methods(client):
    assert client.get("/api/v1/nothing").status_code == 404
    assert client.get("/api/v1/run").status_code in (404, 405)
    assert client.delete("/api/v1/models").status_code in (404, 405)
    assert client.put("/api/v1/run", json={}).status_code in (404, 405)


def test_413_carries_cors_headers_when_cors_is_on(tmp_path):
    with make_client(tmp_path, max_body_bytes=4096, cors_origins=["http://a.test"]) as c:
        r = c.post("/api/v1/run", content=b" " * 5000, headers={"origin": "http://a.test"})
        assert r.status_code == 413
        assert r.headers["access-control-allow-origin"] == "http://a.test"


def test_connectivity_is_capped_by_its_cost(client):
    """One backward pass per step, each T products of (1, H) × (H, G·H): T²·H²·L. The cap
    was on T²·H·L, so 90 steps of 1024 units in 4 layers (173 bytes) ran for 20 s."""
    for body in ({"hidden_size": 512, "input": {"text": "ab" * 200}, "connectivity": True},
                 {"hidden_size": 1024, "num_layers": 4, "input": {"text": "ab" * 45},
                  "connectivity": True}):
        r = client.post("/api/v1/run", json=body)
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["connectivity"]
        assert "hidden_size² × num_layers" in r.json()["detail"][0]["msg"]
        assert "4,294,967,296" in r.json()["detail"][0]["msg"]
    # at the cap's example it runs
    r = client.post("/api/v1/run?encoding=binary", json={
        "hidden_size": 128, "input": {"text": "abcdefgh" * 64}, "connectivity": True})
    assert r.status_code == 200, r.text


def test_json_responses_vary_on_accept_encoding(client):
    r = client.post("/api/v1/run", json={"hidden_size": 2, "input": {"text": "ab"}})
    assert r.headers["vary"] == "accept-encoding"
