"""This checkout's gatescope.run against an earlier commit's, each in its own process.

    python benchmarks/versus.py HEAD~3 [--rounds 7] [--steps 1024] [--cell lstm]

The earlier commit is checked out into a temporary git worktree; one long-lived Python
process imports gatescope from there, another from this checkout (PYTHONPATH first, so
neither sees the other's code). Rounds alternate between them, a block of timed calls each,
so the machine's drift hits both alike. The request is the engine benchmark's: T steps,
D = 64 inputs, H = 256 units, one sequence, float32 and float64, every field computed.
Prints each one's median and the ratio (this / earlier: below 1 is faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import numpy as np
import gatescope
T, cell = int(sys.argv[1]), sys.argv[2]
x = np.random.default_rng(0).normal(size=(T, 64)).round(6).tolist()
reqs = {dt: gatescope.RunRequest.model_validate(
            {"cell": cell, "hidden_size": 256, "input": {"values": x}, "dtype": dt,
             "weights": {"seed": 0}}) for dt in ("float32", "float64")}
print(json.dumps({"file": gatescope.__file__}), flush=True)
for line in sys.stdin:
    calls = int(line)
    out = {}
    for dt, req in reqs.items():
        gatescope.run(req)  # untimed: warms this path
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            gatescope.run(req)
            times.append(time.perf_counter() - t0)
        out[dt] = times
    print(json.dumps(out), flush=True)
"""


class Contender:
    """A process running gatescope from `backend`, timing a block of calls on request."""

    def __init__(self, backend: Path, steps: int, cell: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(steps), cell], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, cwd=tempfile.gettempdir(),
            env={"PYTHONPATH": str(backend), "PATH": "/usr/bin:/bin",
                 "OPENBLAS_THREAD_TIMEOUT": "4"})
        assert self.proc.stdin and self.proc.stdout
        self.file = json.loads(self.proc.stdout.readline())["file"]
        if not self.file.startswith(str(backend)):
            raise RuntimeError(f"{backend}: gatescope came from {self.file}")
        self.times: dict[str, list[float]] = {}

    def block(self, calls: int) -> None:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{calls}\n")
        self.proc.stdin.flush()
        for dtype, times in json.loads(self.proc.stdout.readline()).items():
            self.times.setdefault(dtype, []).extend(times)

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", help="the earlier commit (any git revision)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=3, help="timed calls per block")
    parser.add_argument("--steps", type=int, default=1024)
    parser.add_argument("--cell", default="lstm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "earlier"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree),
                        args.ref], check=True, capture_output=True)
        try:
            sha = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                                 check=True, capture_output=True, text=True).stdout.strip()
            earlier = Contender(tree / "backend", args.steps, args.cell)
            this = Contender(ROOT / "backend", args.steps, args.cell)
            for _ in range(args.rounds):
                earlier.block(args.calls)
                this.block(args.calls)
            earlier.close()
            this.close()
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(tree)], check=False, capture_output=True)
    print(f"gatescope.run, {args.cell.upper()} T={args.steps} D=64 H=256, one sequence; "
          f"median of {args.rounds * args.calls} calls each, in {args.rounds} alternating "
          f"rounds, each contender in its own process")
    print()
    print(f"| dtype | {args.ref} ({sha}) ms | this checkout ms | this / earlier |")
    print("| --- | ---: | ---: | ---: |")
    for dtype in earlier.times:
        a, b = statistics.median(earlier.times[dtype]), statistics.median(this.times[dtype])
        print(f"| {dtype} | {a * 1e3:.1f} | {b * 1e3:.1f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
