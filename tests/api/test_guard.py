"""Who may call the server (api/guard.py): Host, Origin, the token, content types, 405s
with a true Allow; and Accept-Encoding's q-values, duplicate JSON keys.

The cheap checks go through TestClient (Host "testserver", allowed by make_client for the
tests only); the attacks themselves are sent to a real `gatescope serve` with exact Host
and Origin headers through http.client (urllib would write its own Host).
"""

from __future__ import annotations

import http.client
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatescope.api.guard import _RedactToken
from gatescope.api.routers.run import accepts_gzip
from gatescope.contract.json_body import unique_keys
from gatescope.settings import Settings
from tests.helpers.api import make_client, safetensors_bytes, state_dict, upload
from tests.helpers.server import running_server

RUN = {"hidden_size": 2, "input": {"text": "ab"}}
BIG_RUN = {"hidden_size": 64, "input": {"text": "abcdefgh" * 64}}  # ~1 MB of JSON
TOKEN = "s3cret-Token_42"
JSON_TYPE = {"content-type": "application/json"}


# ── raw HTTP ─────────────────────────────────────────────────────────────────────────
def send(url: str, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these headers (Host too, if given): status, headers (lower
    case names), body."""
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        headers = {"Host": f"127.0.0.1:{port}", **(headers or {})}
        conn.request(method, path, body=body or None, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def multipart(data: bytes, filename: str = "model.safetensors") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def model_file(seed: int) -> bytes:
    return safetensors_bytes(state_dict("gru", D=2, H=2, L=1, seed=seed))


def stored_ids(url: str) -> set[str]:
    status, _, body = send(url, "GET", "/api/v1/models")
    assert status == 200
    return {m["model_id"] for m in json.loads(body)["data"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """A server as it starts with no settings at all, on loopback."""
    with running_server(tmp_path_factory.mktemp("guarded"), compute_processes=1) as url:
        yield url


@pytest.fixture(scope="module")
def token_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A server with a token and one CORS origin; its log is kept."""
    log = tmp_path_factory.mktemp("token-log") / "server.log"
    with running_server(tmp_path_factory.mktemp("token"), log, compute_processes=1,
                        token=TOKEN, cors_origins='["http://a.test"]') as url:
        yield url, log


# ── Host ─────────────────────────────────────────────────────────────────────────────
@pytest.mark.slow
def test_the_issues_dns_rebinding_upload_is_refused(server):
    """The review's request: Origin and Host both the rebound name. It got 201."""
    data = model_file(seed=11)
    body, kind = multipart(data)
    before = stored_ids(server)
    status, _, reply = send(server, "POST", "/api/v1/models", body, {
        "Host": "rebind.evil.example", "Origin": "http://rebind.evil.example",
        "Content-Type": kind})
    assert status == 400, reply
    assert "GATESCOPE_ALLOWED_HOSTS" in json.loads(reply)["detail"]
    assert stored_ids(server) == before


@pytest.mark.slow
@pytest.mark.parametrize("host", ["rebind.evil.example", "rebind.evil.example:8000",
                                  "192.168.1.7:8000", "localhost.evil.example", ""])
def test_a_foreign_host_is_refused_everywhere(server, host):
    # (GET /api/v1/health answers a probe by any name: test_health_answers_a_probe_by_any_host)
    for method, path in (("GET", "/api/v1/models"), ("GET", "/"), ("GET", "/docs"),
                         ("POST", "/api/v1/run")):
        status, _, reply = send(server, method, path, json.dumps(RUN).encode(),
                                {"Host": host, **JSON_TYPE})
        assert status == 400, (method, path, reply)
        assert "GATESCOPE_ALLOWED_HOSTS" in json.loads(reply)["detail"]


@pytest.mark.slow
def test_loopback_names_with_any_port_are_served(server):
    port = server.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LocalHost",
                 "127.0.0.1:8000"):  # docker compose: the host's 127.0.0.1:8000 → the container
        status, _, reply = send(server, "POST", "/api/v1/run", json.dumps(RUN).encode(),
                                {"Host": host, **JSON_TYPE})
        assert status == 200, (host, reply)


