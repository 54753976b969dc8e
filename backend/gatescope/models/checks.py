"""A model file, checked: its bytes → the ModelInfo the store lists and the StoredModel a
run loads. Uploads and bundled presets go through the same checks.

    inspect(data, filename, limits, ...) → Checked(info, model)   every check, the id
    intact(info, data)                   → bool                   the bytes still have its id
    load(info, data)                     → StoredModel            a stored file, re-read

What a file may hold besides the RNN (files.py reads it):

    readout.weight (K, H), readout.bias (K)      a torch.nn.Linear on the top layer
    __metadata__ (safetensors, string values):   cell, vocab,
        labels  a JSON list of K distinct strings: the readout's output names
        task    the task the model was trained on (a name)
        card    a JSON object: the model card

Errors are ModelFileError (415/422) or a ValidationError at ("file", <field>), each naming
the field and the limit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..contract.errors import invalid
from ..contract.limits import Limits
from ..contract.responses import ModelInfo
from ..core.cells import CELLS
from .files import (
    MAX_UNPACKED,
    ModelFileError,
    find_readout,
    find_recurrent,
    infer_cell,
    read_model_file,
)
from .state_dict import check_readout, check_state_dict, infer_sizes
from .stored import StoredModel

MAX_LABEL_CHARS = 256
MAX_TASK_CHARS = 100
MAX_CARD_BYTES = 64 * 1024


@dataclass
class Checked:
    """A model file that passed every check: what the store lists, and what a run loads."""

    info: ModelInfo
    model: StoredModel


@dataclass
class Metadata:
    """The checked `__metadata__` fields beyond cell and vocab."""

    labels: list[str] | None = None
    task: str | None = None
    card: dict[str, Any] | None = None


def content_id(data: bytes, cell: str, vocab: str | None) -> str:
    """The id: a hash of the bytes and of what the upload's form fields decide, so the same
    upload (or a preset's file, uploaded) gives the same id."""
    digest = hashlib.sha256(data)
    digest.update(f"\0cell={cell}\0vocab={vocab}".encode())
    return digest.hexdigest()[:16]


def inspect(data: bytes, filename: str, limits: Limits, cell: str | None = None,
            vocab: str | None = None, name: str | None = None, preset: bool = False,
            max_unpacked: int = MAX_UNPACKED) -> Checked:
    """Parse and check a model file; `cell` and `vocab` (the upload's form fields) override
    the file's metadata; an .npz may unpack to `max_unpacked` bytes (the upload limit).
    Raises ModelFileError or ValidationError."""
    parsed = read_model_file(filename, data, limits, max_unpacked)
    prefix, state = find_recurrent(parsed)
    cell = infer_cell(state, cell or parsed.metadata.get("cell"))
    H, L = infer_sizes(state, ("file",))
    D = int(np.shape(state["weight_ih_l0"])[-1]) if "weight_ih_l0" in state else 0
    check_state_dict(CELLS[cell], state, D, H, L, ("file",))
    if D == 0 or H == 0:
        raise ModelFileError("the model has no inputs or no hidden units (a zero-sized "
                             "weight matrix)")
    _check_limits(limits, D, H, L)
    readout = find_readout(parsed)
    K = None if readout is None else check_readout(readout, H, limits.max_classes, ("file",))
    named = {**{prefix + k: v for k, v in state.items()}, **(readout or {})}
    for key, value in named.items():
        if not np.all(np.isfinite(value)):
            raise ModelFileError(f"tensor {key!r} holds NaN or infinite values")
    vocab = vocab if vocab is not None else parsed.metadata.get("vocab")
    if vocab is not None and (len(vocab) != D or len(set(vocab)) != D):
        raise ModelFileError(f"the vocab must be {D} distinct characters, one per input "
                             f"unit (weight_ih_l0 has {D} columns); got {len(vocab)} "
                             f"characters, {len(set(vocab))} distinct", field="vocab")
    meta = read_metadata(parsed.metadata, K)
    model_id = content_id(data, cell, vocab)
    info = ModelInfo(model_id=model_id, name=name or Path(filename).stem or model_id,
                     cell=cell, input_size=D, hidden_size=H, num_layers=L, vocab=vocab,
                     format=parsed.format, bytes=len(data), prefix=prefix, readout=K,
                     labels=meta.labels, task=meta.task, card=meta.card, preset=preset)
    return Checked(info, _stored(info, state, readout))


def intact(info: ModelInfo, data: bytes) -> bool:
    """Whether a stored file still holds the bytes its model id was made from (a flipped
    bit, a file cut short or a different file all change the hash)."""
    return content_id(data, info.cell, info.vocab) == info.model_id


def load(info: ModelInfo, data: bytes) -> StoredModel:
    """A model the store checked when it was added, read again from its file (the store
    checks `intact` first); everything but the tensors comes from its info. (A model stored
    before readouts were read has info.readout None: it runs as it always did.) The bytes
    passed inspect's checks when they were stored, so the .npz cap is not applied again."""
    parsed = read_model_file(f"model.{info.format}", data, None, None)
    _, state = find_recurrent(parsed)
    return _stored(info, state, find_readout(parsed) if info.readout is not None else None)


def _stored(info: ModelInfo, state: Mapping[str, np.ndarray],
            readout: Mapping[str, np.ndarray] | None) -> StoredModel:
    """float64 copies of the tensors (gatescope.run casts them to the request's dtype)."""
    def f64(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float64) for k, v in tensors.items()}

    return StoredModel(info.cell, f64(state), info.vocab,
                       None if readout is None else f64(readout), info.labels, info.task,
                       info.card)


