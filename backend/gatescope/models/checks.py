"""A model file, checked: its bytes → the ModelInfo the store lists and the StoredModel a
run loads. Uploads and bundled presets go through the same checks.

    inspect(data, filename, limits, ...) → Checked(info, model)   every check, the id
    describe(model_file, limits, ...)    → (info, model)          the same, for any source
    intact(info, data)                   → bool                   the bytes still have its id
    load(info, data)                     → StoredModel            a stored file, re-read

What a file may hold besides the RNN (files.py reads it, layout.py finds its parts):

    <embedding>.weight (V, E)                    a torch.nn.Embedding in front
    <head>.weight (K, H), <head>.bias (K)        a torch.nn.Linear on the top layer
    __metadata__ (safetensors, string values):   cell, vocab,
        labels  a JSON list of K distinct strings: the head's output names
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
from ..contract.limits import MAX_VOCAB, Limits
from ..contract.responses import EmbeddingInfo, HeadInfo, ModelInfo, RNNInfo
from ..core.cells import CELLS
from ..core.readout import BIAS
from .files import MAX_UNPACKED, ModelFile, ModelFileError, read_model_file
from .layout import ANY, EMBEDDING, NONE, Choice, Layout, locate
from .state_dict import check_readout, check_state_dict
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


def content_id(data: bytes, cell: str, vocab: str | None, choice: Choice = ANY) -> str:
    """The id: a hash of the bytes and of what the upload's form fields decide, so the same
    upload (or a preset's file, uploaded) gives the same id."""
    digest = hashlib.sha256(data)
    digest.update(f"\0cell={cell}\0vocab={vocab}".encode())
    if choice.given():  # (ids of uploads that chose nothing stay what they were)
        digest.update(f"\0embedding={choice.embedding}\0rnn={choice.rnn}"
                      f"\0head={choice.head}".encode())
    return digest.hexdigest()[:16]


def inspect(data: bytes, filename: str, limits: Limits, cell: str | None = None,
            vocab: str | None = None, name: str | None = None, preset: bool = False,
            max_unpacked: int = MAX_UNPACKED, choice: Choice = ANY) -> Checked:
    """Parse and check a model file; `cell`, `vocab` and `choice` (the upload's form fields)
    override the file's metadata and choose among its parts; an .npz may unpack to
    `max_unpacked` bytes (the upload limit). Raises ModelFileError or ValidationError."""
    parsed = read_model_file(filename, data, limits, max_unpacked)
    info, model = describe(parsed, limits, cell, vocab, choice)
    # a choice made is hashed as the parts it resolved to, which the info records
    model_id = content_id(data, info.cell, info.vocab, chosen(info) if choice.given()
                          else ANY)
    info = info.model_copy(update={"model_id": model_id, "format": parsed.format,
                                   "bytes": len(data), "preset": preset,
                                   "name": name or Path(filename).stem or model_id})
    return Checked(info, model)


def describe(parsed: ModelFile, limits: Limits, cell: str | None = None,
             vocab: str | None = None, choice: Choice = ANY
             ) -> tuple[ModelInfo, StoredModel]:
    """A parsed file's parts, every check on them, and the model a run loads; the info's
    model_id, name, format and bytes are the caller's to set."""
    layout = locate(parsed, choice, cell)
    D, H, L = layout.sizes
    check_state_dict(CELLS[layout.cell], layout.state, D, H, L, ("file",), layout.directions,
                     layout.proj)
    if D == 0 or H == 0:
        raise ModelFileError("the model has no inputs or no hidden units (a zero-sized "
                             "weight matrix)")
    _check_limits(limits, D, H, L)
    head = layout.head
    K = None if head is None else check_readout(head, layout.directions * (layout.proj or H),
                                                limits.max_classes, ("file",))
    for inside, value in _used(layout).items():
        if not np.all(np.isfinite(value)):
            raise ModelFileError(f"tensor {layout.names.get(inside, inside)!r} holds NaN or "
                                 "infinite values")
    vocab = vocab if vocab is not None else parsed.metadata.get("vocab")
    emb = layout.embedding
    if emb is not None and not 1 <= emb.shape[0] <= MAX_VOCAB:
        raise ModelFileError(f"the embedding {layout.embedding_name!r} has {emb.shape[0]:,} "
                             f"rows: an embedding has 1 to {MAX_VOCAB:,} tokens",
                             field="embedding")
    units = D if emb is None else emb.shape[0]
    if vocab is not None and (len(vocab) != units or len(set(vocab)) != units):
        what = (f"weight_ih_l0 has {D} columns" if emb is None else
                f"the embedding {layout.embedding_name!r} has {units} rows")
        raise ModelFileError(f"the vocab must be {units} distinct characters, one per "
                             f"{'input unit' if emb is None else 'token id'} ({what}); got "
                             f"{len(vocab)} characters, {len(set(vocab))} distinct",
                             field="vocab")
    meta = read_metadata(parsed.metadata, K)
    info = ModelInfo(
        model_id="", name="", cell=layout.cell, input_size=D, hidden_size=H, num_layers=L,
        vocab=vocab, prefix=f"{layout.rnn}." if layout.rnn else "", readout=K,
        labels=meta.labels, task=meta.task, card=meta.card,
        embedding=None if emb is None else EmbeddingInfo(
            name=layout.embedding_name or "", num_embeddings=emb.shape[0], embedding_dim=D),
        rnn=RNNInfo(name=layout.rnn, cell=layout.cell, layers=L, cells=layout.cells,
                    bidirectional=layout.directions == 2, proj_size=layout.proj,
                    bias="bias_ih_l0" in layout.names),
        head=None if head is None else HeadInfo(name=layout.head_name or "", out_features=K,
                                                bias=BIAS in layout.names),
        ignored=layout.ignored)
    return info, _stored(info, layout)


def chosen(info: ModelInfo, shapes: Mapping[str, tuple[int, ...]] | None = None) -> Choice:
    """The parts an info records, as the choice that finds them in its file again. A model
    stored before parts were recorded: its RNN, no embedding, and (with `shapes`, its file's)
    the readout it was stored with — the matrix named readout.weight under any prefix, the
    one rule of that version."""
    if info.rnn is None:
        old = [key.removesuffix(".weight") for key in shapes or ()
               if key == "readout.weight" or key.endswith(".readout.weight")]
        head = old[0] if info.readout and len(old) == 1 else NONE
        return Choice(embedding=NONE, rnn=info.prefix, head=head)
    return Choice(embedding=info.embedding.name if info.embedding else NONE,
                  rnn=info.rnn.name, head=info.head.name if info.head else NONE)


def intact(info: ModelInfo, data: bytes) -> bool:
    """Whether a stored file still holds the bytes its model id was made from (a flipped
    bit, a file cut short or a different file all change the hash)."""
    return any(content_id(data, info.cell, info.vocab, c) == info.model_id
               for c in (ANY, chosen(info)))


def load(info: ModelInfo, data: bytes) -> StoredModel:
    """A model the store checked when it was added, read again from its file (the store
    checks `intact` first); everything but the tensors comes from its info. The bytes
    passed inspect's checks when they were stored, so the .npz cap is not applied again."""
    parsed = read_model_file(f"model.{info.format}", data, None, None)
    return _stored(info, locate(parsed, chosen(info, parsed.shapes), info.cell))


def _used(layout: Layout) -> dict[str, np.ndarray]:
    """Every tensor the model runs with, by gatescope's name."""
    out = dict(layout.state)
    if layout.embedding is not None:
        out[EMBEDDING] = layout.embedding
    return {**out, **(layout.head or {})}


def _stored(info: ModelInfo, layout: Layout) -> StoredModel:
    """float64 copies of the tensors (gatescope.run casts them to the request's dtype)."""
    def f64(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float64) for k, v in tensors.items()}

    return StoredModel(info.cell, f64(layout.state), info.vocab,
                       None if layout.head is None else f64(layout.head), info.labels,
                       info.task, info.card,
                       None if layout.embedding is None else np.asarray(layout.embedding,
                                                                        np.float64),
                       dict(layout.names), layout.directions)


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
