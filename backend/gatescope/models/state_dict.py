"""A state_dict checked against a cell and its sizes: the same checks for tensors given inline
in a request and for an uploaded model file, each error a ValidationError at `loc` naming the
tensor and the shape it needs.

    infer_sizes(tensors, loc)          → (H, L, directions) from the names and weight_hh_l0
    check_state_dict(cell, tensors, D, H, L, loc, directions)  every tensor, with its shape
    check_readout(readout, H, max_classes, loc)  → K: readout.weight (K, H), readout.bias (K)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..contract.errors import invalid
from ..core.cells import Cell
from ..core.params import shapes
from ..core.readout import BIAS, WEIGHT

_NAME = re.compile(r"(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l([0-9]{1,2})(_reverse)?")


def infer_sizes(tensors: Mapping[str, Any], loc: tuple[str, ...]
                ) -> tuple[int, int, int, int]:
    """(H, L, directions, P) from the names and weight_hh_l0's shape: L is one past the
    highest layer named (a gap in the layers is check_state_dict's to find), directions 2
    where a name ends in _reverse, P an LSTM's proj_size from weight_hr_l0 (P×H; 0 without
    one). Every name must be a recurrent layer's."""
    layers = set()
    directions = 1
    for name in tensors:
        m = _NAME.fullmatch(name)
        if m is None:
            raise invalid((*loc, name), f"{name!r} is not a tensor of a recurrent layer; expected "
                          "weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (and "
                          f"optionally {WEIGHT}, {BIAS})", name)
        layers.add(int(m.group(2)))
        if m.group(3):
            directions = 2
    L = max(layers, default=-1) + 1
    if "weight_hh_l0" not in tensors:
        raise invalid((*loc, "weight_hh_l0"), "weight_hh_l0 is missing", None)
    w_hh = np.shape(tensors["weight_hh_l0"])
    if len(w_hh) != 2:
        raise invalid((*loc, "weight_hh_l0"), f"weight_hh_l0 must be a matrix (G·H, H), got "
                      f"shape {w_hh}", None)
    w_hr = np.shape(tensors.get("weight_hr_l0", ()))
    if len(w_hr) == 2:  # with a projection, weight_hh is 4H×P: H is weight_hr's width
        return w_hr[1], L, directions, w_hr[0]
    return w_hh[1], L, directions, 0


def check_state_dict(cell: Cell, tensors: Mapping[str, np.ndarray], D: int, H: int, L: int,
                     loc: tuple[str, ...], directions: int = 1, proj: int = 0) -> None:
    """Every tensor present with its shape, nothing else."""
    if proj and cell.name != "lstm":
        raise invalid((*loc, "weight_hr_l0"), f"weight_hr_l0 is an LSTM's projection "
                      f"(proj_size); a {cell.name} has none", None)
    if proj >= H:
        raise invalid((*loc, "weight_hr_l0"), f"weight_hr_l0 projects H = {H} units to "
                      f"proj_size {proj}: as in PyTorch, proj_size must be smaller than "
                      "hidden_size", None)
    expected = shapes(cell, D, H, L, directions, proj)
    what = (f"{L}-layer {'bidirectional ' if directions == 2 else ''}{cell.name}"
            + (f" with proj_size {proj}" if proj else ""))
    for name in expected:
        if name not in tensors:
            raise invalid((*loc, name), f"{name} is missing: a {what} needs "
                          f"{', '.join(expected)}", None)
    for name, shape in expected.items():
        got = tuple(np.shape(tensors[name]))
        if got != shape:
            raise invalid((*loc, name), f"{name} has shape {got}, but a {what} with "
                          f"input size {D} and hidden size {H} needs {shape}", None)
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise invalid((*loc, extra[0]), f"unexpected tensor {extra[0]!r} for a {what}", None)


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
