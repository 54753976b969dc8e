"""runner/budget.py against real runs: the response's value count is exact, its bytes and the
peak memory are upper bounds within a small factor, and a run over a budget is refused
before any work, with a message that names the sizes, the budget and how to fit."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest
from pydantic import ValidationError

import gatescope
from gatescope.contract.encoding import dumps, walk_arrays
from gatescope.contract.limits import Limits
from gatescope.core.cells import CELLS
from gatescope.runner.budget import Sizes, peak_bytes, response_bytes, response_values

# (cell, T, H, L, dtype, connectivity): every cell, layers, both dtypes, connectivity
CASES = [("lstm", 5, 3, 2, "float64", False), ("gru", 7, 4, 1, "float32", False),
         ("rnn_tanh", 6, 2, 3, "float64", False), ("rnn_relu", 9, 5, 2, "float32", True),
         ("lstm", 40, 16, 1, "float64", True), ("gru", 12, 6, 3, "float64", True)]
# big enough that the arrays dominate what is measured
BIG = [("lstm", 300, 64, 2, "float64"), ("gru", 1000, 128, 1, "float32"),
       ("rnn_relu", 2000, 200, 1, "float64"), ("lstm", 1, 512, 2, "float64")]


def request(cell: str, T: int, H: int, L: int, dtype: str, connectivity: bool = False) -> dict:
    return {"cell": cell, "hidden_size": H, "num_layers": L, "dtype": dtype,
            "input": {"text": ("abcdefgh" * 600)[:T]}, "connectivity": connectivity}


def sizes(cell: str, T: int, H: int, L: int, dtype: str, connectivity: bool = False) -> Sizes:
    D = len(set(("abcdefgh" * 600)[:T]))
    return Sizes(CELLS[cell], T, D, H, L, 0, np.dtype(dtype).itemsize, connectivity)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_response_values_are_counted_exactly(case):
    result = gatescope.run(request(*case))
    assert sum(a.size for _, a in walk_arrays(result.as_dict())) == response_values(sizes(*case))


def test_a_readout_and_inline_tensors_are_counted_too():
    rng = np.random.default_rng(0)
    tensors = {k: v.tolist() for k, v in gatescope.core.params.pytorch_init(
        CELLS["gru"], 3, 4, 2, 0, None, np.float64).items()}
    tensors |= {"readout.weight": rng.normal(size=(5, 4)).tolist(),
                "readout.bias": rng.normal(size=5).tolist()}
    result = gatescope.run({"input": {"values": rng.normal(size=(6, 3)).tolist()},
                            "cell": "gru", "weights": {"tensors": tensors}})
    s = Sizes(CELLS["gru"], 6, 3, 4, 2, K=5)
    assert sum(a.size for _, a in walk_arrays(result.as_dict())) == response_values(s)


@pytest.mark.parametrize("case", [*CASES, *((*c, False) for c in BIG)], ids=str)
def test_the_response_bytes_are_an_upper_bound(case):
    result = gatescope.run(request(*case))
    s = sizes(*case)
    for encoding, within in (("binary", 1.2), ("typed", 1.3), ("json", 3.0)):
        body = len(dumps(result.as_dict(), encoding, result.finite))
        estimate = response_bytes(s, encoding)
        assert body <= estimate, (encoding, body, estimate)
        if body > 2**20:  # not pessimistic beyond a small factor (headers dominate tiny ones)
            assert estimate <= within * body, (encoding, body, estimate)


@pytest.mark.parametrize("case", BIG, ids=str)
def test_the_peak_memory_is_an_upper_bound(case):
    """tracemalloc sees every NumPy allocation: the peak of running and encoding."""
    s = sizes(*case)
    for encoding in (None, "binary", "json"):
        tracemalloc.start()
        try:
            result = gatescope.run(request(*case))
            if encoding is not None:
                dumps(result.as_dict(), encoding, result.finite)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        del result
        estimate = peak_bytes(s, encoding)
        assert peak <= estimate, (encoding, peak, estimate)
        assert estimate <= 4 * peak, (encoding, peak, estimate)


def test_the_cheap_requests_that_cost_gigabytes_are_refused_in_milliseconds():
    """62 bytes asked for 293 MB of JSON (the parameters' gradients: L·H² with H = 1024);
    3 KB for 1.44 GB and a 4.5 GB peak."""
    for body in ({"hidden_size": 1024, "num_layers": 4, "input": {"text": "a"}},
                 {"hidden_size": 1024, "num_layers": 4, "input": {"text": "ab" * 256}}):
        t0 = time.perf_counter()
        with pytest.raises(ValidationError) as err:
            gatescope.run(body, encoding="json")
        assert time.perf_counter() - t0 < 0.5
        detail = err.value.errors()[0]
        assert detail["type"] == "over_budget"
        assert "1024 units × 4 layer(s)" in detail["msg"]
        assert "GATESCOPE_MAX_" in detail["msg"] and "fewer layers" in detail["msg"]


def test_json_over_the_budget_is_told_binary_would_fit():
    long = {"hidden_size": 256, "input": {"text": "abcdefgh" * 512}}  # 4096 × 256
    with pytest.raises(ValidationError, match=r"\?encoding=binary sends the same numbers"):
        gatescope.run(long, encoding="json")
    assert gatescope.run(long, encoding="binary").steps == 4096


def test_the_budgets_are_the_limits_a_server_sets():
    small = {"hidden_size": 8, "input": {"text": "hello"}}
    assert gatescope.run(small, encoding="json").steps == 5
    tight = Limits(max_response_bytes=4096)
    with pytest.raises(ValidationError, match="budget of 4 KiB"):
        gatescope.run(small, encoding="json", limits=tight)
    with pytest.raises(ValidationError, match="GATESCOPE_MAX_MEMORY_BYTES"):
        gatescope.run(small, limits=Limits(max_memory_bytes=2**20))


def test_a_jacobians_matrices_are_budgeted_too():
    small = {"hidden_size": 512, "input": {"text": "ab"}}
    tight = Limits(max_response_bytes=2**20)
    with pytest.raises(ValidationError, match=r"512×512 matrices"):
        gatescope.jacobian(small, step=0, limits=tight, encoding="json")
    assert gatescope.jacobian(small, step=0, limits=tight).total.shape == (512, 512)  # NumPy
