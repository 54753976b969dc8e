"""The repository stands on its own: no tracked file points at anything outside it (the
contract once lived in a file beside the checkout; docs/API.md is it now)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# a path above the checkout, the machine this was written on, the contract's old home
# (spelt in pieces, so this file does not match itself)
OUTSIDE = re.compile("|".join(re.escape(a + b) for a, b in [
    ("..", "/shared"), ("/wo", "rk/"), ("shared/", "API.md"), ("shared/", "seed/"),
    ("/ho", "me/"), ("/Us", "ers/"), ("/ro", "ot/")]))
MARKDOWN_LINK = re.compile(r"\]\(([^)\s#]+)")


def tracked_text_files() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                               capture_output=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = []
    for name in filter(None, names):
        path = ROOT / name
        if path.suffix in {".npz", ".safetensors", ".png"} or not path.is_file():
            continue
        files.append(path)
    return files


def test_no_file_refers_outside_the_repository():
    found = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: "
                  f"{m.group()}" for m in OUTSIDE.finditer(text)]
    assert found == [], "\n".join(found)


def test_every_relative_link_names_a_file_of_the_repository():
    broken = []
    for path in tracked_text_files():
        if path.suffix != ".md":
            continue
        for link in MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", link):  # http:, mailto:
                continue
            target = (path.parent / link).resolve()
            if not (target.is_relative_to(ROOT) and target.exists()):
                broken.append(f"{path.relative_to(ROOT)}: {link}")
    assert broken == [], "\n".join(broken)


def test_the_pattern_finds_what_it_is_for():
    # (each split in two: this file is checked too)
    assert OUTSIDE.search("the contract: " + ".." + "/shared" + "/API.md")
    assert OUTSIDE.search("see " + "/wo" + "rk/main/README.md")
    assert OUTSIDE.search("the old " + "shared/" + "API.md")
    assert OUTSIDE.search("a home: " + "/ho" + "me/ann/notes.md")
    assert not OUTSIDE.search("docs/API.md, backend/gatescope/presets/README.md")


# an import of a test module: tests.<folder>.test_…, .test_…, or a conftest
TEST_IMPORT = re.compile(r"^\s*from\s+(tests\.(?!helpers\b)[\w.]+|\.+\w*test_\w*|\.+conftest)"
                         r"\s+import", re.M)


def test_no_test_imports_another_test_file():
    """What tests share lives in tests/helpers/ (the fastapi template's tests/utils)."""
    found = []
    for path in (ROOT / "tests").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(ROOT)}: {m.group().strip()}"
                  for m in TEST_IMPORT.finditer(text)]
    assert found == [], "\n".join(found)


def test_the_test_import_pattern_finds_what_it_is_for():
    for line in ("from tests.engine.test_overflow import x", "    from .test_run import y",
                 "from .conftest import open_page"):
        assert TEST_IMPORT.search(line), line
    assert not TEST_IMPORT.search("from tests.helpers.api import make_client")
