"""Markers by folder: every test under tests/browser is `browser`. `make test-fast` leaves out
`browser` and `slow` tests (pyproject.toml lists the markers); `make test` runs them all."""

from __future__ import annotations

from pathlib import Path

import pytest

BROWSER = Path(__file__).resolve().parent / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER in item.path.parents:
            item.add_marker(pytest.mark.browser)
