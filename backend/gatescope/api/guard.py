"""Who may call the server: an ASGI middleware that refuses, before any route runs, what a
web page elsewhere could make a browser send (CSRF, DNS rebinding), as Jupyter and
TensorBoard do. In order (README, "Security"; docs/API.md, "Who may call it"):

1. `Host` must name this server: localhost, 127.0.0.1 or [::1] with any port, an explicit
   GATESCOPE_HOST, or a name in GATESCOPE_ALLOWED_HOSTS ("*": any) — else 400. A page on
   a rebound name (rebind.evil.example resolving to 127.0.0.1) sends its own name.
2. An `Origin` header, when there is one, must be this server's own origin (the scheme
   and the Host as the request names them) or one of GATESCOPE_CORS_ORIGINS — else 403.
3. With GATESCOPE_TOKEN set, every /api/v1 request but /health carries the token
   (`Authorization: Bearer <token>` or `token <token>`, or the cookie) — else 401. The
   page opened as /?token=<token> is redirected to itself without it, with the cookie
   (HttpOnly, SameSite=Strict): the token leaves the address bar, and so never reaches the
   page's URL state, a Referer or the history; the access log shows it redacted.
4. An /api/v1 path that no route has is a 404; a wrong method a 405 with the right
   `Allow` (the explorer page mounted at / would answer either with its own 404 or 405).
5. The POST bodies must declare their type — `application/json` for /run and /jacobian,
   `multipart/form-data` for an upload — else 415: a cross-site page can send text/plain
   or a form without asking the browser's CORS check first, never application/json.

It sits inside the body limit (a body over it is a 413 first) and inside CORS (so a 401
to an allowed origin carries the CORS headers a page needs to read it).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote_plus, urlsplit

from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from ..settings import Settings

LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_PORTS = {"http": 80, "https": 443}
# what the POST bodies must be, by path under the API prefix
BODY_TYPES = {"/run": "application/json", "/jacobian": "application/json",
              "/models": "multipart/form-data"}
HOST_SETTING = "GATESCOPE_ALLOWED_HOSTS"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class Guard:
    """The five checks above, for `settings`; `routes` are the app's (read per request, so
    routes added after the middleware count), `api` the API's path prefix."""

    def __init__(self, app: ASGIApp, settings: Settings, routes: Sequence[BaseRoute],
                 api: str = "/api/v1") -> None:
        self.app, self.routes, self.api = app, routes, api
        self.open_paths = {f"{api}/health"}
        self.body_types = {api + path: media for path, media in BODY_TYPES.items()}
        self.any_host = "*" in settings.allowed_hosts
        names = [*LOOPBACK, *_bind_name(settings.host),
                 *(h for h in settings.allowed_hosts if h != "*")]
        self.host_names = {h for h in names if _split_host(h)[1] is None}
        self.host_ports = {h for h in names if _split_host(h)[1] is not None}
        self.any_origin = "*" in settings.cors_origins
        self.origins = {_origin(o) or o for o in settings.cors_origins}
        secret = settings.token.get_secret_value() if settings.token else None
        self.token = secret.encode() if secret else None
        _redact_tokens_in_access_log()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check(scope)
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            status, detail, headers = refusal
            await _reply(send, status, detail, headers)

    def _check(self, scope: Scope) -> tuple[int, str, dict[str, str]] | None:
        headers = _headers(scope)
        if scope["path"] in self.open_paths and scope["method"] == "GET":
            return None  # health answers a probe by any name (it tells nothing and does nothing)
        hosts = headers.get("host", [])
        if len(hosts) != 1 or not self._host_ok(hosts[0]):
            return 400, self._host_refusal(hosts), {}
        host = hosts[0]
        own = _origin(f"{scope['scheme']}://{host}")
        for origin in headers.get("origin", []):
            if not (self.any_origin or (_origin(origin) or origin) in (own, *self.origins)):
                return 403, (f"a page at {_shown(origin)} may not call this server: only its "
                             f"own pages ({own}) and the origins in GATESCOPE_CORS_ORIGINS "
                             "may"), {}
        path, method = scope["path"], scope["method"]
        in_api = path == self.api or path.startswith(self.api + "/")
        if self.token is not None:
            if in_api and path not in self.open_paths and not self._authorized(headers, host,
                                                                              scope):
                return 401, ("this server needs its token (GATESCOPE_TOKEN): send "
                             "Authorization: Bearer <token>, or open the page as "
                             "/?token=<token>"), {"www-authenticate": 'Bearer realm="gatescope"'}
            if not in_api and method in ("GET", "HEAD"):
                exchange = self._token_in_url(scope, host)
                if exchange is not None:
                    return exchange
        if not in_api:
            return None
        allowed = self._methods(scope)
        if not allowed:
            return 404, "Not Found", {}
        if method not in allowed:
            return 405, (f"{method} is not a method of {path}; it takes "
                         f"{', '.join(sorted(allowed))}"), {"allow": ", ".join(sorted(allowed))}
        expected = self.body_types.get(path) if method == "POST" else None
        if expected is not None:
            given = (headers.get("content-type") or [""])[0]
            if given.split(";")[0].strip().lower() != expected:
                said = f"says {_shown(given)}" if given else "is missing"
                return 415, (f"{method} {path} takes a body of type {expected}; the request's "
                             f"Content-Type header {said}"), {}
        return None

    # ── Host and Origin ──────────────────────────────────────────────────────────────
    def _host_ok(self, host: str) -> bool:
        name, port = _split_host(host)
        if name is None:
            return False
        return (self.any_host or name in self.host_names
                or (port is not None and f"{name}:{port}" in self.host_ports))

    def _host_refusal(self, hosts: list[str]) -> str:
        extra = sorted(self.host_names - set(LOOPBACK)) + sorted(self.host_ports)
        said = (f"the Host {_shown(hosts[0])}" if len(hosts) == 1
                else "no Host header" if not hosts else "more than one Host header")
        return (f"this server does not answer to {said}: it answers to localhost, 127.0.0.1 "
                f"and [::1] (any port){''.join(', ' + h for h in extra)}. To serve another "
                f"name, add it to {HOST_SETTING} (a JSON list, e.g. "
                '\'["gatescope.example.org"]\'; \'["*"]\' answers to any Host)')

    # ── the token ────────────────────────────────────────────────────────────────────
    def _authorized(self, headers: dict[str, list[str]], host: str, scope: Scope) -> bool:
        assert self.token is not None
        for value in headers.get("authorization", []):
            scheme, _, given = value.strip().partition(" ")
            if scheme.lower() in ("bearer", "token") and self._is_token(given.strip()):
                return True
        cookie = _cookie_name(scope["scheme"], host)
        for line in headers.get("cookie", []):
            for pair in line.split(";"):
                name, _, value = pair.strip().partition("=")
                if name == cookie and self._is_token(value):
                    return True
        return False

    def _is_token(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode("latin-1", "replace"), self.token)

    def _token_in_url(self, scope: Scope, host: str) -> tuple[int, str, dict[str, str]] | None:
        """/?token=… (any page path): the right token → 303 to the same URL without it,
        setting the cookie; a wrong one → 401."""
        query = scope["query_string"].decode("latin-1")
        pairs = [p for p in query.split("&") if p]
        tokens = [p for p in pairs if unquote_plus(p.partition("=")[0]) == "token"]
        if not tokens:
            return None
        given = unquote_plus(tokens[-1].partition("=")[2])
        if not self._is_token(given):
            return 401, "the token in the address is not this server's GATESCOPE_TOKEN", {}
        rest = "&".join(p for p in pairs if p not in tokens)
        # the path as it came (still percent-encoded: no CR, LF, backslash or non-ASCII can
        # reach the header), never starting "//" (that would be another host)
        raw = scope.get("raw_path") or scope["path"].encode()
        path = "/" + raw.decode("latin-1").lstrip("/\\")
        secure = "; Secure" if scope["scheme"] == "https" else ""
        return 303, "signed in: the page is at the address without the token", {
            "location": path + (f"?{rest}" if rest else ""),
            "set-cookie": f"{_cookie_name(scope['scheme'], host)}={given}; Path=/; "
                          f"HttpOnly; SameSite=Strict{secure}",
            "cache-control": "no-store", "referrer-policy": "no-referrer"}

    # ── routes ───────────────────────────────────────────────────────────────────────
    def _methods(self, scope: Scope) -> set[str]:
        """The methods the app's routes take at this request's path (empty: none has the
        path), asked of each route as the router asks it — the mounts left out, as the
        page's mount at / takes every path."""
        routes = [r for r in self.routes if not isinstance(r, Mount)]
        if any(r.matches(dict(scope))[0] is Match.FULL for r in routes):
            return {scope["method"]}
        return {method for method in METHODS for r in routes
                if r.matches({**scope, "method": method})[0] is Match.FULL}