@pytest.mark.slow
def test_two_host_headers_are_refused(server):
    port = int(server.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("GET", "/api/v1/models", skip_host=True)
    conn.putheader("Host", f"127.0.0.1:{port}")
    conn.putheader("Host", "rebind.evil.example")
    conn.endheaders()
    assert conn.getresponse().status == 400
    conn.close()


def test_allowed_hosts_adds_names_and_star_allows_any(tmp_path):
    with make_client(tmp_path, allowed_hosts=["testserver", "lab.example:8443"]) as c:
        assert c.get("/api/v1/models", headers={"host": "lab.example:8443"}).status_code == 200
        assert c.get("/api/v1/models", headers={"host": "lab.example:80"}).status_code == 400
        assert c.get("/api/v1/models", headers={"host": "other.example"}).status_code == 400
    with make_client(tmp_path, allowed_hosts=["*"]) as c:
        assert c.get("/api/v1/models", headers={"host": "any.example"}).status_code == 200


def test_an_explicit_bind_address_is_served_a_wildcard_one_is_not(tmp_path):
    with make_client(tmp_path, host="192.168.1.7") as c:
        assert c.get("/api/v1/models", headers={"host": "192.168.1.7:8000"}).status_code == 200
    with make_client(tmp_path, host="0.0.0.0") as c:  # the Dockerfile's
        assert c.get("/api/v1/models", headers={"host": "0.0.0.0:8000"}).status_code == 400
        assert c.get("/api/v1/models", headers={"host": "127.0.0.1:8000"}).status_code == 200


def test_the_defaults_do_not_answer_the_test_clients_host(tmp_path):
    """testserver is allowed by the tests' make_client, not by a server's defaults."""
    with make_client(tmp_path, allowed_hosts=[]) as c:
        r = c.get("/api/v1/models")
        assert r.status_code == 400 and "testserver" in r.json()["detail"]
    assert Settings().allowed_hosts == []


def test_health_answers_a_probe_by_any_host(tmp_path):
    """A load balancer or orchestrator probes by the machine's address; health tells and
    does nothing, so it needs no allowed name (everything else still does)."""
    with make_client(tmp_path, allowed_hosts=[]) as c:
        assert c.get("/api/v1/health", headers={"host": "10.0.0.7:8000"}).status_code == 200
        assert c.get("/api/v1/models", headers={"host": "10.0.0.7:8000"}).status_code == 400
        assert c.post("/api/v1/health", headers={"host": "10.0.0.7:8000"}).status_code == 400


def test_settings_refuse_what_is_not_a_host_or_a_safe_token():
    with pytest.raises(ValueError, match="not a host"):
        Settings(allowed_hosts=["http://example.org"])
    with pytest.raises(ValueError, match="only letters"):
        Settings(token="has space")
    assert Settings(token="").token is None
    assert TOKEN not in repr(Settings(token=TOKEN))


# ── Origin ───────────────────────────────────────────────────────────────────────────
@pytest.mark.slow
def test_a_cross_origin_upload_is_refused(server):
    body, kind = multipart(model_file(seed=12))
    before = stored_ids(server)
    status, _, reply = send(server, "POST", "/api/v1/models", body,
                            {"Origin": "http://evil.example", "Content-Type": kind})
    assert status == 403, reply
    assert "http://evil.example" in json.loads(reply)["detail"]
    assert stored_ids(server) == before


@pytest.mark.slow
@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:3000",
                                    "https://127.0.0.1:{port}", "http://127.0.0.1:1"])
def test_other_origins_are_refused_on_every_path(server, origin):
    origin = origin.format(port=server.rsplit(":", 1)[1])
    for method, path in (("POST", "/api/v1/run"), ("GET", "/api/v1/models"), ("GET", "/")):
        status, _, _ = send(server, method, path, json.dumps(RUN).encode(),
                            {"Origin": origin, **JSON_TYPE})
        assert status == 403, (origin, method, path)


