"""Against a real `gatescope serve` on loopback, as an attacker would try it: requests of a few
bytes that would cost gigabytes are refused in milliseconds; slow clients (headers a byte at
a time, a body that never ends, a response never read) are cut off and the server keeps
answering; the queue is bounded (503 with Retry-After); dropped requests do not delay the
next; one worker's death fails only its own request; SIGTERM stops promptly; a client that
goes leaves no traceback in the log."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatescope.api.connections import too_slow
from tests.helpers.server import running_server_process, workers

pytestmark = pytest.mark.slow

# ~1.2 s of work here, in 4 layers (the run's checkpoints are between them)
LONG = {"cell": "lstm", "hidden_size": 256, "num_layers": 4, "dtype": "float32",
        "input": {"values": [0.1] * 2048}}
TINY = {"input": {"text": "ab"}, "hidden_size": 2}
SETTINGS = {"compute_processes": 2, "max_queue": 6, "header_timeout": 1, "body_timeout": 1,
            "write_timeout": 2, "max_connections": 40}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, int, Path, object]]:
    """(host, port, the server's log, its process)."""
    log = tmp_path_factory.mktemp("hardening") / "server.log"
    with running_server_process(tmp_path_factory.mktemp("data"), log, **SETTINGS) as (url, p):
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port), log, p


def post(host: str, port: int, body: dict | bytes, path: str = "/api/v1/run?encoding=binary",
         timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, data, {"content-type": "application/json"})
    r = conn.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    conn.close()
    return out


def health(host: str, port: int, timeout: float = 10) -> float:
    """Seconds /api/v1/health took to answer 200."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("GET", "/api/v1/health")
    assert conn.getresponse().status == 200
    conn.close()
    return time.perf_counter() - t0


def send_and_drop(host: str, port: int, body: dict) -> None:
    """Send a whole request and close the socket without waiting for the answer."""
    data = json.dumps(body).encode()
    with socket.create_connection((host, port)) as s:
        s.sendall(b"POST /api/v1/run?encoding=binary HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                  % (len(data), data))


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """When the server closed `sock` (seconds from now), reading whatever it sends; None if
    it is still open after `seconds`."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - t0 < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - t0
        except TimeoutError:
            continue
        except OSError:  # reset: closed too
            return time.monotonic() - t0
    return None


def test_cheap_requests_that_would_cost_gigabytes_are_refused_in_milliseconds(served):
    host, port, _, _ = served
    for body in (b'{"hidden_size":1024,"num_layers":4,"input":{"text":"a"}}',  # 62 bytes
                 json.dumps({"hidden_size": 1024, "num_layers": 4,
                             "input": {"text": "ab" * 256}}).encode()):  # T=512: 1.44 GB
        t0 = time.perf_counter()
        status, _, reply = post(host, port, body)
        assert time.perf_counter() - t0 < 1.0  # milliseconds here; generous for busy CI
        assert status == 422
        detail = json.loads(reply)["detail"][0]
        assert detail["type"] == "over_budget" and "budget of" in detail["msg"]


def test_slowloris_is_closed_and_extra_connections_get_503_at_once(served):
    """60 connections sending their headers a byte at a time, over a cap of 40: those over
    it are answered 503 at once, the rest closed after the header timeout (1 s here), and
    /health answers again as soon as they are gone."""
    host, port, log, _ = served
    socks = []
    for _ in range(60):
        s = socket.create_connection((host, port))
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
        socks.append(s)
    try:
        over = []
        for s in socks:
            s.settimeout(0.05)
            try:
                over.append(s.recv(4096))
            except TimeoutError:
                over.append(None)
        refused = [r for r in over if r]
        assert len(refused) >= 15 and all(r.startswith(b"HTTP/1.1 503") for r in refused)
        closed = [closed_within(s, 4) for s, r in zip(socks, over, strict=True) if not r]
        assert closed and all(t is not None for t in closed), closed
        assert health(host, port) < 1.0
    finally:
        for s in socks:
            s.close()
    assert "no request headers within 1 s" in log.read_text()


def test_a_body_that_never_finishes_is_cut_off(served):
    host, port, log, _ = served
    with socket.create_connection((host, port)) as s:
        s.sendall(b"POST /api/v1/run HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: "
                  b"application/json\r\ncontent-length: 1000\r\n\r\n{\"input\": ")
        when = closed_within(s, 5)
    assert when is not None and when < 3, when
    assert "no body for 1 s" in log.read_text()
    assert health(host, port) < 1.0


BIG_BODY = json.dumps({"cell": "lstm", "hidden_size": 256, "dtype": "float32",
                       "input": {"values": [0.1] * 4096}}).encode()  # a 67 MB answer


def ask_big(host: str, port: int) -> socket.socket:
    """A socket that asked for BIG_BODY's answer, with a small receive buffer."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    s.sendall(b"POST /api/v1/run?encoding=binary HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
              % (len(BIG_BODY), BIG_BODY))
    return s


def logged(log: Path, words: str, seconds: float) -> bool:
    """Whether `words` appear in the log within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if words in log.read_text():
            return True
        time.sleep(0.1)
    return False


