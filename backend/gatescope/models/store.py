"""The model store: uploaded models as content-addressed files in the data directory, and
the presets bundled with the package.

    <data_dir>/models/<model_id>/model.safetensors | model.npz    the bytes as uploaded
    <data_dir>/models/<model_id>/info.json                        a ModelInfo
    <data_dir>/models/.incoming-*/                                an upload being written
    <data_dir>/models/.damaged-<model_id>/                        a copy an upload replaced
    <presets_dir>/<name>.safetensors                              a preset (read-only)

The id is a hash of the file's bytes and of what the upload's form fields decide (the
cell, the vocab): the same upload gives the same id, and a preset has the id its file
would get if it were uploaded. A model is written into a temporary directory that is
renamed into place, so a crash never leaves half a model, and two uploads of the same
file at once both end with the one complete copy.

Storage can fail, and every failure has its own error, never a crash:

- A model is checked against its id whenever it is loaded from disk (presets too): a
  flipped bit, a file cut short or missing, an info.json that does not parse all raise
  DamagedModelError (409), naming the model and the fix. Reading never writes: the damaged
  copy stays where it is until the same file is uploaded again, which moves it aside to
  .damaged-<model_id>/ (one kept per id, for whoever looks after the disk) and stores the
  upload. The list leaves a damaged model out (found from its info.json and its file's
  size, without reading the file), with one warning in the log per model and problem.
- An upload the disk cannot take raises StorageFullError (507) when the disk is full,
  StorageUnavailableError (503) when the data directory is read-only or cannot be written.
- A data directory that cannot be created or written is logged when the store starts; the
  presets and whatever is stored still list and run.

An upload left half-written by a crash (an .incoming-* directory) is removed when a store
starts and before each upload, once it is STALE_AFTER old: a live upload is written in one
go, in well under that.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TypedDict

from pydantic import ValidationError

from ..contract.errors import ModelNotFoundError
from ..contract.limits import Limits
from ..contract.responses import ModelInfo
from . import checks
from .files import (
    MAX_UNPACKED,
    ModelFileError,  # re-exported: what add() raises
)
from .layout import ANY, Choice
from .stored import StoredModel

_ID = re.compile(r"^[0-9a-f]{16}$")
PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"  # shipped as package data
CACHE_BYTES = 256 * 1024 * 1024  # the default budget of loaded models kept in memory
STALE_AFTER = 600  # seconds: an .incoming-* directory this old is left by a crash
log = logging.getLogger(__name__)


class DamagedModelError(ModelNotFoundError):
    """A stored model (or preset) whose files no longer hold what its id says: a changed
    byte, a file cut short or missing, an info.json that does not parse (HTTP 409). It is a
    ModelNotFoundError too: the model cannot be had."""

    status = 409


class StorageError(Exception):
    """An upload that could not be written to the data directory; `status` is its HTTP
    status. The message is for clients: it names no server path (the log does)."""

    status = 503


class StorageFullError(StorageError):
    """The disk (or the quota) is full: 507 Insufficient Storage."""

    status = 507


class StorageUnavailableError(StorageError):
    """The data directory is read-only or cannot be written: 503."""

    status = 503


class StoreOptions(TypedDict):
    """ModelStore's settings beyond its directories and limits."""

    max_upload_bytes: int
    cache_bytes: int


