"""Elementwise helpers shared by the cells, the Jacobians and the encoders."""

from __future__ import annotations

import numpy as np


def dsigmoid(s: np.ndarray) -> np.ndarray:
    """σ'(x) from s = σ(x): s ⊙ (1 − s)."""
    return s * (1.0 - s)


def dtanh(t: np.ndarray) -> np.ndarray:
    """tanh'(x) from t = tanh(x): 1 − t²."""
    return 1.0 - t * t


def all_finite(a: np.ndarray) -> bool:
    """Whether every entry is finite, without a temporary the size of `a`: NaN and ±inf
    carry through a sum, so a finite sum settles it; a sum that overflowed from large finite
    values is checked entry by entry."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(a.sum()):
            return True
    return bool(np.isfinite(a).all())
