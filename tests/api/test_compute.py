"""The worker side of the server (gatescope.api.compute), in this process: large binary
replies travel in shared-memory blocks that each worker reuses once the server has read
them, and a result with overflow keeps its null-holding arrays in every encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gatescope.api import compute
from gatescope.encoding import BinaryLayout

from .test_run import read_binary


@pytest.fixture()
def worker(tmp_path: Path):
    """This process acting as a compute worker, with no blocks yet; its blocks go at the end."""
    compute._init_worker(tmp_path, compute._limits)
    yield compute
    compute._remove_blocks()


def large_layout(seed: int = 0, rows: int = 1024) -> tuple[dict, BinaryLayout]:
    """A binary body over SHARED_MIN_BYTES (1 MiB), so it goes through shared memory."""
    data = {"a": np.random.default_rng(seed).normal(size=(rows, 300)), "warnings": []}
    return data, BinaryLayout(data, finite=True)


def shm_files() -> set[str]:
    return {p.name for p in Path("/dev/shm").iterdir()}


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this system")
def test_a_worker_reuses_its_block_once_the_server_has_read_it(worker):
    data, layout = large_layout(0)
    first = worker.Reply.binary(layout)
    assert first.shared is not None and first.body == b""
    # the server has not read the first reply yet: the next one needs a block of its own
    data2, layout2 = large_layout(1)
    second = worker.Reply.binary(layout2)
    assert second.shared not in (None, first.shared)
    np.testing.assert_array_equal(read_binary(first.take_body())["a"], data["a"])
    np.testing.assert_array_equal(read_binary(second.take_body())["a"], data2["a"])
    # both read: the next reply reuses a block, and one spare is kept, not more
    third = worker.Reply.binary(large_layout(2)[1])
    assert third.shared in (first.shared, second.shared)
    assert len(worker._blocks) == 2
    third.discard()  # a reply nobody sends hands its block back too
    fourth = worker.Reply.binary(large_layout(3)[1])
    assert fourth.shared == third.shared
    fourth.take_body()


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm on this system")
def test_a_larger_reply_gets_a_larger_block_and_the_worker_removes_its_blocks(worker):
    before = shm_files()
    small = worker.Reply.binary(large_layout(0, rows=512)[1])
    small.take_body()
    data, layout = large_layout(1, rows=4096)
    big = worker.Reply.binary(layout)
    assert big.shared != small.shared  # too small to reuse
    np.testing.assert_array_equal(read_binary(big.take_body())["a"], data["a"])
    assert len(shm_files() - before) == 2
    worker._remove_blocks()
    assert shm_files() - before == set()


def test_binary_encoding_keeps_overflowed_arrays_as_lists_with_null(worker):
    import json

    from tests.engine.test_overflow import exploding_relu_request
    reply = worker.compute("run", json.dumps(exploding_relu_request()).encode(), "binary",
                           False)
    assert reply.status == 200
    body = read_binary(reply.take_body())
    h = body["layers"][0]["h"]
    assert isinstance(h, list) and h[-1] == [None, None]
    assert isinstance(body["layers"][0]["pre"]["a"], list)
    assert isinstance(body["input_grad"], np.ndarray)  # finite arrays stay binary
    assert any("layer 0, field h overflowed" in w for w in body["warnings"])


def _blas_timeout() -> str | None:
    import os
    return os.environ.get("OPENBLAS_THREAD_TIMEOUT")


def test_workers_let_openblas_threads_sleep_at_once(tmp_path):
    """Idle OpenBLAS threads of one worker must not spin on the cores another worker runs on."""
    import asyncio
    pool = compute.ComputePool(1, tmp_path, compute._limits)
    try:
        async def ask() -> str | None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(pool.pool, _blas_timeout)
        assert asyncio.run(ask()) == "4"
    finally:
        pool.shutdown()
