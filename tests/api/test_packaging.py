"""The wheel: `pip install .` (not editable) into a fresh virtual environment, then `gatescope
serve` from another directory serves the explorer, its scripts and plotly.js — the page is
package data, not a file of the checkout.

Offline: the wheel is built without build isolation (hatchling is a test extra), installed
without its dependencies, and the new environment sees the test environment's packages
through a .pth line — which does not run that environment's own .pth files, so the
checkout's editable gatescope stays invisible and the wheel's is the one imported.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.helpers.server import running_server

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers.get("content-type", ""), r.read()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding the wheel built from this checkout; returns its bin/."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(tmp / "dist"), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("gatescope-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    bin_dir = tmp / "venv" / "bin"
    site = subprocess.run([bin_dir / "python", "-c",
                           "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True)
    return bin_dir


def test_the_wheel_holds_the_page_the_presets_and_py_typed(installed):
    wheel = next(installed.parents[1].glob("dist/gatescope-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"gatescope/py.typed", "gatescope/frontend/index.html",
            "gatescope/frontend/js/main.js", "gatescope/frontend/css/style.css",
            "gatescope/presets/SHA256SUMS",
            "gatescope/presets/delayed_recall-lstm.safetensors"} <= names
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]


def test_an_installed_wheel_serves_the_page_from_any_directory(installed, tmp_path,
                                                             monkeypatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)  # a checkout on it would win
    where = subprocess.run([installed / "python", "-c",
                            "import gatescope; print(gatescope.__file__)"],
                           cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(installed.parent)), where  # the wheel's copy, not the checkout
    log = tmp_path / "server.log"
    with running_server(tmp_path / "data", log, command=[str(installed / "gatescope")],
                        cwd=tmp_path, compute_processes=1) as url:
        status, kind, page = get(f"{url}/")
        assert status == 200 and kind.startswith("text/html")
        assert b"js/main.js" in page
        status, kind, script = get(f"{url}/js/main.js")
        assert status == 200 and "javascript" in kind and b"import" in script
        status, kind, plotly = get(f"{url}/vendor/plotly.min.js")
        assert status == 200 and "javascript" in kind and len(plotly) > 1_000_000
        status, _, health = get(f"{url}/api/v1/health")
        assert status == 200 and b'"ok"' in health
    assert "no explorer page to serve" not in log.read_text()
