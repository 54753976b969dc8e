"""What runs in a compute process (pool.py is the server's side of them).

The engine's step loop holds the GIL, so a thread would freeze the server for the length
of a run. A worker process parses and validates the raw request body (pydantic's JSON
parser: NaN/Infinity tokens, 1e400, 100-digit integers and deep nesting are all clean
errors), runs it, and encodes and compresses the response; the event loop only moves bytes.
A body over a megabyte goes back in a shared-memory block (reply_blocks.py). The server
sets the process's cancel flag when a request's client has gone: the run stops at its next
checkpoint.
"""

from __future__ import annotations

import gzip
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from ..contract.encoding import BinaryLayout, Encoding, dumps
from ..contract.errors import ModelNotFoundError, error_detail, invalid
from ..contract.json_body import parse_json
from ..contract.limits import Limits
from ..contract.results import BatchResult, JacobianResult, RunResult
from ..contract.schemas import JacobianRequest, RunRequest
from ..models.files import ModelFileError
from ..models.layout import ANY, Choice
from ..models.store import DamagedModelError, ModelStore, StoreOptions
from ..runner import jacobian, run, run_batch
from . import reply_blocks

GZIP_MIN_BYTES = 64 * 1024
WORKER_NICENESS = 5
# a JSON body's numbers as Python floats in lists: ~15 bytes of memory per byte of body
PARSE_BYTES_PER_BYTE = 16


@dataclass
class Reply:
    """What a worker sends back: the finished HTTP response. A body over a megabyte is in
    the shared-memory block `shared` (see reply_blocks), `size` bytes long. Status 499: the
    request was cancelled (its client had gone); nobody reads it."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    shared: str | None = None
    size: int = 0
    timing: dict[str, float] = field(default_factory=dict)  # seconds, for Server-Timing
    worker_died: bool = False  # the pool broke under this request


def error_reply(status: int, detail: object) -> Reply:
    return Reply(status, orjson.dumps({"detail": detail}))


# ── in the worker process ────────────────────────────────────────────────────────────
_store: ModelStore | None = None
_limits = Limits()
_cancel: Any = None  # the server's shared byte for this process: 1 = stop the request


class RunCancelledError(Exception):
    """The request's client has gone (the server set the cancel flag)."""


def init_worker(data_dir: Path, limits: Limits, presets_dir: Path | None = None,
                cancel: Any = None, store_options: StoreOptions | None = None) -> None:
    """A worker's store (`store_options`: ModelStore's keyword settings), limits and the
    server's cancel flag for it. Workers run at a lower priority than the server (nice
    +5), so its event loop answers at once while every core computes."""
    global _store, _limits, _cancel
    if hasattr(os, "setpriority"):  # set, not added (os.nice adds at every call)
        now = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, max(now, WORKER_NICENESS))
    _store = ModelStore(data_dir, limits, presets_dir) if store_options is None \
        else ModelStore(data_dir, limits, presets_dir, **store_options)
    _limits, _cancel = limits, cancel


def ready() -> bool:
    return True


def checkpoint() -> None:
    """Between a run's layers and phases: stop if the server asked."""
    if _cancel is not None and _cancel.value:
        raise RunCancelledError


