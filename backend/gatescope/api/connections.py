"""The server's connections, guarded below the ASGI app: slow clients are timed out and the
number of connections is capped, so no client can hold the server's descriptors or memory.

uvicorn times out only idle keep-alive connections: a client that sends its headers one
byte a minute (slowloris), a body that never ends, or a response the client never reads
would each hold a connection for ever. This is uvicorn's httptools protocol with the
timers nginx has (client_header_timeout, client_body_timeout, send_timeout):

    headers  from the connection, or the end of the previous exchange, to the end of the
             headers; always armed while the connection waits for the client
    body     between two pieces of the body while the server is reading it
    write    while written bytes wait for the client: none delivered for WRITE_TIMEOUT,
             or fewer than MIN_SEND_RATE bytes a second on average after WRITE_TIMEOUT

and a cap: a connection over GATESCOPE_MAX_CONNECTIONS (at most the descriptor limit less
a reserve for the workers' pipes and files) is answered 503 and closed at once. A timer
that fires aborts the connection (its descriptor goes now, even if uvicorn had already
begun closing it) and logs one line. `gatescope serve` passes it to uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..settings import Settings

log = logging.getLogger("uvicorn.error")  # the server's own log, in its format
FD_RESERVE = 64  # descriptors kept for files, logs, shared memory…
FD_PER_PROCESS = 8  # … and each compute process's pipes and queues
WATCH_EVERY = 1.0  # s between looks at a backlog of written bytes
OVER_CAP = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            b"retry-after: 1\r\nconnection: close\r\ncontent-length: 49\r\n\r\n"
            b'{"detail":"too many connections; try again soon"}')


def connection_cap(wanted: int, processes: int = 0) -> int:
    """`wanted`, at most the descriptor limit less what the server itself needs (a common
    container default of 1,024 descriptors leaves 944 with two compute processes)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE - FD_PER_PROCESS * processes))


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header, body and write timeouts and a connection
    cap, read from the GATESCOPE_* settings once per process."""

    _settings: Settings | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls._settings is None:
            cls._settings = Settings()
        s = cls._settings
        self.header_timeout = s.header_timeout
        self.body_timeout = s.body_timeout
        self.write_timeout = s.write_timeout
        self.min_send_rate = s.min_send_rate
        self.max_connections = connection_cap(s.max_connections, s.compute_processes)
        self._timer: asyncio.TimerHandle | None = None
        self._reading_body = False
        self._written = 0  # bytes handed to the transport, ever
        self._watch: asyncio.TimerHandle | None = None
        self._since = self._progress_at = 0.0
        self._delivered_since = self._delivered_last = 0

    # ── the timers ───────────────────────────────────────────────────────────────────
    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expire, what)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm_headers(self, extra: float = 0.0) -> None:
        self._arm(self.header_timeout + extra,
                  f"no request headers within {self.header_timeout:g} s")

    def _arm_body(self) -> None:
        self._arm(self.body_timeout, f"no body for {self.body_timeout:g} s")

    def _expire(self, what: str) -> None:
        self._timer = None
        self._abort(what)

    def _abort(self, what: str) -> None:
        if self.transport is not None:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.warning("closed the connection of %s: %s", client, what)
            self.transport.abort()  # now, even if a close() waits for the client to read

    # ── the connection ───────────────────────────────────────────────────────────────
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(OVER_CAP)
            transport.close()
            return
        self._arm_headers()
        # the server pauses reading a body it is not ready for (or a pipelined request):
        # that is not the client's delay
        pause, resume = self.flow.pause_reading, self.flow.resume_reading

        def pause_reading() -> None:
            if self._reading_body:
                self._disarm()
            pause()

        def resume_reading() -> None:
            resume()
            if self._reading_body:
                self._arm_body()

        self.flow.pause_reading = pause_reading  # type: ignore[method-assign]
        self.flow.resume_reading = resume_reading  # type: ignore[method-assign]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if self.cycle is not None:  # what the app writes goes through the cycle: count it
            self.cycle.transport = _Counted(self.transport, self)  # type: ignore[assignment]
        # a body follows unless the parser is already done with this message
        self._reading_body = self.cycle is not None and self.cycle.more_body
        if self._reading_body and not self.flow.read_paused:
            self._arm_body()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        answered = self.cycle is not None and self.cycle.response_complete
        if self._reading_body and not answered and not self.flow.read_paused:
            self._arm_body()

    def on_message_complete(self) -> None:
        self._reading_body = False
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            self._arm_headers()  # answered before its body came: now wait for the next one
        else:
            self._disarm()  # the app has it; nothing is the client's to do until it answers

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size():
            self._watch_writes()  # the answer is not all out: the client must read it
        # no pipelined request started, none still being read: wait for the next one
        if (self.cycle is None or self.cycle.response_complete) and not self._reading_body:
            self._arm_headers(self.timeout_keep_alive)

    # ── writing ──────────────────────────────────────────────────────────────────────
    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_writes()

    def _delivered(self) -> int:
        return self._written - self.transport.get_write_buffer_size()

    def _watch_writes(self) -> None:
        """Start looking at the backlog every WATCH_EVERY s, until it has gone."""
        if self._watch is None:
            self._since = self._progress_at = time.monotonic()
            self._delivered_since = self._delivered_last = self._delivered()
            self._watch = self.loop.call_later(WATCH_EVERY, self._look)

    def _look(self) -> None:
        self._watch = None
        if self.transport is None or self.transport.get_write_buffer_size() == 0:
            return  # all delivered (or gone): nothing to watch
        now, delivered = time.monotonic(), self._delivered()
        if delivered > self._delivered_last:
            self._progress_at, self._delivered_last = now, delivered
        why = too_slow(now - self._progress_at, now - self._since,
                       delivered - self._delivered_since, self.write_timeout,
                       self.min_send_rate)
        if why:
            self._abort(why)
            return
        self._watch = self.loop.call_later(WATCH_EVERY, self._look)


def too_slow(idle: float, elapsed: float, delivered: int, write_timeout: float,
             min_rate: float) -> str | None:
    """Why a client reading a backlog of written bytes is cut off, or None: nothing
    delivered for `idle` ≥ write_timeout seconds, or, once it has had write_timeout, fewer
    than min_rate bytes a second since the backlog began `elapsed` seconds ago. (What the
    process sees is coarse: the kernel's send buffer, megabytes, takes bytes in bursts.)"""
    if idle >= write_timeout:
        return f"it read nothing of the response for {write_timeout:g} s"
    rate = delivered / elapsed if elapsed > 0 else float("inf")
    if elapsed >= write_timeout and rate < min_rate:
        return (f"it read the response at {rate / 1024:.0f} KiB/s, under "
                f"{min_rate / 1024:.0f} KiB/s")
    return None


class _Counted:
    """A transport that counts what is written through it (uvloop's transports are C
    objects whose methods cannot be replaced), for the write watch."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedHttpToolsProtocol) -> None:
        self._transport, self._protocol = transport, protocol

    def write(self, data: Any) -> None:
        self._protocol._written += len(data)
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
