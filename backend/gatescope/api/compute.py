"""Heavy work off the event loop, in a pool of worker processes.

The engine's step loop holds the GIL, so a thread would freeze the server for the length
of a run. A worker process parses and validates the raw request body (pydantic's JSON
parser: NaN/Infinity tokens, 1e400, 100-digit integers and deep nesting are all clean
errors), runs it, and encodes and compresses the response; the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import gzip
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from ..contract.encoding import BinaryLayout, Encoding, dumps
from ..contract.errors import ModelNotFoundError, error_detail
from ..contract.json_body import parse_json
from ..contract.limits import Limits
from ..contract.results import JacobianResult, RunResult
from ..contract.schemas import JacobianRequest, RunRequest
from ..models.files import ModelFileError
from ..models.store import ModelStore
from ..runner import jacobian, run
from . import reply_blocks

GZIP_MIN_BYTES = 64 * 1024


@dataclass
class Reply:
    """What a worker sends back: the finished HTTP response. A large binary body is in
    the shared-memory block `shared` (see reply_blocks), `size` bytes long."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    shared: str | None = None
    size: int = 0
    timing: dict[str, float] = field(default_factory=dict)  # seconds, for Server-Timing
    worker_died: bool = False  # the pool broke under this request


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
            gzip_ok: bool, lent: reply_blocks.Lent | None = None, prefix: str = "") -> Reply:
    """Parse, validate, run and encode one /run or /jacobian request. A large binary body
    goes into the block the server lent, or a new one named with its `prefix`. The reply's
    `timing` says how long each of the three steps took."""
    t0 = time.perf_counter()
    result: RunResult | JacobianResult
    try:
        if kind == "run":
            req = parse_json(RunRequest, body)  # duplicate keys are a 422, not last-wins
            t1 = time.perf_counter()
            result = run(req, models=_store, limits=_limits)
        else:
            jac = parse_json(JacobianRequest, body)
            t1 = time.perf_counter()
            result = jacobian(jac, models=_store, limits=_limits)
    except ValidationError as exc:
        return _error(422, error_detail(exc))
    except ModelNotFoundError as exc:
        return _error(404, str(exc))
    except MemoryError:
        return _error(503, "the server ran out of memory for this request; try fewer steps, "
                      "units or layers")
    t2 = time.perf_counter()
    if encoding == "binary":
        layout = BinaryLayout(result.as_dict(), result.finite)
        shared = reply_blocks.write(layout, lent, prefix) if prefix else None
        reply = Reply(200, b"", shared=shared, size=layout.size) if shared \
            else Reply(200, layout.tobytes())
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
    """A process pool that is rebuilt if a worker dies (say, killed for memory), and the
    shared-memory blocks its binary replies travel in."""

    def __init__(self, processes: int, data_dir: Path, limits: Limits,
                 presets_dir: Path | None = None) -> None:
        self.processes, self.data_dir, self.limits = processes, data_dir, limits
        self.presets_dir = presets_dir
        self.blocks = reply_blocks.ReplyBlocks(keep=processes)
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

    async def run(self, kind: Literal["run", "jacobian"], body: bytes, encoding: Encoding,
                  gzip_ok: bool) -> tuple[Reply, bytes]:
        """One /run or /jacobian request in a worker: its reply and the response body."""
        lent = self.blocks.lend() if encoding == "binary" else None
        lent_name = lent.name if lent else None

        def finished(reply: Reply | None) -> None:  # the worker is done with the blocks
            self.blocks.give_back(lent_name, reply.shared if reply else None)

        try:
            reply = await self.submit(compute, kind, body, encoding, gzip_ok, lent,
                                      self.blocks.prefix, finished=finished)
        except asyncio.CancelledError:
            raise  # `finished` runs when the worker is done
        except BaseException:
            finished(None)  # the worker raised: it is done with the lent block
            raise
        if reply.worker_died:  # a surviving worker of the broken pool may still write there
            self.blocks.discard(lent_name)
            return reply, reply.body
        t0 = time.perf_counter()
        try:
            content = self.blocks.read(reply.shared, reply.size) if reply.shared else reply.body
        except (OSError, ValueError):  # its block vanished (someone cleaned /dev/shm)
            self.blocks.discard(reply.shared)
            reply = _error(503, "the reply was lost on its way from the worker; try again")
            content = reply.body
        finally:
            finished(reply)
        if reply.timing:
            reply.timing["copy"] = time.perf_counter() - t0
        return reply, content

    async def submit(self, fn: Callable[..., Reply], *args: Any,
                     finished: Callable[[Reply | None], None] | None = None) -> Reply:
        """Run fn(*args) in a worker. If the request is cancelled (a client gone, a
        shutdown) while the worker still works, `finished(reply or None)` runs when it is
        done: only then may the blocks it writes into be lent again. A worker that died
        while idle is replaced and the request sent again; one that dies on the request
        gives a 503."""
        loop = asyncio.get_running_loop()
        for _ in range(2):
            pool = self.pool
            try:
                future = loop.run_in_executor(pool, fn, *args)
                break
            except BrokenProcessPool:  # broken before this request reached a worker
                self._rebuild(pool)
        else:
            return _died()
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if finished is not None:
                future.add_done_callback(lambda f: finished(_reply_of(f)))
            raise
        except BrokenProcessPool:
            self._rebuild(pool)
            return _died()

    def _rebuild(self, pool: ProcessPoolExecutor) -> None:
        if self.pool is pool:  # the first to notice rebuilds; the others reuse it
            pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
            # what a dead worker made and never reported: what is old enough now, the rest
            # once it can no longer be a reply on its way
            self.blocks.sweep()
            asyncio.get_running_loop().call_later(reply_blocks.SWEEP_AFTER,
                                                  self.blocks.sweep)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.blocks.close()


def _died() -> Reply:
    reply = _error(503, "a compute worker stopped (it may have run out of memory); the "
                   "request was not completed — try again or ask for less")
    reply.worker_died = True
    return reply


def _reply_of(future: asyncio.Future) -> Reply | None:
    if future.cancelled() or future.exception() is not None:
        return None
    return future.result()
