"""A real `gatescope serve` under load: throughput and latency by number of clients, /health
while maximal requests run, and the peak resident memory of all the server's processes.

    python benchmarks/load.py [--seconds 10] [--processes 2]

- Clients 1, 4, 16, 64, each on its own keep-alive connection, sending one medium request
  after another (an LSTM, T = 256, H = 128, binary) for `--seconds`: answers per second,
  p50/p99 latency of the 200s, and how many were refused 503 (Retry-After) because the
  queue was full — the server's way to stay fast for those it admits.
- /health every 20 ms while four maximal requests (the largest LSTM the default budgets
  take: T = 4096, H = 256, binary, float64) are sent at once: p50/p99/max.
- All along, every 50 ms, the resident memory of the server and its compute processes
  (VmRSS; a shared-memory reply block counts in each process that maps it), summed: the
  peak, against what the settings bound it by.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository
from tests.helpers.server import running_server_process, workers

from timing import percentile

MEDIUM = json.dumps({"cell": "lstm", "hidden_size": 128,
                     "input": {"text": "abcdefgh" * 32}}).encode()
MAXIMAL = json.dumps({"cell": "lstm", "hidden_size": 256,
                      "input": {"text": "abcdefgh" * 512}}).encode()


def rss(pid: int) -> int:
    """Bytes resident in a process (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Memory(threading.Thread):
    """Samples the summed VmRSS of the server and its workers until stopped."""

    def __init__(self, server_pid: int, server: object) -> None:
        super().__init__(daemon=True)
        self.server_pid, self.server = server_pid, server
        self.peak, self.stop = 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            total = rss(self.server_pid) + sum(rss(p) for p in workers(self.server))
            self.peak = max(self.peak, total)
            time.sleep(0.05)


def client(host: str, port: int, body: bytes, until: float, out: list) -> None:
    """One keep-alive connection sending `body` until `until`: (status, seconds) each."""
    conn = http.client.HTTPConnection(host, port, timeout=120)
    while time.monotonic() < until:
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/run?encoding=binary", body,
                     {"content-type": "application/json"})
        r = conn.getresponse()
        r.read()
        out.append((r.status, time.perf_counter() - t0))
        if r.status == 503:
            time.sleep(min(1.0, float(r.headers.get("retry-after", "1"))))
    conn.close()


def once(host: str, port: int, body: bytes) -> None:
    """One request, its answer read."""
    conn = http.client.HTTPConnection(host, port, timeout=300)
    conn.request("POST", "/api/v1/run?encoding=binary", body,
                 {"content-type": "application/json"})
    conn.getresponse().read()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    with running_server_process(tempfile.mkdtemp(prefix="gatescope-load-"),
                                compute_processes=args.processes) as (url, server):
        host, port = url.removeprefix("http://").split(":")
        memory = Memory(server.pid, server)
        memory.start()
        print(f"gatescope serve with {args.processes} compute processes and the default "
              f"queue (8); each row {args.seconds:g} s")
        print()
        print("| clients | answers/s | p50 (ms) | p99 (ms) | refused 503 |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for n in (1, 4, 16, 64):
            out: list[tuple[int, float]] = []
            until = time.monotonic() + args.seconds
            threads = [threading.Thread(target=client, args=(host, int(port), MEDIUM, until,
                                                             out)) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ok = [s for status, s in out if status == 200]
            refused = sum(status == 503 for status, _ in out)
            print(f"| {n} | {len(ok) / args.seconds:.1f} | {percentile(ok, 0.5) * 1e3:.0f} | "
                  f"{percentile(ok, 0.99) * 1e3:.0f} | {refused} |", flush=True)
        # /health while four maximal requests run (two computing, two queued)
        heavy = [threading.Thread(target=once, args=(host, int(port), MAXIMAL))
                 for _ in range(4)]
        for t in heavy:
            t.start()
        latencies = []
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while any(t.is_alive() for t in heavy):
            t0 = time.perf_counter()
            conn.request("GET", "/api/v1/health")
            conn.getresponse().read()
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.02)
        memory.stop.set()
        memory.join()
    print()
    print(f"/health while four maximal requests run ({len(latencies)} requests): median "
          f"{statistics.median(latencies) * 1e3:.1f} ms, p99 "
          f"{percentile(latencies, 0.99) * 1e3:.1f} ms, max {max(latencies) * 1e3:.1f} ms "
          "(target: p99 < 100 ms)")
    print(f"peak resident memory of the server and its workers, summed: "
          f"{memory.peak / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
