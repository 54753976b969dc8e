"""Bracket depth: after each character, how deeply nested the text is.

    text:    ( ( . ) ( ( . ) . ) ) ( …
    target:  1 2 2 1 2 3 3 2 2 1 0 1 …      every step: the depth after this character

A text is a random walk on depth 0..max_depth: each character is "." (filler) with
probability 1/5, else "(" or ")" with even odds; "(" when nothing is open, ")" at
max_depth. So texts stay well-formed except that they may end with brackets still open.
The classes are the depths 0..max_depth; a model must count, and count back down. The
baseline is the accuracy of always answering the most frequent depth, computed exactly
from the walk's Markov chain. Default `bracket_depth:length=40,max_depth=4`.

targets() accepts any text over "()." whose depth stays within 0..max_depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from .base import Metric, Split, Task, accuracy_metric, check_range

VOCAB = "()."  # "(" is 0, ")" is 1, "." is 2
P_FILLER = 0.2


@dataclass(frozen=True)
class BracketDepth(Task):
    kind: ClassVar[str] = "bracket_depth"
    properties: ClassVar[tuple[str, ...]] = ("depth",)
    length: int = 40
    max_depth: int = 4

    def __post_init__(self) -> None:
        check_range(self, "length", 1, 4000)
        check_range(self, "max_depth", 1, 100)

    @property
    def vocab(self) -> str:
        return VOCAB

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(str(k) for k in range(self.max_depth + 1))

    @property
    def seq_len(self) -> int:
        return self.length

    @property
    def metric(self) -> Metric:
        return accuracy_metric("most frequent depth", self._majority)

    @cached_property
    def _majority(self) -> float:
        """max_k (1/T) Σ_t P(depth_t = k): the walk's distributions π_t = π_{t−1} P."""
        M = self.max_depth
        P = np.diag(np.full(M + 1, P_FILLER))  # P[a, b] = P(depth b after depth a)
        for k in range(M + 1):
            up = 1.0 if k == 0 else 0.0 if k == M else 0.5
            if k < M:
                P[k, k + 1] = (1 - P_FILLER) * up
            if k > 0:
                P[k, k - 1] = (1 - P_FILLER) * (1 - up)
        pi = np.eye(M + 1)[0]
        mean = np.zeros(M + 1)
        for _ in range(self.length):
            pi = pi @ P
            mean += pi / self.length
        return float(mean.max())

    def sample(self, rng: np.random.Generator, n: int, split: Split = "train"
               ) -> tuple[np.ndarray, np.ndarray]:
        """tokens (length, n) and the depth after every character (length, n)."""
        T = self.length
        filler = rng.random((T, n)) < P_FILLER
        wants_open = rng.random((T, n)) < 0.5
        tokens = np.empty((T, n), np.int64)
        targets = np.empty((T, n), np.int64)
        depth = np.zeros(n, np.int64)
        for t in range(T):  # a walk: each step depends on the last depth (n at once)
            opens = ~filler[t] & ((wants_open[t] & (depth < self.max_depth)) | (depth == 0))
            closes = ~filler[t] & ~opens
            tokens[t] = np.where(filler[t], 2, np.where(opens, 0, 1))
            depth += opens.astype(np.int64) - closes
            targets[t] = depth
        return tokens, targets

    def _targets(self, text: str) -> list[int | None]:
        depth = 0
        out: list[int | None] = []
        for t, ch in enumerate(text):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth < 0:
                raise ValueError(f"')' at position {t} closes a bracket that was never opened")
            if depth > self.max_depth:
                raise ValueError(f"'(' at position {t} nests {depth} deep, beyond this task's "
                                 f"max_depth of {self.max_depth}")
            out.append(depth)
        return out

    def describe(self) -> str:
        return (f"bracket depth: {self.length} characters of a random walk over '(', ')' and "
                f"'.' (filler, p = {P_FILLER}) with depth kept in 0..{self.max_depth}; the "
                "target at every step is the nesting depth after that character. Sequences "
                "are drawn from a seeded numpy Generator.")