class ModelStore:
    """Uploads under `data_dir`; presets read from `presets_dir` (default: the package's
    presets/), indexed on first use and never written.

    `max_upload_bytes` caps what an .npz may unpack to (default 64 MiB); `cache_bytes` is
    the budget of loaded models kept in memory (default 256 MiB). A server passes its
    settings' (Settings.store_options), to its own store and its workers' alike."""

    def __init__(self, data_dir: Path, limits: Limits | None = None,
                 presets_dir: Path | None = None, *, max_upload_bytes: int | None = None,
                 cache_bytes: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "models"
        self.limits = limits or Limits()
        self.presets_dir = PRESETS_DIR if presets_dir is None else Path(presets_dir)
        self.max_upload_bytes = MAX_UNPACKED if max_upload_bytes is None else max_upload_bytes
        self.cache_bytes = CACHE_BYTES if cache_bytes is None else cache_bytes
        self._presets: dict[str, tuple[Path, ModelInfo]] | None = None
        # id → (its files' stat keys, the model, its bytes, its files)
        self._cache: OrderedDict[str, tuple[tuple[tuple[int, ...], ...], StoredModel, int,
                                            list[Path]]] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self._intact: dict[str, tuple[tuple[int, ...], str, int]] = {}  # id → what list saw
        self._reported: set[tuple[str, str]] = set()
        self._open()

    def _open(self) -> None:
        """Create the data directory if need be, say in the log if it cannot be written,
        and sweep what crashed uploads left."""
        try:
            existed = self.root.is_dir()  # (raises, not False, for a parent it cannot search)
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("the data directory %s cannot be created (%s): the presets are "
                        "served, and uploads answer 503 until it can be", self.data_dir,
                        exc.strerror or exc)
            return
        if not os.access(self.root, os.W_OK):
            log.warning("the data directory %s is read-only: the presets and the models "
                        "stored there are served, and uploads answer 503 until it is "
                        "writable", self.root)
            return
        if not existed:
            log.warning("created the data directory %s for uploaded models", self.root)
        self._sweep()

    def _sweep(self) -> None:
        """Remove what crashed uploads left (an upload in progress is younger)."""
        try:
            stale = list(self.root.glob(".incoming-*"))
        except OSError:
            return
        for path in stale:
            try:
                if time.time() - path.stat().st_mtime > STALE_AFTER:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                continue

    # ── writing ──────────────────────────────────────────────────────────────────────
    def add(self, data: bytes, filename: str, cell: str | None = None, vocab: str | None = None,
            name: str | None = None, choice: Choice = ANY) -> tuple[ModelInfo, bool]:
        """Store an upload; `choice` picks its embedding, RNN and head where several fit.
        Returns (its info, True if new / False if already stored — as
        an upload or as a preset). A damaged copy of the same model is replaced (and kept
        as .damaged-<model_id>/).

        Raises ModelFileError (415/422) or pydantic.ValidationError (422) for a file that
        is not a model gatescope can run; StorageFullError (507) or StorageUnavailableError
        (503) when the data directory cannot take it.
        """
        info = checks.inspect(data, filename, self.limits, cell, vocab, name,
                              max_unpacked=self.max_upload_bytes, choice=choice).info
        model_id = info.model_id
        if model_id in self.presets():
            return self.presets()[model_id][1], False
        final = self.root / model_id
        if self._holds(model_id, data):
            return self.info(model_id), False
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._sweep()
            tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
        except OSError as exc:
            raise _storage_error(exc, self.root) from None
        try:
            _write(tmp / f"model.{info.format}", data)
            _write(tmp / "info.json", info.model_dump_json(indent=2).encode())
            created = self._place(tmp, final, model_id, data)
            _fsync_dir(self.root)
        except OSError as exc:
            raise _storage_error(exc, self.root) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return (info, True) if created else (self.info(model_id), False)

    def _place(self, tmp: Path, final: Path, model_id: str, data: bytes) -> bool:
        """Rename the written model into place: True once it is there, False if the same
        upload, arriving at once, already put its copy there. A damaged copy in the way is
        moved aside to .damaged-<model_id>/ first."""
        for _ in range(3):
            try:
                os.rename(tmp, final)  # atomic: the model appears whole or not at all
                return True
            except OSError:
                if not final.exists():
                    raise
            if self._holds(model_id, data):  # the same upload won the race: keep its copy
                return False
            aside = self.root / f".damaged-{model_id}"
            shutil.rmtree(aside, ignore_errors=True)
            try:
                os.rename(final, aside)
            except FileNotFoundError:  # another upload of it is repairing it too
                continue
            log.warning("model %s was damaged and is stored again from a new upload; the "
                        "damaged copy is in %s", model_id, aside)
        os.rename(tmp, final)
        return True

    def _holds(self, model_id: str, data: bytes) -> bool:
        """Whether the model is stored whole, holding these bytes."""
        try:
            info = self.info(model_id)
            return (self._dir(model_id) / f"model.{info.format}").read_bytes() == data
        except (ModelNotFoundError, OSError):
            return False

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
        """The model's ModelInfo. Raises ModelNotFoundError (404); DamagedModelError (409)
        when its info.json is missing, cut short or not its own, or its model file is
        missing or not the size it was stored with (the file is not read)."""
        if model_id in self.presets():
            return self.presets()[model_id][1]
        info = self._read_info(model_id)
        self._check_size(model_id, info.format, info.bytes)
        return info

    def _read_info(self, model_id: str) -> ModelInfo:
        path = self._dir(model_id) / "info.json"
        try:
            info = ModelInfo.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise self._damaged(model_id, "its info.json is missing") from None
        except OSError as exc:
            raise self._damaged(model_id, f"its info.json cannot be read "
                                f"({exc.strerror or exc})") from None
        except ValidationError:
            raise self._damaged(model_id, "its info.json is cut short or not a model's "
                                "description") from None
        if info.model_id != model_id or info.preset:
            raise self._damaged(model_id, "its info.json describes another model")
        return info

    def _check_size(self, model_id: str, fmt: str, size: int) -> None:
        try:
            found = os.stat(self.root / model_id / f"model.{fmt}").st_size
        except FileNotFoundError:
            raise self._damaged(model_id, "its model file is missing") from None
        except OSError as exc:
            raise self._damaged(model_id, _unreadable(exc)) from None
        if found != size:
            raise self._damaged(model_id, _wrong_size(found, size))

    def list(self) -> list[ModelInfo]:
        """The presets (by name), then the uploads (by id); a damaged upload is left out."""
        return self.page(0, None)[0]

    def page(self, offset: int = 0, limit: int | None = None
             ) -> tuple[builtins.list[ModelInfo], int]:
        """`limit` models of the list from `offset` on (None: all), and how many the whole
        list holds. Telling a damaged upload costs a stat of its two files, no read: an
        info.json is parsed again only when it changed, and a model file is checked against
        its id (read whole) only when the model is loaded."""
        presets = self.presets()
        ids = sorted(((info.name, model_id) for model_id, (_, info) in presets.items()))
        entries: list[str] = [model_id for _, model_id in ids]
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            names = []
        except OSError as exc:
            self._report("*", f"the data directory {self.root} cannot be listed "
                         f"({exc.strerror or exc}): only the presets are listed")
            names = []
        entries += [n for n in names if _ID.match(n) and n not in presets and self._whole(n)]
        stop = None if limit is None else offset + limit
        infos = []
        for model_id in entries[offset:stop]:
            try:
                infos.append(self.info(model_id))
            except ModelNotFoundError:  # damaged or removed since it was counted
                continue
        return infos, len(entries)

    def _whole(self, model_id: str) -> bool:
        """Whether an upload looks whole: its info.json parses (parsed again only when it
        changed) and its model file has the size the info says. Else it is left out (and
        logged once)."""
        folder = self.root / model_id
        try:
            st = os.stat(folder / "info.json")
        except FileNotFoundError:
            if folder.is_dir():
                self._damaged(model_id, "its info.json is missing")
            return False  # else: a folder removed just now, or a file with an id's name
        except OSError:
            return False
        try:
            seen = self._intact.get(model_id)
            if seen is None or seen[0] != _key(st):
                info = self._read_info(model_id)
                seen = self._intact[model_id] = (_key(st), info.format, info.bytes)
            self._check_size(model_id, seen[1], seen[2])
        except ModelNotFoundError:  # DamagedModelError among them: logged
            return False
        return True

    def load(self, model_id: str) -> StoredModel:
        """The model's weights (float64 arrays, PyTorch names) and metadata, for
        gatescope.run. The files are read and checked against the model's id unless the
        loaded copy kept in memory came from these very files (the same inode, size and
        modification time: two stats, no read). Raises ModelNotFoundError (404) or
        DamagedModelError (409)."""
        preset = model_id in self.presets()
        if preset:
            path, info = self.presets()[model_id]
            files = [path]
        else:
            folder = self._dir(model_id)
            with self._lock:
                hit = self._cache.get(model_id)
            if hit is not None and hit[0] == _keys(hit[3]):
                return self._hit(model_id)
            info = self.info(model_id)
            path = folder / f"model.{info.format}"
            files = [path, folder / "info.json"]
        keys = _keys(files)
        with self._lock:
            hit = self._cache.get(model_id)
        if hit is not None and hit[0] == keys and keys:
            return self._hit(model_id)
        if not keys:
            raise self._damaged(model_id, "its model file is missing", preset)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise self._damaged(model_id, _unreadable(exc), preset) from None
        if len(data) != info.bytes:
            raise self._damaged(model_id, _wrong_size(len(data), info.bytes), preset)
        if not checks.intact(info, data):
            raise self._damaged(model_id, "its model file's bytes no longer hash to its id "
                                "(a byte changed on disk)", preset)
        try:
            model = checks.load(info, data)
        except (ValueError, ArithmeticError, IndexError) as exc:
            raise self._damaged(model_id, f"its model file cannot be read as a model ({exc})",
                                preset) from None
        self._keep(model_id, keys, files, model)
        return model

    def _hit(self, model_id: str) -> StoredModel:
        with self._lock:
            self._cache.move_to_end(model_id)
            return self._cache[model_id][1]

    def _keep(self, model_id: str, keys: tuple[tuple[int, ...], ...], files: builtins.list[Path],
              model: StoredModel) -> None:
        """Keep a loaded model, dropping the least recently used ones to stay within
        cache_bytes; one larger than the whole budget is not kept."""
        size = sum(v.nbytes for v in model.tensors.values()) + \
            sum(v.nbytes for v in (model.readout or {}).values()) + \
            (0 if model.embedding is None else model.embedding.nbytes)
        with self._lock:
            old = self._cache.pop(model_id, None)
            if old is not None:
                self._cached_bytes -= old[2]
            if size > self.cache_bytes:
                return
            while self._cache and self._cached_bytes + size > self.cache_bytes:
                _, (_, _, dropped, _) = self._cache.popitem(last=False)
                self._cached_bytes -= dropped
            self._cache[model_id] = (keys, model, size, files)
            self._cached_bytes += size

    def cached(self) -> tuple[builtins.list[str], int]:
        """The ids of the loaded models kept in memory (least recently used first), and
        their bytes."""
        with self._lock:
            return list(self._cache), self._cached_bytes

    def _dir(self, model_id: str) -> Path:
        if not _ID.match(model_id):
            raise ModelNotFoundError(f"no model with id {_shown(model_id)}: a model id is 16 "
                                     "lowercase hexadecimal characters")
        if not (self.root / model_id).is_dir():
            raise ModelNotFoundError(f"no model with id {model_id!r}")
        return self.root / model_id

    def _damaged(self, model_id: str, problem: str, preset: bool = False) -> DamagedModelError:
        """The error for a damaged model, logged once per model and problem."""
        self._report(model_id, problem)
        fix = ("reinstall gatescope to restore its presets" if preset else
               "upload its file again, which replaces the damaged copy")
        what = "preset" if preset else "model"
        return DamagedModelError(f"{what} {model_id} is damaged on the server: {problem}; "
                                 f"{fix}")

    def _report(self, model_id: str, problem: str) -> None:
        if (model_id, problem) not in self._reported:
            self._reported.add((model_id, problem))
            if model_id == "*":
                log.warning("%s", problem)
            else:
                log.warning("model %s in %s is damaged: %s; it answers 409 until its file "
                            "is uploaded again", model_id, self.root, problem)


def _key(st: os.stat_result) -> tuple[int, ...]:
    """What changes when a file is replaced or written to."""
    return st.st_ino, st.st_size, st.st_mtime_ns


def _keys(files: list[Path]) -> tuple[tuple[int, ...], ...]:
    """The files' keys; () when one of them cannot be stat'ed (missing)."""
    try:
        return tuple(_key(os.stat(f)) for f in files)
    except OSError:
        return ()


def _unreadable(exc: OSError) -> str:
    return f"its model file cannot be read ({exc.strerror or exc})"


def _wrong_size(found: int, stored: int) -> str:
    return (f"its model file is {found:,} bytes, not the {stored:,} it was stored with (cut "
            "short or changed)")


def _shown(text: str) -> str:
    """An id as an error may show it: at most its first 20 characters."""
    return repr(text) if len(text) <= 20 else f"{text[:20]!r}… ({len(text):,} characters)"


def _storage_error(exc: OSError, root: Path) -> StorageError:
    """The error an upload gets when the data directory cannot take it."""
    log.warning("an upload could not be stored in %s: %s", root, exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError("the server's storage for models is full: the model was not "
                                "stored; free space on the server, then upload it again")
    if exc.errno == errno.EROFS:
        return StorageUnavailableError("the server's data directory is read-only: uploads are "
                                       "off until it is writable (stored models and presets "
                                       "still run)")
    return StorageUnavailableError(f"the server could not write the model to its data "
                                   f"directory ({exc.strerror or exc}): it was not stored; "
                                   "try again later")


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


__all__ = ["DamagedModelError", "ModelFileError", "ModelStore", "StorageError",
           "StorageFullError", "StorageUnavailableError"]