# ── helpers ──────────────────────────────────────────────────────────────────────────
def _headers(scope: Scope) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in scope["headers"]:
        out.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return out


def _split_host(host: str) -> tuple[str | None, int | None]:
    """"Name:port" → (name in lower case, port); (None, None) if it is not a host."""
    match = re.fullmatch(r"(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::([0-9]{1,5}))?", host.lower())
    if not match:
        return None, None
    return match[1], int(match[2]) if match[2] else None


def _bind_name(host: str) -> Iterable[str]:
    """The address the server binds, as a Host header names it — unless it binds every
    address (0.0.0.0, ::), which says nothing about the names it is reached by."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return [host.lower()] if host and _split_host(host)[0] else []
    if address.is_unspecified:
        return []
    return [f"[{address}]" if address.version == 6 else str(address)]


def _origin(origin: str) -> str | None:
    """scheme://host[:port] in one spelling: lower case, no default port; None if it is
    not one (e.g. "null")."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown_port = f":{port}" if port is not None and port != DEFAULT_PORTS[parts.scheme] else ""
    return f"{parts.scheme}://{name}{shown_port}"


def _cookie_name(scheme: str, host: str) -> str:
    """One cookie per port: browsers share cookies between the ports of a host."""
    port = _split_host(host)[1] or DEFAULT_PORTS.get(scheme, 80)
    return f"gatescope-token-{port}"


def _shown(value: str) -> str:
    return json.dumps(value[:200])


async def _reply(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *((k.encode(), v.encode("latin-1")) for k, v in headers.items())]})
    await send({"type": "http.response.body", "body": body})


class _RedactToken(logging.Filter):
    """uvicorn's access log prints each request line, query string and all: a token in
    it (/?token=…) is shown as token=[redacted]."""

    PATTERN = re.compile(r"([?&]token=)[^&\s\"]*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.PATTERN.sub(r"\1[redacted]", a) if isinstance(a, str)
                                else a for a in record.args)
        return True


def _redact_tokens_in_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactToken) for f in access.filters):
        access.addFilter(_RedactToken())
