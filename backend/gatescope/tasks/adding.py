"""The adding problem (Hochreiter & Schmidhuber 1997), as text and classes.

The original: a long sequence of random values, two of them marked; at the end the network
outputs the sum of the two marked values. Here the values are digits, a mark is the
character "#" right before its digit, the end is "=", and the sum of the two marked digits
is a class 0..18 (exact, no rounding):

    text:    3 8 # 5 1 7 2 … 4 # 9 0 6 … 1 =         `digits` digits, T = digits + 3
    target:  none …                          14       only at "=": 5 + 9

The first mark falls uniformly in the first half of the digits, the second in the second
half (the placement of Arjovsky et al. 2016; Hochreiter & Schmidhuber put the first among
the first ten), so the first marked digit must be held for about `digits`/2 steps or more
among distractors. The best constant answer, 9, scores 10 % (chance). Default
`adding:digits=50`, 53 steps.

targets() accepts any length and any mark positions: exactly two "#", each right before a
digit, and one "=" at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..core.readout import NO_TARGET
from .base import Metric, Split, Task, accuracy_metric, check_range

MARK, END = "#", "="
VOCAB = MARK + "0123456789" + END  # "#" is 0, digit v is v + 1, "=" is 11


@dataclass(frozen=True)
class Adding(Task):
    kind: ClassVar[str] = "adding"
    properties: ClassVar[tuple[str, ...]] = ("since_start",)
    digits: int = 50

    def __post_init__(self) -> None:
        check_range(self, "digits", 2, 4000)

    @property
    def vocab(self) -> str:
        return VOCAB

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(str(s) for s in range(19))

    @property
    def seq_len(self) -> int:
        return self.digits + 3

    @property
    def metric(self) -> Metric:
        return accuracy_metric("chance", 0.1)  # P(sum = 9) = 10/100

    def sample(self, rng: np.random.Generator, n: int, split: Split = "train"
               ) -> tuple[np.ndarray, np.ndarray]:
        """tokens (digits + 3, n); targets: the marked digits' sum at the last step."""
        m, T = self.digits, self.seq_len
        values = rng.integers(0, 10, (m, n))
        first = rng.integers(0, m // 2, n)  # indices among the digits
        second = rng.integers(m // 2, m, n)
        cols = np.arange(n)
        p = np.arange(m)[:, None]
        # digit p lands after every mark inserted before it: p + [p ≥ first] + [p ≥ second]
        where = p + (p >= first) + (p >= second)
        tokens = np.empty((T, n), np.int64)
        tokens[where, cols] = values + 1
        tokens[first, cols] = 0  # "#" right before the first marked digit
        tokens[second + 1, cols] = 0  # … and before the second, shifted by the first mark
        tokens[T - 1] = len(VOCAB) - 1
        targets = np.full((T, n), NO_TARGET, np.int64)
        targets[T - 1] = values[first, cols] + values[second, cols]
        return tokens, targets

    def _targets(self, text: str) -> list[int | None]:
        if not text.endswith(END) or text.count(END) != 1:
            raise ValueError(f"an adding-problem text ends with {END!r}, once, where the sum "
                             "is asked")
        marks = [i for i, ch in enumerate(text) if ch == MARK]
        if len(marks) != 2:
            raise ValueError(f"an adding-problem text marks exactly two digits with {MARK!r}; "
                             f"this one has {len(marks)} marks")
        if any(not text[i + 1].isdigit() for i in marks):
            raise ValueError(f"each {MARK!r} must come right before the digit it marks")
        total = sum(int(text[i + 1]) for i in marks)
        return [None] * (len(text) - 1) + [total]

    def describe(self) -> str:
        return (f"the adding problem: {self.digits} uniform random digits; '#' marks one digit "
                "in the first half and one in the second half; '=' ends the text; the only "
                "target, at '=', is the sum of the two marked digits as a class 0..18. "
                "Sequences are drawn from a seeded numpy Generator.")
