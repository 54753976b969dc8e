"""A model as a run loads it from a store, and what a store must offer a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..core.params import StateDict


@dataclass
class StoredModel:
    """A model as loaded from a store: cell name, the RNN's state_dict (torch.nn.LSTM's
    plain names), and optionally its vocab, a head {"readout.weight": (K, H),
    "readout.bias": (K,)} with K output labels, the task it was trained on, its model card,
    an embedding (V, E) in front, and `names`: gatescope's name of each tensor → the file's
    (embedding.weight, weight_ih_l0, readout.weight, …; None: the file's are these);
    directions 2 for a bidirectional RNN (weight_ih_l{k}_reverse, …)."""

    cell: str
    tensors: StateDict
    vocab: str | None = None
    readout: StateDict | None = None
    labels: list[str] | None = None
    task: str | None = None
    card: dict[str, Any] | None = None
    embedding: np.ndarray | None = None
    names: dict[str, str] | None = None
    directions: int = 1  # 2: a bidirectional RNN


class ModelSource(Protocol):
    """Where a run finds a `weights.model_id` (models/store.py's ModelStore)."""

    def load(self, model_id: str) -> StoredModel: ...
