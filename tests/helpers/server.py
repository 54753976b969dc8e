"""A real `gatescope serve` in a subprocess, on a free loopback port: for the tests and
benchmarks that need the whole server (uvicorn, worker processes, real sockets)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(data_dir: Path | str, log: Path | None = None, timeout: float = 60,
                   command: list[str] | None = None, cwd: Path | None = None,
                   **settings: str | int | float) -> Iterator[str]:
    """running_server_process's URL alone."""
    with running_server_process(data_dir, log, timeout, command, cwd, **settings) as (url, _):
        yield url


@contextmanager
def running_server_process(data_dir: Path | str, log: Path | None = None, timeout: float = 60,
                           command: list[str] | None = None, cwd: Path | None = None,
                           **settings: str | int | float
                           ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the server with GATESCOPE_DATA_DIR = data_dir and GATESCOPE_<NAME> = value for
    each setting; yield its URL once /api/v1/health answers; stop it on exit. The server's
    output goes to `log` (and into the error if it does not start), else nowhere.
    `command` starts it (default: this interpreter's `python -m gatescope.cli`; `serve
    --port P` is added), in `cwd` (default: this one). Yields (its URL, its process)."""
    port = free_port()
    env = {**os.environ, "GATESCOPE_DATA_DIR": str(data_dir),
           **{f"GATESCOPE_{k.upper()}": str(v) for k, v in settings.items()}}
    out = log.open("wb") if log else subprocess.DEVNULL
    argv = [*(command or [sys.executable, "-m", "gatescope.cli"]), "serve", "--port", str(port)]
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v1/health", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    said = log.read_text(errors="replace") if log else ""
                    raise RuntimeError(f"gatescope serve did not start\n{said}") from None
                time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log:
            out.close()


def workers(server: subprocess.Popen[bytes]) -> list[int]:
    """The compute processes of a server: its children that multiprocessing spawned (not
    its resource tracker)."""
    pids = []
    for task in Path(f"/proc/{server.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                pids.append(int(pid))
    return pids
