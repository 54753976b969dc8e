"""Command line: `gatescope run request.json` prints the /run response as JSON.

    gatescope run request.json          # a file holding a /run request
    gatescope run - < request.json      # or read it from standard input
    gatescope jacobian request.json --step 3 [--layer 0]
    gatescope serve [--host 127.0.0.1] [--port 8000] [--workers N]
    gatescope train --task delayed_recall:d=20 [--cell lstm] [--hidden 64] [--seed 0]
                    [--steps 1000] [--batch 32] [--lr 0.01] [--clip 1.0] [--truncate k]
                    [--layers 1] [--dtype float32] [--forget-bias b] [--out FILE] [--no-store]

Exit status 0 on success, 2 for a bad request (the errors go to stderr as JSON, with the
field and the limit named), 1 for a file that cannot be read. `train` prints the new
model's id (its progress goes to stderr) and exits 2 for bad options.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import __version__
from .contract.errors import ModelNotFoundError, error_detail
from .contract.results import BatchResult, JacobianResult, RunResult
from .runner import jacobian, run, run_batch

if TYPE_CHECKING:
    from .training import TrainConfig


def _read_request(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def _print_errors(exc: ValidationError) -> None:
    print(json.dumps({"detail": error_detail(exc)}, ensure_ascii=False, indent=2),
          file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatescope", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gatescope {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    p_run = commands.add_parser("run", help="run a /run request, print the response JSON")
    p_run.add_argument("request", help="path to a JSON request, or - for standard input")
    p_run.add_argument("--indent", type=int, default=None, help="pretty-print with this indent")
    p_jac = commands.add_parser("jacobian", help="the H×H one-step Jacobian at one step")
    p_jac.add_argument("request", help="path to a JSON request, or - for standard input")
    p_jac.add_argument("--step", type=int, default=None)
    p_jac.add_argument("--layer", type=int, default=None)
    p_jac.add_argument("--indent", type=int, default=None)
    p_serve = commands.add_parser("serve", help="serve the explorer and the REST API")
    p_serve.add_argument("--host", default=None, help="default 127.0.0.1 (GATESCOPE_HOST)")
    p_serve.add_argument("--port", type=int, default=None, help="default 8000 (GATESCOPE_PORT)")
    p_serve.add_argument("--workers", type=int, default=None,
                         help="uvicorn worker processes, default 1 (GATESCOPE_WORKERS)")
    _add_train(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    if args.command == "serve":
        return _serve(args)
    if args.command == "train":
        return _train(args)
    try:
        request = _read_request(args.request)
    except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError, huge ints
        print(f"gatescope: cannot read {args.request}: {exc}", file=sys.stderr)
        return 1
    result: RunResult | BatchResult | JacobianResult
    try:
        if args.command == "run":
            batch = isinstance(request, dict) and isinstance(request.get("input"), dict) \
                and "batch" in request["input"]
            result = (run_batch if batch else run)(request)
        else:
            result = jacobian(request, step=args.step, layer=args.layer)
    except ValidationError as exc:
        _print_errors(exc)
        return 2
    except ModelNotFoundError as exc:
        print(f"gatescope: {exc}", file=sys.stderr)
        return 2
    json.dump(result.to_json(), sys.stdout, indent=args.indent, allow_nan=False,
              ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import math
    import os

    import uvicorn

    from .settings import Settings

    # flags win over GATESCOPE_* variables; the app factory reads them back in each worker
    for name in ("host", "port", "workers"):
        if getattr(args, name) is not None:
            os.environ[f"GATESCOPE_{name.upper()}"] = str(getattr(args, name))
    settings = Settings()
    print(f"gatescope {__version__}: http://{settings.host}:{settings.port}  "
          f"(data in {settings.data_dir})", file=sys.stderr)
    # slow clients timed out and connections capped below the descriptor limit
    # (api/connections.py); on SIGTERM, requests in flight get shutdown_timeout to finish,
    # then the pool stops its workers at once: well within a container's 10 s grace
    uvicorn.run("gatescope.api:create_app", factory=True, host=settings.host,
                port=settings.port, workers=settings.workers, log_level="info",
                http="gatescope.api.connections:GuardedHttpToolsProtocol",
                timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout))
    return 0


def _add_train(commands: Any) -> None:
    from .tasks import TASKS
    from .training import TrainConfig

    default = TrainConfig(task="adding")
    p = commands.add_parser(
        "train", help="train a model with a readout on a task; store it, print its id",
        description="Train an RNN, LSTM or GRU with a linear readout on a generated task, "
        "then add it to the model store (the data directory `gatescope serve` uses) and/or "
        "write it to --out. Progress goes to stderr; the model id to stdout.")
    p.add_argument("--task", required=True,
                   help=f"kind[:option=value,...], kinds: {', '.join(TASKS)}")
    p.add_argument("--cell", default=default.cell, choices=["lstm", "gru", "rnn_tanh",
                                                            "rnn_relu"])
    p.add_argument("--hidden", type=int, default=default.hidden, help="hidden size H")
    p.add_argument("--layers", type=int, default=default.layers)
    p.add_argument("--seed", type=int, default=default.seed)
    p.add_argument("--steps", type=int, default=default.steps, help="training steps")
    p.add_argument("--batch", type=int, default=default.batch, help="sequences per step")
    p.add_argument("--lr", type=float, default=default.lr, help="Adam's learning rate")
    p.add_argument("--clip", type=float, default=default.clip,
                   help="clip the gradients' total norm to this; 0: no clipping")
    p.add_argument("--truncate", type=int, default=None, help="truncated BPTT window k")
    p.add_argument("--dtype", default=default.dtype, choices=["float32", "float64"])
    p.add_argument("--forget-bias", type=float, default=None,
                   help="LSTM: add this to both forget-gate biases at init (e.g. 1.0)")
    p.add_argument("--eval-every", type=int, default=default.eval_every)
    p.add_argument("--eval-size", type=int, default=default.eval_size,
                   help="held-out sequences scored at each evaluation")
    p.add_argument("--log-every", type=int, default=default.log_every)
    p.add_argument("--out", default=None, help="also write the .safetensors file here")
    p.add_argument("--name", default=None, help="the model's name in the store")
    p.add_argument("--no-store", action="store_true",
                   help="do not add the model to the store (needs --out)")


def _config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of parsed `train` options (ValueError for bad ones)."""
    from .training import TrainConfig

    return TrainConfig(
        task=args.task, cell=args.cell, hidden=args.hidden, layers=args.layers,
        seed=args.seed, steps=args.steps, batch=args.batch, lr=args.lr,
        clip=args.clip or None, truncate=args.truncate, dtype=args.dtype,
        forget_bias=args.forget_bias,
        eval_every=args.eval_every, eval_size=args.eval_size, log_every=args.log_every)


