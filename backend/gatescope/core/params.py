"""Weights in PyTorch's state_dict layout: names, shapes, and PyTorch's default init.

For layer k: weight_ih_l{k} (G·H, D_k), weight_hh_l{k} (G·H, H), bias_ih_l{k} (G·H),
bias_hh_l{k} (G·H), with D_0 = D and D_k = H above, and G gate blocks in PyTorch's order
(LSTM i, f, g, o; GRU r, z, n; RNN one block). A bidirectional layer has the same four
again with the suffix _reverse, and the layer above reads both: D_k = 2H. A model may add a
readout on the top layer, as torch.nn.Linear names it: readout.weight (K, H), readout.bias
(K) (readout.py).
"""

from __future__ import annotations

import numpy as np

from .cells import Cell

StateDict = dict[str, np.ndarray]


def param_names(layer: int, reverse: bool = False) -> tuple[str, str, str, str]:
    """PyTorch's state_dict names for one layer (and direction: "_reverse" for the reverse
    direction of a bidirectional layer)."""
    s = f"_l{layer}" + ("_reverse" if reverse else "")
    return (f"weight_ih{s}", f"weight_hh{s}", f"bias_ih{s}", f"bias_hh{s}")


def unit_names(unit: int, directions: int) -> tuple[str, str, str, str]:
    """The names of one of the L·directions (layer, direction) units, k·directions + d."""
    return param_names(unit // directions, unit % directions == 1)


def projection_name(unit: int, directions: int) -> str:
    """weight_hr_l{k}[_reverse]: an LSTM's projection (proj_size P), P×H."""
    return unit_names(unit, directions)[1].replace("weight_hh", "weight_hr", 1)


def shapes(cell: Cell, D: int, H: int, L: int, directions: int = 1, proj: int = 0
           ) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, in state_dict order (per layer, the forward direction's, then
    the reverse's). Layer k > 0 reads the layer below's directions·P outputs, P the
    projection size of an LSTM with proj_size (weight_hr P×H), else H."""
    G = cell.blocks
    P = proj or H
    out: dict[str, tuple[int, ...]] = {}
    for u in range(L * directions):
        w_ih, w_hh, b_ih, b_hh = unit_names(u, directions)
        out[w_ih] = (G * H, D if u < directions else directions * P)
        out[w_hh] = (G * H, P)
        out[b_ih] = (G * H,)
        out[b_hh] = (G * H,)
        if proj:
            out[projection_name(u, directions)] = (P, H)
    return out


def pytorch_init(cell: Cell, D: int, H: int, L: int, seed: int,
                 forget_bias: float | None, dtype: np.dtype | type,
                 recurrent_scale: float = 1.0, directions: int = 1) -> StateDict:
    """PyTorch's default init: every tensor from U(−1/√H, 1/√H), drawn in state_dict order
    from one `np.random.default_rng(seed)` (in float64, then cast, so float32 and float64
    runs share their weights). `forget_bias` is added to b_if and b_hf (a cell with a forget
    gate f: the LSTM); `recurrent_scale` multiplies every weight_hh (to provoke exploding
    gradients)."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(H)
    params = {}
    for name, shape in shapes(cell, D, H, L, directions).items():
        drawn = rng.uniform(-bound, bound, shape)
        if name.startswith("weight_hh"):
            drawn *= recurrent_scale
        params[name] = drawn.astype(dtype)
    if forget_bias is not None:
        if "f" not in cell.gates:
            raise ValueError(f"a {cell.name} has no forget gate to give a bias")
        f = cell.gates.index("f")
        for u in range(L * directions):
            for name in unit_names(u, directions)[2:]:
                params[name][f * H:(f + 1) * H] += forget_bias
    return params
