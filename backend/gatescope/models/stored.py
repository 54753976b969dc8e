"""A model as a run loads it from a store, and what a store must offer a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..core.params import StateDict


@dataclass
class StoredModel:
    """A model as loaded from a store: cell name, the RNN's state_dict, and optionally its
    vocab, a readout {"readout.weight": (K, H), "readout.bias": (K,)} with K output labels,
    the task it was trained on and its model card."""

    cell: str
    tensors: StateDict
    vocab: str | None = None
    readout: StateDict | None = None
    labels: list[str] | None = None
    task: str | None = None
    card: dict[str, Any] | None = None


class ModelSource(Protocol):
    """Where a run finds a `weights.model_id` (models/store.py's ModelStore)."""

    def load(self, model_id: str) -> StoredModel: ...
