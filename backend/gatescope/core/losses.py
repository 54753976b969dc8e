"""Losses on a layer's hidden states, and their gradient ∂L/∂h_t (and ∂L/∂c_t).

Each takes h: (T, N, H) and returns (L, dh) with dh: (T, N, H). With N sequences the loss
is summed over them, so each sequence's gradients are those of its own loss.
"""

from __future__ import annotations

import numpy as np


def last_hidden_sum(h: np.ndarray) -> tuple[float, np.ndarray]:
    """L = Σ_j h_{T−1}[j]."""
    dh = np.zeros_like(h)
    dh[-1] = 1.0
    return float(h[-1].sum()), dh


def hidden_unit(h: np.ndarray, step: int, unit: int) -> tuple[float, np.ndarray]:
    """L = h_step[unit]."""
    dh = np.zeros_like(h)
    dh[step, :, unit] = 1.0
    return float(h[step, :, unit].sum()), dh


def all_hidden_sum(h: np.ndarray) -> tuple[float, np.ndarray]:
    """L = Σ_t Σ_j h_t[j]."""
    return float(h.sum()), np.ones_like(h)


def mse(h: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """L = ½ Σ_t ‖h_t − y_t‖²; targets: (T, N, H) or (T, H)."""
    diff = h - targets.reshape(h.shape[0], -1, h.shape[2])
    return float(0.5 * np.sum(diff * diff)), diff


def upstream(h: np.ndarray, c: np.ndarray | None, dh: np.ndarray | None, dc: np.ndarray | None
             ) -> tuple[float, np.ndarray, np.ndarray | None]:
    """L = Σ_t ⟨dh_t, h_t⟩ + ⟨dc_t, c_t⟩: an upstream gradient, given (a custom head's).
    h, dh: (T, N, W); c, dc: (T, N, Hc) or None. Returns (L, ∂L/∂h = dh, ∂L/∂c = dc)."""
    loss = 0.0
    if dh is not None:
        loss += float(np.vdot(dh, h))
    if dc is not None and c is not None:
        loss += float(np.vdot(dc, c))
    return loss, (np.zeros_like(h) if dh is None else dh), dc