def config_from_command(command: str) -> TrainConfig:
    """The TrainConfig a `gatescope train …` command line (a model card's) runs with, so
    a card's run can be re-measured or repeated in-process. Raises ValueError."""
    argv = shlex.split(command)
    if argv[:2] != ["gatescope", "train"]:
        raise ValueError(f"not a gatescope train command: {command!r}")
    try:
        return _config(_parser().parse_args(argv[1:]))
    except SystemExit:  # argparse's way to refuse: say it as the ValueError promised
        raise ValueError(f"gatescope train cannot parse {command!r}") from None


def _train(args: argparse.Namespace) -> int:
    from .training import model_bytes, train

    if args.no_store and args.out is None:
        print("gatescope train: --no-store needs --out, or the model goes nowhere",
              file=sys.stderr)
        return 2
    try:
        config = _config(args)
    except ValueError as exc:
        print(f"gatescope train: {exc}", file=sys.stderr)
        return 2
    result = train(config, progress=sys.stderr)
    data = model_bytes(result)
    stem = f"{result.task.kind}-{config.cell}-h{config.hidden}-seed{config.seed}"
    if args.out is not None:
        Path(args.out).write_bytes(data)
        print(f"gatescope train: wrote {args.out}", file=sys.stderr)
    if args.no_store:
        return 0
    from .models.store import ModelStore
    from .settings import Settings

    settings = Settings()
    info, _ = ModelStore(settings.data_dir, settings.limits, **settings.store_options).add(
        data, f"{stem}.safetensors", name=args.name or f"{result.task.name} {config.cell} "
        f"H={config.hidden}")
    print(f"gatescope train: stored in {settings.data_dir}", file=sys.stderr)
    print(info.model_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
