"""The lecture's claims, measured: who learns delayed recall at which delay, trained with
gatescope's own NumPy trainer (gatescope.training.train).

Lecture 7 claims that (1) vanilla RNNs cannot learn long-term dependencies (vanishing and
exploding gradients), (2) LSTMs and GRUs can, and (3) truncated BPTT cannot learn a
dependency longer than its window. The task is `delayed_recall:d=…,symbols=4`: the first
symbol must be named at a "?" d steps later, with random distractors in between (chance:
25 %). Two experiments, every configuration trained from several seeds:

  (a) cells    rnn_tanh, LSTM (forget_bias 1, and PyTorch's plain init) and GRU at
               several delays d: same hidden size, batch, steps, Adam lr and clipping;
  (b) windows  an LSTM at one delay with full BPTT and with truncation windows k shorter
               and longer than d.

Each trained model is scored on fresh sequences from a stream that neither training nor
the trainer's own held-out set draws from. The trainer keeps no gradient norms, so each RNN
run is replayed step for step with training.train_step (checked bit-identical to the
trained model) to record them. Training runs in at most 2 worker processes, each on one
BLAS thread (the project's machines have 2 shared cores).

    python benchmarks/long_term.py [--quick] [--write] [--save FILE] [--load FILE]
                                   [--seeds 3] [--steps 3000] [--workers 2]

--write replaces the section "The lecture's claims, measured" of benchmarks/README.md;
--save keeps every run's numbers as JSON, and --load re-renders them without training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

# before NumPy loads: the workers inherit these, so OpenBLAS starts them on one thread each
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import multiprocessing as mp  # noqa: E402

import numpy as np  # noqa: E402

from gatescope import tasks  # noqa: E402
from gatescope.core.cells import CELLS  # noqa: E402
from gatescope.training import (  # noqa: E402
    Adam,
    TrainConfig,
    evaluate,
    init_params,
    train,
    train_step,
)
from gatescope.training import trainer as _trainer  # noqa: E402

README = Path(__file__).with_name("README.md")
SECTION = "## The lecture's claims, measured"
SYMBOLS = 4
SOLVED = 0.99  # "solves the task": at least this accuracy on fresh sequences
NEAR_CHANCE = 0.05  # "at chance": within 5 points of 1/symbols (≈ 5 σ on 2048 sequences)
FELL = 0.10  # a run "fell" when it ended this far below its best held-out accuracy
SPIKE = 10.0  # a gradient norm (before clipping) this large counts as a spike: 10× the clip
TEST_SALT = 0x7E57  # the fresh test sequences' stream: SeedSequence([TEST_SALT, d, seed])

# row labels of experiment (a), in table order: (cell, forget_bias) → label
CELL_ROWS: dict[tuple[str, float | None], str] = {
    ("rnn_tanh", None): "RNN (tanh)",
    ("lstm", None): "LSTM (PyTorch init)",
    ("lstm", 1.0): "LSTM (forget_bias 1)",
    ("gru", None): "GRU",
}

Result = dict[str, Any]  # one run's numbers, as train_one returns them (JSON-ready)


@dataclass(frozen=True)
class Settings:
    """What every run shares."""

    hidden: int
    batch: int
    steps: int
    lr: float
    clip: float
    eval_every: int
    test_size: int


@dataclass(frozen=True)
class Run:
    """One training run. part: "cells" (experiment a) or "windows" (b)."""

    part: str
    cell: str
    d: int
    seed: int
    forget_bias: float | None = None
    truncate: int | None = None


@dataclass(frozen=True)
class Plan:
    """The runs of one invocation."""

    delays: tuple[int, ...]
    seeds: int
    window_delay: int
    windows: tuple[int, ...]  # truncation windows k, besides full BPTT
    plain_lstm_delays: tuple[int, ...]  # where the LSTM also runs with PyTorch's init

    def runs(self) -> list[Run]:
        out = []
        for seed in range(self.seeds):
            for d in self.delays:
                out += [Run("cells", "rnn_tanh", d, seed), Run("cells", "lstm", d, seed, 1.0),
                        Run("cells", "gru", d, seed)]
                if d in self.plain_lstm_delays:
                    out.append(Run("cells", "lstm", d, seed))
            # full BPTT at window_delay is experiment (a)'s LSTM run: not trained twice
            if self.window_delay not in self.delays:
                out.append(Run("cells", "lstm", self.window_delay, seed, 1.0))
            out += [Run("windows", "lstm", self.window_delay, seed, 1.0, k)
                    for k in self.windows]
        # longest first, so neither worker is left with one long run at the end
        return sorted(out, key=lambda r: -cost(r))


def cost(run: Run) -> float:
    """Relative cost of a run: per step ∝ T = d + 1, ×3 for the gated cells' three or four
    gate blocks (measured: an LSTM/GRU step costs ~3× an RNN step at H = 32); an RNN run
    counts twice, as it is replayed for its gradient norms."""
    return (run.d + 1) * (2.0 if run.cell.startswith("rnn") else 3.0)


def limit_blas() -> None:
    """Worker initializer: one BLAS thread, whatever the environment said (the trainer
    already limits each step; this covers the evaluation and anything else)."""
    from threadpoolctl import threadpool_limits

    global _limits
    _limits = threadpool_limits(limits=1)


_limits: Any = None  # keeps the worker's thread limit alive


def replay_norms(config: TrainConfig, trained: dict[str, np.ndarray]) -> np.ndarray | None:
    """Every step's gradient norm before clipping, from training again as train() does (the
    same init, Adam, batch stream and train_step), or None if the replay does not end on
    the trained weights bit for bit (the trainer changed under us: no norms, no guess)."""
    task, cell = tasks.get(config.task), CELLS[config.cell]
    dtype = np.dtype(config.dtype)
    D, K = len(task.vocab), len(task.labels)
    params = init_params(cell, D, config.hidden, config.layers, K, config.seed, dtype,
                         config.forget_bias)
    adam = Adam(params, config.lr)
    batches = _trainer.streams(config.seed)[1]  # train()'s batch stream
    norms = np.empty(config.steps)
    for i in range(config.steps):
        tokens, targets = task.sample(batches, config.batch)
        X = tasks.one_hot(tokens, D, dtype)
        norms[i] = train_step(cell, params, adam, X, targets, config.clip, config.truncate)[2]
    same = params.keys() == trained.keys() and all(
        np.array_equal(params[k], trained[k]) for k in params)
    return norms if same else None


def train_one(job: tuple[Run, Settings]) -> Result:
    """Train one run, then score it on fresh sequences. Returns the run, its accuracy and
    loss there, the trainer's held-out history, for an RNN its gradient norms' summary,
    and the seconds it took."""
    run, s = job
    t0 = time.perf_counter()
    name = f"delayed_recall:d={run.d},symbols={SYMBOLS}"
    config = TrainConfig(task=name, cell=run.cell, hidden=s.hidden, seed=run.seed,
                         steps=s.steps, batch=s.batch, lr=s.lr, clip=s.clip,
                         truncate=run.truncate, forget_bias=run.forget_bias,
                         eval_every=s.eval_every)
    result = train(config, progress=None)
    task = tasks.get(name)
    rng = np.random.default_rng(np.random.SeedSequence([TEST_SALT, run.d, run.seed]))
    tokens, targets = task.sample(rng, s.test_size, "validation")
    scores = evaluate(CELLS[run.cell], result.params, task, tokens, targets)
    history = [{"step": int(h["step"]), "accuracy": float(h["accuracy"])}
               for h in result.history]
    out: Result = {"run": asdict(run), "accuracy": scores["accuracy"], "loss": scores["loss"],
                   "chance": task.metric.baseline, "command": config.command(),
                   "history": history}
    if run.cell.startswith("rnn"):
        norms = replay_norms(config, result.params)
        if norms is not None:
            best = max(history, key=lambda h: h["accuracy"])["step"]  # the first best
            out["grad_norms"] = {"median": float(np.median(norms)), "max": float(norms.max()),
                                 "max_step": int(norms.argmax()) + 1,
                                 "max_after_best": float(norms[best:].max(initial=0.0))}
        else:
            out["grad_norms"] = None
    out["seconds"] = time.perf_counter() - t0
    return out


# ---- summaries ------------------------------------------------------------------------


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def summary(results: Sequence[Result]) -> str:
    """Mean (min–max) accuracy in % over seeds, e.g. "62.3 (48.0–81.2)"."""
    accs = [r["accuracy"] for r in results]
    if len(accs) == 1:
        return pct(accs[0])
    lo, hi = min(accs), max(accs)
    spread = f" ({pct(lo)}–{pct(hi)})" if pct(lo) != pct(hi) else ""
    return f"{pct(statistics.mean(accs))}{spread}"


def mean_acc(results: Sequence[Result]) -> float:
    return statistics.mean(r["accuracy"] for r in results)


def steps_to_solve(result: Result) -> int | None:
    """The first evaluation step at which the trainer's held-out accuracy reached SOLVED."""
    return next((h["step"] for h in result["history"] if h["accuracy"] >= SOLVED), None)


