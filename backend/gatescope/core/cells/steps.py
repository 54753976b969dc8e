"""What the cells' step loops share: sigmoid gates held negated through the forward loop, and
the walk back through the steps in backpropagation through time.

Shapes: T steps, N sequences, H hidden units, G gate blocks.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def negate_sigmoid_blocks(xw: np.ndarray, W_hhT: np.ndarray, blocks: tuple[slice, ...]
                          ) -> np.ndarray:
    """Flip the sign of the sigmoid gates' columns: xw (T, N, G·H) in place, and a flipped
    copy of W_hhT (H, G·H), returned. The step then gets −x for those gates from its one
    product, so σ(x) = 1 / (1 + e^(−x)) is exp, add, reciprocal with no negation; negation
    is exact, so nothing else changes. Undo on the pre-activations with restore_sigmoid_blocks.
    """
    flip = np.ones(W_hhT.shape[-1], W_hhT.dtype)
    for block in blocks:
        flip[block] = -1.0
    np.multiply(xw, flip, xw)
    return W_hhT * flip


def restore_sigmoid_blocks(pre: np.ndarray, blocks: tuple[slice, ...]) -> None:
    """pre (T, N, G·H) back to the true pre-activations: 0 − (−x) = x exactly, and a zero
    comes back +0, as PyTorch's sums give it (not the −0 a negation would leave)."""
    for block in blocks:
        np.subtract(0.0, pre[..., block], pre[..., block])


def detached(T: int, truncate: int | None) -> np.ndarray:
    """(T,) bool: steps whose entering state truncated BPTT detaches — t a positive
    multiple of the window k (values carry on, gradients stop)."""
    out = np.zeros(T, dtype=bool)
    if truncate is not None:
        out[truncate::truncate] = True
    return out


def back_through_time(dh_ext: np.ndarray, dH: np.ndarray, truncate: int | None
                      ) -> tuple[np.ndarray, Iterator[tuple]]:
    """The steps of one layer's BPTT, t = T−1 … 0, and the (N, H) array that receives
    ∂L/∂h_{−1}, the initial state's gradient.

    Each step yields (ext, reached, cut, dh, dh_prev):
        ext      (N, H) ∂L/∂h_t from outside the recurrence (the loss or the layer above);
        reached  whether ext is not all zero (a loss on h_{T−1} reaches only the last step);
        cut      whether the state entering t is detached (truncated BPTT);
        dh       dH[t]: it already holds ∂L/∂h_t from step t+1 and gains ext there, so dH
                 doubles as the carry between steps (row T−1 starts at 0);
        dh_prev  where the step writes ∂L/∂h_{t−1}: dH[t−1], or the returned array at t = 0.
    """
    T, N, H = dH.shape
    dh0 = np.zeros((N, H), dH.dtype)
    dH[-1] = 0.0
    reached = np.asarray(dh_ext.any(axis=(1, 2)))
    carry_to = [dh0, *dH[:-1]]
    return dh0, zip(dh_ext[::-1], reached[::-1], detached(T, truncate)[::-1], dH[::-1],
                    carry_to[::-1], strict=True)
