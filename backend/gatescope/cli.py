"""Command line: `gatescope run request.json` prints the /run response as JSON.

    gatescope run request.json          # a file holding a /run request
    gatescope run - < request.json      # or read it from standard input
    gatescope jacobian request.json --step 3 [--layer 0]
    gatescope serve [--host 127.0.0.1] [--port 8000] [--workers N]

Exit status 0 on success, 2 for a bad request (the errors go to stderr as JSON, with the
field and the limit named), 1 for a file that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import __version__
from .errors import ModelNotFoundError, error_detail
from .runner import jacobian, run


def _read_request(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def _print_errors(exc: ValidationError) -> None:
    print(json.dumps({"detail": error_detail(exc)}, ensure_ascii=False, indent=2),
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
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
    args = parser.parse_args(argv)

    if args.command == "serve":
        return _serve(args)
    try:
        request = _read_request(args.request)
    except (OSError, ValueError) as exc:  # JSONDecodeError, UnicodeDecodeError, huge ints
        print(f"gatescope: cannot read {args.request}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.command == "run":
            result = run(request)
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
    uvicorn.run("gatescope.api:create_app", factory=True, host=settings.host,
                port=settings.port, workers=settings.workers, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