def best_held_out(result: Result) -> float:
    """The best accuracy the trainer's held-out set saw during the run."""
    return max(h["accuracy"] for h in result["history"])


def fell(result: Result) -> bool:
    """Ended (fresh sequences) more than FELL below its best held-out accuracy."""
    return best_held_out(result) - result["accuracy"] > FELL


def solve_steps(results: Sequence[Result]) -> str:
    """Per seed, in seed order: the step it first reached SOLVED, or "— (best %)"."""
    ordered = sorted(results, key=lambda r: r["run"]["seed"])
    return ", ".join(str(s) if (s := steps_to_solve(r)) is not None
                     else f"— ({100 * best_held_out(r):.0f})" for r in ordered)


def verdict(results: Sequence[Result]) -> str:
    """"solved" (every seed ≥ SOLVED), "chance" (every seed within NEAR_CHANCE of chance),
    "some seeds" (some seed ≥ SOLVED) or "unsolved" (none ≥ SOLVED, some above chance)."""
    accs = [r["accuracy"] for r in results]
    chance = results[0]["chance"]
    if min(accs) >= SOLVED:
        return "solved"
    if max(accs) < chance + NEAR_CHANCE:
        return "chance"
    return "some seeds" if max(accs) >= SOLVED else "unsolved"


def group(results: Sequence[Result]) -> dict[tuple, list[Result]]:
    """Results by configuration: ("cells", cell, forget_bias, d) or ("windows", k, d)."""
    out: dict[tuple, list[Result]] = {}
    for r in results:
        run = r["run"]
        key = (("cells", run["cell"], run["forget_bias"], run["d"]) if run["part"] == "cells"
               else ("windows", run["truncate"], run["d"]))
        out.setdefault(key, []).append(r)
    return out


