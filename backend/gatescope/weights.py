"""Weights in PyTorch's state_dict layout: default init from a seed, or given tensors.

For layer k: weight_ih_l{k} (G·H, D_k), weight_hh_l{k} (G·H, H), bias_ih_l{k} (G·H),
bias_hh_l{k} (G·H), with D_0 = D and D_k = H above, and G gate blocks in PyTorch's order
(LSTM i, f, g, o; GRU r, z, n; RNN one block). A model may add a readout on the top layer,
as torch.nn.Linear names it: readout.weight (K, H), readout.bias (K).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import ValidationError

from .cells import Cell
from .engine import StateDict, param_names
from .errors import invalid
from .numerics import finite_array
from .readout import BIAS, WEIGHT

_NAME = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh)_l([0-9]{1,2})")


def shapes(cell: Cell, D: int, H: int, L: int) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, in state_dict order."""
    G = cell.blocks
    out: dict[str, tuple[int, ...]] = {}
    for k in range(L):
        w_ih, w_hh, b_ih, b_hh = param_names(k)
        out[w_ih] = (G * H, D if k == 0 else H)
        out[w_hh] = (G * H, H)
        out[b_ih] = (G * H,)
        out[b_hh] = (G * H,)
    return out


def pytorch_init(cell: Cell, D: int, H: int, L: int, seed: int,
                 forget_bias: float | None, dtype: np.dtype,
                 recurrent_scale: float = 1.0) -> StateDict:
    """PyTorch's default init: every tensor from U(−1/√H, 1/√H), drawn in state_dict order
    from one `np.random.default_rng(seed)` (in float64, then cast, so float32 and float64
    runs share their weights). `forget_bias` is added to b_if and b_hf (LSTM);
    `recurrent_scale` multiplies every weight_hh (to provoke exploding gradients)."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(H)
    params = {}
    for name, shape in shapes(cell, D, H, L).items():
        drawn = rng.uniform(-bound, bound, shape)
        if name.startswith("weight_hh"):
            drawn *= recurrent_scale
        params[name] = drawn.astype(dtype)
    if forget_bias is not None:
        for k in range(L):
            for name in param_names(k)[2:]:
                params[name][H:2 * H] += forget_bias
    return params


def infer_sizes(tensors: Mapping[str, Any], loc: tuple[str, ...]) -> tuple[int, int]:
    """(H, L) from the names and weight_hh_l0's shape; checks the names form layers 0..L−1."""
    layers = set()
    for name in tensors:
        m = _NAME.fullmatch(name)
        if m is None:
            raise invalid((*loc, name), f"{name!r} is not a tensor of a recurrent layer; expected "
                          "weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (and "
                          f"optionally {WEIGHT}, {BIAS})", name)
        layers.add(int(m.group(2)))
    L = max(layers, default=-1) + 1
    if "weight_hh_l0" not in tensors:
        raise invalid((*loc, "weight_hh_l0"), "weight_hh_l0 is missing", None)
    w_hh = np.shape(tensors["weight_hh_l0"])
    if len(w_hh) != 2:
        raise invalid((*loc, "weight_hh_l0"), f"weight_hh_l0 must be a matrix (G·H, H), got "
                      f"shape {w_hh}", None)
    return w_hh[1], L


def check_state_dict(cell: Cell, tensors: Mapping[str, np.ndarray], D: int, H: int, L: int,
                     loc: tuple[str, ...]) -> None:
    """Every tensor present with its shape, nothing else."""
    expected = shapes(cell, D, H, L)
    for name in expected:
        if name not in tensors:
            raise invalid((*loc, name), f"{name} is missing: a {L}-layer {cell.name} needs "
                          f"{', '.join(expected)}", None)
    for name, shape in expected.items():
        got = tuple(np.shape(tensors[name]))
        if got != shape:
            raise invalid((*loc, name), f"{name} has shape {got}, but a {cell.name} with "
                          f"input size {D} and hidden size {H} needs {shape}", None)
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise invalid((*loc, extra[0]), f"unexpected tensor {extra[0]!r} for a {L}-layer "
                      f"{cell.name}", None)


def as_arrays(tensors: Mapping[str, Any], dtype: np.dtype, loc: tuple[str, ...]) -> StateDict:
    """Nested lists or arrays → arrays of `dtype`; a ragged list, or a number beyond the
    dtype's range, is a clear error."""
    out = {}
    for name, value in tensors.items():
        try:
            out[name] = finite_array(value, dtype, (*loc, name))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise
            raise invalid((*loc, name), f"{name} is ragged: every row must have the same "
                          "length", None) from None
    return out


def split_readout(tensors: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the recurrent layers' tensors, the readout's {readout.weight, readout.bias} or None
    when neither is given)."""
    rnn = {k: v for k, v in tensors.items() if k not in (WEIGHT, BIAS)}
    readout = {k: tensors[k] for k in (WEIGHT, BIAS) if k in tensors}
    return rnn, readout or None


def check_readout(readout: Mapping[str, Any], H: int, max_classes: int,
                  loc: tuple[str, ...]) -> int:
    """readout.weight must be K×H (H: the top layer's hidden size), readout.bias K, with
    1 ≤ K ≤ max_classes. Returns K."""
    for name in (WEIGHT, BIAS):
        if name not in readout:
            other = BIAS if name == WEIGHT else WEIGHT
            raise invalid((*loc, name), f"{name} is missing: a readout needs both {WEIGHT} "
                          f"(K×H) and {BIAS} (K), and {other} is given", None)
    w_shape, b_shape = np.shape(readout[WEIGHT]), np.shape(readout[BIAS])
    if len(w_shape) != 2 or w_shape[1] != H:
        raise invalid((*loc, WEIGHT), f"{WEIGHT} has shape {w_shape}, but a readout on a top "
                      f"layer of hidden size {H} must be K×H = (K, {H})", None)
    K = w_shape[0]
    if not 1 <= K <= max_classes:
        raise invalid((*loc, WEIGHT), f"{WEIGHT} has {K} rows: a readout has 1 to "
                      f"{max_classes} outputs (K)", None)
    if b_shape != (K,):
        raise invalid((*loc, BIAS), f"{BIAS} has shape {b_shape}, but {WEIGHT} has K = {K} "
                      f"rows, so it must be ({K},)", None)
    return K
