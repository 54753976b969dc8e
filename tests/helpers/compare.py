"""Arrays of a result against golden arrays from PyTorch: the rules every fixture test
(tests/engine/test_pytorch_fixtures.py, tests/api/test_whole_models.py) holds the engine to.

Each stored array must match the engine's array at the same path to a relative error
max|a − b| / max(max|b|, 1e-300) < 1e-9 — and step by step, each step's row against its
own largest entry; every entry PyTorch gives as exactly zero must be zero here too, and
every nonzero one nonzero.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

RTOL = 1e-9
TINY = 1e-300


def walk(obj: Any, path: str = "") -> Iterator[tuple[str, np.ndarray]]:
    """Every array (and number) in a nested dict/list, with its dotted path."""
    if isinstance(obj, np.ndarray | float | np.floating):
        yield path, np.asarray(obj)
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list | tuple):
        for k, value in enumerate(obj):
            yield from walk(value, f"{path}.{k}" if path else str(k))


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(expected), initial=0.0)), TINY)
    return float(np.max(np.abs(actual - expected), initial=0.0)) / scale


def mismatches(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> list[str]:
    """One line per stored array the engine gets wrong (shape, value, or a lost zero)."""
    problems = []
    for path, want in sorted(expected.items()):
        got = np.asarray(actual[path], dtype=np.float64)
        if got.shape != want.shape:
            problems.append(f"{path}: shape {got.shape}, PyTorch {want.shape}")
            continue
        if not np.all(np.isfinite(got)):
            problems.append(f"{path}: non-finite values")
            continue
        err = relative_error(got, want)
        if err >= RTOL:
            where = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(got - want)),
                                                           want.shape))
            problems.append(f"{path}: relative error {err:.3g} (worst at {where}: engine "
                            f"{float(got[where])!r}, PyTorch {float(want[where])!r})")
        if want.ndim >= 1 and path.startswith(("layers.", "input_grad", "outputs.")):
            for t, (got_t, want_t) in enumerate(zip(got, want, strict=True)):
                err_t = relative_error(got_t, want_t)
                if err_t >= RTOL:
                    problems.append(f"{path}: step {t} has relative error {err_t:.3g} "
                                    f"(its largest entry {np.abs(want_t).max():.3g})")
                    break
        lost = (want != 0.0) & (got == 0.0)
        if lost.any():
            where = tuple(int(i) for i in np.argwhere(lost)[0])
            problems.append(f"{path}: PyTorch is {float(want[where])!r} at {where} but the "
                            "engine gives exactly 0")
        zeros = want == 0.0
        if zeros.any() and np.max(np.abs(got[zeros])) > TINY:
            where = tuple(int(i) for i in np.argwhere(zeros & (np.abs(got) > TINY))[0])
            problems.append(f"{path}: PyTorch is exactly 0 at {where} (and "
                            f"{int(zeros.sum())} entries in all) but the engine gives "
                            f"{float(got[where])!r}")
    return problems


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load_fixtures(stem: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """A generator's output, tests/fixtures/<stem>.json and .npz: {case name: case} and
    {case name: {response path: array}} (the npz is keyed "<case>/<path>")."""
    document = json.loads((FIXTURES / f"{stem}.json").read_text(encoding="utf-8"))
    expected: dict[str, dict[str, np.ndarray]] = {}
    with np.load(FIXTURES / f"{stem}.npz", allow_pickle=False) as npz:
        for key in npz.files:
            case, path = key.split("/", 1)
            expected.setdefault(case, {})[path] = npz[key]
    return {case["name"]: case for case in document["cases"]}, expected
