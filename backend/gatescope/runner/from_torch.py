"""A live torch.nn.Module (or its state_dict) as a gatescope model, in memory: the same parts,
checks and description as an upload of its file, with nothing written and nothing pickled.

    model = gatescope.from_torch(net, vocab="abc")
    model.info                                    # what was found, and what was ignored
    model.run({"input": {"tokens": [0, 2, 1]}})   # a RunResult, gradients under net's names

torch is imported by the caller, not here: this module only reads what it is handed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..contract.errors import ModelNotFoundError
from ..contract.limits import Limits
from ..contract.responses import ModelInfo
from ..contract.results import RunResult
from ..models.checks import content_id, describe
from ..models.files import ModelFile, ModelFileError
from ..models.layout import ANY, Choice, rnn_name
from ..models.stored import StoredModel
from .pipeline import run


@dataclass
class TorchModel:
    """A model made from a torch module: `info` its description (as `GET /models/{id}`),
    `stored` its tensors; a ModelSource holding only itself, under info.model_id."""

    info: ModelInfo
    stored: StoredModel

    @property
    def model_id(self) -> str:
        return self.info.model_id

    def load(self, model_id: str) -> StoredModel:
        if model_id != self.info.model_id:
            raise ModelNotFoundError(f"this model is {self.info.model_id!r}, not {model_id!r}")
        return self.stored

    def run(self, request: Mapping[str, Any], **options: Any) -> RunResult:
        """gatescope.run of `request` with this model's weights."""
        return run({**request, "weights": {"model_id": self.model_id}}, models=self,
                   **options)


def from_torch(module: Any, vocab: str | None = None, cell: str | None = None,
               embedding: str | None = None, rnn: str | None = None, head: str | None = None,
               name: str | None = None, limits: Limits | None = None) -> TorchModel:
    """The model of a torch.nn.Module, or of its state_dict (a mapping of name → tensor).

    The parts are found as in an upload (models/layout.py); `embedding`, `rnn` and `head`
    choose among several. A module tells a plain RNN's nonlinearity itself; a state_dict
    cannot, so `cell` ("rnn_tanh" or "rnn_relu") must. Raises ModelFileError (as an upload
    would be refused) or pydantic.ValidationError.
    """
    state = module.state_dict() if hasattr(module, "state_dict") else module
    tensors: dict[str, np.ndarray] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    others: list[str] = []
    tied = _tied(state)
    for key, value in state.items():
        array = _numpy(value)
        shapes[key] = tuple(array.shape)
        if array.ndim in (1, 2) and array.dtype.kind == "f":
            tensors[key] = array
        else:
            others.append(key)
    parsed = ModelFile(tensors, format="safetensors", others=others, shapes=shapes)
    choice = Choice(embedding, rnn, head)
    if cell is None and hasattr(module, "named_modules"):
        cell = _nonlinearity(module, rnn_name(parsed, choice))
    info, stored = describe(parsed, limits or Limits(), cell, vocab, choice)
    if tied and stored.names is not None:
        # one parameter under two names (a tied embedding and head): its gradient is the sum
        # of both uses, under its first name, as named_parameters() has it
        stored.names = {inside: tied.get(name, name) for inside, name in stored.names.items()}
    digest = b"".join(np.ascontiguousarray(tensors[k]).tobytes() + k.encode()
                      for k in sorted(tensors))
    model_id = content_id(digest, info.cell, info.vocab, choice if choice.given() else ANY)
    info = info.model_copy(update={"model_id": model_id, "name": name or model_id,
                                   "bytes": len(digest)})
    return TorchModel(info, stored)


def _tied(state: Mapping[str, Any]) -> dict[str, str]:
    """{later name: first name} of the entries that are one tensor under two names (same
    memory, shape and strides), as torch ties weights."""
    first: dict[tuple[Any, ...], str] = {}
    out = {}
    for key, value in state.items():
        if hasattr(value, "data_ptr"):
            where = (value.data_ptr(), tuple(value.shape), tuple(value.stride()))
        else:
            a = np.asarray(value)
            where = (a.__array_interface__["data"][0], a.shape, a.strides)
        if where in first:
            out[key] = first[where]
        else:
            first[where] = key
    return out


def _nonlinearity(module: Any, rnn: str | None) -> str | None:
    """rnn_tanh / rnn_relu from an nn.RNN or nn.RNNCell's `nonlinearity`; None for an LSTM,
    a GRU, or a name no submodule has (then the tensors decide, or the error asks). Stacked
    cells must agree: gatescope runs one nonlinearity in every layer."""
    if rnn is None:
        return None
    modules = dict(module.named_modules())
    found = [modules.get(rnn.replace("{k}", str(k))) for k in range(100)] if "{k}" in rnn \
        else [modules.get(rnn)]
    kinds = {getattr(m, "nonlinearity", None) for m in found if m is not None}
    if len(kinds) > 1:
        mixed = ", ".join(sorted(map(str, kinds)))
        raise ModelFileError(f"the cells {rnn!r} mix nonlinearities ({mixed}); gatescope runs "
                             "one in every layer")
    nonlinearity = next(iter(kinds), None)
    return f"rnn_{nonlinearity}" if nonlinearity in ("tanh", "relu") else None


def _numpy(value: Any) -> np.ndarray:
    """A tensor (on any device, with or without grad) or an array, as a NumPy array; bfloat16
    and other dtypes NumPy lacks become float32, as tensor.float() would."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.bfloat16",):
            value = value.float()
        return np.asarray(value.numpy())
    return np.asarray(value)