def delays_where(groups: dict[tuple, list[Result]], cell: str, fb: float | None,
                 delays: Sequence[int], kind: str) -> list[int]:
    return [d for d in delays if (g := groups.get(("cells", cell, fb, d)))
            and verdict(g) == kind]


def listing(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values)


def run_label(run: dict[str, Any]) -> str:
    """E.g. "LSTM (forget_bias 1) k = 5, d = 20, seed 0"."""
    label = CELL_ROWS.get((run["cell"], run["forget_bias"]), run["cell"])
    window = f" k = {run['truncate']}," if run["truncate"] else ""
    return f"{label}{window} d = {run['d']}, seed {run['seed']}"


def cell_rows(groups: dict[tuple, list[Result]], delays: Sequence[int]
              ) -> list[tuple[str, float | None, str]]:
    """(cell, forget_bias, label) of experiment (a)'s rows that have any result."""
    return [(cell, fb, label) for (cell, fb), label in CELL_ROWS.items()
            if any(("cells", cell, fb, d) in groups for d in delays)]


# ---- the report ------------------------------------------------------------------------


def tables(results: Sequence[Result], plan: Plan) -> str:
    """The three Markdown tables: accuracy by cell and delay, steps to solve, windows."""
    groups = group(results)
    delays = plan.delays
    rows = cell_rows(groups, delays)
    head = "| cell | " + " | ".join(f"d = {d}" for d in delays) + " |"
    rule = "| --- |" + " ---: |" * len(delays)
    skipped = "; \"not run\": left out to keep the full run within ~25 minutes" if any(
        ("cells", c, fb, d) not in groups for c, fb, _ in rows for d in delays) else ""
    lines = ["Accuracy (%) on fresh sequences, mean (min–max) over seeds; chance is "
             f"{pct(results[0]['chance'])} %{skipped}:", "", head, rule]
    for cell, fb, label in rows:
        cells = [summary(groups[k]) if (k := ("cells", cell, fb, d)) in groups else "not run"
                 for d in delays]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"Step at which each seed (0, 1, …) first reached ≥ {100 * SOLVED:.0f} % on "
              "the trainer's held-out set; — (x): never, x = its best held-out accuracy (%) "
              "during the run:", "", head, rule]
    for cell, fb, label in rows:
        cells = [solve_steps(groups[k]) if (k := ("cells", cell, fb, d)) in groups
                 else "not run" for d in delays]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    d = plan.window_delay
    lines += ["", f"LSTM (forget_bias 1) at d = {d} (T = {d + 1} steps), full BPTT against "
              "truncation windows k. The engine cuts the gradient at every multiple of k "
              "(the state entering step k, 2k, … is detached; the forward state still flows "
              "through), so the answer's gradient reaches back d mod k steps, never to the "
              "symbol when k ≤ d:", "",
              f"| BPTT | answer's gradient reaches back | accuracy (%) | steps to "
              f"≥ {100 * SOLVED:.0f} % |", "| --- | ---: | ---: | --- |"]
    for k in [*sorted(plan.windows), None]:
        g = groups.get(("cells", "lstm", 1.0, d)) if k is None else groups.get(("windows", k, d))
        if not g:
            continue
        back = d if k is None or k > d else d % k
        label = "full" if k is None else f"k = {k}" + (" (> d: no cut)" if k > d else "")
        lines.append(f"| {label} | {back} steps | {summary(g)} | {solve_steps(g)} |")
    return "\n".join(lines)