@pytest.mark.slow
def test_the_pages_own_requests_are_allowed(server):
    """What the page sends: its origin is the server's, as the Host names it."""
    port = server.rsplit(":", 1)[1]
    for seed, host in ((13, f"127.0.0.1:{port}"), (14, f"localhost:{port}")):
        own = {"Host": host, "Origin": f"http://{host}"}
        status, _, reply = send(server, "POST", "/api/v1/run?encoding=binary",
                                json.dumps(RUN).encode(), {**own, **JSON_TYPE})
        assert status == 200 and reply[:4] == b"GSB1"
        body, kind = multipart(model_file(seed))
        status, _, reply = send(server, "POST", "/api/v1/models", body,
                                {**own, "Content-Type": kind})
        assert status == 201, reply
    # the origin is the one the Host names: the same server under another name is not it
    status, _, _ = send(server, "GET", "/api/v1/models", headers={
        "Host": f"127.0.0.1:{port}", "Origin": f"http://localhost:{port}"})
    assert status == 403


@pytest.mark.slow
def test_cors_origins_may_still_call_it_cross_origin(token_server):
    url, _ = token_server
    headers = {"Origin": "http://a.test", "Authorization": f"Bearer {TOKEN}", **JSON_TYPE}
    status, got, _ = send(url, "POST", "/api/v1/run", json.dumps(RUN).encode(), headers)
    assert status == 200 and got["access-control-allow-origin"] == "http://a.test"
    # the preflight a page at a.test sends first (no token: browsers never send one there)
    status, got, _ = send(url, "OPTIONS", "/api/v1/run", headers={
        "Origin": "http://a.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert status == 200 and "authorization" in got["access-control-allow-headers"].lower()
    # a 401 reaches the allowed page readable: it carries the CORS headers too
    status, got, _ = send(url, "POST", "/api/v1/run", json.dumps(RUN).encode(),
                          {"Origin": "http://a.test", **JSON_TYPE})
    assert status == 401 and got["access-control-allow-origin"] == "http://a.test"
    status, _, _ = send(url, "POST", "/api/v1/run", json.dumps(RUN).encode(),
                        {**headers, "Origin": "http://evil.example"})
    assert status == 403


def test_origin_rules_through_the_test_client(tmp_path):
    with make_client(tmp_path, cors_origins=["HTTP://A.test:80"]) as c:
        assert c.post("/api/v1/run", json=RUN,
                      headers={"origin": "http://testserver"}).status_code == 200
        assert c.post("/api/v1/run", json=RUN,  # one spelling: case, the default port
                      headers={"origin": "http://a.test"}).status_code == 200
        assert c.post("/api/v1/run", json=RUN,
                      headers={"origin": "http://b.test"}).status_code == 403
        assert c.post("/api/v1/run", json=RUN).status_code == 200  # no Origin: not a page
    with make_client(tmp_path, cors_origins=["*"]) as c:
        assert c.post("/api/v1/run", json=RUN,
                      headers={"origin": "http://b.test"}).status_code == 200


# ── content types ────────────────────────────────────────────────────────────────────
@pytest.mark.slow
@pytest.mark.parametrize("kind", [None, "text/plain", "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x", "application/jsonx"])
def test_run_bodies_must_declare_json(server, kind):
    for path in ("/api/v1/run", "/api/v1/jacobian"):
        body = json.dumps({**RUN, "step": 0}).encode()
        status, _, reply = send(server, "POST", path, body,
                                {"Content-Type": kind} if kind else {})
        assert status == 415, (path, kind, reply)
        assert "application/json" in json.loads(reply)["detail"]


def test_json_with_a_charset_is_json(client):
    for kind in ("application/json; charset=utf-8", "Application/JSON;charset=UTF-8"):
        r = client.post("/api/v1/run", content=json.dumps(RUN), headers={"content-type": kind})
        assert r.status_code == 200, kind


def test_uploads_must_be_multipart(client):
    data = model_file(seed=15)
    for kind in ("application/octet-stream", "text/plain", "application/json"):
        r = client.post("/api/v1/models", content=data, headers={"content-type": kind})
        assert r.status_code == 415 and "multipart/form-data" in r.json()["detail"], kind
    r = client.post("/api/v1/models", content=data)
    assert r.status_code == 415
    assert upload(client, data).status_code == 201


def test_the_openapi_document_declares_the_415(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/run", "/api/v1/jacobian", "/api/v1/models"):
        assert "415" in paths[path]["post"]["responses"], path


# ── methods ──────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/api/v1/run", "POST"), ("PUT", "/api/v1/run", "POST"),
    ("GET", "/api/v1/jacobian", "POST"), ("POST", "/api/v1/health", "GET"),
    ("HEAD", "/api/v1/health", "GET"), ("DELETE", "/api/v1/models", "GET, POST"),
    ("PATCH", "/api/v1/models/abc", "GET"), ("OPTIONS", "/api/v1/run", "POST"),
])
def test_a_wrong_method_is_405_with_the_true_allow(client, method, path, allow):
    r = client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    if method != "HEAD":
        assert allow in r.json()["detail"]


def test_unknown_api_paths_stay_404_json(client):
    for path in ("/api/v1/nothing", "/api/v1/", "/api/v1", "/api/v1/models/a/b",
                 "/api/v1/run/x"):
        r = client.get(path)
        assert r.status_code == 404 and r.json() == {"detail": "Not Found"}, path


@pytest.mark.slow
def test_405_with_allow_from_a_real_server(server):
    status, got, _ = send(server, "GET", "/api/v1/run")
    assert (status, got["allow"]) == (405, "POST")


# ── the token ────────────────────────────────────────────────────────────────────────
@pytest.mark.slow
def test_with_a_token_the_api_needs_it(token_server):
    url, _ = token_server
    run = json.dumps(RUN).encode()
    status, got, reply = send(url, "POST", "/api/v1/run", run, JSON_TYPE)
    assert status == 401 and "GATESCOPE_TOKEN" in json.loads(reply)["detail"]
    assert got["www-authenticate"].startswith("Bearer")
    for scheme in ("Bearer", "token", "bearer"):
        status, _, _ = send(url, "POST", "/api/v1/run", run,
                            {"Authorization": f"{scheme} {TOKEN}", **JSON_TYPE})
        assert status == 200, scheme
    for wrong in (f"Bearer {TOKEN}x", "Bearer", f"Basic {TOKEN}", TOKEN):
        status, _, _ = send(url, "POST", "/api/v1/run", run,
                            {"Authorization": wrong, **JSON_TYPE})
        assert status == 401, wrong
    assert send(url, "GET", "/api/v1/models")[0] == 401
    assert send(url, "GET", "/api/v1/run")[0] == 401  # nothing about routes before the token
    assert send(url, "GET", "/api/v1/health")[0] == 200  # healthchecks need no token
    assert send(url, "GET", "/")[0] == 200  # the page itself; its API calls need the token


@pytest.mark.slow
def test_opening_the_page_with_the_token_sets_a_cookie_and_drops_it_from_the_url(
        token_server):
    url, log = token_server
    status, got, _ = send(url, "GET", f"/?cell=gru&token={TOKEN}&layers=2")
    assert status == 303
    assert got["location"] == "/?cell=gru&layers=2"
    cookie = got["set-cookie"]
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {p.strip() for p in cookie.split(";")}
    pair = cookie.split(";")[0]
    assert pair == f"gatescope-token-{url.rsplit(':', 1)[1]}={TOKEN}"
    assert send(url, "GET", "/api/v1/models", headers={"Cookie": pair})[0] == 200
    assert send(url, "GET", "/api/v1/models", headers={"Cookie": pair + "x"})[0] == 401
    assert send(url, "GET", "/api/v1/models", headers={  # another port's cookie
        "Cookie": f"gatescope-token-1={TOKEN}"})[0] == 401
    status, _, _ = send(url, "GET", "/docs?token=wrong")
    assert status == 401
    status, got, _ = send(url, "GET", f"//evil.example/?token={TOKEN}")
    assert got.get("location", "").startswith("/evil.example"), got  # never //host
    assert TOKEN not in log.read_text(errors="replace")  # the access log shows it redacted
    assert "token=[redacted]" in log.read_text(errors="replace")


def test_the_token_flow_through_the_test_client(tmp_path):
    with make_client(tmp_path, token=TOKEN) as c:
        assert c.post("/api/v1/run", json=RUN).status_code == 401
        auth = {"authorization": f"Bearer {TOKEN}"}
        assert c.post("/api/v1/run", json=RUN, headers=auth).status_code == 200
        r = c.get(f"/?token={TOKEN}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert c.post("/api/v1/run", json=RUN).status_code == 200  # the client kept the cookie
        assert c.get("/docs").status_code == 200


def test_the_access_log_filter_redacts_tokens():
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/?cell=gru&token={TOKEN}&x=1", "1.1",
                                303), None)
    assert _RedactToken().filter(record)
    assert TOKEN not in record.getMessage()
    assert "/?cell=gru&token=[redacted]&x=1" in record.getMessage()


