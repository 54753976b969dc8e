"""NumPy results → JSON-ready data: nested lists of finite numbers, null for overflow."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


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
