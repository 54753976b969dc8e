"""Training a recurrent network with a linear readout on a task, in NumPy.

One step on a minibatch of N sequences (T steps each, one (T, N, D) array through the
engine, no loop over sequences):

    h_t = RNN(x_t, h_{t−1})  (engine.forward, zero initial state)    (T, N, H)
    z_t = W h_t + b          (readout.logits)                       (T, N, K)
    L   = (1/N) Σ_n mean over n's targeted steps of −log softmax(z_t)[k_t]
    ∂L/∂θ by BPTT (engine.backward, full or truncated), clipped as clip_grad_norm_,
    then one Adam step.

L is the batch mean of the per-sequence losses: with as many targeted steps in every
sequence (true of every task here), it is torch's F.cross_entropy(…, ignore_index=−1).

Determinism: everything comes from `seed`. The RNN weights are params.pytorch_init(seed);
the readout, the training batches and the held-out set each draw from their own child of
np.random.SeedSequence(seed), so the held-out sequences are a different stream from the
training ones (and, for the char LM, from the held-out files).

At the end, the units worth looking at: on UNIT_SEQUENCES validation texts from a fourth
child stream (units_stream), the top layer's h is correlated with each input property the
task names (gatescope.core.units), and the UNITS_PER_PROPERTY units of largest |r| per property
go into the result (and the model card).
"""

from __future__ import annotations

import hashlib
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from .. import tasks
from ..contract.limits import MAX_HIDDEN, MAX_LAYERS
from ..core import engine, readout, units
from ..core.cells import CELLS, Cell
from ..core.clipping import clip_grad_norm
from ..core.params import StateDict, pytorch_init
from ..tasks import Task, one_hot
from .adam import Adam

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. `clip` None: no clipping; `truncate` None:
    full BPTT; `forget_bias` (LSTM only) is added to both forget-gate bias blocks at init
    (None: PyTorch's init unchanged). Every `eval_every` steps (and at the start and the
    end) the model is scored on `eval_size` held-out sequences; every `log_every` steps a
    progress line goes to stderr."""

    task: str
    cell: str = "lstm"
    hidden: int = 64
    layers: int = 1
    seed: int = 0
    steps: int = 1000
    batch: int = 32
    lr: float = 0.01
    clip: float | None = 1.0
    truncate: int | None = None
    dtype: str = "float32"
    forget_bias: float | None = None
    eval_every: int = 250
    eval_size: int = 256
    log_every: int = 50

    def __post_init__(self) -> None:
        tasks.get(self.task)  # a ValueError naming the problem
        checks = [
            (self.cell in CELLS, f"cell must be one of {', '.join(CELLS)}"),
            (1 <= self.hidden <= MAX_HIDDEN, f"hidden must be in 1..{MAX_HIDDEN}"),
            (1 <= self.layers <= MAX_LAYERS, f"layers must be in 1..{MAX_LAYERS}"),
            (self.seed >= 0, "seed must be ≥ 0"),
            (self.steps >= 0, "steps must be ≥ 0"),
            (self.batch >= 1, "batch must be ≥ 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.clip is None or self.clip > 0, "clip must be > 0 (or None: no clipping)"),
            (self.truncate is None or self.truncate >= 1, "truncate must be ≥ 1 (or None)"),
            (self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}"),
            (self.forget_bias is None or self.cell == "lstm",
             "forget_bias is for the LSTM's forget gate; other cells have none"),
            (self.eval_every >= 1 and self.eval_size >= 1 and self.log_every >= 1,
             "eval_every, eval_size and log_every must be ≥ 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def command(self) -> str:
        """The `gatescope train` command line that repeats this run, every option explicit."""
        args = ["gatescope", "train", "--task", tasks.get(self.task).name, "--cell", self.cell,
                "--hidden", self.hidden, "--layers", self.layers, "--seed", self.seed,
                "--steps", self.steps, "--batch", self.batch, "--lr", repr(self.lr),
                "--clip", 0 if self.clip is None else repr(self.clip)]
        if self.truncate is not None:
            args += ["--truncate", self.truncate]
        if self.forget_bias is not None:
            args += ["--forget-bias", repr(self.forget_bias)]
        args += ["--dtype", self.dtype, "--eval-every", self.eval_every,
                 "--eval-size", self.eval_size]
        return shlex.join(str(a) for a in args)


@dataclass
class TrainResult:
    """A trained model and how it got there.

    params: the RNN's state_dict (PyTorch names) plus readout.weight (K, H), readout.bias (K).
    history: the held-out scores, one dict per evaluation: step, loss, the task's metric.

    units: the units worth looking at, {"layer", "unit", "property", "r", "why"} each
    (top_units). held_out_sha256: a fingerprint of the held-out tokens the history scored
    (held_out_fingerprint), so a re-measurement can tell it has the same sequences.
    """

    config: TrainConfig
    task: Task
    params: StateDict
    history: list[dict[str, float]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    held_out_sha256: str | None = None

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1]


def streams(seed: int) -> tuple[np.random.Generator, ...]:
    """Independent generators for (the readout's init, training batches, held-out set)."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))


def units_stream(seed: int) -> np.random.Generator:
    """The generator of the validation texts units are ranked on: SeedSequence(seed)'s
    fourth child (its first three, hence streams(seed), are the same whatever is spawned
    after them)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[3])


def held_out_fingerprint(tokens: np.ndarray) -> str:
    """The first 16 hex digits of the SHA-256 of held-out tokens (T, n) as little-endian
    int64: equal fingerprints, equal sequences."""
    return hashlib.sha256(np.ascontiguousarray(tokens, "<i8").tobytes()).hexdigest()[:16]


def init_params(cell: Cell, D: int, H: int, L: int, K: int, seed: int, dtype: np.dtype,
                forget_bias: float | None = None) -> StateDict:
    """PyTorch's default init for the RNN (params.pytorch_init, forget_bias added to b_if
    and b_hf) and for an nn.Linear(H, K) readout: weight (K, H) then bias (K), each from
    U(−1/√H, 1/√H)."""
    params = pytorch_init(cell, D, H, L, seed, forget_bias, dtype)
    rng = streams(seed)[0]
    bound = 1.0 / np.sqrt(H)
    params[readout.WEIGHT] = rng.uniform(-bound, bound, (K, H)).astype(dtype)
    params[readout.BIAS] = rng.uniform(-bound, bound, K).astype(dtype)
    return params


def forward(cell: Cell, params: StateDict, X: np.ndarray) -> tuple[list, np.ndarray]:
    """The engine's traces from a zero initial state, and the logits z (T, N, K)."""
    L = sum(name.startswith("weight_hh_l") for name in params)
    N, H = X.shape[1], params["weight_hh_l0"].shape[1]
    h0 = np.zeros((L, N, H), X.dtype)
    c0 = np.zeros((L, N, H), X.dtype) if cell.has_cell_state else None
    traces = engine.forward(cell, params, X, h0, c0)
    return traces, readout.logits(traces[-1].h[1:], params[readout.WEIGHT],
                                  params[readout.BIAS])


