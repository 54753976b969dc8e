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
    ("..", "/shared"), ("/wo", "rk/"), ("shared/", "API.md"), ("shared/", "seed/")]))


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


def test_the_pattern_finds_what_it_is_for():
    # (each split in two: this file is checked too)
    assert OUTSIDE.search("the contract: " + ".." + "/shared" + "/API.md")
    assert OUTSIDE.search("see " + "/wo" + "rk/main/README.md")
    assert OUTSIDE.search("the old " + "shared/" + "API.md")
    assert not OUTSIDE.search("docs/API.md, backend/gatescope/presets/README.md")
