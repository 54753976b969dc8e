"""Timing shared by the benchmark scripts (run as `python benchmarks/<name>.py`, so this
folder is on sys.path)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


class Timings:
    """Wall times (s) of each contender, round by round.

    Each round runs every contender in a block: one untimed call first (so one library's
    spinning worker threads or evicted caches never bill the next contender), then
    `per_round` timed calls. Blocks alternate across rounds, so a slow spell of the machine
    (this VM's speed drifts by tens of percent within a minute) hits every contender alike.
    """

    def __init__(self, contenders: dict[str, Callable[[], object]], rounds: int,
                 per_round: int = 3) -> None:
        self.rounds: list[dict[str, list[float]]] = []
        for _ in range(rounds):
            this: dict[str, list[float]] = {}
            for name, fn in contenders.items():
                fn()
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    fn()
                    this.setdefault(name, []).append(time.perf_counter() - t0)
            self.rounds.append(this)

    def median(self, name: str) -> float:
        """Median over every timed call."""
        return statistics.median(t for r in self.rounds for t in r[name])

    def ratios(self, a: str, b: str) -> list[float]:
        """a's time over b's in each round: median(a) / median(b)."""
        return [statistics.median(r[a]) / statistics.median(r[b]) for r in self.rounds]

    def ratio(self, a: str, b: str) -> float:
        """a's time over b's, paired by round: the median of the per-round ratios. Drift
        between rounds cancels; only drift within one round's few seconds remains."""
        return statistics.median(self.ratios(a, b))


def median_times(contenders: dict[str, Callable[[], object]], rounds: int,
                 per_round: int = 3) -> dict[str, float]:
    """Median wall time (s) of each contender over `rounds` × `per_round` timed calls."""
    timings = Timings(contenders, rounds, per_round)
    return {name: timings.median(name) for name in contenders}