def row_sentences(groups: dict[tuple, list[Result]], delays: Sequence[int]) -> list[str]:
    """One sentence per row of the first table: where it solves, where it is at chance."""
    out = []
    for cell, fb, label in cell_rows(groups, delays):
        present = [d for d in delays if ("cells", cell, fb, d) in groups]
        parts = []
        for kind, words in (("solved", "≥ 99 % on every seed at d ="),
                            ("some seeds", "≥ 99 % on some seeds only at d ="),
                            ("unsolved", "above chance, below 99 %, at d ="),
                            ("chance", "at chance at d =")):
            if ds := delays_where(groups, cell, fb, present, kind):
                parts.append(f"{words} {listing(ds)}")
        out.append(f"**{label}**: " + "; ".join(parts) + ".")
    return out


LATE, QUICK = 1000, 300  # a "late" solve (steps), and a "quick" rise from chance (steps)


def plateau_sentence(groups: dict[tuple, list[Result]], delays: Sequence[int],
                     steps: int) -> str:
    """How the gated cells got to 99 %: when, and whether after a plateau at chance."""
    gated = [(c, fb) for c, fb in CELL_ROWS if c != "rnn_tanh"]
    medians: list[tuple[int, float | None, str]] = []
    late = quick = 0
    for d in delays:
        runs = [r for c, fb in gated for r in groups.get(("cells", c, fb, d), [])]
        solved = [s for r in runs if (s := steps_to_solve(r)) is not None]
        if runs:
            median = statistics.median(solved) if solved else None
            medians.append((d, median, f"d = {d}: {median:.0f} ({len(solved)} of {len(runs)} "
                            "runs)" if solved else f"d = {d}: none of {len(runs)}"))
        for r in runs:
            s = steps_to_solve(r)
            if s is not None and s >= LATE:
                late += 1
                last = max(h["step"] for h in r["history"] if h["step"] < s
                           and h["accuracy"] < r["chance"] + NEAR_CHANCE)
                quick += s - last <= QUICK
    text = (f"\"At chance\" means within {steps} steps, not never. Median step at which the "
            "gated cells' runs (every LSTM and GRU row) first reached ≥ 99 %: "
            + "; ".join(words for *_, words in medians) + ".")
    known = [m for _, m, _ in medians if m is not None]
    grows = len(known) > 1 and known == sorted(known)
    if late:
        text += (f" Of the {late} that took ≥ {LATE} steps, {quick} were still at chance "
                 f"at most {QUICK} steps before they got there")
        if 2 * quick >= late:
            text += (": learning here is mostly a long plateau at chance, then a quick rise"
                     + (", and the plateau grows with the delay" if grows else "")
                     + "; so a bigger budget (`--steps`) may turn \"chance\" into \"solved\" "
                       "at the delays that fail here.")
        else:
            text += "."
    return text


