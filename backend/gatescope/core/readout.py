"""A linear readout (the model's head) on the top layer, as torch.nn.Linear, and the losses
on it: cross-entropy over K classes, or binary cross-entropy for a one-output head (K = 1).

Shapes: T steps, N sequences, H hidden size, K classes (`readout.weight` is K×H).
Class targets are indices, or −1 where a step has no target (the contract's null); binary
targets are numbers in [0, 1], NaN where none.
"""

from __future__ import annotations

import numpy as np

WEIGHT = "readout.weight"
BIAS = "readout.bias"
NO_TARGET = -1


def logits(h: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z_t = W h_t + b. h: (T, N, H) → (T, N, K)."""
    T, N, H = h.shape
    return (h.reshape(T * N, H) @ W.T + b).reshape(T, N, -1)


def softmax(z: np.ndarray) -> np.ndarray:
    """p = exp(z − max z) / Σ exp(z − max z) over the last axis: stable for any finite z."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy(z: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """L = mean over the steps with a target of −log softmax(z_t)[k_t], per sequence, summed
    over the N sequences (so each sequence's gradients are those of its own loss).

    z: (T, N, K); targets: (T, N) ints, NO_TARGET where none. Returns (L, ∂L/∂z).
    ∂L/∂z_t = (p_t − onehot(k_t)) / n, n = the sequence's number of targeted steps.
    """
    has = targets != NO_TARGET
    count = has.sum(axis=0)  # (N,) targeted steps per sequence
    if not count.all():
        raise ValueError("every sequence needs at least one step with a target")
    shifted = z - z.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    k = np.where(has, targets, 0)
    picked = np.take_along_axis(log_p, k[..., None], axis=-1)[..., 0]  # (T, N)
    loss = float(-(np.where(has, picked, 0.0).sum(axis=0) / count).sum())
    dz = np.exp(log_p)
    t_idx, n_idx = np.nonzero(has)
    dz[t_idx, n_idx, k[t_idx, n_idx]] -= 1.0
    dz *= (has / count)[..., None]  # steps without a target pass no gradient
    return loss, dz


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^(−z)), computed as e^z / (1 + e^z) for z < 0 so no e^(−z)
    overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def bce_with_logits(z: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """L = mean over the steps with a target of −[y log σ(z) + (1 − y) log(1 − σ(z))] per
    sequence, summed over the N sequences, as torch's binary_cross_entropy_with_logits.

    z: (T, N, 1); targets: (T, N) floats in [0, 1], NaN where a step has none.
    Computed as max(z, 0) − z·y + log(1 + e^(−|z|)), finite for any finite z.
    Returns (L, ∂L/∂z), ∂L/∂z_t = (σ(z_t) − y_t) / n, n = the sequence's targeted steps.
    """
    has = ~np.isnan(targets)
    count = has.sum(axis=0)
    if not count.all():
        raise ValueError("every sequence needs at least one step with a target")
    zz = z[..., 0]
    y = np.where(has, targets, 0.0)
    per_step = np.maximum(zz, 0) - zz * y + np.log1p(np.exp(-np.abs(zz)))
    loss = float((np.where(has, per_step, 0.0).sum(axis=0) / count).sum())
    dz = np.where(has, (sigmoid(zz) - y) / count, 0.0)[..., None]
    return loss, dz.astype(z.dtype, copy=False)


def backward(dz: np.ndarray, h: np.ndarray, W: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From ∂L/∂z (T, N, K) to ∂L/∂h (T, N, H), ∂L/∂W (K, H) = Σ dz_tᵀ h_t, ∂L/∂b (K)."""
    T, N, K = dz.shape
    flat = dz.reshape(T * N, K)
    return (flat @ W).reshape(T, N, -1), flat.T @ h.reshape(T * N, -1), flat.sum(axis=0)
