"""One app (with its worker processes) for the whole API test session, on a fresh data
directory; tests that need their own app build one with tests.helpers.api.make_client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.helpers.api import make_client


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def client(data_dir) -> Iterator[TestClient]:
    with make_client(data_dir) as c:
        yield c