def claim_rnn(groups: dict[tuple, list[Result]], delays: Sequence[int],
              results: Sequence[Result]) -> str:
    """Claim 1: vanilla RNNs cannot learn long-term dependencies."""
    gated = [row for row in cell_rows(groups, delays) if row[0] != "rnn_tanh"]
    rnn = {d: g for d in delays if (g := groups.get(("cells", "rnn_tanh", None, d)))}
    solved = [d for d, g in rnn.items() if verdict(g) == "solved"]
    fails = [d for d in rnn if d not in solved]
    head = "*Claim 1, vanilla RNNs cannot learn long-term dependencies*: "
    if not fails:
        return head + (f"**does not hold here** — the tanh RNN solves every delay tried, up "
                       f"to d = {max(rnn)}.")
    compare, rescued, rnn_best = [], [], []
    for d in fails:
        accs = [(label, mean_acc(groups[k])) for cell, fb, label in gated
                if (k := ("cells", cell, fb, d)) in groups]
        compare.append(f"d = {d}: RNN {pct(mean_acc(rnn[d]))}"
                       + "".join(f", {label} {pct(a)}" for label, a in accs))
        if any(verdict(groups[("cells", c, fb, d)]) == "solved"
               for c, fb, _ in gated if ("cells", c, fb, d) in groups):
            rescued.append(d)
        elif accs and all(a < mean_acc(rnn[d]) for _, a in accs):
            rnn_best.append(d)
    text = head + ("the tanh RNN " + (f"solves d ≤ {max(solved)} on every seed"
                                      if solved else "solves no delay on every seed")
                   + f", not d = {listing(fails)} (mean % — {'; '.join(compare)}).")
    if rescued:
        text += f" At d = {listing(rescued)} a gated cell solves what the RNN does not."
    if rnn_best:
        text += (f" **At d = {listing(rnn_best)} the RNN scores higher than every gated "
                 "cell**: with the same budget the longest delays defeat the LSTM and the GRU "
                 "first, so there the claim does not hold as stated — the RNN fails too, but "
                 "less.")
    reached = [f"{sum(steps_to_solve(r) is not None for r in rnn[d])}/{len(rnn[d])}"
               for d in fails]
    text += (f" Its misses are partly lost rather than never learned: during training it "
             f"reached ≥ 99 % on the held-out set on {listing(reached)} seeds at d = "
             f"{listing(fails)}.")
    rnn_runs = [r for g in rnn.values() for r in g]
    norms = [r for r in rnn_runs if r.get("grad_norms")]
    if len(norms) < len(rnn_runs):
        text += (f" ({len(rnn_runs) - len(norms)} RNN run(s) could not be replayed bit for "
                 "bit, so their gradient norms are not known.)")
    if norms:
        down = [r for r in norms if fell(r)]
        spiked_down = [r for r in down if r["grad_norms"]["max_after_best"] >= SPIKE]
        spiked_kept = [r for r in norms if not fell(r)
                       and r["grad_norms"]["max_after_best"] >= SPIKE]
        medians = [r["grad_norms"]["median"] for r in norms]
        if down:
            peaks = [r["grad_norms"]["max_after_best"] for r in spiked_down]
            text += (f" Of the {len(down)} RNN runs that ended more than {100 * FELL:.0f} "
                     f"points below their best, {len(spiked_down)} had a gradient-norm spike "
                     f"≥ {SPIKE:.0f} after that best evaluation"
                     + (f" (up to {min(peaks):.0f}–{max(peaks):.0f} before clipping to "
                        f"1.0)" if peaks else "")
                     + f", against median norms of {min(medians):.2g}–{max(medians):.2g} per "
                     f"run; {len(spiked_kept)} of the {len(norms) - len(down)} other RNN runs "
                     "had one.")
            if 2 * len(spiked_down) > len(down):
                text += (" That is the exploding gradient the lecture names, and clipping at "
                         "1.0 (under Adam) did not keep it from undoing what had been learned.")
    return text


def claim_gated(groups: dict[tuple, list[Result]], delays: Sequence[int], steps: int) -> str:
    """Claim 2: LSTMs and GRUs can."""
    clauses = []
    for cell, fb, label in cell_rows(groups, delays):
        if cell == "rnn_tanh":
            continue
        present = [d for d in delays if ("cells", cell, fb, d) in groups]
        solved = delays_where(groups, cell, fb, present, "solved")
        missing = [d for d in present if d not in solved]
        clauses.append(f"{label} " + (
            f"solves every delay tried (up to d = {max(present)})" if not missing else
            f"solves d = {listing(solved)} but **not d = {listing(missing)}**" if solved else
            f"**solves none** of d = {listing(present)}"))
    return (f"*Claim 2, LSTMs and GRUs can* (solves: ≥ 99 % on every seed within {steps} "
            "steps): " + "; ".join(clauses) + ".")


