"""Delayed recall: remember the first symbol, answer it d steps later.

    text:    s x_1 x_2 … x_{d−1} ?        s, x_i uniform over the first `symbols` letters
    target:  none …                s      only at the "?", d steps after s

The distractors x_i are drawn from the same letters as s, so holding s means ignoring every
later input: a model must close its input path (an LSTM's input gate, a GRU's update gate)
for d − 1 steps. Chance accuracy is 1/symbols. `d=20,symbols=4` by default:
`delayed_recall:d=20,symbols=4`, 21 steps.

targets() accepts any delay: the answer is asked at every "?" of a text that starts with a
letter, so a model trained at one d can be probed at others.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..core.readout import NO_TARGET
from .base import Metric, Split, Task, accuracy_metric, check_range

CUE = "?"


@dataclass(frozen=True)
class DelayedRecall(Task):
    kind: ClassVar[str] = "delayed_recall"
    properties: ClassVar[tuple[str, ...]] = ("since_start",)
    d: int = 20
    symbols: int = 4

    def __post_init__(self) -> None:
        check_range(self, "d", 1, 4000)
        check_range(self, "symbols", 2, 26)

    @property
    def letters(self) -> str:
        return string.ascii_lowercase[:self.symbols]

    @property
    def vocab(self) -> str:
        return CUE + self.letters  # "?" is index 0, letter k is index k + 1

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.letters)

    @property
    def seq_len(self) -> int:
        return self.d + 1

    @property
    def metric(self) -> Metric:
        return accuracy_metric("chance", 1.0 / self.symbols)

    def sample(self, rng: np.random.Generator, n: int, split: Split = "train"
               ) -> tuple[np.ndarray, np.ndarray]:
        """tokens (d+1, n): s, d − 1 distractors, "?"; targets: s's class at the last step."""
        T = self.seq_len
        first = rng.integers(0, self.symbols, n)
        tokens = np.empty((T, n), np.int64)
        tokens[0] = first + 1
        tokens[1:T - 1] = rng.integers(0, self.symbols, (T - 2, n)) + 1
        tokens[T - 1] = 0
        targets = np.full((T, n), NO_TARGET, np.int64)
        targets[T - 1] = first
        return tokens, targets

    def _targets(self, text: str) -> list[int | None]:
        if not text or text[0] == CUE:
            raise ValueError("a delayed-recall text starts with the symbol to remember (one "
                             f"of {self.letters!r}), then distractors, then {CUE!r}")
        if CUE not in text:
            raise ValueError(f"a delayed-recall text asks for the first symbol with {CUE!r}; "
                             "this one never does, so it has no target")
        answer = self.letters.index(text[0])
        return [answer if ch == CUE else None for ch in text]

    def describe(self) -> str:
        return (f"delayed recall: a first symbol from {self.letters!r}, then {self.d - 1} "
                f"random distractors from the same symbols, then {CUE!r} at step {self.d}; "
                f"the only target, at {CUE!r}, is the first symbol. Sequences are drawn "
                "uniformly from a seeded numpy Generator.")
