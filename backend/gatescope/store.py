"""The model store: uploaded models as content-addressed files in the data directory.

    <data_dir>/models/<model_id>/model.safetensors | model.npz    the bytes as uploaded
    <data_dir>/models/<model_id>/info.json                        a ModelInfo

The id is a hash of the file's bytes and of what the upload's form fields decide (the
cell, the vocab): the same upload gives the same id. A model is written into a temporary
directory that is renamed into place, so a crash never leaves half a model, and two
uploads of the same file at once both end with the one complete copy.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from .cells import CELLS
from .errors import ModelNotFoundError, invalid
from .limits import Limits
from .model_files import ModelFileError, find_recurrent, infer_cell, read_model_file
from .responses import ModelInfo
from .runner import StoredModel
from .weights import check_state_dict, infer_sizes

_ID = re.compile(r"^[0-9a-f]{16}$")


class ModelStore:
    def __init__(self, data_dir: Path, limits: Limits | None = None) -> None:
        self.root = Path(data_dir) / "models"
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".incoming-*"):  # left by a crash mid-write; never a model
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
        self.limits = limits or Limits()
        self._load = lru_cache(maxsize=8)(self._load_uncached)

    # ── writing ──────────────────────────────────────────────────────────────────────
    def add(self, data: bytes, filename: str, cell: str | None = None, vocab: str | None = None,
            name: str | None = None) -> tuple[ModelInfo, bool]:
        """Store an upload. Returns (its info, True if new / False if already stored).

        Raises ModelFileError (415/422) or pydantic.ValidationError (422) for a file that
        is not a model gatescope can run.
        """
        parsed = read_model_file(filename, data)
        prefix, state = find_recurrent(parsed)
        cell = infer_cell(state, cell or parsed.metadata.get("cell"))
        H, L = infer_sizes(state, ("file",))
        D = int(np.shape(state["weight_ih_l0"])[-1]) if "weight_ih_l0" in state else 0
        check_state_dict(CELLS[cell], state, D, H, L, ("file",))
        if D == 0 or H == 0:
            raise ModelFileError("the model has no inputs or no hidden units (a zero-sized "
                                 "weight matrix)")
        self._check_limits(D, H, L)
        for key, value in state.items():
            if not np.all(np.isfinite(value)):
                raise ModelFileError(f"tensor {prefix + key!r} holds NaN or infinite values")
        vocab = vocab if vocab is not None else parsed.metadata.get("vocab")
        if vocab is not None and (len(vocab) != D or len(set(vocab)) != D):
            raise ModelFileError(f"the vocab must be {D} distinct characters, one per input "
                                 f"unit (weight_ih_l0 has {D} columns); got {len(vocab)} "
                                 f"characters, {len(set(vocab))} distinct", field="vocab")

        digest = hashlib.sha256(data)
        digest.update(f"\0cell={cell}\0vocab={vocab}".encode())
        model_id = digest.hexdigest()[:16]
        fmt = parsed.format
        info = ModelInfo(model_id=model_id, name=name or Path(filename).stem or model_id,
                         cell=cell, input_size=D, hidden_size=H, num_layers=L, vocab=vocab,
                         format=fmt, bytes=len(data), prefix=prefix)
        final = self.root / model_id
        if final.exists():
            return self.info(model_id), False
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
        try:
            _write(tmp / f"model.{fmt}", data)
            _write(tmp / "info.json", info.model_dump_json(indent=2).encode())
            try:
                os.rename(tmp, final)  # atomic: the model appears whole or not at all
            except OSError:
                if final.exists():  # the same upload won the race: keep that copy
                    return self.info(model_id), False
                raise
            _fsync_dir(self.root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return info, True

    def _check_limits(self, D: int, H: int, L: int) -> None:
        lim = self.limits
        for what, value, limit in (("input size", D, lim.max_input),
                                   ("hidden size", H, lim.max_hidden),
                                   ("number of layers", L, lim.max_layers)):
            if value > limit:
                raise invalid(("file",), f"the model's {what} is {value}, over the limit of "
                              f"{limit}", value)

    # ── reading ──────────────────────────────────────────────────────────────────────
    def info(self, model_id: str) -> ModelInfo:
        path = self._dir(model_id) / "info.json"
        try:
            return ModelInfo.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise ModelNotFoundError(f"no model with id {model_id!r}") from None

    def list(self) -> list[ModelInfo]:
        infos = []
        for entry in sorted(self.root.iterdir()):
            if _ID.match(entry.name) and (entry / "info.json").is_file():
                infos.append(self.info(entry.name))
        return infos

    def load(self, model_id: str) -> StoredModel:
        """The model's weights (float64 arrays, PyTorch names), for gatescope.run."""
        self._dir(model_id)  # 404 before the cache sees a bad id
        return self._load(model_id)

    def _load_uncached(self, model_id: str) -> StoredModel:
        info = self.info(model_id)
        path = self._dir(model_id) / f"model.{info.format}"
        parsed = read_model_file(path.name, path.read_bytes())
        _, state = find_recurrent(parsed)
        tensors = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
        return StoredModel(info.cell, tensors, info.vocab)

    def _dir(self, model_id: str) -> Path:
        if not _ID.match(model_id) or not (self.root / model_id).is_dir():
            raise ModelNotFoundError(f"no model with id {model_id!r}")
        return self.root / model_id


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["ModelFileError", "ModelStore"]
