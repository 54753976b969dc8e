"""What a task is: sequences of text generated from a seed, with a class target per step.

A task's inputs are text, one token per character, one-hot over the task's `vocab` exactly
as inputs.py encodes text (X[t, vocab.index(text[t])] = 1). Its targets are class indices
into `labels` (K classes, read by a linear readout of K outputs), or −1 (readout.NO_TARGET)
at a step the task does not score.

Shapes: T steps, n sequences, D = len(vocab), K = len(labels). A batch holds n sequences of
one length T, so it runs through the engine as one (T, n, D) array.

A task is named by its kind and every option, `kind:opt=value,opt=value` (tasks.get parses
it back), so a saved model's `task` metadata rebuilds the very task it was trained on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from ..core.readout import NO_TARGET

Split = str  # "train" or "validation": only the char LM keeps held-out data apart


def accuracy(z: np.ndarray, targets: np.ndarray) -> float:
    """The fraction of targeted steps whose largest logit is the target, pooled over all
    sequences. z: (T, n, K); targets: (T, n), NO_TARGET where none."""
    has = targets != NO_TARGET
    return float((z.argmax(axis=-1) == targets)[has].mean())


def nats_per_token(z: np.ndarray, targets: np.ndarray) -> float:
    """Mean over targeted steps of −log softmax(z_t)[k_t] (float64, pooled over sequences):
    for a character model, nats per character."""
    z = z.astype(np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    has = targets != NO_TARGET
    picked = np.take_along_axis(log_p, np.where(has, targets, 0)[..., None], axis=-1)[..., 0]
    return float(-picked[has].mean())


@dataclass(frozen=True)
class Metric:
    """How a task is scored on held-out sequences, and what a model that learned nothing
    of the task's structure scores (the baseline, under `baseline_name`)."""

    name: str  # "accuracy" or "nats_per_char"
    fn: Callable[[np.ndarray, np.ndarray], float]
    baseline_name: str
    baseline: float
    higher_is_better: bool

    def __call__(self, z: np.ndarray, targets: np.ndarray) -> float:
        return self.fn(z, targets)


def accuracy_metric(baseline_name: str, baseline: float) -> Metric:
    return Metric("accuracy", accuracy, baseline_name, baseline, True)


def encode(texts: list[str], vocab: str) -> np.ndarray:
    """n texts of one length T → (T, n) token indices into vocab."""
    lengths = {len(t) for t in texts}
    if len(lengths) != 1:
        raise ValueError(f"the texts of a batch must have one length, got {sorted(lengths)}")
    T = lengths.pop()
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), "<u4").reshape(len(texts), T).T
    order = np.argsort([ord(ch) for ch in vocab])
    sorted_codes = np.array([ord(vocab[k]) for k in order], np.uint32)
    pos = np.minimum(np.searchsorted(sorted_codes, codes), len(vocab) - 1)
    bad = sorted_codes[pos] != codes
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise ValueError(f"character {texts[j][t]!r} (text {j}, position {t}) is not in the "
                         f"task's vocab {vocab!r}")
    return order[pos]


def decode(tokens: np.ndarray, vocab: str) -> list[str]:
    """(T, n) token indices → n texts."""
    chars = np.array(list(vocab))
    return ["".join(row) for row in chars[tokens.T]]


def one_hot(tokens: np.ndarray, D: int, dtype: np.dtype) -> np.ndarray:
    """(T, n) token indices → X (T, n, D): X[t, j, tokens[t, j]] = 1, as inputs.encode_text."""
    return np.eye(D, dtype=dtype)[tokens]


class Task(ABC):
    """A sequence task. Subclasses are frozen dataclasses whose fields are the options (ints).

    vocab: the input characters (D). labels: the K class names. seq_len: T of a batch.
    metric: how held-out sequences are scored. properties: the input properties a unit of
    a trained model may track (gatescope.core.units), for the model card.
    """

    kind: ClassVar[str]
    # the input properties (gatescope.core.units.PROPERTIES) worth correlating units with here
    properties: ClassVar[tuple[str, ...]] = ()

    @property
    @abstractmethod
    def vocab(self) -> str: ...

    @property
    @abstractmethod
    def labels(self) -> tuple[str, ...]: ...

    @property
    @abstractmethod
    def seq_len(self) -> int: ...

    @property
    @abstractmethod
    def metric(self) -> Metric: ...

    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int, split: Split = "train"
               ) -> tuple[np.ndarray, np.ndarray]:
        """n sequences as (tokens (T, n) indices into vocab, targets (T, n), −1 = none)."""

    @abstractmethod
    def _targets(self, text: str) -> list[int | None]:
        """targets() for a text already known to be in the vocab."""

    @abstractmethod
    def describe(self) -> str:
        """The data, in a sentence or two, for the model card."""

    @property
    def name(self) -> str:
        """`kind:opt=value,…` with every option: tasks.get(name) rebuilds this task."""
        opts = ",".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))  # type: ignore[arg-type]
        return f"{self.kind}:{opts}" if opts else self.kind

    def batch(self, rng: np.random.Generator, n: int, split: Split = "train"
              ) -> tuple[list[str], np.ndarray]:
        """n texts of length T, and their targets (T, n) int, −1 where a step has none."""
        tokens, targets = self.sample(rng, n, split)
        return decode(tokens, self.vocab), targets

    def targets(self, text: str) -> list[int | None]:
        """The class the task defines at each step of any text in its vocab (None: no
        target there). Raises ValueError, saying why, for a text that is not an instance."""
        missing = [ch for ch in dict.fromkeys(text) if ch not in self.vocab]
        if missing:
            raise ValueError(f"character {missing[0]!r} (position {text.index(missing[0])}) "
                             f"is not in the {self.kind} task's vocab {self.vocab!r}")
        return self._targets(text)

    def example(self) -> str:
        """One instance worth looking at in the explorer (fixed: the same every call)."""
        return self.batch(np.random.default_rng(7), 1)[0][0]


def check_range(task: Task, option: str, low: int, high: int) -> None:
    value = getattr(task, option)
    if not (isinstance(value, int) and low <= value <= high):
        raise ValueError(f"{task.kind}: option {option} must be an integer in "
                         f"{low}..{high}, got {value!r}")
