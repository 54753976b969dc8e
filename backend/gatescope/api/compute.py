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
import multiprocessing.util
import os
import shutil
import time
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
    a fifth of the request's time. Each worker reuses its blocks: the first byte of a block
    says whether the server has still to read it, and `take_body()` in the server copies
    the body out and hands the block back. A fresh block costs more than the copy — the
    kernel finds and zeroes every page of it (~20 ms for 17 MiB here, against ~3 ms to
    write into a block already used).
    """

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    shared: str | None = None
    size: int = 0
    timing: dict[str, float] = field(default_factory=dict)  # seconds, for Server-Timing

    @classmethod
    def binary(cls, layout: BinaryLayout) -> Reply:
        """A binary-encoded body, written straight into one of this worker's shared blocks
        when it is large and /dev/shm has room (a container's is often 64 MiB); else
        through the pipe."""
        block = _reply_block(layout.size) if layout.size >= SHARED_MIN_BYTES else None
        if block is None:
            return cls(200, layout.tobytes())
        try:
            layout.write_into(block.buf[_BODY_AT:])
        except BaseException:
            block.buf[0] = _FREE
            raise
        return cls(200, b"", shared=block.name, size=layout.size)

    def take_body(self) -> bytes:
        if self.shared is None:
            return self.body
        block = SharedMemory(self.shared)
        try:
            return bytes(block.buf[_BODY_AT:_BODY_AT + self.size])
        finally:
            block.buf[0] = _FREE  # the worker may write its next reply here
            block.close()

    def discard(self) -> None:
        """Hand back the shared block of a reply nobody will send."""
        if self.shared is not None:
            with contextlib.suppress(FileNotFoundError):
                block = SharedMemory(self.shared)
                block.buf[0] = _FREE
                block.close()


_FREE, _TAKEN = 0, 1  # a shared block's first byte
_BODY_AT = 64  # where a reply's body starts in its block (aligned for the arrays in it)
_SPARE_BLOCKS = 1  # free blocks a worker keeps beyond the one it writes into


def _reply_block(size: int) -> SharedMemory | None:
    """One of this worker's blocks, free and with room for `size` bytes: reused if it can
    be, else new (None if /dev/shm has no room). Free blocks beyond a spare are removed."""
    free = [b for b in _blocks if b.buf[0] == _FREE]
    block = next((b for b in free if b.size >= _BODY_AT + size), None)
    if block is None:
        need = _BODY_AT + size + size // 4  # room for a somewhat larger reply later
        if not _shm_has_room(need):
            return None
        block = SharedMemory(create=True, size=need)
        _blocks.append(block)
    else:
        free.remove(block)
    for extra in sorted(free, key=lambda b: b.size)[:max(0, len(free) - _SPARE_BLOCKS)]:
        _blocks.remove(extra)
        extra.close()
        extra.unlink()
    block.buf[0] = _TAKEN
    return block


def _remove_blocks() -> None:
    """At the worker's exit: unlink every block it made."""
    while _blocks:
        block = _blocks.pop()
        block.close()
        with contextlib.suppress(FileNotFoundError):
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
_blocks: list[SharedMemory] = []  # this worker's shared blocks for large replies


def _init_worker(data_dir: Path, limits: Limits, presets_dir: Path | None = None) -> None:
    global _store, _limits
    _store, _limits = ModelStore(data_dir, limits, presets_dir), limits
    multiprocessing.util.Finalize(None, _remove_blocks, exitpriority=10)


def _ready() -> bool:
    return True


def compute(kind: Literal["run", "jacobian"], body: bytes, encoding: Encoding,
            gzip_ok: bool) -> Reply:
    """Parse, validate, run and encode one /run or /jacobian request. A reply's
    Server-Timing header says how long each of the three took."""
    t0 = time.perf_counter()
    try:
        if kind == "run":
            req = RunRequest.model_validate_json(body)
            t1 = time.perf_counter()
            result = run(req, models=_store, limits=_limits)
        else:
            req = JacobianRequest.model_validate_json(body)
            t1 = time.perf_counter()
            result = jacobian(req, models=_store, limits=_limits)
    except ValidationError as exc:
        return _error(422, error_detail(exc))
    except ModelNotFoundError as exc:
        return _error(404, str(exc))
    except MemoryError:
        return _error(503, "the server ran out of memory for this request; try fewer steps, "
                      "units or layers")
    t2 = time.perf_counter()
    if encoding == "binary":
        reply = Reply.binary(BinaryLayout(result.as_dict(), result.finite))
    else:
        data = dumps(result.as_dict(), encoding, result.finite)
        headers = {}
        # JSON lists shrink 3–4× under gzip; base64 typed arrays barely, so they go as they are
        if gzip_ok and encoding == "json" and len(data) >= GZIP_MIN_BYTES:
            data = gzip.compress(data, compresslevel=1)
            headers["content-encoding"] = "gzip"
        if encoding == "json":
            headers["vary"] = "accept-encoding"
        reply = Reply(200, data, headers)
    reply.timing = {"parse": t1 - t0, "run": t2 - t1, "encode": time.perf_counter() - t2}
    return reply


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
        # OpenBLAS's idle threads spin for ~0.1 s after each multi-threaded product; with two
        # workers on two cores, one worker's spinning threads slowed the other's step loop by
        # ~20 % (median run 136 → 114 ms). Workers inherit this and let them sleep at once.
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # 2^4 cycles; read at load
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