def claim_windows(groups: dict[tuple, list[Result]], plan: Plan) -> list[str]:
    """Claim 3: truncated BPTT cannot learn past its window; and the k > d check."""
    d = plan.window_delay
    full = groups.get(("cells", "lstm", 1.0, d))
    ks = [k for k in sorted(plan.windows) if ("windows", k, d) in groups]
    short = [k for k in ks if k <= d]
    out = []
    if short and full:
        chance = full[0]["chance"]
        best = max(best_held_out(r) for k in short for r in groups[("windows", k, d)])
        any_solved = any(steps_to_solve(r) is not None
                         for k in short for r in groups[("windows", k, d)])
        text = (f"*Claim 3, truncated BPTT cannot learn past its window*: at d = {d}, "
                + ("full BPTT solves it on every seed" if verdict(full) == "solved" else
                   f"full BPTT itself only reaches {summary(full)} %") + "; ")
        if any_solved:
            text += ("**some window k ≤ d reached ≥ 99 % on some seed, so the claim does not "
                     "hold here**.")
        else:
            text += (f"no window k ≤ d (k = {listing(short)}) comes near solving it on any "
                     f"seed (best held-out accuracy during training {pct(best)} %). Holds. ")
            above = {k: sum(r["accuracy"] >= chance + NEAR_CHANCE
                            for r in groups[("windows", k, d)]) for k in short}
            if any(above.values()):
                text += ("But not \"nothing is learned\": "
                         + "; ".join(f"k = {k} scores {summary(groups[('windows', k, d)])} %"
                                     f" ({n} of {len(groups[('windows', k, d)])} seeds above "
                                     "chance)" for k, n in above.items() if n)
                         + ". No gradient asks a step before the cut to keep the symbol, yet "
                           "the forward state still carries part of it across (the forget "
                           "gate starts near 0.88), and the last window learns to read it.")
            else:
                text += "Every such window stays at chance on every seed."
        out.append(text)
        same: dict[tuple, list[int]] = {}
        for k in short:
            key = tuple(sorted((r["run"]["seed"], r["accuracy"])
                               for r in groups[("windows", k, d)]))
            same.setdefault(key, []).append(k)
        for twins in (ks_ for ks_ in same.values() if len(ks_) > 1):
            out.append(f"k = {listing(twins)} give the very same numbers, seed for seed, as "
                       "they must: the only target is at step d, and with d mod k = 0 it "
                       "sits alone in its window, so every one of these runs gets the same "
                       "gradients.")
    for k in (k for k in ks if k > d):
        same_as_full = full is not None and sorted(
            (r["run"]["seed"], r["accuracy"]) for r in groups[("windows", k, d)]) == sorted(
            (r["run"]["seed"], r["accuracy"]) for r in full)
        out.append(f"A window k = {k} > d puts no cut inside the {d + 1} steps, so it is full "
                   "BPTT" + (" and gives the very same numbers, seed for seed (a check on "
                             "the truncation code, not a separate finding)." if same_as_full
                             else "; its numbers differ from full BPTT's, which they should "
                                  "not."))
    return out


def windows_hold(groups: dict[tuple, list[Result]], plan: Plan) -> bool | None:
    """Claim 3 at window_delay: full BPTT solves it and no window k ≤ d reaches SOLVED on any
    seed (None: not measured)."""
    d = plan.window_delay
    full = groups.get(("cells", "lstm", 1.0, d))
    short = [groups[("windows", k, d)] for k in plan.windows
             if k <= d and ("windows", k, d) in groups]
    if not full or not short:
        return None
    return verdict(full) == "solved" and all(steps_to_solve(r) is None for g in short for r in g)


def in_short(groups: dict[tuple, list[Result]], plan: Plan, steps: int) -> str:
    """The findings in one sentence, delay by delay, then truncation."""
    delays = plan.delays
    rows = cell_rows(groups, delays)
    gated = [row for row in rows if row[0] != "rnn_tanh"]

    def solved(cell: str, fb: float | None, d: int) -> bool:
        g = groups.get(("cells", cell, fb, d))
        return g is not None and verdict(g) == "solved"

    def mean_at(cell: str, fb: float | None, d: int) -> float | None:
        g = groups.get(("cells", cell, fb, d))
        return mean_acc(g) if g else None

    easy, rescued, rnn_best, nobody = [], [], [], []
    for d in delays:
        if all(solved(c, fb, d) for c, fb, _ in rows if ("cells", c, fb, d) in groups):
            easy.append(d)
        elif solved("rnn_tanh", None, d):
            continue  # the RNN solves it and some gated cell does not: said below
        elif any(solved(c, fb, d) for c, fb, _ in gated):
            rescued.append(d)
        else:
            rnn = mean_at("rnn_tanh", None, d)
            others = [m for c, fb, _ in gated if (m := mean_at(c, fb, d)) is not None]
            (rnn_best if rnn is not None and others and rnn > max(others) else nobody).append(d)
    parts = []
    if easy:
        parts.append(f"at d = {listing(easy)} every cell solves the task")
    if rescued:
        solvers = [label for c, fb, label in gated if all(solved(c, fb, d) for d in rescued)]
        others = [label for c, fb, label in gated if label not in solvers]
        parts.append(f"at d = {listing(rescued)} {' and '.join(solvers) or 'a gated cell'} "
                     "solve it on every seed and the RNN does not"
                     + (f" (nor does {' or '.join(others)})" if others else "")
                     + ": claims 1 and 2 hold")
    if rnn_best:
        parts.append(f"at d = {listing(rnn_best)} no cell solves it on every seed and the "
                     "RNN comes closest: the gated cells' advantage (claim 2) does not show "
                     "with this budget")
    if nobody:
        parts.append(f"at d = {listing(nobody)} no cell solves it on every seed")
    rnn_wins = [d for d in delays if solved("rnn_tanh", None, d) and d not in easy]
    if rnn_wins:
        parts.append(f"at d = {listing(rnn_wins)} the RNN solves it and some gated cell "
                     "does not")
    holds = windows_hold(groups, plan)
    if holds is not None:
        parts.append(f"at d = {plan.window_delay}, truncation windows k ≤ d "
                     + ("never learn what full BPTT learns: claim 3 holds" if holds else
                        "do not behave as claim 3 says (below)"))
    return f"**In short**, within {steps} steps: " + "; ".join(parts) + "."


