"""torch.nn.utils.clip_grad_norm_ in NumPy: the `clip` of a /run request and the trainer's
clipping are this one function."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def coefficient(total: float, max_norm: float, dtype: np.dtype) -> float:
    """min(1, max_norm / (total + 1e−6)), computed in `dtype` as torch does."""
    t = np.dtype(dtype).type
    return float(min(t(max_norm) / (t(total) + t(1e-6)), t(1.0)))


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Scale every gradient in place as torch.nn.utils.clip_grad_norm_ does; returns the
    total norm before clipping.

        total = ‖(‖g_1‖₂, ‖g_2‖₂, …)‖₂,   g ← g · min(1, max_norm / (total + 1e−6))

    computed in the gradients' dtype, as torch does.
    """
    dtype = next(iter(grads.values())).dtype
    norms = np.array([np.linalg.norm(g.ravel()) for g in grads.values()], dtype)
    total = float(np.linalg.norm(norms))
    coef = dtype.type(coefficient(total, max_norm, dtype))
    if coef < 1:  # torch multiplies by 1.0 too, which changes nothing
        for g in grads.values():
            g *= coef
    return float(total)