def compute(kind: Literal["run", "jacobian"], body: bytes, encoding: Encoding,
            gzip_ok: bool, lent: reply_blocks.Lent | None = None, prefix: str = "",
            fields: str | None = None) -> Reply:
    """Parse, validate, run and encode one /run or /jacobian request. A large binary body
    goes into the block the server lent, or a new one named with its `prefix`. `fields`:
    the ?fields= query, comma-separated. The reply's `timing` says how long each of the three
    steps took."""
    t0 = time.perf_counter()
    result: RunResult | BatchResult | JacobianResult
    parse_cost = PARSE_BYTES_PER_BYTE * len(body)
    if parse_cost > _limits.max_memory_bytes:  # before the budget can be checked at all
        return error_reply(413, f"this body would take about {parse_cost / 2**20:,.0f} MiB to "
                           f"parse, over this server's memory budget of "
                           f"{_limits.max_memory_bytes / 2**20:,.0f} MiB "
                           "(GATESCOPE_MAX_MEMORY_BYTES); send fewer numbers")
    try:
        if kind == "run":
            req = parse_json(RunRequest, body)  # duplicate keys are a 422, not last-wins
            if fields is not None:
                req = with_fields(req, fields)
            t1 = time.perf_counter()
            runner = run_batch if req.input.batch is not None else run
            result = runner(req, models=_store, limits=_limits, encoding=encoding,
                            checkpoint=checkpoint)
        else:
            jac = parse_json(JacobianRequest, body)
            t1 = time.perf_counter()
            result = jacobian(jac, models=_store, limits=_limits, encoding=encoding,
                              checkpoint=checkpoint)
        checkpoint()  # before the encoding, the last long step
    except RunCancelledError:
        return Reply(499, b"")
    except ValidationError as exc:
        return error_reply(422, error_detail(exc))
    except ModelNotFoundError as exc:  # a damaged stored model is one too: 409
        return error_reply(409 if isinstance(exc, DamagedModelError) else 404, str(exc))
    except MemoryError:
        return error_reply(503, OUT_OF_MEMORY)
    except OSError as exc:  # the data directory cannot be read (permissions, a disk gone)
        return error_reply(503, f"the server could not read its stored models "
                           f"({exc.strerror or type(exc).__name__}); try again later")
    t2 = time.perf_counter()
    try:
        reply = _encoded(result, encoding, gzip_ok, lent, prefix)
    except MemoryError:
        return error_reply(503, OUT_OF_MEMORY)
    reply.timing = {"parse": t1 - t0, "run": t2 - t1, "encode": time.perf_counter() - t2}
    return reply


def with_fields(req: RunRequest, query: str) -> RunRequest:
    """The request with the ?fields= query's parts (comma-separated), checked as the body's
    `fields` is; a query that disagrees with the body's is a 422 naming it."""
    names = query.split(",")
    if req.fields is not None and set(req.fields) != set(names):
        raise invalid(("query", "fields"), f"?fields={query} and the body's fields "
                      f"{list(req.fields)} disagree: give them one way", query)
    try:  # only the fields and their rules are checked again, not the whole (large) body
        checked = RunRequest.model_validate({"input": {"text": "a"}, "fields": names,
                                             "backward": req.backward})
    except ValidationError as exc:
        raise invalid(("query", "fields"), "; ".join(e["msg"] for e in exc.errors()),
                      query) from None
    return req.model_copy(update={"fields": checked.fields})


OUT_OF_MEMORY = ("the server ran out of memory for this request; try fewer steps, units or "
                 "layers, or ?encoding=binary")


def _encoded(result: RunResult | BatchResult | JacobianResult, encoding: Encoding, gzip_ok: bool,
             lent: reply_blocks.Lent | None, prefix: str) -> Reply:
    """A result as the response body, in a shared-memory block when it is large."""
    body_out: BinaryLayout | reply_blocks.Raw
    headers: dict[str, str] = {}
    if encoding == "binary":
        body_out = BinaryLayout(result.as_dict(), result.finite)
    else:
        data = dumps(result.as_dict(), encoding, result.finite)
        # JSON lists shrink 3–4× under gzip; base64 typed arrays barely, so they go as they are
        if gzip_ok and encoding == "json" and len(data) >= GZIP_MIN_BYTES:
            data = gzip.compress(data, compresslevel=1)
            headers["content-encoding"] = "gzip"
        if encoding == "json":
            headers["vary"] = "accept-encoding"
        body_out = reply_blocks.Raw(data)
    shared = reply_blocks.write(body_out, lent, prefix) if prefix else None
    return Reply(200, b"", headers, shared=shared, size=body_out.size) if shared \
        else Reply(200, body_out.tobytes(), headers)


def ingest(data: bytes, filename: str, cell: str | None, vocab: str | None,
           name: str | None, choice: Choice = ANY) -> Reply:
    """Parse, check and store one uploaded model."""
    assert _store is not None
    try:
        info, created = _store.add(data, filename, cell, vocab, name, choice)
    except ModelFileError as exc:
        return error_reply(exc.status, [{"loc": ["body", exc.field], "msg": str(exc),
                                    "type": "model_file"}])
    except ValidationError as exc:
        return error_reply(422, [{**e, "loc": ["body", *e["loc"]]} for e in error_detail(exc)])
    except (ValueError, ArithmeticError, IndexError, MemoryError) as exc:
        # a file crafted past every check above still gets a 4xx, never a 500
        return error_reply(422, [{"loc": ["body", "file"], "type": "model_file",
                             "msg": f"the file could not be read as a model ({exc})"}])
    return Reply(201 if created else 200, info.model_dump_json().encode())
