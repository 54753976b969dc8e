"""Heavy work off the event loop, in a pool of worker processes.

The engine's step loop holds the GIL, so a thread would freeze the server for the length
of a run. A worker process parses and validates the raw request body (pydantic's JSON
parser: NaN/Infinity tokens, 1e400, 100-digit integers and deep nesting are all clean
errors), runs it, and encodes and compresses the response; the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Literal

import orjson
from pydantic import ValidationError

from ..encoding import BinaryLayout, Encoding, dumps
from ..errors import ModelNotFoundError, error_detail
from ..limits import Limits
from ..model_files import ModelFileError
from ..runner import jacobian, run
from ..schemas import JacobianRequest, RunRequest
from ..store import ModelStore

GZIP_MIN_BYTES = 64 * 1024


SHARED_MIN_BYTES = 1024 * 1024


@dataclass
class Reply:
    """What a worker sends back: the finished HTTP response.

    A large body travels in shared memory (`shared` names the block) rather than through
    the pool's pipe, which would pickle, copy and unpickle it: for a 17 MiB body that is
    a fifth of the request's time. `take_body()` in the server reads and frees it.
    """

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    shared: str | None = None
    size: int = 0

    @classmethod
    def binary(cls, layout: BinaryLayout) -> Reply:
        """A binary-encoded body, written straight into shared memory when it is large and
        /dev/shm has room for it (a container's is often 64 MiB); else through the pipe."""
        if layout.size < SHARED_MIN_BYTES or not _shm_has_room(layout.size):
            return cls(200, layout.tobytes())
        block = SharedMemory(create=True, size=layout.size)
        try:
            layout.write_into(block.buf)
        except BaseException:
            block.close()
            block.unlink()
            raise
        block.close()
        return cls(200, b"", shared=block.name, size=layout.size)

    def take_body(self) -> bytes:
        if self.shared is None:
            return self.body
        block = SharedMemory(self.shared)
        try:
            return bytes(block.buf[:self.size])
        finally:
            block.close()
            block.unlink()

    def discard(self) -> None:
        """Free the shared block of a reply nobody will send."""
        if self.shared is not None:
            with contextlib.suppress(FileNotFoundError):
                block = SharedMemory(self.shared)
                block.close()
                block.unlink()


def _shm_has_room(size: int) -> bool:
    try:
        return shutil.disk_usage("/dev/shm").free > 2 * size
    except OSError:
        return False  # no /dev/shm here: the pipe it is


def _error(status: int, detail: object) -> Reply:
    return Reply(status, orjson.dumps({"detail": detail}))


# ── in the worker process ────────────────────────────────────────────────────────────
_store: ModelStore | None = None
_limits = Limits()


def _init_worker(data_dir: Path, limits: Limits, presets_dir: Path | None = None) -> None:
    global _store, _limits
    _store, _limits = ModelStore(data_dir, limits, presets_dir), limits


def _ready() -> bool:
    return True


def compute(kind: Literal["run", "jacobian"], body: bytes, encoding: Encoding,
            gzip_ok: bool) -> Reply:
    """Parse, validate, run and encode one /run or /jacobian request."""
    try:
        if kind == "run":
            result = run(RunRequest.model_validate_json(body), models=_store, limits=_limits)
        else:
            result = jacobian(JacobianRequest.model_validate_json(body), models=_store,
                              limits=_limits)
    except ValidationError as exc:
        return _error(422, error_detail(exc))
    except ModelNotFoundError as exc:
        return _error(404, str(exc))
    except MemoryError:
        return _error(503, "the server ran out of memory for this request; try fewer steps, "
                      "units or layers")
    if encoding == "binary":
        return Reply.binary(BinaryLayout(result.as_dict()))
    data = dumps(result.as_dict(), encoding)
    headers = {}
    # JSON lists shrink 3–4× under gzip; base64 typed arrays barely, so they go as they are
    if gzip_ok and encoding == "json" and len(data) >= GZIP_MIN_BYTES:
        data = gzip.compress(data, compresslevel=1)
        headers["content-encoding"] = "gzip"
    if encoding == "json":
        headers["vary"] = "accept-encoding"
    return Reply(200, data, headers)


def ingest(data: bytes, filename: str, cell: str | None, vocab: str | None,
           name: str | None) -> Reply:
    """Parse, check and store one uploaded model."""
    assert _store is not None
    try:
        info, created = _store.add(data, filename, cell, vocab, name)
    except ModelFileError as exc:
        return _error(exc.status, [{"loc": ["body", exc.field], "msg": str(exc),
                                    "type": "model_file"}])
    except ValidationError as exc:
        return _error(422, [{**e, "loc": ["body", *e["loc"]]} for e in error_detail(exc)])
    except (ValueError, ArithmeticError, IndexError, MemoryError) as exc:
        # a file crafted past every check above still gets a 4xx, never a 500
        return _error(422, [{"loc": ["body", "file"], "type": "model_file",
                             "msg": f"the file could not be read as a model ({exc})"}])
    return Reply(201 if created else 200, info.model_dump_json().encode())


# ── in the server ────────────────────────────────────────────────────────────────────
class ComputePool:
    """A process pool that is rebuilt if a worker dies (say, killed for memory)."""

    def __init__(self, processes: int, data_dir: Path, limits: Limits,
                 presets_dir: Path | None = None) -> None:
        self.processes, self.data_dir, self.limits = processes, data_dir, limits
        self.presets_dir = presets_dir
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server process has threads, and a forked copy of their locks
        # can deadlock a worker
        return ProcessPoolExecutor(self.processes, multiprocessing.get_context("spawn"),
                                   initializer=_init_worker,
                                   initargs=(self.data_dir, self.limits, self.presets_dir))

    async def warm_up(self) -> None:
        """Start every worker now, not on the first request."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self.pool, _ready)
                               for _ in range(self.processes)))

    async def submit(self, fn, *args) -> Reply:
        """Run fn(*args) in a worker. If the request is cancelled (a client gone, a shutdown)
        after the worker answered, the reply's shared block is freed all the same."""
        loop = asyncio.get_running_loop()
        pool = self.pool
        future = loop.run_in_executor(pool, fn, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(_discard_reply)
            raise
        except BrokenProcessPool:
            if self.pool is pool:  # the first to notice rebuilds; the others reuse it
                pool.shutdown(wait=False, cancel_futures=True)
                self.pool = self._new_pool()
            return _error(503, "a compute worker stopped (it may have run out of memory); "
                          "the request was not completed — try again or ask for less")

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _discard_reply(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().discard()
