"""The server's connections, guarded below the ASGI app: slow clients are timed out and the
number of connections is capped, so no client can hold the server's descriptors or memory.

uvicorn times out only idle keep-alive connections: a client that sends its headers one
byte a minute (slowloris), a body that never ends, or a response the client never reads
would each hold a connection for ever. This is uvicorn's httptools protocol with the three
timers nginx has (client_header_timeout, client_body_timeout, send_timeout):

    headers  from the connection (or the previous response) to the end of the headers
    body     between two pieces of the body while the server is reading it
    write    without progress while the client does not read what is written

and a cap: a connection over GATESCOPE_MAX_CONNECTIONS (at most the descriptor limit less
a reserve) is answered 503 and closed at once. A timer that fires closes the connection
and logs one line. `gatescope serve` passes it to uvicorn as its HTTP protocol.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..settings import Settings

log = logging.getLogger("uvicorn.error")  # the server's own log, in its format
FD_RESERVE = 64  # descriptors kept for files, the workers' pipes, shared memory, logs
OVER_CAP = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            b"retry-after: 1\r\nconnection: close\r\ncontent-length: 49\r\n\r\n"
            b'{"detail":"too many connections; try again soon"}')


def connection_cap(wanted: int) -> int:
    """`wanted`, at most the descriptor limit less FD_RESERVE (a common container default
    of 1,024 descriptors leaves 960)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


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
        self.max_connections = connection_cap(s.max_connections)
        self._timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._reading_body = False

    # ── the timers ───────────────────────────────────────────────────────────────────
    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._expire, what)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, what: str) -> None:
        self._timer = None
        if self.transport is not None and not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.warning("closed the connection of %s: %s", client, what)
            self.transport.abort()  # the descriptor goes now, not after a FIN handshake

    # ── the connection ───────────────────────────────────────────────────────────────
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(OVER_CAP)
            transport.close()
            return
        self._arm(self.header_timeout, f"no request headers within {self.header_timeout:g} s")
        # the server pauses reading a body it is not ready for: that is not the client's delay
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
        if self._write_timer is not None:
            self._write_timer.cancel()
        super().connection_lost(exc)

    def _arm_body(self) -> None:
        self._arm(self.body_timeout, f"no body for {self.body_timeout:g} s")

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        # a body follows unless the parser is already done with this message
        self._reading_body = self.cycle is not None and self.cycle.more_body
        if self._reading_body:
            self._arm_body()

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self._reading_body and not self.flow.read_paused:
            self._arm_body()

    def on_message_complete(self) -> None:
        self._reading_body = False
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():  # the next request's headers, on keep-alive
            self._arm(self.header_timeout + self.timeout_keep_alive,
                      f"no request headers within {self.header_timeout:g} s")

    # ── writing ──────────────────────────────────────────────────────────────────────
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_timeout, self._write_expired)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_expired(self) -> None:
        self._write_timer = None
        self._expire(f"it read nothing of the response for {self.write_timeout:g} s")