# ── Accept-Encoding ──────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(("header", "gzip"), [
    ("gzip", True), ("GZIP", True), ("gzip, deflate", True), ("deflate, gzip;q=0.5", True),
    ("x-gzip", True), ("*", True), ("br;q=1, *;q=0.1", True), ("gzip;q=1.0", True),
    ("gzip ; q=0.001", True),
    ("gzip;q=0", False), ("gzip;q=0.0", False), ("gzip;Q=0.000", False), ("", False),
    ("identity", False), ("*;q=0", False), ("gzip;q=0, *", False), ("deflate", False),
    ("br, identity;q=1", False), ("gzip;q=2", False), ("gzip;q=abc", False),
    ("notgzip", False), ("gzipped", False), ("*;q=0, gzip;q=0.2", True),
])
def test_accept_encoding_q_values(header, gzip):
    assert accepts_gzip(header) is gzip


def test_gzip_q_0_gets_no_gzip(client):
    for header, gzipped in (("gzip;q=0", False), ("identity", False), ("*;q=0", False),
                            ("GZip, deflate", True), ("*", True)):
        r = client.post("/api/v1/run", json=BIG_RUN, headers={"accept-encoding": header})
        assert r.status_code == 200
        assert (r.headers.get("content-encoding") == "gzip") is gzipped, header


