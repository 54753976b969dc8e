"""Elementwise helpers shared by the cells and the request checks."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import invalid


def dsigmoid(s: np.ndarray) -> np.ndarray:
    """σ'(x) from s = σ(x): s ⊙ (1 − s)."""
    return s * (1.0 - s)


def dtanh(t: np.ndarray) -> np.ndarray:
    """tanh'(x) from t = tanh(x): 1 − t²."""
    return 1.0 - t * t


def finite_array(values: Any, dtype: np.dtype, loc: tuple[str | int, ...]) -> np.ndarray:
    """`values` as an array of `dtype`; a number beyond the dtype's range (float32 holds
    ±3.4e38) is a ValidationError at `loc`, not an infinity that surfaces later."""
    with np.errstate(over="ignore"):
        a = np.asarray(values, dtype=dtype)
    if not np.isfinite(a).all():
        raise invalid(loc, f"holds a number beyond the range of {np.dtype(dtype).name} "
                      f"(±{np.finfo(dtype).max:.3g}); use dtype float64 or smaller numbers")
    return a


def all_finite(a: np.ndarray) -> bool:
    """Whether every entry is finite, without a temporary the size of `a`: NaN and ±inf
    carry through a sum, so a finite sum settles it; a sum that overflowed from large finite
    values is checked entry by entry."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(a.sum()):
            return True
    return bool(np.isfinite(a).all())
