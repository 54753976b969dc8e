"""NumPy results → JSON-ready data: nested lists of finite numbers, null for overflow."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
import orjson

Encoding = Literal["json", "typed"]


def finite_list(a: np.ndarray) -> Any:
    """Nested lists of floats; NaN and ±inf become None (JSON null)."""
    finite = np.isfinite(a)
    if finite.all():
        return a.tolist()
    out = a.astype(object)
    out[~finite] = None
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


def typed_array(a: np.ndarray) -> dict[str, str]:
    """plotly.js's typed-array form: {"dtype": "f4"/"f8", "bdata": base64, "shape": "T,H"}."""
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return {"dtype": f"f{a.itemsize}", "bdata": base64.b64encode(a.data).decode("ascii"),
            "shape": ",".join(map(str, a.shape))}


def _typed(obj: Any) -> Any:
    """Every finite float array → typed_array; arrays with NaN/inf stay lists (with null)."""
    if isinstance(obj, np.ndarray):
        return typed_array(obj) if obj.dtype.kind == "f" and np.isfinite(obj).all() else obj
    if isinstance(obj, Mapping):
        return {k: _typed(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_typed(v) for v in obj]
    return obj


def _orjson_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):  # a non-contiguous view: orjson wants C order
        return np.ascontiguousarray(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def dumps(data: Any, encoding: Encoding = "json") -> bytes:
    """Response bytes straight from NumPy: orjson writes arrays natively and NaN/±inf as
    null. float32 values are written with the shortest decimal that round-trips in float32.
    encoding="typed" sends finite arrays as plotly.js typed arrays (base64)."""
    if encoding == "typed":
        data = _typed(data)
    return orjson.dumps(data, default=_orjson_default, option=orjson.OPT_SERIALIZE_NUMPY)