@pytest.mark.slow
def test_gzip_q_0_against_a_real_server(server):
    body = json.dumps(BIG_RUN).encode()
    status, got, _ = send(server, "POST", "/api/v1/run", body,
                          {"Accept-Encoding": "gzip;q=0, deflate", **JSON_TYPE})
    assert status == 200 and "content-encoding" not in got
    status, got, _ = send(server, "POST", "/api/v1/run", body,
                          {"Accept-Encoding": "deflate, GZIP;q=0.5", **JSON_TYPE})
    assert status == 200 and got["content-encoding"] == "gzip"


# ── duplicate keys ───────────────────────────────────────────────────────────────────
DUPLICATES = {
    "top level": (b'{"hidden_size": 2, "input": {"text": "ab"}, "hidden_size": 1024}',
                  ["hidden_size"]),
    "nested": (b'{"input": {"text": "ab", "text": "abc"}}', ["input", "text"]),
    "in a list": (b'{"input": {"text": "ab"}, "interventions": [{"target": "h", "value": 1},'
                  b' {"target": "h", "value": 2, "value": 3}]}', ["interventions", 1, "value"]),
    "escaped": (b'{"input": {"text": "ab"}, "dtype": "float64", "\\u0064type": "float32"}',
                ["dtype"]),
    "and a schema error": (b'{"input": {"text": "ab"}, "hidden_size": 1, "hidden_size": 5000}',
                           ["hidden_size"]),
    "a tensor twice": (b'{"cell": "rnn_tanh", "input": {"values": [1.0]}, "weights": '
                       b'{"tensors": {"weight_ih_l0": [[1.0]], "weight_hh_l0": [[0.5]], '
                       b'"bias_ih_l0": [0.0], "bias_hh_l0": [0.0], "weight_hh_l0": [[9.0]]}}}',
                       ["weights", "tensors", "weight_hh_l0"]),
}


