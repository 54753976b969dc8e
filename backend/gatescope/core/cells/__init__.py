"""The four recurrent cells, each a forward / backward pair over the steps of one layer, with
a named cache per step (lstm.py, gru.py, rnn.py), behind one base class (base.py).

`CELLS[name]` is the cell the contract calls `name`.
"""

from __future__ import annotations

from .base import Cell, Factors, Trace, head
from .gru import GRU
from .lstm import LSTM
from .rnn import RNN

CELLS: dict[str, Cell] = {
    "lstm": LSTM(),
    "gru": GRU(),
    "rnn_tanh": RNN(relu=False),
    "rnn_relu": RNN(relu=True),
}

__all__ = ["CELLS", "GRU", "LSTM", "RNN", "Cell", "Factors", "Trace", "head"]
