"""NumPy results → JSON-ready data: nested lists of finite numbers, null for overflow."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
import orjson

from ..core.numerics import all_finite

Encoding = Literal["json", "typed", "binary"]


def finite_list(a: np.ndarray) -> Any:
    """Nested lists of floats; NaN and ±inf become None (JSON null)."""
    if all_finite(a):
        return a.tolist()
    out = a.astype(object)
    out[~np.isfinite(a)] = None
    return out.tolist()


def jsonable(obj: Any) -> Any:
    """Arrays, NumPy scalars, dicts and lists → plain JSON-ready values (finite or None)."""
    if isinstance(obj, np.ndarray):
        return finite_list(obj)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def walk_arrays(obj: Any, path: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """Every array inside nested dicts and lists, with a dotted path ("layers.0.grads.h")."""
    if isinstance(obj, np.ndarray):
        yield path, obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from walk_arrays(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list | tuple):
        for k, v in enumerate(obj):
            yield from walk_arrays(v, f"{path}.{k}" if path else str(k))


def _map_arrays(obj: Any, fn: Any, finite: bool = False) -> Any:
    """A copy of nested dicts/lists with every finite float array replaced by fn(array);
    arrays holding NaN/inf are left as they are (they go out as lists, null for each).
    finite=True: the caller knows every array is finite, so none is checked again."""
    if isinstance(obj, np.ndarray):
        return fn(obj) if obj.dtype.kind == "f" and (finite or all_finite(obj)) else obj
    if isinstance(obj, Mapping):
        return {k: _map_arrays(v, fn, finite) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_map_arrays(v, fn, finite) for v in obj]
    return obj


def _little_endian(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))


def _shape(a: np.ndarray) -> str:
    return ",".join(map(str, a.shape))


def typed_array(a: np.ndarray) -> dict[str, str]:
    """plotly.js's typed-array form: {"dtype": "f4"/"f8", "bdata": base64, "shape": "T,H"}."""
    a = _little_endian(a)
    return {"dtype": f"f{a.itemsize}", "bdata": base64.b64encode(a.data).decode("ascii"),
            "shape": _shape(a)}


def _orjson_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):  # a non-contiguous view: orjson wants C order
        return np.ascontiguousarray(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _json(data: Any) -> bytes:
    return orjson.dumps(data, default=_orjson_default, option=orjson.OPT_SERIALIZE_NUMPY)


BINARY_MAGIC = b"GSB1"


class BinaryLayout:
    """The binary encoding, planned before it is written, so it can be written straight
    into any buffer (a shared-memory block, say) with one copy per array:

        b"GSB1" | uint32 little-endian n | n bytes of JSON header | the arrays' bytes

    The header is the response with every finite array replaced by
    {"dtype": "f4"|"f8", "shape": "T,H", "offset": o, "nbytes": m}: its little-endian
    values are bytes o .. o+m of the data after the header. Offsets are multiples of 8, and
    the header is padded with spaces so the data starts at a multiple of 8 too: a reader
    can view them in place (np.frombuffer, or a JavaScript Float32Array on the buffer).
    finite=True: the caller knows every array is finite (a result without warnings), which
    saves checking ~17 MiB again.
    """

    def __init__(self, data: Any, finite: bool = False) -> None:
        self.arrays: list[tuple[np.ndarray, int]] = []
        offset = 0

        def place(a: np.ndarray) -> dict[str, Any]:
            nonlocal offset
            dtype = a.dtype.newbyteorder("<")
            self.arrays.append((a, offset))
            nbytes = a.size * dtype.itemsize
            ref = {"dtype": f"f{dtype.itemsize}", "shape": _shape(a), "offset": offset,
                   "nbytes": nbytes}
            offset += nbytes + (-nbytes % 8)
            return ref

        header = _json(_map_arrays(data, place, finite))
        header += b" " * (-(len(BINARY_MAGIC) + 4 + len(header)) % 8)
        self.prefix = BINARY_MAGIC + len(header).to_bytes(4, "little") + header
        self.size = len(self.prefix) + offset

    def write_into(self, buffer: memoryview | bytearray) -> None:
        """Fill buffer[:self.size]."""
        start = len(self.prefix)
        buffer[:start] = self.prefix
        for a, offset in self.arrays:
            dtype = a.dtype.newbyteorder("<")
            view = np.frombuffer(buffer, dtype, a.size, start + offset).reshape(a.shape)
            np.copyto(view, a)  # the one copy, converting byte order if it must

    def tobytes(self) -> bytes:
        out = bytearray(self.size)
        self.write_into(out)
        return bytes(out)


def dumps(data: Any, encoding: Encoding = "json", finite: bool = False) -> bytes:
    """Response bytes straight from NumPy.

    json: orjson writes arrays natively and NaN/±inf as null; float32 values with the
    shortest decimal that round-trips in float32. typed: finite arrays as plotly.js typed
    arrays (base64). binary: see `BinaryLayout`. finite: as there.
    """
    if encoding == "binary":
        return BinaryLayout(data, finite).tobytes()
    if encoding == "typed":
        data = _map_arrays(data, typed_array, finite)
    return _json(data)