@pytest.mark.parametrize("body, loc", DUPLICATES.values(), ids=DUPLICATES.keys())
@pytest.mark.parametrize("path", ["/api/v1/run", "/api/v1/jacobian"])
def test_a_key_given_twice_is_a_422_naming_it(client, path, body, loc):
    if path.endswith("jacobian"):
        body = body[:-1] + b', "step": 0}'
    r = client.post(path, content=body, headers=JSON_TYPE)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [{
        "loc": loc, "type": "duplicate_key",
        "msg": f"the key {json.dumps(loc[-1])} appears more than once in this object; JSON "
               "keys must be unique (a repeated key would silently keep only its last value)"}]


def test_the_same_key_in_different_objects_is_fine(client):
    body = {"hidden_size": 3, "input": {"text": "ab"},
            "interventions": [{"target": "h", "value": 1.0}, {"target": "h", "value": 2.0}],
            "loss": {"type": "hidden_unit", "unit": 0, "step": 1}}
    text = json.dumps(body) + " " * 3  # and keys that look alike inside strings:
    r = client.post("/api/v1/run", content=text, headers=JSON_TYPE)
    assert r.status_code == 200, r.text
    tricky = b'{"input": {"text": "a\\"b\\": {\\"hidden_size\\":"}, "hidden_size": 2}'
    assert client.post("/api/v1/run", content=tricky, headers=JSON_TYPE).status_code == 200


@pytest.mark.parametrize("body", [
    b'{"a": {"b": "{"}, "b": 1}', b'{"a": {"b": "}"}, "a2": {"b": 1}}',
    rb'{"a": "\\", "b": "x\"a\": 1"}', b'[{"a": 1}, {"a": 2}]', b'{"a": [{"a": {"a": 1}}]}',
    rb'{"a\u0062": 1, "ab ": 2}'])
def test_the_scan_sees_keys_only_where_json_has_them(body):
    json.loads(body)  # each is JSON without a repeated key
    unique_keys(body)


@pytest.mark.slow
def test_duplicate_keys_against_a_real_server(server):
    body, loc = DUPLICATES["in a list"]
    status, _, reply = send(server, "POST", "/api/v1/run", body, JSON_TYPE)
    assert status == 422 and json.loads(reply)["detail"][0]["loc"] == loc


def test_the_scan_costs_little_next_to_the_parse():
    """A 32 MiB-class body of numbers: the duplicate scan is a small part of the parse."""
    import time

    import numpy as np

    from gatescope.contract.schemas import RunRequest
    rows = json.dumps(np.random.default_rng(0).normal(size=(2048, 400)).tolist()).encode()
    body = b'{"input": {"values": ' + rows + b'}, "hidden_size": 4}'

    def best(f) -> float:
        return min(_timed(f) for _ in range(3))

    def _timed(f) -> float:
        t0 = time.perf_counter()
        f()
        return time.perf_counter() - t0

    scan = best(lambda: unique_keys(body))
    parse = best(lambda: RunRequest.model_validate_json(body))
    # ~50× less here (4 ms against 230 ms for 30 MiB); the bound is loose, as emulated or
    # busy machines move the ratio, and still fails if the scan went quadratic
    assert scan < parse, (scan, parse)
