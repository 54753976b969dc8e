"""The trainer (gatescope.training): Adam, clipping and whole training steps against
PyTorch (tests/fixtures/training_steps.json, from generate_training.py), learning on every
task, determinism, the saved .safetensors file, and `gatescope train`."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gatescope import tasks
from gatescope.core import readout
from gatescope.core.cells import CELLS
from gatescope.models.files import read_safetensors
from gatescope.models.store import ModelStore
from gatescope.training import Adam, TrainConfig, clip_grad_norm, train, train_step
from gatescope.training.save import model_bytes, safetensors_bytes
from gatescope.training.trainer import init_params

FIXTURE = json.loads((Path(__file__).parents[1] / "fixtures" / "training_steps.json")
                     .read_text())


def arrays(tree: dict) -> dict[str, np.ndarray]:
    return {k: np.array(v, dtype=np.float64) for k, v in tree.items()}


def test_adam_and_clipping_match_torch():
    case = FIXTURE["adam"]
    params = arrays(case["params"])
    adam = Adam(params, lr=case["lr"])
    for grads, norm, after in zip(case["grads"], case["norms"], case["after"], strict=True):
        grads = arrays(grads)
        assert clip_grad_norm(grads, case["max_norm"]) == pytest.approx(norm, rel=1e-14)
        adam.step(params, grads)
        for name, expected in arrays(after).items():
            np.testing.assert_allclose(params[name], expected, rtol=1e-13, atol=1e-15)
    assert adam.t == 3


def test_adam_first_step_by_hand():
    """Step 1: m = 0.1 g, v = 0.001 g², so θ moves by lr·g/(|g| + eps·…) ≈ lr·sign(g)."""
    p = {"w": np.array([1.0, -2.0, 0.5])}
    g = {"w": np.array([0.3, -4.0, 1e-9])}
    Adam(p, lr=0.1).step(p, g)
    m, v = 0.1 * g["w"], 0.001 * g["w"] ** 2
    expected = np.array([1.0, -2.0, 0.5]) - (0.1 / 0.1) * m / (np.sqrt(v) / np.sqrt(0.001)
                                                               + 1e-8)
    np.testing.assert_allclose(p["w"], expected, rtol=1e-15)
    assert p["w"][0] == pytest.approx(0.9) and p["w"][1] == pytest.approx(-1.9)


@pytest.mark.parametrize("case", FIXTURE["steps"], ids=lambda c: c["cell"])
def test_training_steps_match_torch(case):
    cell = CELLS[case["cell"]]
    params = arrays(case["init"])
    tokens, targets = np.array(case["tokens"]), np.array(case["targets"])
    X = tasks.one_hot(tokens, params["weight_ih_l0"].shape[1], np.dtype(np.float64))
    adam = Adam(params, lr=case["lr"])
    losses = [train_step(cell, params, adam, X, targets, clip=case["clip"])[0]
              for _ in range(2)]
    np.testing.assert_allclose(losses, case["losses"], rtol=1e-12)
    for name, expected in arrays(case["after"]).items():
        np.testing.assert_allclose(params[name], expected, rtol=1e-10, atol=1e-12)


def test_readout_init_is_torch_linear_default():
    p = init_params(CELLS["gru"], D=5, H=16, L=2, K=7, seed=3, dtype=np.dtype(np.float32))
    assert p[readout.WEIGHT].shape == (7, 16) and p[readout.BIAS].shape == (7,)
    assert all(v.dtype == np.float32 for v in p.values())
    for name in (readout.WEIGHT, readout.BIAS):
        assert np.abs(p[name]).max() <= 0.25 and np.abs(p[name]).max() > 0.2  # U(±1/√16)
    assert not np.array_equal(p[readout.WEIGHT][0], p["weight_hh_l0"][0, :16])


def test_forget_bias_goes_into_both_forget_blocks_and_the_command():
    base = init_params(CELLS["lstm"], 3, 4, 1, 2, seed=1, dtype=np.dtype(np.float64))
    biased = init_params(CELLS["lstm"], 3, 4, 1, 2, seed=1, dtype=np.dtype(np.float64),
                         forget_bias=1.5)
    for name in ("bias_ih_l0", "bias_hh_l0"):
        np.testing.assert_array_equal(biased[name][4:8], base[name][4:8] + 1.5)
        np.testing.assert_array_equal(biased[name][:4], base[name][:4])
    config = TrainConfig(task="adding", forget_bias=1.5)
    assert "--forget-bias 1.5" in config.command()
    with pytest.raises(ValueError, match="forget"):
        TrainConfig(task="adding", cell="gru", forget_bias=1.0)


# every task learns: held-out loss at the end against the start, same seed every run
LEARNS = [
    ("delayed_recall:d=5", "lstm", 120, 0.6),
    ("adding:digits=8", "gru", 150, 0.25),
    ("bracket_depth:length=16,max_depth=3", "lstm", 80, 0.6),
    ("char_lm:length=30", "gru", 80, 1.2),
]


@pytest.mark.parametrize(("task", "cell", "steps", "drop"), LEARNS, ids=[t[0] for t in LEARNS])
def test_training_lowers_the_held_out_loss(task, cell, steps, drop):
    config = TrainConfig(task=task, cell=cell, hidden=24, steps=steps, batch=16, lr=0.02,
                         eval_every=10_000, eval_size=128, log_every=40)
    log = io.StringIO()
    result = train(config, progress=log)
    start, end = result.history[0], result.history[-1]
    assert [h["step"] for h in result.history] == [0, steps]
    assert end["loss"] < start["loss"] - drop, result.history
    metric = result.task.metric
    if metric.higher_is_better:
        assert end[metric.name] > metric.baseline + 0.1
    else:
        assert end[metric.name] < metric.baseline  # beats the unigram model
    lines = log.getvalue().splitlines()
    assert any(f"step {steps:>6}/{steps}" in line and "seq/s" in line for line in lines)


def test_truncation_to_one_step_cannot_carry_the_symbol():
    """Delayed recall needs gradient from the answer back to the first step: with k = 1 the
    first symbol is never credited, and the model stays at chance."""
    base = TrainConfig(task="delayed_recall:d=4", hidden=16, steps=100, batch=16, lr=0.02,
                       eval_size=256)
    full = train(base, progress=None).final["accuracy"]
    cut = train(replace(base, truncate=1), progress=None).final["accuracy"]
    assert full > 0.6 and cut < 0.4


def test_same_seed_same_weights_and_bytes():
    config = TrainConfig(task="bracket_depth:length=10", cell="rnn_tanh", hidden=8, steps=15,
                         batch=8, eval_size=16, seed=4)
    a, b = train(config, progress=None), train(config, progress=None)
    for name in a.params:
        assert a.params[name].tobytes() == b.params[name].tobytes()
    assert model_bytes(a) == model_bytes(b)
    c = train(replace(config, seed=5), progress=None)
    assert c.params["weight_hh_l0"].tobytes() != a.params["weight_hh_l0"].tobytes()
    d = train(replace(config, dtype="float64"), progress=None)
    assert d.params["weight_hh_l0"].dtype == np.float64


def test_saved_file_round_trips_and_names_everything(tmp_path):
    config = TrainConfig(task="delayed_recall:d=3", cell="lstm", hidden=6, layers=2, steps=5,
                         batch=4, eval_size=8, clip=None, truncate=2)
    result = train(config, progress=None)
    data = model_bytes(result)
    n = int.from_bytes(data[:8], "little")
    assert (8 + n) % 8 == 0 and data[8:9] == b"{"
    parsed = read_safetensors(data)  # the store's own reader
    tensors, meta = parsed.tensors, parsed.metadata
    assert list(tensors) == [*(f"{w}_l{k}" for k in range(2) for w in
                               ("weight_ih", "weight_hh", "bias_ih", "bias_hh")),
                             "readout.weight", "readout.bias"]
    for name, value in tensors.items():
        assert value.dtype == np.float32
        assert value.tobytes() == result.params[name].tobytes()
    assert tensors["readout.weight"].shape == (4, 6) and tensors["readout.bias"].shape == (4,)
    assert set(meta) == {"cell", "vocab", "labels", "task", "card"}
    assert meta["cell"] == "lstm" and meta["vocab"] == "?abcd"
    assert json.loads(meta["labels"]) == ["a", "b", "c", "d"]
    assert tasks.get(meta["task"]) == result.task
    card = json.loads(meta["card"])
    assert card["command"] == config.command() and "--truncate 2" in card["command"]
    assert "--clip 0" in card["command"]
    assert card["seed"] == 0 and card["hyperparameters"]["num_layers"] == 2
    assert card["metrics"]["final"]["step"] == 5 and "accuracy" in card["metrics"]["final"]
    assert card["gatescope_version"] and card["task"] == meta["task"]
    # units: the top layer's 3 units of largest |r| with steps since the symbol
    assert [(u["layer"], u["property"]) for u in card["units"]] == [(1, "since_start")] * 3
    assert card["units"] == result.units and len({u["unit"] for u in card["units"]}) == 3
    assert [abs(u["r"]) for u in card["units"]] == sorted((abs(u["r"]) for u in card["units"]),
                                                          reverse=True)
    assert all(f"r = {u['r']:.2f} over 64 validation sequences of 4 steps" in u["why"]
               for u in card["units"])
    assert card["metrics"]["held_out_sha256"] == result.held_out_sha256
    final, base = card["metrics"]["final"]["accuracy"], card["metrics"]["baseline"]["accuracy"]
    assert card["metrics"]["margin_over_baseline"]["measured"] == pytest.approx(final - base)
    assert safetensors_bytes(tensors, meta) == data  # writing what was read: the same bytes
    # an independent reader agrees
    from safetensors.numpy import load

    for name, value in load(data).items():
        assert value.tobytes() == tensors[name].tobytes()
    info, new = ModelStore(tmp_path).add(data, "m.safetensors", name="recall")
    assert new and (info.input_size, info.hidden_size, info.num_layers) == (5, 6, 2)
    assert info.cell == "lstm" and info.vocab == "?abcd" and info.name == "recall"


def test_the_command_in_the_card_repeats_the_run(tmp_path):
    """`gatescope train` in a fresh process gives the same bytes as train() here, stores
    them, and prints the model id."""
    config = TrainConfig(task="adding:digits=6", cell="gru", hidden=5, steps=6, batch=4,
                         eval_size=8, lr=0.03, truncate=3)
    expected = model_bytes(train(config, progress=None))
    args = [*shlex.split(config.command())[2:], "--out", str(tmp_path / "m.safetensors")]
    env = {**os.environ, "GATESCOPE_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-m", "gatescope.cli", "train", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.safetensors").read_bytes() == expected
    model_id = proc.stdout.strip()
    stored = tmp_path / "data" / "models" / model_id / "model.safetensors"
    assert stored.read_bytes() == expected
    assert "held-out" in proc.stderr and "seq/s" in proc.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "nope"], "unknown task"),
    (["--task", "adding", "--hidden", "0"], "hidden"),
    (["--task", "adding", "--no-store"], "--out"),
])
def test_train_cli_refuses_bad_options(args, message):
    from gatescope.cli import main

    stderr = io.StringIO()
    old, sys.stderr = sys.stderr, stderr
    try:
        code = main(["train", *args])
    finally:
        sys.stderr = old
    assert code == 2 and message in stderr.getvalue()

