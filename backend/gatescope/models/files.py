"""Reading uploaded model files: `.safetensors` (F16, F32, F64) and `.npz` (no pickle, ever).

    read_model_file(filename, data, limits, max_unpacked) → ModelFile  float tensors, metadata

Every tensor's name and shape is read; the vectors and matrices are read whole (an RNN, an
embedding, a head are made of nothing else); what they are is layout.py's to find.

Every problem raises ModelFileError with the HTTP status it deserves (415 for a format we
never read, such as a pickled .pt; 422 for a readable file whose contents do not fit).
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..contract.limits import Limits

DTYPES: dict[str, np.dtype] = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"),
                               "F64": np.dtype("<f8")}
MAX_HEADER = 16 * 1024 * 1024  # a safetensors JSON header larger than this is not a model
MAX_UNPACKED = 64 * 1024 * 1024  # an .npz's default cap: the default upload limit

SAVE_AS_SAFETENSORS = (
    "Save the state_dict with safetensors instead:\n"
    "    from safetensors.torch import save_file\n"
    '    save_file(model.state_dict(), "model.safetensors")'
)

_RNN_NAME = re.compile(r"(?:.*\.)?(?P<name>(?:weight|bias)_(?:ih|hh))(?:_l(?P<layer>[0-9]+))?"
                       r"(?:_reverse)?")


class ModelFileError(ValueError):
    """An uploaded file gatescope will not or cannot read; `status` is 415 or 422."""

    def __init__(self, message: str, status: int = 422, field: str = "file") -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass
class ModelFile:
    """A parsed upload. tensors: the float vectors and matrices; unreadable: {name: dtype}
    of the vectors and matrices of another dtype (an error only if the model needs one);
    shapes: every tensor's; others: the names of the rest (not read); metadata: safetensors
    `__metadata__`, else {}."""

    tensors: dict[str, np.ndarray]
    format: str = "safetensors"  # or "npz"
    unreadable: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def read_model_file(filename: str, data: bytes, limits: Limits | None = None,
                    max_unpacked: int | None = MAX_UNPACKED) -> ModelFile:
    """Parse an upload by its name and its first bytes. An .npz's tensors are checked
    against `limits` and `max_unpacked` (None: no cap) before any is inflated: see
    read_npz."""
    lower = filename.lower()
    if lower.endswith((".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")) or _is_pickle(data):
        raise ModelFileError(
            f"{filename!r} looks like a pickled PyTorch file; gatescope never unpickles an "
            f"upload (unpickling runs arbitrary code). {SAVE_AS_SAFETENSORS}", status=415)
    if lower.endswith(".npz") or data[:4] == b"PK\x03\x04":
        return read_npz(data, limits, max_unpacked)
    if lower.endswith(".safetensors") or _looks_like_safetensors(data):
        return read_safetensors(data)
    raise ModelFileError(f"{filename!r} is neither .safetensors nor .npz. "
                         f"{SAVE_AS_SAFETENSORS}", status=415)


def _is_pickle(data: bytes) -> bool:
    """A raw pickle starts with PROTO (0x80); torch.save's zip holds a data.pkl. So does a
    .safetensors file whose header length is 128 mod 256 (its first byte): that one is
    told apart by its framing, a JSON object of that length right after the 8 bytes."""
    if data[:1] == b"\x80":
        return not _safetensors_framing(data)
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                return any(n.endswith(".pkl") for n in zf.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def _looks_like_safetensors(data: bytes) -> bool:
    return len(data) >= 10 and data[8:9] == b"{"


def _safetensors_framing(data: bytes) -> bool:
    """8-byte little-endian length n, then n bytes from "{" to "}" (space-padded)."""
    n = int.from_bytes(data[:8], "little")
    return (_looks_like_safetensors(data) and n <= len(data) - 8
            and data[8:8 + n].rstrip(b" ").endswith(b"}"))


def read_safetensors(data: bytes) -> ModelFile:
    """Parse the format by hand (8-byte little-endian header length, JSON header, raw
    little-endian data), checking every offset: nothing is trusted, nothing executed."""
    if len(data) < 8:
        raise ModelFileError("the file is too short to be a .safetensors file")
    n = int.from_bytes(data[:8], "little")
    if n > min(MAX_HEADER, len(data) - 8):
        raise ModelFileError("the .safetensors header length is larger than the file: the "
                             "file is truncated or not a .safetensors file")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"the .safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ModelFileError("the .safetensors header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError("the .safetensors __metadata__ must map names to strings")
    buffer = memoryview(data)[8 + n:]
    tensors = {}
    for name, info in header.items():
        if not (isinstance(info, dict) and isinstance(info.get("dtype"), str)
                and isinstance(info.get("shape"), list)
                and isinstance(info.get("data_offsets"), list)
                and len(info["data_offsets"]) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                        for v in [*info["shape"], *info["data_offsets"]])):
            raise ModelFileError(f"tensor {name!r}: malformed entry in the .safetensors header")
        tensors[name] = info
    _check_layout(tensors, len(buffer))
    out = ModelFile({}, metadata=meta)
    for name, info in tensors.items():
        out.shapes[name] = tuple(info["shape"])
        if not _wanted(out.shapes[name]):
            out.others.append(name)
        elif info["dtype"] in DTYPES:
            out.tensors[name] = _tensor(name, info, buffer)
        else:
            out.unreadable[name] = info["dtype"]
    return out


def _check_layout(entries: Mapping[str, dict], size: int) -> None:
    """The tensors' byte ranges, sorted by offset, must tile the data section exactly: the
    first begins at 0, each begins where the one before ends, the last ends at the end of
    the file. That is what the safetensors library requires (0.8 refuses overlapping,
    out-of-order and gapped offsets, and bytes no tensor owns); every tensor counts, read
    or not, so two names can never share (or hide) bytes."""
    end = 0
    for name, info in sorted(entries.items(), key=lambda kv: (*kv[1]["data_offsets"], kv[0])):
        begin, stop = info["data_offsets"]
        if stop < begin:
            why = "end before they begin"
        elif begin < end:
            why = f"overlap the bytes of the tensor before it (which end at {end})"
        elif begin > end:
            why = (f"leave a gap after the tensor before it (which ends at {end})" if end
                   else "do not start at 0, the beginning of the data")
        else:
            end = stop
            continue
        raise ModelFileError(f"tensor {name!r}: its data offsets {begin}..{stop} {why}; in a "
                             ".safetensors file the tensors' bytes follow each other with no "
                             "gap or overlap (the safetensors library refuses this file)")
    if end != size:
        raise ModelFileError(f"the tensors' data ends at byte {end} but the file holds {size} "
                             "bytes of data: the file is truncated or has bytes no tensor owns "
                             "(the safetensors library refuses this file)")


def _wanted(shape: tuple[int, ...]) -> bool:
    """Vectors and matrices are read: an RNN, an embedding and a head hold nothing else."""
    return len(shape) in (1, 2)


def _tensor(name: str, info: dict, buffer: memoryview) -> np.ndarray:
    dtype = DTYPES[info["dtype"]]
    begin, end = info["data_offsets"]
    count = math.prod(info["shape"])  # Python ints: a shape of 2**70 must not wrap around
    if not (begin <= end <= len(buffer)) or end - begin != count * dtype.itemsize:
        raise ModelFileError(f"tensor {name!r}: its data offsets {begin}..{end} do not match "
                             f"its shape {info['shape']} and dtype {info['dtype']}, or run past "
                             "the end of the file")
    return np.frombuffer(buffer, dtype, count, begin).reshape(info["shape"])


def read_npz(data: bytes, limits: Limits | None = None,
             max_unpacked: int | None = MAX_UNPACKED) -> ModelFile:
    """An .npz archive of .npy arrays, never unpickled. Nothing is inflated until every
    member's .npy header (its first bytes) was read and the vectors and matrices passed
    these checks: their total size is at most `max_unpacked` (the upload limit: what a
    .safetensors file may hold), and each one declares no object dtype (that needs pickle),
    a shape that matches the bytes that follow it, and, for an RNN's tensor, no more values
    than `limits` allow a tensor of its name. So a zip bomb is refused from its directory and
    headers, and nothing is allocated for data that is not there."""
    out = ModelFile({}, format="npz")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            headers = []
            for member in zf.infolist():  # every header first: nothing is inflated yet
                if not member.filename.endswith(".npy"):
                    continue
                key = member.filename[:-len(".npy")]
                with zf.open(member) as f:
                    shape, dtype = _npy_header(key, f)
                    header = f.tell()
                out.shapes[key] = shape
                if not _wanted(shape):
                    out.others.append(key)
                    continue
                if dtype.hasobject:
                    raise ModelFileError(f"array {key!r} holds Python objects, which "
                                         "cannot be read without unpickling; store plain "
                                         "float arrays")
                headers.append((key, member, shape, dtype, header))
            total = sum(member.file_size for _, member, *_ in headers)
            if max_unpacked is not None and total > max_unpacked:
                raise ModelFileError(f"the .npz's tensors would unpack to {_size(total)}, "
                                     f"over the limit of {_size(max_unpacked)} (the upload "
                                     "limit); store the model as .safetensors, or with fewer "
                                     "or smaller tensors")
            read = []
            for key, member, shape, dtype, header in headers:
                if dtype.kind != "f":
                    out.unreadable[key] = str(dtype)
                    continue
                count = math.prod(shape)
                if count * dtype.itemsize != member.file_size - header:
                    raise ModelFileError(f"array {key!r} declares shape {shape} of "
                                         f"{dtype}, which does not match its data")
                if limits is not None:
                    _check_declared(key, shape, count, limits)
                read.append((key, member))
            for key, member in read:
                with zf.open(member) as f:
                    out.tensors[key] = np.lib.format.read_array(f, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"the .npz archive is damaged ({exc})") from None
    return out


def _check_declared(key: str, shape: tuple[int, ...], count: int, limits: Limits) -> None:
    """At most as many values as a tensor of this name has in the largest model `limits`
    allow (each dimension is checked against its own limit later, with the whole model)."""
    H, D = limits.max_hidden, limits.max_input
    rnn = _RNN_NAME.fullmatch(key)
    if rnn is None:
        return  # an embedding, a head or another layer: the total's cap holds it
    name, layer = rnn["name"], int(rnn["layer"] or 0)
    if layer >= limits.max_layers:
        raise ModelFileError(f"array {key!r} belongs to layer {layer}, over this server's "
                             f"limit of {limits.max_layers} layers")
    if name.startswith("bias"):
        most, what = 4 * H, f"bias (4 × hidden size ≤ {H})"
    elif name.startswith("weight_ih"):  # above a bidirectional layer it reads 2H
        most, what = 4 * H * max(D, 2 * H), \
            f"weight_ih (4 × hidden size ≤ {H}, by input size ≤ {max(D, 2 * H)})"
    else:
        most, what = 4 * H * H, f"weight_hh (4 × hidden size ≤ {H}, by hidden size ≤ {H})"
    if count > most:
        raise ModelFileError(f"array {key!r} declares shape {shape}: {count:,} values, more "
                             f"than a {what} holds under this server's limits ({most:,} "
                             "values)")


def _size(n: int) -> str:
    if n % 2**20 == 0:
        return f"{n // 2**20} MiB"
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n:,} bytes"


def _npy_header(key: str, f: Any) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, _fortran_order, dtype = read(f)
    return tuple(shape), np.dtype(dtype)
