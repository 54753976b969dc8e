"""Weights in PyTorch's state_dict layout: names, shapes, and PyTorch's default init.

For layer k: weight_ih_l{k} (G·H, D_k), weight_hh_l{k} (G·H, H), bias_ih_l{k} (G·H),
bias_hh_l{k} (G·H), with D_0 = D and D_k = H above, and G gate blocks in PyTorch's order
(LSTM i, f, g, o; GRU r, z, n; RNN one block). A model may add a readout on the top layer,
as torch.nn.Linear names it: readout.weight (K, H), readout.bias (K) (readout.py).
"""

from __future__ import annotations

import numpy as np

from .cells import Cell

StateDict = dict[str, np.ndarray]


def param_names(layer: int) -> tuple[str, str, str, str]:
    """PyTorch's state_dict names for one layer."""
    return (f"weight_ih_l{layer}", f"weight_hh_l{layer}", f"bias_ih_l{layer}", f"bias_hh_l{layer}")


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
                 forget_bias: float | None, dtype: np.dtype | type,
                 recurrent_scale: float = 1.0) -> StateDict:
    """PyTorch's default init: every tensor from U(−1/√H, 1/√H), drawn in state_dict order
    from one `np.random.default_rng(seed)` (in float64, then cast, so float32 and float64
    runs share their weights). `forget_bias` is added to b_if and b_hf (a cell with a forget
    gate f: the LSTM); `recurrent_scale` multiplies every weight_hh (to provoke exploding
    gradients)."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(H)
    params = {}
    for name, shape in shapes(cell, D, H, L).items():
        drawn = rng.uniform(-bound, bound, shape)
        if name.startswith("weight_hh"):
            drawn *= recurrent_scale
        params[name] = drawn.astype(dtype)
    if forget_bias is not None:
        if "f" not in cell.gates:
            raise ValueError(f"a {cell.name} has no forget gate to give a bias")
        f = cell.gates.index("f")
        for k in range(L):
            for name in param_names(k)[2:]:
                params[name][f * H:(f + 1) * H] += forget_bias
    return params
