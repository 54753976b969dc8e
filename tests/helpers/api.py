"""What the API tests share: an app with its worker processes, model files written by the
safetensors package and by NumPy, uploads, and a reader of the binary encoding."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
from fastapi.testclient import TestClient
from safetensors.numpy import save

from gatescope.api import create_app
from gatescope.core.cells import CELLS
from gatescope.core.params import pytorch_init
from gatescope.settings import Settings

# the Host TestClient sends: allowed here, for the tests, never by a server's defaults
TEST_HOSTS = ["testserver"]


@contextmanager
def make_client(data_dir: Path, **settings: Any) -> Iterator[TestClient]:
    settings.setdefault("allowed_hosts", TEST_HOSTS)
    app = create_app(Settings(data_dir=data_dir, compute_processes=1, **settings))
    with TestClient(app) as client:
        yield client


def state_dict(cell: str = "lstm", D: int = 4, H: int = 3, L: int = 2, seed: int = 0,
               dtype=np.float32) -> dict[str, np.ndarray]:
    return {k: v.astype(dtype) for k, v in
            pytorch_init(CELLS[cell], D, H, L, seed, None, np.float64).items()}


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
                      ) -> bytes:
    """Written by the safetensors package itself, not by gatescope's reader's twin."""
    return save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)


def npz_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **tensors)
    return buf.getvalue()


def upload(client: TestClient, data: bytes, filename: str = "model.safetensors",
           **form: str) -> httpx2.Response:
    return client.post("/api/v1/models", files={"file": (filename, data)}, data=form)


def read_binary(content: bytes) -> Any:
    """The binary encoding: b"GSB1", uint32 header length, JSON header, aligned arrays."""
    assert content[:4] == b"GSB1"
    n = int.from_bytes(content[4:8], "little")
    assert (8 + n) % 8 == 0
    data = memoryview(content)[8 + n:]

    def resolve(obj: Any) -> Any:
        if isinstance(obj, dict) and set(obj) == {"dtype", "shape", "offset", "nbytes"}:
            assert obj["offset"] % 8 == 0
            dtype = np.dtype("<" + obj["dtype"])
            shape = tuple(int(k) for k in obj["shape"].split(","))
            return np.frombuffer(data, dtype, obj["nbytes"] // dtype.itemsize,
                                 obj["offset"]).reshape(shape)
        if isinstance(obj, dict):
            return {k: resolve(v) for k, v in obj.items()}
        if isinstance(obj, list) and obj and isinstance(obj[0], dict):
            return [resolve(v) for v in obj]
        return obj

    return resolve(json.loads(bytes(content[8:8 + n])))


# a readout model's vocab (its labels too) and card
VOCAB = "abcd"
CARD = {"description": "a tiny character model", "trained_on": ["abcd" * 3], "steps": 7}


def readout_model(cell: str = "gru", H: int = 3, L: int = 2, K: int = 4, seed: int = 1,
                  prefix: str = "", readout_prefix: str = "") -> dict[str, np.ndarray]:
    """A state_dict of D = 4 inputs with a K-output readout, float64."""
    tensors = {prefix + k: v for k, v in
               state_dict(cell, D=4, H=H, L=L, seed=seed, dtype=np.float64).items()}
    rng = np.random.default_rng(seed)
    tensors[readout_prefix + "readout.weight"] = rng.normal(size=(K, H))
    tensors[readout_prefix + "readout.bias"] = rng.normal(size=K)
    return tensors


def metadata(**extra: str) -> dict[str, str]:
    return {"vocab": VOCAB, "labels": json.dumps(list(VOCAB)), "task": "next_char",
            "card": json.dumps(CARD), **extra}
