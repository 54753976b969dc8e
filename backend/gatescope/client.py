"""A Python client for a gatescope server, with the in-process API's types: `run` returns the
same RunResult (NumPy arrays) as `gatescope.run`, over the binary encoding — bit for bit,
but for an overflowed value (NaN or ±inf in process), which the wire carries as null and
comes back NaN; a 4xx becomes the ValidationError (422) or ModelNotFoundError (404) the
in-process call raises. Standard library HTTP only.

    client = gatescope.Client("http://127.0.0.1:8000")
    result = client.run({"cell": "gru", "input": {"text": "hello"}})
    batch = client.run_batch({"input": {"batch": [{"text": "ab"}, {"text": "ba"}]}})
    info = client.upload("model.safetensors", cell="rnn_relu")
    client.models()                       # every stored model and preset
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from .contract.errors import ModelNotFoundError, invalid
from .contract.responses import ModelInfo
from .contract.results import BatchResult, JacobianResult, LayerResult, RunResult

API = "/api/v1"
MAGIC = b"GSB1"


class ServerError(RuntimeError):
    """An answer that is neither a result nor a 404/422: its status and the server's words
    (413 too large, 415, 503 busy — with `retry_after` — and the like)."""

    def __init__(self, status: int, detail: Any, retry_after: str | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.detail, self.retry_after = status, detail, retry_after


class Client:
    """A gatescope server at `url`. `token`: the server's GATESCOPE_TOKEN, if it has one."""

    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None,
                 timeout: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # ── runs ─────────────────────────────────────────────────────────────────────────
    def run(self, request: Mapping[str, Any] | BaseModel) -> RunResult:
        """POST /api/v1/run: the RunResult gatescope.run(request) returns in process."""
        body = _plain(request)
        if isinstance(body.get("input"), dict) and "batch" in body["input"]:
            raise invalid(("input", "batch"), "this takes one sequence: a batch is "
                          "Client.run_batch's (as gatescope.run_batch in process)", None)
        return run_result(self._binary("run", body))

    def run_batch(self, request: Mapping[str, Any] | BaseModel) -> BatchResult:
        """POST /api/v1/run with input.batch: the BatchResult gatescope.run_batch returns."""
        body = _plain(request)
        if not (isinstance(body.get("input"), dict) and "batch" in body["input"]):
            raise invalid(("input", "batch"), "run_batch takes a request whose input is a "
                          "batch; a single sequence is Client.run's", None)
        data = self._binary("run", body)
        per_sequence = [run_result(d) for d in data["batch"]]
        own = [w for w in data["warnings"] if not w.startswith("sequence ")]
        return BatchResult(per_sequence, data.get("param_grads_total"), own)

    def jacobian(self, request: Mapping[str, Any] | BaseModel, step: int | None = None,
                 layer: int | None = None) -> JacobianResult:
        """POST /api/v1/jacobian; `step` and `layer` override the request's."""
        body = _plain(request)
        body.update({k: v for k, v in (("step", step), ("layer", layer)) if v is not None})
        data = self._binary("jacobian", body)
        return JacobianResult(data["step"], data["layer"], data["terms"], data["total"],
                              data["warnings"], not data["warnings"],
                              data.get("direction", "forward"))

    # ── models ───────────────────────────────────────────────────────────────────────
    def upload(self, path: str | Path, *, cell: str | None = None, vocab: str | None = None,
               name: str | None = None, embedding: str | None = None, rnn: str | None = None,
               head: str | None = None) -> ModelInfo:
        """POST /api/v1/models: store a .safetensors or .npz file; its description."""
        path = Path(path)
        form = {k: v for k, v in (("cell", cell), ("vocab", vocab), ("name", name),
                                  ("embedding", embedding), ("rnn", rnn), ("head", head))
                if v is not None}
        body, content_type = _multipart(path.name, path.read_bytes(), form)
        return ModelInfo.model_validate(self._json("POST", f"{API}/models", body,
                                                   content_type))

    def models(self) -> list[ModelInfo]:
        """GET /api/v1/models, every page: the bundled presets, then the uploads."""
        out: list[ModelInfo] = []
        while True:
            page = self._json("GET", f"{API}/models?limit=1000&offset={len(out)}")
            out += [ModelInfo.model_validate(m) for m in page["data"]]
            if not page["data"] or len(out) >= page["count"]:
                return out

    def model(self, model_id: str) -> ModelInfo:
        """GET /api/v1/models/{model_id}."""
        return ModelInfo.model_validate(self._json("GET", f"{API}/models/{model_id}"))

    # ── HTTP ─────────────────────────────────────────────────────────────────────────
    def _binary(self, kind: str, request: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
        body = json.dumps(_plain(request), default=_jsonable).encode()
        raw = self._send("POST", f"{API}/{kind}?encoding=binary", body, "application/json")
        return decode_binary(raw)

    def _json(self, method: str, path: str, body: bytes | None = None,
              content_type: str | None = None) -> Any:
        return json.loads(self._send(method, path, body, content_type))

    def _send(self, method: str, path: str, body: bytes | None, content_type: str | None
              ) -> bytes:
        headers = {"accept-encoding": "identity"}
        if content_type:
            headers["content-type"] = content_type
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, body, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.read()
        except urllib.error.HTTPError as exc:
            raise _error(exc) from None


def _error(exc: urllib.error.HTTPError) -> Exception:
    """A 422 as the ValidationError the in-process call raises (same loc, msg and type), a
    404 as ModelNotFoundError, the rest as ServerError."""
    try:
        detail = json.loads(exc.read()).get("detail")
    except (ValueError, AttributeError):
        detail = exc.reason
    if exc.code == 422 and isinstance(detail, list) and detail:
        return ValidationError.from_exception_data("gatescope request", [  # every one
            InitErrorDetails(type=PydanticCustomError(d.get("type", "invalid_request"),
                                                      "{message}", {"message": d.get("msg", "")}),
                             loc=tuple(d.get("loc", ())), input=None) for d in detail])
    if exc.code == 404:
        return ModelNotFoundError(detail if isinstance(detail, str) else str(detail))
    return ServerError(exc.code, detail, exc.headers.get("retry-after"))


def _plain(request: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    if isinstance(request, BaseModel):
        return request.model_dump(mode="json", exclude_unset=True)
    return dict(request)


def _jsonable(value: Any) -> Any:
    """NumPy arrays and numbers in a request dict, as JSON."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _multipart(filename: str, data: bytes, form: Mapping[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
             .encode() for k, v in form.items()]
    safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{safe}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 .encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


# ── the binary encoding → NumPy ────────────────────────────────────────────────────────

def decode_binary(raw: bytes) -> dict[str, Any]:
    """b"GSB1" | uint32 n | n bytes of JSON header | the arrays' bytes (docs/API.md,
    Encodings) → the response with NumPy arrays (writable copies; an array sent as a list,
    for its overflowed values, becomes one with NaN there)."""
    if raw[:4] != MAGIC:
        raise ServerError(200, "the answer is not gatescope's binary encoding")
    n = int.from_bytes(raw[4:8], "little")
    header = json.loads(raw[8:8 + n])
    data = memoryview(raw)[8 + n:]

    def resolve(obj: Any, key: str = "", dtype: type = np.float64) -> Any:
        """`dtype`: the enclosing result's (a batch's sequences each carry their own)."""
        if isinstance(obj, dict) and obj.keys() == {"dtype", "shape", "offset", "nbytes"}:
            kind = np.dtype(f"<{obj['dtype']}")
            shape = tuple(int(s) for s in obj["shape"].split(","))
            return np.frombuffer(data, kind, obj["nbytes"] // kind.itemsize,
                                 obj["offset"]).reshape(shape).copy()
        if isinstance(obj, dict):
            if obj.get("dtype") in ("float32", "float64"):  # a result: its arrays' precision
                dtype = np.float32 if obj["dtype"] == "float32" else np.float64
            elif "batch" in obj and obj["batch"] and obj["batch"][0].get("dtype") == "float32":
                dtype = np.float32  # the batch's sum, in its sequences' precision
            return {k: resolve(v, k, dtype) for k, v in obj.items()}
        if isinstance(obj, list) and key not in ("tokens", "token_ids", "warnings", "fields",
                                                  "layers") and _numeric(obj):
            return np.array(_nan(obj), dtype=dtype)
        if isinstance(obj, list):
            return [resolve(v, "", dtype) for v in obj]
        return obj

    return resolve(header)


def _numeric(obj: list[Any]) -> bool:
    """A nested list of numbers and nulls: an array the server sent as a list."""
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif not (item is None or isinstance(item, int | float)) or isinstance(item, bool):
            return False
    return True


def _nan(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_nan(v) for v in obj]
    return np.nan if obj is None else obj


def run_result(d: dict[str, Any]) -> RunResult:
    """A /run response (arrays as NumPy) as the RunResult gatescope.run returns."""
    layers = [LayerResult(h=e.get("h"), c=e.get("c"), gates=e.get("gates"), pre=e.get("pre"),
                          grads=e.get("grads"), jacobian=e.get("jacobian"),
                          connectivity=e.get("connectivity"), layer=e.get("layer", 0),
                          direction=e.get("direction", "forward")) for e in d["layers"]]
    loss = d["loss"]
    return RunResult(
        cell=d["cell"], dtype=d["dtype"], steps=d["steps"], input_size=d["input_size"],
        hidden_size=d["hidden_size"], num_layers=d["num_layers"], truncate=d["truncate"],
        tokens=d["tokens"], vocab=d["vocab"], loss=float("nan") if loss is None else loss,
        layers=layers, input_grad=d.get("input_grad"), param_grads=d.get("param_grads"),
        initial_state_grad=d.get("initial_state_grad"), warnings=d["warnings"],
        finite=not d["warnings"], outputs=d.get("outputs"),
        grad_norm=None if d.get("grad_norm") is None else {  # an overflowed norm: NaN
            k: float("nan") if v is None else v for k, v in d["grad_norm"].items()},
        token_ids=d.get("token_ids"), bidirectional=d.get("bidirectional", False),
        proj_size=d.get("proj_size", 0), backward=d.get("backward", True),
        fields=d.get("fields"))
