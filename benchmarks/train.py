"""Training speed: gatescope's NumPy trainer against the same loop in PyTorch, one run.

One training step on a minibatch: LSTM forward over N sequences, a linear readout,
cross-entropy, full BPTT, clip_grad_norm_(1.0), one Adam step. Both sides get the same
one-hot batches (the char_lm task: D = K = 97 characters of Python source), the same
initial weights, float32, on the CPU:
  gatescope   training.train_step: engine.forward/backward over (T, N, D), readout.py,
              clipping and Adam in NumPy
  torch       torch.nn.LSTM + torch.nn.Linear, F.cross_entropy(ignore_index=−1),
              loss.backward(), clip_grad_norm_, torch.optim.Adam (defaults)
Target: gatescope at most 3× slower (sequences per second). Before timing, one step of each
from the same weights is compared, so both sides are shown to compute the same thing.

    python benchmarks/train.py [--rounds 5] [--hidden 128] [--steps 100] [--batch 32]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import numpy as np
import torch

from gatescope import tasks
from gatescope.core import readout
from gatescope.core.cells import CELLS
from gatescope.training import Adam, init_params, train_step
from timing import median_times

LR, CLIP = 0.01, 1.0


def batches(T: int, N: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` char_lm batches: (X (T, N, 97) one-hot float32, targets (T, N))."""
    task = tasks.get(f"char_lm:length={T}")
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        tokens, targets = task.sample(rng, N)
        out.append((tasks.one_hot(tokens, len(task.vocab), np.dtype(np.float32)), targets))
    return out


def ours(params: dict[str, np.ndarray], data: list) -> Callable[[], float]:
    cell, adam = CELLS["lstm"], Adam(params, LR)
    state = {"i": 0}

    def step() -> float:
        X, y = data[state["i"] % len(data)]
        state["i"] += 1
        return train_step(cell, params, adam, X, y, CLIP)[0]

    return step


def theirs(params: dict[str, np.ndarray], data: list) -> Callable[[], float]:
    D, H = params["weight_ih_l0"].shape[1], params["weight_hh_l0"].shape[1]
    K = params[readout.WEIGHT].shape[0]
    lstm, linear = torch.nn.LSTM(D, H), torch.nn.Linear(H, K)
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            p.copy_(torch.from_numpy(params[name]))
        linear.weight.copy_(torch.from_numpy(params[readout.WEIGHT]))
        linear.bias.copy_(torch.from_numpy(params[readout.BIAS]))
    parameters = [*lstm.parameters(), *linear.parameters()]
    opt = torch.optim.Adam(parameters, lr=LR)
    tensors = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in data]
    state = {"i": 0}

    def step() -> float:
        X, y = tensors[state["i"] % len(tensors)]
        state["i"] += 1
        opt.zero_grad()
        z = linear(lstm(X)[0])
        loss = torch.nn.functional.cross_entropy(z.reshape(-1, K), y.reshape(-1),
                                                 ignore_index=-1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, CLIP)
        opt.step()
        return loss.item()

    step.modules = (lstm, linear)  # type: ignore[attr-defined]
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100, help="T, steps per sequence")
    parser.add_argument("--batch", type=int, default=32, help="N, sequences per minibatch")
    args = parser.parse_args()
    T, N, H = args.steps, args.batch, args.hidden
    data = batches(T, N, 8)
    init = init_params(CELLS["lstm"], 97, H, 1, 97, seed=0, dtype=np.dtype(np.float32))

    # the same computation: two steps from the same weights, losses and weights compared
    a = {k: v.copy() for k, v in init.items()}
    step_a, step_b = ours(a, data), theirs(init, data)
    losses = [(step_a(), step_b()) for _ in range(2)]
    lstm, linear = step_b.modules  # type: ignore[attr-defined]
    torch_params = {**{k: v.detach().numpy() for k, v in lstm.named_parameters()},
                    readout.WEIGHT: linear.weight.detach().numpy(),
                    readout.BIAS: linear.bias.detach().numpy()}
    drift = max(float(np.abs(a[k] - torch_params[k]).max()) for k in a)

    m = median_times({"ours": ours({k: v.copy() for k, v in init.items()}, data),
                      "torch": theirs(init, data)}, args.rounds, per_round=5)
    sps_ours, sps_torch = N / m["ours"], N / m["torch"]
    print(f"LSTM training step, T={T} N={N} D=K=97 H={H}, float32, median of "
          f"{5 * args.rounds} steps in {args.rounds} rounds; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; numpy {np.__version__}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"same computation: losses {losses[0][0]:.6f} / {losses[0][1]:.6f} (step 1), "
          f"{losses[1][0]:.6f} / {losses[1][1]:.6f} (step 2); weights after 2 steps differ "
          f"by ≤ {drift:.1e} (each Adam step moves a weight by up to lr = {LR})")
    print()
    print("| what | ms / step | sequences / s | ratio |")
    print("| --- | ---: | ---: | --- |")
    print(f"| gatescope train_step | {m['ours'] * 1e3:.1f} | {sps_ours:.0f} | "
          f"gatescope time / torch time = **{m['ours'] / m['torch']:.2f}×** (target ≤ 3) |")
    print(f"| torch LSTM + Linear + Adam | {m['torch'] * 1e3:.1f} | {sps_torch:.0f} | 1.00 |")


if __name__ == "__main__":
    main()
