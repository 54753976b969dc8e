"""`gatescope run request.json` prints the response JSON; bad requests exit 2 with the
errors on stderr."""

from __future__ import annotations

import json
import subprocess
import sys

import gatescope


def gatescope_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gatescope.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_run_prints_the_response(tmp_path):
    req = {"cell": "gru", "hidden_size": 3, "input": {"text": "abcab"}}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(req))
    proc = gatescope_cli("run", str(path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == gatescope.run(req).to_json()


def test_run_reads_stdin_and_jacobian_works():
    req = json.dumps({"hidden_size": 2, "input": {"values": [1.0, 2.0, 3.0]}})
    proc = gatescope_cli("jacobian", "-", "--step", "1", stdin=req)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["step"] == 1 and len(out["total"]) == 2


def test_bad_request_exits_2_naming_the_field(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"input": {"text": "abc"}, "num_layers": 9}))
    proc = gatescope_cli("run", str(path))
    assert proc.returncode == 2
    detail = json.loads(proc.stderr)["detail"]
    assert detail[0]["loc"] == ["num_layers"] and "4" in detail[0]["msg"]


def test_unreadable_file_exits_1(tmp_path):
    proc = gatescope_cli("run", str(tmp_path / "missing.json"))
    assert proc.returncode == 1 and "cannot read" in proc.stderr
