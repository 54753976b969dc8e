"""Elementwise functions shared by the cells, exact and quiet for any finite or infinite input."""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ(x) = 1 / (1 + e^(−x)), computed without overflow for any x.

    e = e^(−|x|) lies in (0, 1], so nothing overflows: σ(|x|) = 1 / (1 + e), and for
    negative x, σ(x) = 1 − σ(|x|) = e / (1 + e), computed as a product (no cancellation,
    so σ(−40) ≈ 4.2e−18 keeps its digits, as PyTorch's does).
    """
    e = np.exp(-np.abs(x))
    out = np.divide(1.0, 1.0 + e, out=out)
    np.multiply(e, out, out=out, where=x < 0)
    return out


def dsigmoid(s: np.ndarray) -> np.ndarray:
    """σ'(x) from s = σ(x): s ⊙ (1 − s)."""
    return s * (1.0 - s)


def dtanh(t: np.ndarray) -> np.ndarray:
    """tanh'(x) from t = tanh(x): 1 − t²."""
    return 1.0 - t * t
