"""The server's side of the compute processes: one slot per process, a bounded queue in front
of them, and the shared-memory blocks their replies travel in.

    admit()            a ticket, or BusyError (→ 503 with Retry-After) when `processes +
                       max_queue` requests are already waiting or computing, or the bodies
                       still being sent hold `max_sending_bytes`
    run(kind, …)       one /run or /jacobian in the next free slot → (Reply, Body)
    call(fn, …)        any worker function (an upload) in the next free slot → Reply

Each slot is its own single-process executor, so a worker that dies (killed for memory,
say) fails only its own request, and that slot alone is replaced at once. A request whose
client goes while it waits for a slot is simply dropped; one whose worker is running is
cancelled: the slot's flag is set, and the worker stops at its next checkpoint (between
layers and phases of the run) and takes the next request. The flag is a byte of shared
memory, not a lock a killed worker could leave held.

A request holds its ticket from admission (its body already read) until its reply is
ready; a body over a megabyte then comes back in a shared-memory block and is streamed from
it (BodyResponse), so the server never holds it whole. Bodies still being sent are counted
against their own budget, so slow readers cannot take the compute capacity away. The block
is lent again once the body has gone out, or the client has, or the response was cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Literal

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..contract.encoding import Encoding
from ..contract.limits import Limits
from ..models.store import StoreOptions
from . import reply_blocks
from .compute import Reply, compute, error_reply, init_worker, ready

CHUNK = 2**20  # a streamed body goes out a mebibyte at a time
SHUTDOWN_GRACE = 2.0  # s a worker has to stop at its checkpoint before it is killed
MAX_SENDING_BYTES = 2**30  # bodies still being sent, at most (their blocks are in memory)


# what runs once a request's worker is done with it (its reply, or None): only then may the
# blocks the worker writes into be lent again
Finished = Callable[[Reply | None], None]


def _nothing(reply: Reply | None) -> None:
    pass


class BusyError(Exception):
    """Every slot and place in the queue is taken; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy; try again in {retry_after} s")
        self.retry_after = retry_after


class Ticket:
    """A request's place in the pool, from admission until its reply is ready; released
    once (release(), or on leaving a `with` block)."""

    def __init__(self, pool: ComputePool) -> None:
        self._pool: ComputePool | None = pool

    def release(self) -> None:
        if self._pool is not None:
            self._pool.admitted -= 1
            self._pool = None

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Slot:
    """One worker process: its executor and the flag (a shared byte) that asks it to stop
    its request."""

    def __init__(self, index: int, start: Callable[[Any], ProcessPoolExecutor],
                 context: Any) -> None:
        self.index, self._start, self._context = index, start, context
        self.executor, self.cancel = self._new()

    def _new(self) -> tuple[ProcessPoolExecutor, Any]:
        cancel = self._context.RawValue("b", 0)  # lock-free: a killed worker holds nothing
        return self._start(cancel), cancel

    def renew(self) -> None:
        """A new process (and flag) for this slot; the old one is left to die."""
        old = self.executor
        self.executor, self.cancel = self._new()
        old.shutdown(wait=False, cancel_futures=True)

    def alive(self) -> bool:
        processes = getattr(self.executor, "_processes", None) or {}
        return not getattr(self.executor, "_broken", False) and all(
            p.is_alive() for p in processes.values())

    def pids(self) -> list[int]:
        """The worker's process id (none once it has gone)."""
        processes = getattr(self.executor, "_processes", None) or {}
        return [p.pid for p in processes.values() if p.pid is not None]


class Body:
    """A reply's body in a shared-memory block, read out a chunk at a time; `close()` gives
    the blocks back (the one lent for the request and the one the reply is in) and takes
    it off the bodies being sent. Idempotent."""

    def __init__(self, pool: ComputePool, name: str, size: int, lent: str | None) -> None:
        self.pool, self.name, self.size, self.lent = pool, name, size, lent
        self.closed = False
        pool.sending += size

    def __iter__(self) -> Iterator[bytes]:
        block = self.pool.blocks.adopt(self.name)
        for start in range(0, self.size, CHUNK):
            if self.closed:
                return
            yield block.map[start:min(self.size, start + CHUNK)]

    def read(self) -> bytes:
        return b"".join(self)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.sending -= self.size
            self.pool.blocks.give_back(self.lent, self.name)


