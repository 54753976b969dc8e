"""Train the bundled presets again from their commands (`make presets`), or check them.

    python backend/gatescope/presets/build.py                  # retrain every preset
    python backend/gatescope/presets/build.py bracket_depth-lstm ...   # only these
    python backend/gatescope/presets/build.py --check [names]  # retrain into a temporary
                                                               # directory, compare bytes
    python backend/gatescope/presets/build.py --table          # README.md's table, from
                                                               # the cards

commands.txt beside this file holds one `gatescope train … --out FILE --no-store` line per
preset (FILE relative to the repository root); each preset's model card records the same
command without `--out FILE --no-store` (tests/engine/test_presets.py checks they agree).
Training is deterministic, so retraining writes the same bytes: after `make presets`,
`git diff --stat` shows no change. At most `--jobs` (default 2) trainings run at once (the
trainer uses one BLAS thread); each prints its time and final held-out line when done.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # backend/gatescope/presets → the repository
COMMANDS = HERE / "commands.txt"


def commands() -> dict[str, list[str]]:
    """name (the --out file's stem) → the command's arguments, in file order."""
    out: dict[str, list[str]] = {}
    for line in COMMANDS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            args = shlex.split(line)
            out[Path(args[args.index("--out") + 1]).stem] = args
    return out


def retarget(args: list[str], directory: Path) -> list[str]:
    """The same command writing its file into `directory`."""
    args = list(args)
    k = args.index("--out") + 1
    args[k] = str(directory / Path(args[k]).name)
    return args


def run(name: str, args: list[str], logs: Path) -> tuple[str, float, int, str]:
    """Run one command from the repository root with this interpreter's gatescope, its
    progress into logs/<name>.log. Returns (name, seconds, exit status, the log's last
    held-out line, or its tail on failure)."""
    argv = [sys.executable, "-m", "gatescope.cli", *args[1:]]  # args[0] is "gatescope"
    log = logs / f"{name}.log"
    start = time.perf_counter()
    with open(log, "w") as f:
        code = subprocess.run(argv, cwd=ROOT, stderr=f, stdout=f).returncode
    lines = log.read_text().splitlines()
    held_out = [line for line in lines if line.startswith("held-out")]
    summary = held_out[-1] if held_out and not code else "\n".join(lines[-10:])
    return name, time.perf_counter() - start, code, summary


def table() -> str:
    """A Markdown table of the presets' cards: what each learned and how well."""
    from gatescope.models.files import read_safetensors

    rows = ["| preset | task | H | steps | lr | held-out | baseline | top units (r) |",
            "|---|---|---|---|---|---|---|---|"]
    for name in commands():
        meta = read_safetensors((HERE / f"{name}.safetensors").read_bytes()).metadata
        card = json.loads(meta["card"])
        hp, m = card["hyperparameters"], card["metrics"]
        metric = m["metric"]
        score = f"{m['final'][metric]:.4f} {metric}, loss {m['final']['loss']:.4f}"
        tops: dict[str, str] = {}
        for u in card["units"]:
            tops.setdefault(u["property"], f"{u['property']}: {u['unit']} ({u['r']:+.2f})")
        rows.append(f"| `{name}` | `{card['task']}` | {hp['hidden_size']} | {hp['steps']} | "
                    f"{hp['optimizer']['lr']} | {score} | {m['baseline'][metric]:.4f} "
                    f"({m['baseline']['name']}) | {'; '.join(tops.values())} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="presets to build (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="retrain into a temporary directory and compare the bytes")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once")
    parser.add_argument("--logs", type=Path, default=None,
                        help="keep each training's progress in DIR/<name>.log (default: a "
                        "temporary directory, removed at the end)")
    parser.add_argument("--table", action="store_true",
                        help="print the presets' Markdown table from their cards, train nothing")
    opts = parser.parse_args(argv)
    if opts.table:
        print(table())
        return 0
    todo = commands()
    unknown = sorted(set(opts.names) - set(todo))
    if unknown:
        print(f"unknown presets {unknown}; commands.txt has {sorted(todo)}", file=sys.stderr)
        return 2
    if opts.names:
        todo = {name: todo[name] for name in opts.names}
    with tempfile.TemporaryDirectory() as tmp:
        if opts.check:
            todo = {name: retarget(args, Path(tmp)) for name, args in todo.items()}
        with ThreadPoolExecutor(opts.jobs) as pool:
            logs = opts.logs or Path(tmp)
            logs.mkdir(parents=True, exist_ok=True)
            done = list(pool.map(lambda name: run(name, todo[name], logs), todo))
        failed = 0
        for name, seconds, code, summary in done:
            verdict = "failed" if code else "ok"
            if opts.check and not code:
                fresh = Path(tmp) / f"{name}.safetensors"
                same = filecmp.cmp(fresh, HERE / f"{name}.safetensors", shallow=False)
                verdict = "same bytes" if same else "DIFFERENT bytes"
                code = 0 if same else 1
            failed += code != 0
            print(f"{name:<24} {seconds:7.1f} s  {verdict}  {summary}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
