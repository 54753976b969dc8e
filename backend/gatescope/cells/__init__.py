"""The four recurrent cells, each a step_forward / step_backward pair with a named cache.

`CELLS[name]` gathers what the engine needs to run any of them the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from . import gru, lstm, rnn

__all__ = ["CELLS", "Cell", "gru", "lstm", "rnn"]


def _same(da: np.ndarray, trace: Any) -> np.ndarray:
    return da


@dataclass(frozen=True)
class Cell:
    """One cell type: its gates in PyTorch's order and its step functions.

    blocks: G, the number of H-row blocks stacked in weight_ih/weight_hh (4, 3 or 1).
    new_trace(T, h0, c0): empty buffers for T steps of one layer, holding the initial state.
    split_recurrent_bias(b_hh) → (the part of b_hh folded into the input projection, the
        part the step adds itself, or None).
    step_forward(xw_t, W_hhT, b_step, step) and step_backward(local_t, dh, dc_next, W_hh,
        da_t): one step each way; see the cell modules.
    split: (…, G·H) → {gate name: (…, H)} views ({"a": …} for the RNN's pre-activation).
    recurrent_grad: ∂L/∂(W_hh h + b_hh) from ∂L/∂(pre-activations); they differ only in
        the GRU, whose n gate sees W_hn h + b_hn through r.
    """

    name: str
    gates: tuple[str, ...]
    blocks: int
    has_cell_state: bool
    new_trace: Callable[..., Any]
    split_recurrent_bias: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
    step_forward: Callable[..., None]
    step_backward: Callable[..., tuple]
    split: Callable[[np.ndarray], dict[str, np.ndarray]]
    recurrent_grad: Callable[[np.ndarray, Any], np.ndarray] = _same


CELLS: dict[str, Cell] = {
    "lstm": Cell("lstm", lstm.GATES, 4, True, lstm.Trace.empty, lstm.split_recurrent_bias,
                 lstm.step_forward, lstm.step_backward, lstm.split_gates),
    "gru": Cell("gru", gru.GATES, 3, False, gru.Trace.empty, gru.split_recurrent_bias,
                gru.step_forward, gru.step_backward, gru.split_gates, gru.recurrent_grad),
    "rnn_tanh": Cell("rnn_tanh", (), 1, False, rnn.Trace.empty, rnn.split_recurrent_bias,
                     rnn.step_forward,
                     rnn.step_backward, rnn.split),
    "rnn_relu": Cell("rnn_relu", (), 1, False, partial(rnn.Trace.empty, relu=True),
                     rnn.split_recurrent_bias,
                     partial(rnn.step_forward, relu=True), rnn.step_backward, rnn.split),
}
