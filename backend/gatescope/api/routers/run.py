"""`POST /run` and `POST /jacobian`. Thin: the raw body goes to a worker process, which
validates, runs and encodes; the event loop only moves bytes."""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from ...contract.encoding import Encoding
from ...contract.responses import BatchResponse, ErrorResponse, JacobianResponse, RunResponse
from ..deps import ComputeDep
from ..pool import Body, BodyResponse, while_connected

router = APIRouter(tags=["run"])

FIELDS = Query(
    None, max_length=200, pattern=r"^[a-z_]+(,[a-z_]+)*$",
    description="the parts to send, comma-separated, as the request's `fields` (e.g. "
    "h,gates): each layer's h, c, gates, pre, grads, jacobian; the run's outputs, input_grad, "
    "param_grads, initial_state_grad. Given both ways, they must agree.")

ENCODING = Query(
    "json",
    description='"json": nested lists (null where a value overflowed). "typed": every '
    'finite array as plotly.js\'s typed-array object {"dtype": "f4"|"f8", "bdata": '
    '<base64, little-endian>, "shape": "T,H"}, about 2× smaller and faster to parse. '
    '"binary" (application/octet-stream): b"GSB1", a uint32 little-endian header length n, '
    "n bytes of JSON header — the response with each array replaced by "
    '{"dtype", "shape", "offset", "nbytes"} — then the arrays\' little-endian bytes, every '
    "offset a multiple of 8 from the end of the header: readable in place with "
    "np.frombuffer or a JavaScript Float32Array. In all three, arrays holding overflowed "
    "values stay JSON lists with null. JSON responses over 64 KiB are gzip-compressed when "
    "the client accepts gzip.")

BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
TIMING = {"Server-Timing": {"schema": {"type": "string"}, "description":
                            "milliseconds spent: parse, run, encode (in the worker), "
                            "total, e.g. `parse;dur=7.9, run;dur=112.0, …`"}}

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "weights.model_id names no model"},
    413: {"model": ErrorResponse, "description": "the body is over 32 MiB"},
    415: {"model": ErrorResponse,
          "description": "the Content-Type header is not application/json (a charset "
          "parameter may follow)"},
    422: {"model": ErrorResponse,
          "description": "the request breaks the contract (a key given twice in one object "
          "among the ways): `loc` names the field, `msg` the problem and the limit"},
}


def _body(schema: str) -> dict[str, Any]:
    """The request body's schema, for the docs (the body is parsed in a worker)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}}}


def _gzip_ok(request: Request) -> bool:
    return accepts_gzip(", ".join(request.headers.getlist("accept-encoding")))


QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header (RFC 9110 §12.5.3) lets the response be gzip:
    "gzip" (or "x-gzip") with a q-value above 0, or else "*" with one; names are
    case-insensitive, q defaults to 1, and a malformed q counts as 0. No header, or
    "identity" alone, means no gzip."""
    gzip_q: float | None = None
    star_q: float | None = None
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                q = float(value) if QVALUE.fullmatch(value) else 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            star_q = q if star_q is None else max(star_q, q)
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


async def _compute(kind: Literal["run", "jacobian"], request: Request, pool: ComputeDep,
                   encoding: Encoding, fields: str | None = None) -> Response:
    body = await request.body()  # before admission: a slow body holds no place in the pool
    # admitted, or BusyError: 503 with Retry-After; a client gone meanwhile: its work is
    # dropped, ClientGoneError, 499 (app.py). The place is held until the reply is ready (a
    # body being sent is counted apart).
    with pool.admit():
        t0 = time.perf_counter()
        reply, content = await while_connected(
            request, pool.run(kind, body, encoding, _gzip_ok(request), fields))
    timing = {**reply.timing, "total": time.perf_counter() - t0}
    headers = {**reply.headers, "server-timing": server_timing(timing)} if reply.timing \
        else reply.headers
    binary = encoding == "binary" and reply.status == 200
    media = "application/octet-stream" if binary else "application/json"
    if isinstance(content, Body):  # streamed from its shared-memory block, never held whole
        return BodyResponse(content, reply.status, headers, media)
    return Response(content, reply.status, headers, media_type=media)


def server_timing(seconds: dict[str, float]) -> str:
    """The Server-Timing header (shown by browsers' developer tools), durations in ms:
    parse, run and encode in the worker, and the server's total from the request body to
    the response's first byte."""
    return ", ".join(f"{name};dur={s * 1e3:.1f}" for name, s in seconds.items())


@router.post("/run", responses={200: {"model": RunResponse | BatchResponse, "content": BINARY,
                                     "headers": TIMING}, **ERRORS},
             openapi_extra=_body("RunRequest"))
async def run(request: Request, pool: ComputeDep, encoding: Encoding = ENCODING,
              fields: str | None = FIELDS) -> Response:
    """Forward pass and backpropagation through time: for every layer and step, the states,
    every gate before and after its nonlinearity, ∂L/∂h_t and ∂L/∂c_t, gate gradients,
    norms, the cell-state Jacobian's four terms, and every parameter gradient — or, with
    `fields` or `backward: false`, only the parts asked for."""
    if len(request.query_params.getlist("fields")) > 1:  # not silently the last of them
        raise RequestValidationError([{
            "loc": ("query", "fields"), "type": "value_error", "input": None,
            "msg": "give ?fields= once, its parts comma-separated (fields=h,gates)"}])
    return await _compute("run", request, pool, encoding, fields)


@router.post("/jacobian", responses={200: {"model": JacobianResponse, "content": BINARY,
                                          "headers": TIMING}, **ERRORS},
             openapi_extra=_body("JacobianRequest"))
async def jacobian(request: Request, pool: ComputeDep, encoding: Encoding = ENCODING
                   ) -> Response:
    """The H×H one-step Jacobian at `step` of `layer`: ∂c_t/∂c_{t−1} and its four terms for
    an LSTM, ∂h_t/∂h_{t−1} for a GRU or RNN. Row i, column j = ∂state_t[i]/∂state_{t−1}[j]."""
    return await _compute("jacobian", request, pool, encoding)