def reading(results: Sequence[Result], plan: Plan, s: Settings) -> str:
    """What the numbers say, sentence by sentence from the results (so a re-run with other
    numbers says what those numbers say)."""
    groups = group(results)
    out = [in_short(groups, plan, s.steps),
           *row_sentences(groups, plan.delays),
           plateau_sentence(groups, plan.delays, s.steps),
           claim_rnn(groups, plan.delays, results),
           claim_gated(groups, plan.delays, s.steps),
           *claim_windows(groups, plan)]
    down = sorted((r for r in results if fell(r)),
                  key=lambda r: (r["run"]["cell"], r["run"]["truncate"] or 0, r["run"]["d"],
                                 r["run"]["seed"]))
    if down:
        out.append("Accuracies are the last step's model (no early stopping). Runs that "
                   f"ended more than {100 * FELL:.0f} points below their best held-out "
                   "accuracy (best → final %): "
                   + "; ".join(f"{run_label(r['run'])}: {pct(best_held_out(r))} → "
                               f"{pct(r['accuracy'])}" for r in down) + ".")
    return "\n\n".join(out)


def machine_note() -> str:
    cpu = platform.processor()
    info = Path("/proc/cpuinfo")
    if info.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    return (f"{os.cpu_count()} vCPU {cpu}, Python {platform.python_version()}, "
            f"NumPy {np.__version__}")


def wrapped(markdown: str, width: int = 92) -> str:
    """Paragraphs filled to `width` as in the rest of the README; tables left alone; never
    a break inside an option such as --forget-bias."""
    return "\n".join(line if line.startswith("|") or not line else
                     textwrap.fill(line, width, break_long_words=False,
                                   break_on_hyphens=False)
                     for line in markdown.split("\n"))


def report(data: dict[str, Any]) -> str:
    """The README section from a run's data (settings, plan, results, timings)."""
    s = Settings(**data["settings"])
    plan = Plan(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["plan"].items()})
    results = data["results"]
    minutes = data["wall_seconds"] / 60
    cpu_minutes = sum(r["seconds"] for r in results) / 60
    example = min((r for r in results if r["run"]["cell"] == "lstm"
                   and r["run"]["forget_bias"] == 1.0 and r["run"]["truncate"] is None),
                  key=lambda r: (r["run"]["d"] != plan.window_delay, r["run"]["seed"]))
    return wrapped("\n".join([
        f"{SECTION}: `benchmarks/long_term.py`",
        "",
        "Lecture 7 says vanilla RNNs cannot learn long-term dependencies, LSTMs and GRUs can, "
        "and truncated BPTT cannot learn one longer than its window. Measured here on "
        f"`delayed_recall:d=…,symbols={SYMBOLS}` (name the first of d + 1 symbols at the "
        f"\"?\" d steps later; the distractors come from the same {SYMBOLS} letters), with the "
        "package's own trainer (`gatescope.training.train`). Every run: one layer, "
        f"H = {s.hidden}, {s.steps} steps of {s.batch} sequences, Adam lr = {s.lr}, "
        f"`clip_grad_norm` {s.clip}, full BPTT unless a window k is given, float32, "
        "PyTorch's default init. `forget_bias 1` adds 1 to both b_if and b_hf (+2 on the "
        "forget gate's pre-activation, σ(2) ≈ 0.88) and is the LSTM's setting in every row "
        f"that does not say \"PyTorch init\". Seeds 0–{plan.seeds - 1}; each final model is "
        f"scored on {s.test_size} fresh sequences drawn from a stream used neither in "
        "training nor for the trainer's own held-out set (256 sequences scored every "
        f"{s.eval_every} steps, used only for the \"steps to\" and \"best\" numbers). The "
        "trainer keeps no gradient norms, so each RNN run is replayed with "
        "`training.train_step` (checked to end on the same weights bit for bit) to record "
        f"them. One run, for example: `{example['command']}`.",
        "",
        f"Command: `{data['command']}` ({data['date']}, {data['machine']}; "
        f"{data['workers']} worker processes, one BLAS thread each; wall time "
        f"**{minutes:.1f} min** for {len(results)} runs, {cpu_minutes:.1f} worker-minutes; "
        f"load average {data['load'][0]:.1f} at the start, {data['load'][1]:.1f} at the "
        "end):",
        "",
        tables(results, plan),
        "",
        "What the numbers say (sentences generated from the results: ≥ 99 % on every seed "
        f"counts as solved, within {100 * NEAR_CHANCE:.0f} points of {pct(1 / SYMBOLS)} % "
        "as chance):",
        "",
        reading(results, plan, s),
        "",
    ]))


