"""The model store: uploaded models as content-addressed files in the data directory, and
the presets bundled with the package.

    <data_dir>/models/<model_id>/model.safetensors | model.npz    the bytes as uploaded
    <data_dir>/models/<model_id>/info.json                        a ModelInfo
    <presets_dir>/<name>.safetensors                              a preset (read-only)

The id is a hash of the file's bytes and of what the upload's form fields decide (the
cell, the vocab): the same upload gives the same id, and a preset has the id its file
would get if it were uploaded. A model is written into a temporary directory that is
renamed into place, so a crash never leaves half a model, and two uploads of the same
file at once both end with the one complete copy.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from ..contract.errors import ModelNotFoundError
from ..contract.limits import Limits
from ..contract.responses import ModelInfo
from . import checks
from .files import ModelFileError  # re-exported: what add() raises
from .stored import StoredModel

_ID = re.compile(r"^[0-9a-f]{16}$")
PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"  # shipped as package data
log = logging.getLogger(__name__)


class ModelStore:
    """Uploads under `data_dir`; presets read from `presets_dir` (default: the package's
    presets/), indexed on first use and never written."""

    def __init__(self, data_dir: Path, limits: Limits | None = None,
                 presets_dir: Path | None = None) -> None:
        self.root = Path(data_dir) / "models"
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".incoming-*"):  # left by a crash mid-write; never a model
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
        self.limits = limits or Limits()
        self.presets_dir = PRESETS_DIR if presets_dir is None else Path(presets_dir)
        self._presets: dict[str, tuple[Path, ModelInfo]] | None = None
        self._load = lru_cache(maxsize=8)(self._load_uncached)

    # ── writing ──────────────────────────────────────────────────────────────────────
    def add(self, data: bytes, filename: str, cell: str | None = None, vocab: str | None = None,
            name: str | None = None) -> tuple[ModelInfo, bool]:
        """Store an upload. Returns (its info, True if new / False if already stored — as
        an upload or as a preset).

        Raises ModelFileError (415/422) or pydantic.ValidationError (422) for a file that
        is not a model gatescope can run.
        """
        info = checks.inspect(data, filename, self.limits, cell, vocab, name).info
        model_id = info.model_id
        if model_id in self.presets():
            return self.presets()[model_id][1], False
        final = self.root / model_id
        if final.exists():
            return self.info(model_id), False
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
        try:
            _write(tmp / f"model.{info.format}", data)
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

    # ── reading ──────────────────────────────────────────────────────────────────────
    def presets(self) -> dict[str, tuple[Path, ModelInfo]]:
        """model_id → (file, info) of every bundled preset that passes an upload's checks.
        A file that does not is left out, with a warning in the log: one bad preset must
        not take the model list down."""
        if self._presets is None:
            found: dict[str, tuple[Path, ModelInfo]] = {}
            paths = sorted(self.presets_dir.glob("*.safetensors")) \
                if self.presets_dir.is_dir() else []
            for path in paths:
                try:
                    info = checks.inspect(path.read_bytes(), path.name, self.limits,
                                               name=path.stem, preset=True).info
                except (OSError, ValueError, ArithmeticError, IndexError) as exc:
                    log.warning("preset %s is not a model gatescope can run: %s", path, exc)
                    continue
                found.setdefault(info.model_id, (path, info))
            self._presets = found
        return self._presets

    def info(self, model_id: str) -> ModelInfo:
        if model_id in self.presets():
            return self.presets()[model_id][1]
        path = self._dir(model_id) / "info.json"
        try:
            return ModelInfo.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise ModelNotFoundError(f"no model with id {model_id!r}") from None

    def list(self) -> list[ModelInfo]:
        """The presets (by name), then the uploads (by id)."""
        presets = self.presets()
        infos = sorted((info for _, info in presets.values()), key=lambda i: i.name)
        for entry in sorted(self.root.iterdir()):
            if (_ID.match(entry.name) and entry.name not in presets
                    and (entry / "info.json").is_file()):
                infos.append(self.info(entry.name))
        return infos

    def load(self, model_id: str) -> StoredModel:
        """The model's weights (float64 arrays, PyTorch names) and metadata, for
        gatescope.run."""
        if model_id not in self.presets():
            self._dir(model_id)  # 404 before the cache sees a bad id
        return self._load(model_id)

    def _load_uncached(self, model_id: str) -> StoredModel:
        if model_id in self.presets():
            path, info = self.presets()[model_id]
            return checks.load(info, path.read_bytes())
        info = self.info(model_id)
        path = self._dir(model_id) / f"model.{info.format}"
        return checks.load(info, path.read_bytes())

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