def loss_and_grads(cell: Cell, params: StateDict, X: np.ndarray, targets: np.ndarray,
                   truncate: int | None = None) -> tuple[float, StateDict, np.ndarray]:
    """L (the batch mean, above), ∂L/∂ every parameter, and the logits (T, N, K).

    X: (T, N, D); targets: (T, N) class indices, −1 where none.
    """
    N = X.shape[1]
    traces, z = forward(cell, params, X)
    total, dz = readout.cross_entropy(z, targets)  # Σ_n L_n and its gradient
    dz *= 1.0 / N  # L = (1/N) Σ_n L_n
    h = traces[-1].h[1:]
    dh, dW, db = readout.backward(dz, h, params[readout.WEIGHT])
    rnn = engine.backward(cell, params, X, traces, dh, truncate)
    return total / N, {**rnn.params, readout.WEIGHT: dW, readout.BIAS: db}, z


def train_step(cell: Cell, params: StateDict, adam: Adam, X: np.ndarray,
               targets: np.ndarray, clip: float | None = None, truncate: int | None = None
               ) -> tuple[float, np.ndarray, float]:
    """One step in place: gradients, clipping, Adam. Returns (loss before the step, the
    logits (T, N, K), the gradients' total norm before clipping).

    The whole step runs on one BLAS thread (engine.step_loop_threads), not only its step
    loops: its products outside the loops, (T·N, G·H)ᵀ × (T·N, D) and the like, are still
    small enough that OpenBLAS's thread hand-off costs more than it saves — LSTM T=100,
    N=32, H=128 on this project's 2-core machines: 120 ms a step on one thread, 314 ms on two.
    """
    with engine.step_loop_threads():
        loss, grads, z = loss_and_grads(cell, params, X, targets, truncate)
        norm = clip_grad_norm(grads, clip) if clip is not None else float("nan")
        adam.step(params, grads)
    return loss, z, norm


