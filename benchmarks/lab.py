"""The gradient-flow lab's extra costs, measured in one run (no torch needed).

(a) flow — the four paths' share of ∂L/∂c_t, always in an LSTM result — on the T = 1024,
    H = 256 float32 LSTM run: its time against the whole run's. Target: under 10 %.
(b) connectivity at T = 256, H = 128 (an LSTM on text): the run with "connectivity": true
    minus the run without. Target: under 2 s.

    python benchmarks/lab.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import gatescope
from gatescope.core import engine, jacobians
from gatescope.runner.prepare import prepare


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    x = np.random.default_rng(0).normal(size=(1024, 64)).round(4).tolist()
    req = gatescope.RunRequest.model_validate(
        {"cell": "lstm", "hidden_size": 256, "input": {"values": x}, "dtype": "float32"})
    p = prepare(req)
    traces = engine.forward(p.cell, p.params, p.X, p.h0, p.c0)
    dH = np.zeros_like(traces[0].h[1:])
    dH[-1] = 1.0
    grads = engine.backward(p.cell, p.params, p.X, traces, dH)
    W_hh = p.params["weight_hh_l0"]
    run_ms = median_ms(lambda: gatescope.run(req), args.rounds)
    flow_ms = median_ms(lambda: jacobians.flow(p.cell, traces[0], W_hh, grads.layers[0].c),
                        args.rounds)

    text = "".join(np.random.default_rng(1).choice(list("abcdefghij klmnop"), 256))
    base = {"cell": "lstm", "hidden_size": 128, "input": {"text": text}}
    plain_ms = median_ms(lambda: gatescope.run(base), args.rounds)
    conn_ms = median_ms(lambda: gatescope.run({**base, "connectivity": True}), args.rounds)

    print(f"median of {args.rounds}")
    print()
    print("| what | median (ms) | ratio | target |")
    print("| --- | ---: | ---: | --- |")
    print(f"| LSTM T=1024 H=256 float32 run, every field | {run_ms:.1f} | | |")
    print(f"| … of which flow (4 paths, every step) | {flow_ms:.1f} | "
          f"**{100 * flow_ms / run_ms:.1f} %** of the run | < 10 % |")
    print(f"| LSTM T=256 H=128 float64 run | {plain_ms:.1f} | | |")
    print(f"| … with connectivity (256×256) | {conn_ms:.1f} | "
          f"connectivity adds **{(conn_ms - plain_ms) / 1e3:.2f} s** | < 2 s |")


if __name__ == "__main__":
    main()