def write_section(text: str) -> None:
    """Replace SECTION (up to the next "## " heading) in README, or append it."""
    lines = README.read_text().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(SECTION)), None)
    if start is None:
        body = "".join(lines).rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        tail = "".join(lines[end:])
        body = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    README.write_text(body.rstrip("\n") + "\n")


def command(args: argparse.Namespace) -> str:
    """The command line that repeats this run's measurements (--save/--load left out)."""
    argv = [".venv/bin/python", "benchmarks/long_term.py"]
    argv += ["--quick"] if args.quick else []
    argv += ["--seeds", str(args.seeds)] if args.seeds else []
    argv += ["--steps", str(args.steps)] if args.steps else []
    argv += ["--workers", str(args.workers)] if args.workers != 2 else []
    argv += ["--write"] if args.write else []
    return shlex.join(argv)


def measure(plan: Plan, s: Settings, workers: int) -> tuple[list[Result], float]:
    """Every run of the plan on `workers` processes; (results, wall seconds)."""
    runs = plan.runs()
    t0 = time.perf_counter()
    results: list[Result] = []
    print(f"{len(runs)} runs on {workers} workers", file=sys.stderr, flush=True)
    # spawn: fresh interpreters that import NumPy under the one-thread environment above
    with mp.get_context("spawn").Pool(workers, initializer=limit_blas) as pool:
        for r in pool.imap_unordered(train_one, [(run, s) for run in runs]):
            results.append(r)
            print(f"[{len(results):>3}/{len(runs)}] {run_label(r['run']):<44} "
                  f"{pct(r['accuracy']):>5} %  {r['seconds']:6.1f} s  "
                  f"(elapsed {(time.perf_counter() - t0) / 60:.1f} min)",
                  file=sys.stderr, flush=True)
    return results, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke check of a minute or two: d = 5, 20; 2 seeds; "
                             "400 steps")
    parser.add_argument("--write", action="store_true",
                        help=f"write the result into {README.name} ({SECTION[3:]!r})")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per configuration")
    parser.add_argument("--steps", type=int, default=None, help="training steps per run")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (≤ 2)")
    parser.add_argument("--save", type=Path, help="also write every run's numbers as JSON")
    parser.add_argument("--load", type=Path, help="render a --save file, no training")
    args = parser.parse_args()

    if args.load:
        data = json.loads(args.load.read_text())
    else:
        if args.quick:
            plan = Plan(delays=(5, 20), seeds=2, window_delay=20, windows=(10, 30),
                        plain_lstm_delays=(20,))
            s = Settings(hidden=32, batch=32, steps=400, lr=0.01, clip=1.0, eval_every=50,
                         test_size=512)
        else:
            # the plain-init LSTM only where it has a chance: it is at chance from d = 20 on
            # with forget_bias 1 failing at 40, and d = 40, 80 would add a quarter to the time
            plan = Plan(delays=(5, 10, 20, 40, 80), seeds=3, window_delay=20,
                        windows=(5, 10, 15, 30), plain_lstm_delays=(5, 10, 20))
            s = Settings(hidden=32, batch=32, steps=3000, lr=0.01, clip=1.0, eval_every=100,
                         test_size=2048)
        if args.seeds:
            plan = Plan(**{**asdict(plan), "seeds": args.seeds})
        if args.steps:
            s = Settings(**{**asdict(s), "steps": args.steps})
        workers = max(1, min(2, args.workers))  # a shared 2-core machine: never more
        load0 = os.getloadavg()[0]
        results, wall = measure(plan, s, workers)
        data = {"settings": asdict(s), "plan": asdict(plan), "results": results,
                "wall_seconds": wall, "workers": workers,
                "load": [load0, os.getloadavg()[0]], "machine": machine_note(),
                "date": date.today().isoformat(), "command": command(args)}
        if args.save:
            args.save.write_text(json.dumps(data, indent=1))
    text = report(data)
    print(text)
    if args.write:
        write_section(text)
        print(f"wrote the section into {README}", file=sys.stderr)


if __name__ == "__main__":
    main()
