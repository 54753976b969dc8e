"""End-to-end time over HTTP on loopback against gatescope.run in-process, in one run.

The request: LSTM, T = 1024, H = 256, D = 64 numbers per step, float32. Over HTTP a real
`gatescope serve` process answers; the client's time includes sending the request,
receiving the body and decoding it into NumPy arrays (json: orjson.loads then arrays;
typed: base64 → np.frombuffer; binary: np.frombuffer in place). In-process:
gatescope.run, which returns NumPy arrays. Target: HTTP with the compact (binary)
encoding at most 1.5× in-process. Then the parts of a run: forward-only (`backward: false`)
against the full run (target ≤ 0.5×), and `?fields=h,gates` JSON against the full JSON
(bytes and time); a batch of 32 sequences of 100 steps at H = 128 against the 32 single
requests (target: at least 4× faster).

    python benchmarks/api.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import orjson

import gatescope

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository
from tests.helpers.server import running_server

from timing import percentile

T, D, H = 1024, 64, 256


def request_body() -> dict:
    x = np.random.default_rng(0).normal(size=(T, D)).round(4).tolist()
    return {"cell": "lstm", "hidden_size": H, "input": {"values": x}, "dtype": "float32"}


def decode(obj: Any, data: memoryview | None = None) -> Any:
    """Typed or binary arrays → NumPy; lists of numbers → NumPy; the rest as it is."""
    if isinstance(obj, dict):
        if obj.keys() == {"dtype", "shape", "offset", "nbytes"}:
            dtype = np.dtype(f"<{obj['dtype']}")
            shape = tuple(int(n) for n in obj["shape"].split(","))
            return np.frombuffer(data, dtype, obj["nbytes"] // dtype.itemsize,
                                 obj["offset"]).reshape(shape)
        if obj.keys() == {"dtype", "bdata", "shape"}:
            shape = tuple(int(n) for n in obj["shape"].split(","))
            return np.frombuffer(base64.b64decode(obj["bdata"]), f"<{obj['dtype']}").reshape(
                shape)
        return {k: decode(v, data) for k, v in obj.items()}
    if isinstance(obj, list) and obj and isinstance(obj[0], list | float | int):
        return np.asarray(obj, dtype=float)
    if isinstance(obj, list):
        return [decode(v, data) for v in obj]
    return obj


def over_http(url: str, body: bytes, encoding: str, gzip_ok: bool, query: str = ""
              ) -> tuple[int, int, dict[str, float]]:
    """One request; returns (bytes on the wire, bytes decoded, the server's Server-Timing
    in ms). `query`: more of the query string ("&fields=h,gates")."""
    headers = {"content-type": "application/json",
               "accept-encoding": "gzip" if gzip_ok else "identity"}
    req = urllib.request.Request(f"{url}/api/v1/run?encoding={encoding}{query}", body,
                                 headers)
    with urllib.request.urlopen(req, timeout=300) as r:
        wire = r.read()
        raw = gzip.decompress(wire) if r.headers.get("content-encoding") == "gzip" else wire
        timing = {name: float(dur.removeprefix("dur=")) for name, dur in
                  (part.strip().split(";") for part in r.headers["server-timing"].split(","))}
    if encoding == "binary":
        n = int.from_bytes(raw[4:8], "little")
        result = decode(orjson.loads(raw[8:8 + n]), memoryview(raw)[8 + n:])
    else:
        result = decode(orjson.loads(raw))
    assert result["steps"] == T
    return len(wire), len(raw), timing


def post(url: str, body: bytes) -> int:
    """One binary /run; the bytes received (not decoded: both contenders alike)."""
    req = urllib.request.Request(f"{url}/api/v1/run?encoding=binary", body,
                                 {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return len(r.read())


def health_while_busy(url: str, rounds: int) -> list[float]:
    """Seconds per GET /health while a 4096-step LSTM run (H = 256, binary: its JSON is over
    the default response budget) computes in a worker: what a client waits for an answer
    the event loop gives at once if it is not blocked."""
    heavy = json.dumps({"cell": "lstm", "hidden_size": 256,
                        "input": {"text": "abcdefgh" * 512}}).encode()
    latencies = []
    for _ in range(rounds):
        done = threading.Event()

        def busy(done: threading.Event) -> None:
            req = urllib.request.Request(f"{url}/api/v1/run?encoding=binary", heavy,
                                         {"content-type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=300) as r:
                    r.read()
            finally:  # a failed run must not leave the loop below asking for ever
                done.set()

        worker = threading.Thread(target=busy, args=(done,))
        worker.start()
        time.sleep(0.3)  # the run is under way
        while not done.is_set():
            t0 = time.perf_counter()
            with urllib.request.urlopen(f"{url}/api/v1/health", timeout=30) as r:
                r.read()
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.02)
        worker.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    req = request_body()
    body = json.dumps(req).encode()
    parsed = gatescope.RunRequest.model_validate(req)
    forward = gatescope.RunRequest.model_validate({**req, "backward": False})
    rng = np.random.default_rng(1)
    sequences = [{"values": rng.normal(size=(100, 16)).round(4).tolist()} for _ in range(32)]
    small = {"cell": "lstm", "hidden_size": 128, "dtype": "float32"}
    batch_body = json.dumps({**small, "input": {"batch": sequences}}).encode()
    single_bodies = [json.dumps({**small, "input": seq}).encode() for seq in sequences]
    forward_body = json.dumps({**req, "backward": False}).encode()
    with running_server(tempfile.mkdtemp(prefix="gatescope-api-")) as url:
        contenders = {
            "in-process gatescope.run": lambda: gatescope.run(parsed),
            "HTTP, binary": lambda: over_http(url, body, "binary", False),
            "HTTP, typed": lambda: over_http(url, body, "typed", False),
            "HTTP, JSON": lambda: over_http(url, body, "json", False),
            "HTTP, JSON + gzip": lambda: over_http(url, body, "json", True),
            # the parts of a run
            "in-process, backward: false": lambda: gatescope.run(forward),
            "HTTP, binary, backward: false": lambda: over_http(url, forward_body, "binary",
                                                               False),
            "HTTP, JSON, fields=h,gates": lambda: over_http(url, body, "json", False,
                                                            "&fields=h,gates"),
            # a batch against its sequences one by one
            "HTTP, binary, a batch of 32": lambda: post(url, batch_body),
            "HTTP, binary, 32 single requests": lambda: [post(url, b) for b in single_bodies],
        }
        sizes, server = {}, {}
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.rounds):  # blocks alternate, so the VM's drift hits all alike
            for name, fn in contenders.items():
                fn()  # untimed: warms this path
                for _ in range(2):
                    t0 = time.perf_counter()
                    out = fn()
                    times[name].append(time.perf_counter() - t0)
                    if isinstance(out, tuple):
                        sizes[name] = out[:2]
                        for part, ms in out[2].items():
                            server.setdefault(name, {}).setdefault(part, []).append(ms)
        health = sorted(health_while_busy(url, args.rounds))
    base = statistics.median(times["in-process gatescope.run"])
    print(f"LSTM T={T} D={D} H={H} float32, request body {len(body) / 2**20:.2f} MiB; "
          f"median of {2 * args.rounds} calls each")
    print()
    print("| path | median (ms) | / in-process | body on the wire | decoded |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, ts in times.items():
        if "backward" in name or "fields" in name or "batch" in name or "single" in name:
            continue  # the parts' own table, below
        med = statistics.median(ts)
        wire, raw = sizes.get(name, (0, 0))
        print(f"| {name} | {med * 1e3:.0f} | {med / base:.2f}× | "
              f"{wire / 2**20:.1f} MiB | {raw / 2**20:.1f} MiB |" if name in sizes else
              f"| {name} | {med * 1e3:.0f} | 1.00× | — | — |")
    binary = {part: statistics.median(ms) for part, ms in server["HTTP, binary"].items()}
    client = statistics.median(times["HTTP, binary"]) * 1e3
    print()
    print("Where the binary request's time goes (medians, ms; Server-Timing header):")
    print()
    print("| parse | run | encode | server total (to the first byte) | client total | "
          "sockets, HTTP, pool, streaming, decode |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {binary['parse']:.1f} | {binary['run']:.1f} | {binary['encode']:.1f} | "
          f"{binary['total']:.1f} | {client:.1f} | {client - binary['total']:.1f} |")
    med = {name: statistics.median(ts) for name, ts in times.items()}
    print()
    print("The parts of a run (medians; the ratio against the same path's full run):")
    print()
    print("| request | median (ms) | / full run | body |")
    print("| --- | ---: | ---: | ---: |")
    for name, full in (("in-process, backward: false", "in-process gatescope.run"),
                       ("HTTP, binary, backward: false", "HTTP, binary"),
                       ("HTTP, JSON, fields=h,gates", "HTTP, JSON")):
        wire = f"{sizes[name][0] / 2**20:.1f} MiB (full {sizes[full][0] / 2**20:.1f})" \
            if name in sizes else "—"
        print(f"| {name} | {med[name] * 1e3:.0f} | {med[name] / med[full]:.2f}× | {wire} |")
    batch, singles = med["HTTP, binary, a batch of 32"], med["HTTP, binary, 32 single requests"]
    print()
    print(f"A batch of 32 LSTM sequences (T = 100, D = 16, H = 128, float32, binary): "
          f"{batch * 1e3:.0f} ms, against 32 single requests one after another "
          f"{singles * 1e3:.0f} ms: {singles / batch:.1f}× faster (target ≥ 4×)")
    p99 = percentile(health, 0.99)
    print()
    print(f"GET /health while a 4096-step run computes ({len(health)} requests over "
          f"{args.rounds} runs): median {statistics.median(health) * 1e3:.1f} ms, "
          f"p99 {p99 * 1e3:.1f} ms, max {health[-1] * 1e3:.1f} ms (target: p99 < 100 ms)")


if __name__ == "__main__":
    main()
