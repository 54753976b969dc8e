"""Engine speed against PyTorch, measured in the same run (needs torch: `make bench`).

LSTM, T = 1024 steps, D = 64 inputs, H = 256 units, one sequence, float32:
  gatescope   gatescope.run: forward + full BPTT with every field (gates, pre-activations,
              ∂L/∂h_t, ∂L/∂c_t, gate gradients, norms, Jacobian terms, parameter gradients)
  fused       torch.nn.LSTM forward + backward (only the loss's parameter and input grads)
  cell loop   torch.nn.LSTMCell in a Python loop with retain_grad on every h_t and c_t —
              what people write today to see per-step values
Targets: gatescope ≤ 2.5× fused, ≥ 3× faster than the cell loop, cost(2T)/cost(T) ≤ 2.2.

    python benchmarks/engine.py [--rounds 3] [--steps 1024]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch

import gatescope
from timing import Timings

D, H = 64, 256


def gatescope_request(T: int, dtype: str) -> dict:
    x = np.random.default_rng(0).normal(size=(T, D)).round(6).tolist()
    return {"cell": "lstm", "hidden_size": H, "input": {"values": x}, "dtype": dtype,
            "weights": {"seed": 0}}


def torch_fused(T: int) -> Callable[[], None]:
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(D, H)
    x = torch.randn(T, 1, D, requires_grad=True)

    def step() -> None:
        lstm.zero_grad()
        out, _ = lstm(x)
        out[-1].sum().backward()

    return step


def torch_cell_loop(T: int) -> Callable[[], None]:
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(D, H)
    x = torch.randn(T, 1, D, requires_grad=True)

    def step() -> None:
        cell.zero_grad()
        h = torch.zeros(1, H)
        c = torch.zeros(1, H)
        hs, cs = [], []
        for t in range(T):
            h, c = cell(x[t], (h, c))
            h.retain_grad()
            c.retain_grad()
            hs.append(h)
            cs.append(c)
        hs[-1].sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=1024)
    args = parser.parse_args()
    T, n = args.steps, args.rounds

    # the request is parsed once; the timing covers validation, engine and result building
    req32 = gatescope.RunRequest.model_validate(gatescope_request(T, "float32"))
    req64 = gatescope.RunRequest.model_validate(gatescope_request(T, "float64"))
    req32_2T = gatescope.RunRequest.model_validate(gatescope_request(2 * T, "float32"))

    timings = Timings({
        "ours": lambda: gatescope.run(req32),
        "fused": torch_fused(T),
        "ours_2T": lambda: gatescope.run(req32_2T),
        "loop": torch_cell_loop(T),
        "ours64": lambda: gatescope.run(req64),
    }, n)
    ours, fused, loop, ours64, ours_2T = (timings.median(k) for k in
                                          ("ours", "fused", "loop", "ours64", "ours_2T"))

    print(f"LSTM T={T} D={D} H={H}, one sequence, median of {3 * n} calls in {n} rounds; "
          f"torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; numpy {np.__version__}; ratios of medians")
    print()
    print("| what | median (ms) | ratio |")
    print("| --- | ---: | --- |")
    print(f"| gatescope float32, every field | {ours * 1e3:.1f} | 1.00 |")
    print(f"| torch.nn.LSTM fused fwd+bwd float32 | {fused * 1e3:.1f} | "
          f"gatescope / fused = **{timings.ratio('ours', 'fused'):.2f}×** (target ≤ 2.5) |")
    print(f"| torch.nn.LSTMCell loop + retain_grad float32 | {loop * 1e3:.1f} | "
          f"cell loop / gatescope = **{timings.ratio('loop', 'ours'):.2f}×** faster "
          f"(target ≥ 3) |")
    print(f"| gatescope float64, every field | {ours64 * 1e3:.1f} | "
          f"float64 / float32 = {timings.ratio('ours64', 'ours'):.2f}× |")
    print(f"| gatescope float32, T={2 * T} | {ours_2T * 1e3:.1f} | "
          f"cost(2T) / cost(T) = **{timings.ratio('ours_2T', 'ours'):.2f}** (target ≤ 2.2) |")
    print()
    for a, b, what in (("ours", "fused", "gatescope / fused"),
                       ("ours_2T", "ours", "cost(2T) / cost(T)")):
        rounds = timings.round_ratios(a, b)
        print(f"{what}: ratio of medians {timings.ratio(a, b):.2f}, of the fastest calls "
              f"{timings.best_ratio(a, b):.2f}, round by round {min(rounds):.2f}–"
              f"{max(rounds):.2f}")


if __name__ == "__main__":
    main()