def evaluate(cell: Cell, params: StateDict, task: Task, tokens: np.ndarray,
             targets: np.ndarray, chunk: int = 256) -> dict[str, float]:
    """The mean per-sequence loss and the task's metric on fixed sequences (T, n)."""
    dtype = params["weight_hh_l0"].dtype
    zs = []
    with engine.step_loop_threads():  # as in train_step
        for j in range(0, tokens.shape[1], chunk):
            X = one_hot(tokens[:, j:j + chunk], len(task.vocab), dtype)
            zs.append(forward(cell, params, X)[1])
    z = np.concatenate(zs, axis=1)
    total, _ = readout.cross_entropy(z, targets)
    return {"loss": total / tokens.shape[1], task.metric.name: task.metric(z, targets)}


UNIT_SEQUENCES = 64  # validation texts the units are ranked on
UNITS_PER_PROPERTY = 3


def unit_texts(task: Task, seed: int, n: int = UNIT_SEQUENCES) -> list[str]:
    """The n validation texts (each seq_len characters) a run with this seed ranks units on."""
    return task.batch(units_stream(seed), n, "validation")[0]


def top_units(cell: Cell, params: StateDict, task: Task, texts: list[str],
              per_property: int = UNITS_PER_PROPERTY) -> list[dict[str, Any]]:
    """The top layer's units of largest |r| with each of the task's properties over texts
    (n texts of length T): h (T, n, H) and each property (T, n) are flattened in the same
    order and ranked by units.rank_units. One {"layer", "unit", "property", "r", "why"} per
    unit, properties in the task's order, r rounded to 6 decimals."""
    dtype = params["weight_hh_l0"].dtype
    X = one_hot(tasks.encode(texts, task.vocab), len(task.vocab), dtype)
    with engine.step_loop_threads():  # as in train_step: the same sums, the same bytes
        traces, _ = forward(cell, params, X)
    h = traces[-1].h[1:]  # (T, n, H) of the top layer
    top, (T, n) = len(traces) - 1, h.shape[:2]
    found = []
    for name in task.properties:
        for unit, r in units.rank_units(h, units.values(name, texts))[:per_property]:
            found.append({"layer": top, "unit": unit, "property": name, "r": round(r, 6),
                          "why": units.why(name, r, n, T)})
    return found


def train(config: TrainConfig, progress: TextIO | None = sys.stderr) -> TrainResult:
    """Train from scratch as `config` says; progress lines go to `progress` (None: quiet)."""
    task = tasks.get(config.task)
    cell = CELLS[config.cell]
    dtype = np.dtype(config.dtype)
    D, K = len(task.vocab), len(task.labels)
    params = init_params(cell, D, config.hidden, config.layers, K, config.seed, dtype,
                         config.forget_bias)
    adam = Adam(params, config.lr)
    _, batches, held_out = streams(config.seed)
    eval_tokens, eval_targets = task.sample(held_out, config.eval_size, "validation")
    result = TrainResult(config, task, params,
                         held_out_sha256=held_out_fingerprint(eval_tokens))
    say = (lambda line: print(line, file=progress, flush=True)) if progress else (lambda _: None)
    metric = task.metric

    def score(step: int) -> None:
        scores = evaluate(cell, params, task, eval_tokens, eval_targets)
        result.history.append({"step": step, **scores})
        say(f"held-out  step {step:>6}  loss {scores['loss']:.4f}  {metric.name} "
            f"{scores[metric.name]:.4f}  ({metric.baseline_name}: {metric.baseline:.4f})")

    say(f"training {config.cell} H={config.hidden} L={config.layers} on {task.name}: "
        f"{config.steps} steps of {config.batch} sequences × {task.seq_len} steps, {dtype}")
    score(0)
    losses: list[float] = []
    batch_scores: list[float] = []
    busy = 0.0  # seconds spent training since the last progress line (evaluations excluded)
    for step in range(1, config.steps + 1):
        t0 = time.perf_counter()
        tokens, targets = task.sample(batches, config.batch)
        X = one_hot(tokens, D, dtype)
        loss, z, _ = train_step(cell, params, adam, X, targets, config.clip, config.truncate)
        busy += time.perf_counter() - t0
        losses.append(loss)
        batch_scores.append(metric(z, targets))
        if step % config.log_every == 0 or step == config.steps:
            say(f"step {step:>6}/{config.steps}  loss {np.mean(losses):.4f}  {metric.name} "
                f"{np.mean(batch_scores):.4f}  {len(losses) * config.batch / busy:.0f} seq/s")
            losses, batch_scores, busy = [], [], 0.0
        if step % config.eval_every == 0 and step != config.steps:
            score(step)
    if config.steps:
        score(config.steps)
    result.units = top_units(cell, params, task, unit_texts(task, config.seed))
    for u in result.units:
        say(f"unit {u['unit']:>4} of layer {u['layer']}  {u['property']:<11}  r {u['r']:+.3f}")
    return result
