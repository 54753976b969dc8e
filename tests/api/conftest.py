"""One app (with its worker processes) for the whole API test session, on a fresh data
directory; tests that need their own app build one with `make_client`."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from safetensors.numpy import save

from gatescope.api import create_app
from gatescope.cells import CELLS
from gatescope.settings import Settings
from gatescope.weights import pytorch_init


@contextmanager
def make_client(data_dir: Path, **settings) -> Iterator[TestClient]:
    app = create_app(Settings(data_dir=data_dir, compute_processes=1, **settings))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def client(data_dir) -> Iterator[TestClient]:
    with make_client(data_dir) as c:
        yield c


def state_dict(cell: str = "lstm", D: int = 4, H: int = 3, L: int = 2, seed: int = 0,
               dtype=np.float32) -> dict[str, np.ndarray]:
    return {k: v.astype(dtype) for k, v in
            pytorch_init(CELLS[cell], D, H, L, seed, None, np.float64).items()}


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict | None = None) -> bytes:
    """Written by the safetensors package itself, not by gatescope's reader's twin."""
    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)


def npz_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **tensors)
    return buf.getvalue()


def upload(client: TestClient, data: bytes, filename: str = "model.safetensors", **form):
    return client.post("/api/v1/models", files={"file": (filename, data)}, data=form)
