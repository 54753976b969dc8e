"""Elementwise functions shared by the cells: exact, and quiet for any input."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import invalid


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ(x) = 1 / (1 + e^(−x)), PyTorch's own formula, without overflow for any x.

    The formula keeps full relative precision in both tails (σ(−40) ≈ 4.2e−18 keeps its
    digits). e^(−x) overflows only for x < −log(max float); when any such x is present the
    whole array goes through e^(−|x|) ∈ (0, 1] instead, which never overflows.
    """
    if x.size and x.min() < -_EXP_SAFE[x.dtype.char]:
        e = np.exp(-np.abs(x))
        out = np.divide(1.0, 1.0 + e, out=out)  # σ(|x|)
        np.multiply(e, out, out=out, where=x < 0)  # σ(x) = e^(−|x|) σ(|x|) for x < 0
        return out
    out = np.negative(x, out=out)
    np.exp(out, out=out)
    np.add(out, 1.0, out=out)
    return np.reciprocal(out, out=out)


_EXP_SAFE = {"f": 88.0, "d": 709.0, "e": 11.0, "g": 11356.0}  # e^x < max float below these


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
