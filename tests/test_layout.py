"""The package's layers, as the README's Architecture section draws them: each layer imports
only the layers listed before it (the math knows nothing of requests, the contract nothing
of files, the store nothing of runs), and the README's trees name every module there is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "backend" / "gatescope"
# bottom first; a module may import its own layer and those before it. The package's
# __init__.py (the Python API, and __version__) sits on top of them all.
LAYERS = ["core", "contract", "models", "tasks", "runner", "training", "presets", "settings",
          "api", "cli", "client"]


def module_name(path: Path, package: Path) -> str:
    """backend/gatescope/core/cells/lstm.py → "gatescope.core.cells.lstm"."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str | None:
    """"gatescope.core.cells.lstm" → "core"; None for the package's own __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imports(path: Path, package: Path) -> list[tuple[int, str]]:
    """(line, absolute name) of every gatescope import of a module, relative ones resolved;
    `from gatescope import x` counts as gatescope.x."""
    module = module_name(path, package)
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            out += [(node.lineno, f"{target}.{a.name}" if target == "gatescope" else target)
                    for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(line, name) for line, name in out if name.split(".")[0] == "gatescope"]


def back_pointing(path: Path, package: Path = PACKAGE) -> list[str]:
    """The imports of the module at `path` that reach a layer above its own."""
    own = layer_of(module_name(path, package))
    if own is None:  # the Python API may import everything
        return []
    found = []
    for line, name in imports(path, package):
        target = layer_of(name)
        if target in (None, "__version__"):  # the version, from the top
            continue
        where = f"{path.relative_to(package.parent)}:{line}"
        if target not in LAYERS:
            found.append(f"{where}: {name} is in no layer")
        elif LAYERS.index(target) > LAYERS.index(own):
            found.append(f"{where}: {own} imports {name}")
    return found


def modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "corpus" not in p.parts]


def test_every_module_is_in_a_layer_and_imports_only_the_layers_before_it():
    layers = {layer_of(module_name(p, PACKAGE)) for p in modules()} - {None}
    assert layers == set(LAYERS)
    found = [f for p in modules() for f in back_pointing(p)]
    assert found == [], "\n".join(found)


def test_a_back_pointing_import_is_found(tmp_path):
    package = tmp_path / "gatescope"
    (package / "core").mkdir(parents=True)
    engine = package / "core" / "engine.py"
    engine.write_text("from ..runner import run\nfrom .cells import Cell\n"
                      "from ..api.pool import Slot\nfrom .. import __version__\n"
                      "import gatescope.settings\n")
    assert [f.split(": ", 1)[1] for f in back_pointing(engine, package)] == [
        "core imports gatescope.runner", "core imports gatescope.api.pool",
        "core imports gatescope.settings"]


def test_the_readme_names_every_module():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    architecture = readme.split("\n## Architecture", 1)[1].split("\n## ", 1)[0]
    missing = [str(p.relative_to(PACKAGE)) for p in modules()
               if not re.search(rf"(?<![\w/]){re.escape(p.name)}\b", architecture)]
    assert missing == [], f"README.md's Architecture tree lacks {missing}"
    explorer = readme.split("Layout (`frontend/`", 1)[1].split("\n## ", 1)[0]
    missing = [str(p.relative_to(ROOT)) for p in (ROOT / "frontend" / "js").rglob("*.js")
               if not re.search(rf"\b{re.escape(p.stem)}\b", explorer)]
    assert missing == [], f"README.md's explorer layout lacks {missing}"
