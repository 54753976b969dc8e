"""Interventions inside a step: replace chosen units of a gate, c or h with a value right
after it is computed, so everything downstream uses the replaced value."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Clamp(NamedTuple):
    """target: a gate name, "c" or "h"; units: indices (or a slice for all); value."""

    target: str
    units: np.ndarray | slice
    value: float


def apply(clamps: tuple[Clamp, ...], computed: dict[str, np.ndarray]) -> None:
    """Replace, in list order, the units of each clamp whose target was just computed.

    computed: target name → its (N, H) view in the trace.
    """
    for clamp in clamps:
        view = computed.get(clamp.target)
        if view is not None:
            view[:, clamp.units] = clamp.value


StepClamps = list[tuple[Clamp, ...]]  # one tuple per step: that step's interventions
