"""Timing shared by the benchmark scripts (run as `python benchmarks/<name>.py`, so this
folder is on sys.path)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_times(contenders: dict[str, Callable[[], object]], rounds: int,
                 per_round: int = 3) -> dict[str, float]:
    """Median wall time (s) of each contender, over `rounds` × `per_round` timed calls.

    Each round runs every contender in a block: one untimed call first (so one library's
    spinning worker threads or evicted caches never bill the next contender), then
    `per_round` timed calls. Blocks alternate across rounds, so a slow spell of the machine
    (this VM's speed drifts by tens of percent) hits every contender alike.
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            fn()
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}
