"""Train the bundled presets again from their commands (`make presets`), or check them.

    python backend/gatescope/presets/build.py                  # retrain every preset
    python backend/gatescope/presets/build.py bracket_depth-lstm ...   # only these
    python backend/gatescope/presets/build.py --check [names]  # retrain into a temporary
                                                               # directory, compare metrics
    python backend/gatescope/presets/build.py --table          # README.md's table, from
                                                               # the cards

commands.txt beside this file holds one `gatescope train … --out FILE --no-store` line per
preset (FILE relative to the repository root); each preset's model card records the same
command without `--out FILE --no-store` (tests/engine/test_presets.py checks they agree).
SHA256SUMS lists every preset file's hash (`sha256sum -c SHA256SUMS` checks them); a build
writes it anew.

What "deterministic" means: everything comes from the command's seed, so a command run
twice on one machine writes the same bytes. Float32 training is chaotic, though: where
OpenBLAS picks other kernels (another CPU, or OPENBLAS_CORETYPE), products round
differently, the runs drift apart, and the retrained model differs: on SkylakeX kernels the
bracket-depth RNN's weights moved by up to 0.50 and its held-out accuracy fell 7.6 points,
the bracket-depth LSTM's weights by up to 2.3 at the same accuracy; on Katmai (Prescott)
kernels the delayed-recall LSTM stayed at 49 %. `--check` says whether the bytes are the
same and fails only when a metric is worse than its card's by more than TOLERANCE.

At most `--jobs` (default 2) trainings run at once (the trainer uses one BLAS thread); each
prints its time and final held-out line when done.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # backend/gatescope/presets → the repository
COMMANDS = HERE / "commands.txt"
SHA256SUMS = HERE / "SHA256SUMS"

# How far a retrained preset's final held-out score may fall from its card's and still
# count as the same model trained again: accuracy in shares of the targeted steps, the
# char LM in nats per character (lower is better).
TOLERANCE = {"accuracy": 0.01, "nats_per_char": 0.05}


def commands() -> dict[str, list[str]]:
    """name (the --out file's stem) → the command's arguments, in file order."""
    out: dict[str, list[str]] = {}
    for line in COMMANDS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            args = shlex.split(line)
            out[Path(args[args.index("--out") + 1]).stem] = args
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest() -> str:
    """SHA256SUMS's text: `<sha256>  <file>` for every preset file, by name."""
    return "".join(f"{sha256(p)}  {p.name}\n" for p in sorted(HERE.glob("*.safetensors")))


def read_manifest() -> dict[str, str]:
    """file name → sha256, as SHA256SUMS lists them."""
    pairs = (line.split("  ", 1) for line in SHA256SUMS.read_text().splitlines() if line)
    return {name: digest for digest, name in pairs}


def shortfall(card: Mapping[str, float], again: Mapping[str, float], metric: str) -> str | None:
    """Why a retrained model's final scores (`again`) are not its card's within TOLERANCE,
    or None when they are. Only a worse score counts: better is still the same recipe."""
    worse = card[metric] - again[metric] if metric == "accuracy" else again[metric] - card[metric]
    if worse <= TOLERANCE[metric]:
        return None
    return (f"{metric} {again[metric]:.4f} against the card's {card[metric]:.4f}: worse by "
            f"{worse:.4f}, more than the tolerance of {TOLERANCE[metric]}")


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


def card_of(path: Path) -> dict:
    """The model card in a preset file's metadata."""
    from gatescope.models.files import read_safetensors

    return json.loads(read_safetensors(path.read_bytes()).metadata["card"])


def table() -> str:
    """A Markdown table of the presets' cards: what each learned and how well."""
    rows = ["| preset | task | H | steps | lr | held-out | baseline | top units (r) |",
            "|---|---|---|---|---|---|---|---|"]
    for name in commands():
        card = card_of(HERE / f"{name}.safetensors")
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


def check(name: str, fresh: Path) -> tuple[str, int]:
    """(a verdict, exit status) for a preset retrained into `fresh`: the same bytes, or
    different bytes with the card's metrics within TOLERANCE (0), or not (1)."""
    shipped = HERE / f"{name}.safetensors"
    if fresh.read_bytes() == shipped.read_bytes():
        return "same bytes", 0
    card, again = card_of(shipped)["metrics"], card_of(fresh)["metrics"]
    problem = shortfall(card["final"], again["final"], card["metric"])
    if problem:
        return f"DIFFERENT bytes, {problem}", 1
    return "different bytes (another BLAS kernel?), metrics within tolerance", 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="presets to build (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="retrain into a temporary directory and compare with the cards")
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
                verdict, code = check(name, Path(tmp) / f"{name}.safetensors")
            failed += code != 0
            print(f"{name:<24} {seconds:7.1f} s  {verdict}  {summary}", flush=True)
    if not opts.check:
        SHA256SUMS.write_text(manifest())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
