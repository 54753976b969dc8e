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
        return statistics.median(self.all(name))

    def all(self, name: str) -> list[float]:
        return [t for r in self.rounds for t in r[name]]

    def ratio(self, a: str, b: str) -> float:
        """a's time over b's: the ratio of their medians over every timed call."""
        return self.median(a) / self.median(b)

    def best_ratio(self, a: str, b: str) -> float:
        """The ratio of their fastest calls: noise only ever adds time, so this is each
        one's cost on a quiet machine."""
        return min(self.all(a)) / min(self.all(b))

    def round_ratios(self, a: str, b: str) -> list[float]:
        """median(a) / median(b) within each round: how much the VM's drift moves it."""
        return [statistics.median(r[a]) / statistics.median(r[b]) for r in self.rounds]


def median_times(contenders: dict[str, Callable[[], object]], rounds: int,
                 per_round: int = 3) -> dict[str, float]:
    """Median wall time (s) of each contender over `rounds` × `per_round` timed calls."""
    timings = Timings(contenders, rounds, per_round)
    return {name: timings.median(name) for name in contenders}


def percentile(xs: list[float], q: float) -> float:
    """The q-quantile (0 ≤ q ≤ 1) of xs by rank, without interpolation; NaN for none."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")