def _check_limits(limits: Limits, D: int, H: int, L: int) -> None:
    for what, value, limit in (("input size", D, limits.max_input),
                               ("hidden size", H, limits.max_hidden),
                               ("number of layers", L, limits.max_layers)):
        if value > limit:
            raise invalid(("file",), f"the model's {what} is {value}, over the limit of "
                          f"{limit}", value)


def read_metadata(meta: Mapping[str, str], K: int | None) -> Metadata:
    """labels, task and card from a file's `__metadata__`, checked; K: the readout's
    outputs (None without a readout)."""
    out = Metadata()
    if "labels" in meta:
        out.labels = _labels(_json(meta, "labels"), K)
    if "task" in meta:
        task = meta["task"]
        if not 1 <= len(task) <= MAX_TASK_CHARS or not task.isprintable():
            raise invalid(("file", "task"), f"the metadata task must be a name of 1 to "
                          f"{MAX_TASK_CHARS} printable characters, got {len(task)} characters",
                          None)
        out.task = task
    if "card" in meta:
        size = len(meta["card"].encode())
        if size > MAX_CARD_BYTES:
            raise invalid(("file", "card"), f"the metadata card is {size:,} bytes, over the "
                          f"limit of {MAX_CARD_BYTES:,}", None)
        card = _json(meta, "card")
        if not isinstance(card, dict):
            raise invalid(("file", "card"), "the metadata card must be a JSON object "
                          f"({{...}}), got a JSON {type(card).__name__}", None)
        out.card = card
    return out


def _labels(labels: Any, K: int | None) -> list[str]:
    """A JSON list of K distinct strings, one per readout output."""
    loc = ("file", "labels")
    if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise invalid(loc, "the metadata labels must be a JSON list of strings, one name per "
                      "readout output", None)
    if K is None:
        raise invalid(loc, f"the metadata has {len(labels)} labels but the file has no readout "
                      "(readout.weight, readout.bias) whose outputs they would name", None)
    if len(labels) != K:
        raise invalid(loc, f"labels has {len(labels)} names but the readout has K = {K} "
                      f"outputs (readout.weight has {K} rows): give one label per output",
                      None)
    long = [x for x in labels if not 1 <= len(x) <= MAX_LABEL_CHARS]
    if long:
        raise invalid(loc, f"each label must have 1 to {MAX_LABEL_CHARS} characters; one has "
                      f"{len(long[0])}", None)
    if len(set(labels)) != K:
        twice = sorted({x for x in labels if labels.count(x) > 1})
        raise invalid(loc, f"labels must be distinct; {', '.join(map(repr, twice[:10]))} "
                      "appear more than once", None)
    return labels


def _json(meta: Mapping[str, str], key: str) -> Any:
    """A metadata value that holds JSON (NaN and Infinity are refused: they are not JSON)."""
    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    try:
        return json.loads(meta[key], parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        raise invalid(("file", key), f"the metadata {key} is not valid JSON ({exc})",
                      None) from None


__all__ = ["Checked", "ModelFileError", "content_id", "inspect", "intact", "load"]