def test_a_client_that_never_reads_is_cut_off_and_frees_its_place(served):
    """A 67 MB binary body asked for and never read: the server gives up writing after
    write_timeout (2 s here), and all the places of the pool are free again."""
    host, port, log, _ = served
    s = ask_big(host, port)
    try:
        assert logged(log, "read nothing of the response for 2 s", 60)
        assert closed_within(s, 5) is not None
    finally:
        s.close()
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(post(host, port, TINY)[0]))
               for _ in range(SETTINGS["compute_processes"] + SETTINGS["max_queue"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == len(threads), statuses


def test_the_write_timeout_holds_after_the_keep_alive_close(tmp_path):
    """uvicorn closes an idle keep-alive connection after 5 s, and a close() waits for the
    client to read what is buffered: with a write timeout longer than that, the timer must
    still abort it."""
    log = tmp_path / "log"
    with running_server_process(tmp_path, log, compute_processes=1,
                                write_timeout=7) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        s = ask_big(host, int(port))
        try:
            assert logged(log, "read nothing of the response for 7 s", 60)
            assert closed_within(s, 5) is not None
        finally:
            s.close()


def test_a_slow_reader_is_cut_off(served):
    """Reading 16 KiB a second, far under MIN_SEND_RATE (256 KiB/s): cut off once it has
    had write_timeout (2 s here). Through the kernel's send buffer the server sees such a
    reader's progress in bursts many seconds apart, so either rule may be the one."""
    host, port, log, _ = served
    s = ask_big(host, port)
    cut = ("KiB/s, under 256 KiB/s", "read nothing of the response")
    before = sum(log.read_text().count(c) for c in cut)
    try:
        s.settimeout(1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sum(log.read_text().count(c) for c in cut) > before:
                break
            try:
                if s.recv(16384) == b"":
                    break
            except TimeoutError:
                pass
            time.sleep(1)
        assert sum(log.read_text().count(c) for c in cut) > before
        assert closed_within(s, 5) is not None
    finally:
        s.close()


def test_the_send_rules():
    assert too_slow(0.5, 1.0, 10, 2.0, 256 * 1024) is None  # not had its write_timeout yet
    assert too_slow(2.0, 5.0, 10**6, 2.0, 256 * 1024) == \
        "it read nothing of the response for 2 s"
    assert too_slow(0.5, 4.0, 4 * 16 * 1024, 2.0, 256 * 1024) == \
        "it read the response at 16 KiB/s, under 256 KiB/s"
    assert too_slow(0.5, 4.0, 4 * 300 * 1024, 2.0, 256 * 1024) is None  # fast enough


def test_an_early_answer_does_not_leave_the_connection_without_a_timer(served):
    """The server answers before reading the body (415: not JSON). Whether the client then
    sends its body or not, the connection is closed by a timer, not kept for ever."""
    host, port, _, _ = served
    for then_send_body in (False, True):
        with socket.create_connection((host, port)) as s:
            s.sendall(b"POST /api/v1/run HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: "
                      b"text/plain\r\ncontent-length: 20\r\n\r\n")
            s.settimeout(5)
            assert s.recv(4096).startswith(b"HTTP/1.1 415")
            if then_send_body:
                s.sendall(b"x" * 20)
            when = closed_within(s, 10)
        assert when is not None and when < 4, (then_send_body, when)


def test_dropped_requests_do_not_delay_the_next(served):
    """Six ~1.2 s requests sent and dropped at once used to keep the workers busy for their
    whole length (38 s for six maximal ones): now the queued are dropped and the running
    stop at their next checkpoint."""
    host, port, _, _ = served
    t0 = time.perf_counter()
    status, _, _ = post(host, port, LONG)
    alone = time.perf_counter() - t0
    assert status == 200
    for _ in range(6):
        send_and_drop(host, port, LONG)
    time.sleep(0.3)
    t0 = time.perf_counter()
    status, _, _ = post(host, port, TINY)
    assert status == 200
    assert time.perf_counter() - t0 < alone, (time.perf_counter() - t0, alone)


def test_a_killed_worker_fails_only_its_own_request(served):
    host, port, _, server = served
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(post(host, port, LONG)[0]))
               for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    pids = workers(server)
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)
    for t in threads:
        t.join()
    assert sorted(results) == [200, 503]
    assert sorted(post(host, port, TINY)[0] for _ in range(3)) == [200, 200, 200]
    assert len(workers(server)) == 2  # its slot has a new process


def test_a_full_queue_is_503_with_retry_after(tmp_path):
    with running_server_process(tmp_path, tmp_path / "log", compute_processes=1,
                                max_queue=0) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        busy = threading.Thread(target=post, args=(host, int(port), LONG))
        busy.start()
        time.sleep(0.4)
        status, headers, reply = post(host, int(port), TINY)
        busy.join()
        assert status == 503 and int(headers["retry-after"]) >= 1
        assert "busy" in json.loads(reply)["detail"]
        assert post(host, int(port), TINY)[0] == 200  # and served once it is free


def test_sigterm_stops_promptly_with_requests_in_flight(tmp_path):
    """Eight ~1.2 s requests in flight on one worker: the server used to wait for the whole
    queue; it exits within the shutdown timeout (1 s here) and the workers' grace."""
    with running_server_process(tmp_path, tmp_path / "log", compute_processes=1,
                                shutdown_timeout=1) as (url, server):
        host, port = url.removeprefix("http://").split(":")
        for _ in range(8):
            threading.Thread(target=lambda: _quietly(post, host, int(port), LONG),
                             daemon=True).start()
        time.sleep(0.5)
        t0 = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        assert time.monotonic() - t0 < 6


def test_a_client_that_goes_leaves_no_traceback(served):
    """Before or after its body was read, queued or running: no traceback, in this test or
    any test before it on this server (a body cut off, a response never read)."""
    host, port, log, _ = served
    before = 0
    for _ in range(3):
        send_and_drop(host, port, LONG)
    time.sleep(3)
    assert health(host, port) < 1.0
    assert log.read_text().count("Traceback") == before


def _quietly(fn, *args) -> None:
    # the server went, mid-answer too (IncompleteRead): that is the point
    with contextlib.suppress(OSError, http.client.HTTPException):
        fn(*args)
