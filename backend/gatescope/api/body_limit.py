"""An ASGI middleware that refuses a request body over its limit with 413 — from the
Content-Length header when there is one, else while the body streams in, so an oversized
body is never read whole."""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(HTTPException):
    """An HTTPException, so a route that is parsing a form when the limit strikes answers
    413 itself (FastAPI turns other exceptions during parsing into 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes "
                         f"({limit // 2**20} MiB)")


class BodyLimit:
    """limit_for(path) → the largest body, in bytes, that path accepts."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _reply(send, 400, b'{"detail":"Content-Length is not a number"}')
                return
            if int(length) > limit:
                await _reply(send, 413, _too_large(limit))
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await _reply(send, 413, _too_large(limit))


def _too_large(limit: int) -> bytes:
    return (b'{"detail":"the request body is larger than the limit of %d bytes (%d MiB)"}'
            % (limit, limit // 2**20))


async def _reply(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