class BodyResponse(StreamingResponse):
    """A Body streamed out; closed however the response ends — sent, the client gone, or
    cancelled before its first byte (an async generator never started would never run its
    `finally`)."""

    def __init__(self, body: Body, status_code: int, headers: dict[str, str],
                 media_type: str) -> None:
        async def chunks() -> Any:
            for chunk in body:
                yield chunk

        super().__init__(chunks(), status_code, {**headers, "content-length": str(body.size)},
                         media_type=media_type)
        self.body_ = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.body_.close()


class ComputePool:
    """`processes` slots, a queue of `max_queue` requests in front of them, the blocks."""

    def __init__(self, processes: int, data_dir: Path, limits: Limits,
                 presets_dir: Path | None = None, max_queue: int = 8,
                 store_options: StoreOptions | None = None,
                 max_sending_bytes: int = MAX_SENDING_BYTES) -> None:
        self.data_dir, self.limits, self.presets_dir = data_dir, limits, presets_dir
        self.store_options = store_options  # ModelStore's keyword settings, or its defaults
        self.processes, self.capacity = processes, processes + max_queue
        self.max_sending_bytes = max_sending_bytes
        self.blocks = reply_blocks.ReplyBlocks(keep=processes)
        self._context = multiprocessing.get_context("spawn")
        # spawn, not fork: the server process has threads, and a forked copy of their locks
        # can deadlock a worker. OpenBLAS's idle threads spin for ~0.1 s after each
        # multi-threaded product; with two workers on two cores, one worker's spinning
        # threads slowed the other's step loop by ~20 % (median run 136 → 114 ms).
        # Workers inherit this and let them sleep at once.
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # 2^4 cycles; read at load
        self.slots = [Slot(i, self._start, self._context) for i in range(processes)]
        self._idle: deque[Slot] = deque(self.slots)
        self._waiting: deque[asyncio.Future[Slot]] = deque()
        self.admitted = 0  # tickets out: requests waiting for a slot or computing
        self.sending = 0  # bytes of bodies still being sent (Body)
        self.seconds = 1.0  # a request's time in a worker, averaged: the Retry-After's base
        self.closing = False

    def _start(self, cancel: Any) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, self._context, initializer=init_worker,
                                   initargs=(self.data_dir, self.limits, self.presets_dir,
                                             cancel, self.store_options))

    async def warm_up(self) -> None:
        """Start every worker now, not on the first request."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(s.executor, ready) for s in self.slots))

    # ── admission ───────────────────────────────────────────────────────────────────
    def admit(self) -> Ticket:
        """A place for one request, or BusyError."""
        if (self.closing or self.admitted >= self.capacity
                or self.sending >= self.max_sending_bytes):
            raise BusyError(self.retry_after())
        self.admitted += 1
        return Ticket(self)

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the queue ahead, at the recent pace."""
        ahead = max(1, self.admitted - self.processes + 1)
        return max(1, min(60, math.ceil(self.seconds * ahead / self.processes)))

    async def _acquire(self) -> Slot:
        if self._idle:
            return self._idle.popleft()
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot as it was cancelled
                self._release(waiter.result())
            else:
                with contextlib.suppress(ValueError):  # _release may have popped it already
                    self._waiting.remove(waiter)
            raise

    def _release(self, slot: Slot) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self._idle.append(slot)

    # ── running ─────────────────────────────────────────────────────────────────────
    async def call(self, fn: Callable[..., Reply], *args: Any) -> Reply:
        """fn(*args) in the next free slot (see _on)."""
        return await self._on(await self._acquire(), fn, *args)

    async def _on(self, slot: Slot, fn: Callable[..., Reply], *args: Any,
                  finished: Finished = _nothing) -> Reply:
        """fn(*args) in `slot`, which it then gives back. Cancelled (the client has gone):
        the worker is asked to stop, and `finished(reply or None)` runs once it has — only
        then may the blocks it writes into be lent again. A worker found dead is replaced
        before the request is sent; one that dies on the request gives it a 503."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            future = self._submit(slot, fn, *args)
        except BaseException:
            self._release(slot)
            finished(None)
            raise
        cancel = slot.cancel  # this request's flag: a replaced worker gets a new one
        try:
            reply = await asyncio.shield(asyncio.wrap_future(future, loop=loop))
        except asyncio.CancelledError:
            cancel.value = 1  # the worker stops at its next checkpoint

            def done(f: Future[Reply]) -> None:
                with contextlib.suppress(RuntimeError):  # the loop has closed (shut down)
                    loop.call_soon_threadsafe(self._finished, slot, f, finished)

            future.add_done_callback(done)
            raise
        except BrokenProcessPool:
            self._replace(slot)
            finished(None)
            return died()
        except BaseException:
            self._release(slot)
            finished(None)
            raise
        self.seconds += 0.2 * (time.monotonic() - started - self.seconds)
        self._release(slot)
        return reply

    def _submit(self, slot: Slot, fn: Callable[..., Reply], *args: Any) -> Future[Reply]:
        if not slot.alive():  # its worker died while idle: a new one first
            slot.renew()
        slot.cancel.value = 0
        try:
            return slot.executor.submit(fn, *args)
        except BrokenProcessPool:  # it died just now
            slot.renew()
            return slot.executor.submit(fn, *args)

    def _finished(self, slot: Slot, future: Future[Reply], finished: Finished) -> None:
        """A cancelled request's worker is done: its slot and blocks are free again."""
        error = None if future.cancelled() else future.exception()
        reply = None if future.cancelled() or error is not None else future.result()
        if isinstance(error, BrokenProcessPool):
            self._replace(slot)
        else:
            self._release(slot)
        finished(reply)

    def _replace(self, slot: Slot) -> None:
        """A new process for a slot whose worker died; what the dead one made and never
        reported is swept once it can no longer be a reply on its way. The slot is given
        back even if no process can be started now (the next request tries again)."""
        if self.closing:
            return
        try:
            slot.renew()
            slot.executor.submit(ready)  # start it now
        except (OSError, BrokenProcessPool, RuntimeError):
            pass  # _submit renews it when a request comes
        finally:
            self._release(slot)
        self.blocks.sweep()
        asyncio.get_running_loop().call_later(reply_blocks.SWEEP_AFTER, self.blocks.sweep)

    async def run(self, kind: Literal["run", "jacobian"], body: bytes, encoding: Encoding,
                  gzip_ok: bool, fields: str | None = None) -> tuple[Reply, bytes | Body]:
        """One /run or /jacobian request in a worker: its reply, and its body as bytes or,
        over a megabyte, as a Body to stream (whose close() gives its blocks back). A block
        is lent only once a slot is free: a request dropped from the queue holds none."""
        slot = await self._acquire()
        lent = self.blocks.lend()
        lent_name = lent.name if lent else None

        def finished(reply: Reply | None) -> None:  # the worker is done with the blocks
            self.blocks.give_back(lent_name, reply.shared if reply else None)

        try:
            reply = await self._on(slot, compute, kind, body, encoding, gzip_ok, lent,
                                   self.blocks.prefix, fields, finished=finished)
        except asyncio.CancelledError:
            raise  # `finished` runs once the worker is done with the blocks
        except BaseException:
            finished(None)  # (_on does too: giving a block back twice keeps it once)
            raise
        if reply.worker_died:  # it may have written into the lent block as it died
            self.blocks.discard(lent_name)
            return reply, reply.body
        if reply.shared is None:
            self.blocks.give_back(lent_name)
            return reply, reply.body
        try:
            self.blocks.adopt(reply.shared)
        except (OSError, ValueError):  # its block vanished (someone cleaned /dev/shm)
            self.blocks.discard(reply.shared)
            self.blocks.give_back(lent_name)
            lost = error_reply(503, "the reply was lost on its way from the worker; try again")
            return lost, lost.body
        return reply, Body(self, reply.shared, reply.size, lent_name)

    # ── shutting down ───────────────────────────────────────────────────────────────
    def shutdown(self) -> None:
        """Stop at once: queued requests are dropped, running ones asked to stop, and
        workers that have not stopped after SHUTDOWN_GRACE are killed."""
        self.closing = True
        for waiter in self._waiting:
            waiter.cancel()
        for slot in self.slots:
            slot.cancel.value = 1
            slot.executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + SHUTDOWN_GRACE
        for slot in self.slots:
            for process in list((getattr(slot.executor, "_processes", None) or {}).values()):
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
        self.blocks.close()


def died() -> Reply:
    reply = error_reply(503, "a compute worker stopped (it may have run out of memory); the "
                        "request was not completed — try again or ask for less")
    reply.headers["retry-after"] = "1"
    reply.worker_died = True
    return reply


class ClientGoneError(Exception):
    """The client disconnected before its answer was ready."""


async def while_connected(request: Any, work: Any) -> Any:
    """Await `work` (a coroutine) unless the client disconnects first: then it is cancelled
    (a queued request dropped, a running one asked to stop) and ClientGoneError is raised.
    `request`: a Starlette Request whose body has been read. If this itself is cancelled
    (the server shutting down), so is the work."""
    job = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watch = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            raise ClientGoneError
    return job.result()
