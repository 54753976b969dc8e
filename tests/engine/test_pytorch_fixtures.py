"""The engine against golden values from PyTorch (tests/fixtures/generate.py, run by hand).

Every case of tests/fixtures/pytorch_cases.json is a `/run` request (weights inline);
tests/fixtures/pytorch_cases.npz holds, keyed "<case>/<response path>", what
torch.nn.LSTM/GRU/RNN and autograd give for it in float64. Each stored array must match
the engine's array at the same path to a relative error
max|a − b| / max(max|b|, 1e-300) < 1e-9 — and step by step, each step's row against its
own largest entry, so a vanishing gradient of 1e−27 next to one of 1 is checked to its own
digits. Every entry PyTorch gives as exactly zero (truncated gradients, a dead ReLU unit,
the Jacobian terms at t = 0) must be zero here too, and every nonzero one nonzero.
No torch needed.

The same rules cover the gradient-flow lab's fields: `grad_norm` and the clipped
`param_grads` (clip_grad_norm_), every field of a run with interventions (torch.where in
the step), `jacobian.flow` of every LSTM layer, and `connectivity` (row by row) — and a
readout model's: `outputs.logits`/`outputs.probs` (torch.nn.Linear, softmax; step by step)
and `param_grads.readout.weight`/`.bias` under cross_entropy, next_token and hidden losses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gatescope
from tests.helpers.compare import load_fixtures, mismatches, walk

CASES, EXPECTED = load_fixtures("pytorch_cases")


def engine_arrays(case: dict[str, Any]) -> dict[str, np.ndarray]:
    """The engine's response for a case, as {path: array}; jacobian paths under "jacobian."."""
    result = gatescope.run(case["request"])
    arrays = dict(walk(result.as_dict()))
    if "step" in case:
        jac = gatescope.jacobian(case["request"], step=case["step"], layer=case["layer"])
        assert (jac.step, jac.layer) == (case["step"], case["layer"])
        if case["request"]["cell"] != "lstm":
            assert jac.terms == {}, "only the LSTM's Jacobian has terms"
        for path, a in walk({"terms": jac.terms, "total": jac.total}):
            arrays[f"jacobian.{path}"] = a
    return arrays


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_matches_pytorch(name: str) -> None:
    case, expected = CASES[name], EXPECTED[name]
    actual = engine_arrays(case)
    missing = sorted(set(expected) - set(actual))
    assert not missing, f"the engine's response lacks fields the fixture checks: {missing}"
    problems = mismatches(actual, expected)
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


# ── the fixture itself: it must keep covering every feature ─────────────────────────

GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn_tanh": ("a",),
         "rnn_relu": ("a",)}
CELLS = tuple(GATES)
FLOW = ("direct", "forget", "input", "candidate")  # the LSTM's jacobian.flow paths
TARGETS = {"lstm": {"i", "f", "g", "o", "c", "h"}, "gru": {"r", "z", "n", "h"},
           "rnn_tanh": {"h"}, "rnn_relu": {"h"}}  # what an intervention can replace


def required_paths(case: dict[str, Any]) -> set[str]:
    """Every response array a case must store (for its cell and layers)."""
    req = case["request"]
    cell, L = req["cell"], req["num_layers"]
    lstm = cell == "lstm"
    paths = {"loss", "input_grad", "initial_state_grad.h"}
    if lstm:
        paths.add("initial_state_grad.c")
    for k in range(L):
        paths |= {f"param_grads.{n}_l{k}" for n in ("weight_ih", "weight_hh", "bias_ih",
                                                    "bias_hh")}
        p = f"layers.{k}."
        paths |= {p + "h", p + "grads.h", p + "grads.h_norm", p + "jacobian.total"}
        paths |= {p + f"pre.{g}" for g in GATES[cell]}
        paths |= {p + f"grads.gates.{g}" for g in GATES[cell]}
        if cell in ("lstm", "gru"):
            paths |= {p + f"gates.{g}" for g in GATES[cell]}
        if lstm:
            paths |= {p + "c", p + "grads.c", p + "grads.c_norm"}
            paths |= {p + f"jacobian.{t}" for t in ("direct", "forget", "input", "candidate")}
    if "step" in case:
        paths.add("jacobian.total")
        if lstm:
            paths |= {f"jacobian.terms.{t}" for t in ("direct", "forget", "input",
                                                      "candidate")}
    for k in range(L):
        if lstm:
            paths |= {f"layers.{k}.jacobian.flow.{t}" for t in FLOW}
        if req.get("connectivity"):
            paths.add(f"layers.{k}.connectivity")
    if req.get("clip") is not None:
        paths |= {"grad_norm.total", "grad_norm.clipped"}
    if "readout.weight" in req["weights"]["tensors"]:
        paths |= {"outputs.logits", "outputs.probs", "param_grads.readout.weight",
                  "param_grads.readout.bias"}
    return paths


def replaced(case: dict[str, Any]) -> dict[tuple[int, str], np.ndarray]:
    """(layer, target) → T×H of the value each entry was replaced with (NaN where none),
    the interventions applied in list order."""
    T, H = steps(case), case["request"]["hidden_size"]
    out: dict[tuple[int, str], np.ndarray] = {}
    for one in case["request"].get("interventions", []):
        arr = out.setdefault((one.get("layer", 0), one["target"]), np.full((T, H), np.nan))
        units = slice(None) if one.get("units") is None else one["units"]
        arr[one.get("start", 0):one.get("stop") or T, units] = one["value"]
    return out


def overlap(case: dict[str, Any]) -> bool:
    """Whether two interventions with different values replace the same entry."""
    T, H = steps(case), case["request"]["hidden_size"]
    seen: dict[tuple[int, str], np.ndarray] = {}
    for one in case["request"].get("interventions", []):
        mask = np.zeros((T, H), dtype=bool)
        mask[one.get("start", 0):one.get("stop") or T,
             slice(None) if one.get("units") is None else one["units"]] = True
        key = (one.get("layer", 0), one["target"])
        values = seen.setdefault(key, np.full((T, H), np.nan))
        if np.any(mask & ~np.isnan(values) & (values != one["value"])):
            return True
        values[mask] = one["value"]
    return False


def steps(case: dict[str, Any]) -> int:
    inp = case["request"]["input"]
    return len(inp["text"]) if "text" in inp else len(inp["values"])


def features(case: dict[str, Any]) -> set[str]:
    """The features one case exercises, as labels."""
    req = case["request"]
    T, L = steps(case), req["num_layers"]
    out = {f"layers={L}"}
    inp = req["input"]
    if "text" in inp:
        out.add("input=text")
    elif isinstance(inp["values"][0], list):
        out.add("input=values")
    else:
        out.add("input=scalars")
    loss = req.get("loss", {"type": "last_hidden_sum"})
    out.add(f"loss={loss['type']}")
    if loss["type"] == "hidden_unit":
        out.add("loss=hidden_unit+step" if "step" in loss else "loss=hidden_unit-step")
    k = req.get("truncate")
    if k is not None:
        out.add("truncate=1" if k == 1 else "truncate>=T" if k >= T else "truncate=mid")
        if k == 3:
            out.add("truncate=3")
        if L > 1 and k < T:
            out.add("truncate+multilayer")
    state = req.get("initial_state") or {}
    out |= {f"initial_state.{s}" for s in state}
    biases = [np.asarray(v) for name, v in req["weights"]["tensors"].items()
              if name.startswith("bias")]
    if max(float(np.max(np.abs(b))) for b in biases) > 2.0:
        out.add("large_bias")
    if "step" in case:
        out.add("jacobian")
        if case["layer"] > 0:
            out.add("jacobian+upper_layer")
    clip = req.get("clip")
    if clip is not None:
        total = float(EXPECTED[case["name"]]["grad_norm.total"])
        out.add("clip<total" if clip["max_norm"] < total else "clip>=total")
    if req.get("connectivity"):
        out |= {"connectivity", f"connectivity+layers={L}"}
        if k is not None and k < T:
            out.add("connectivity+truncate")
    interventions = req.get("interventions", [])
    for one in interventions:
        out.add(f"intervention.{one['target']}")
        out.add("intervention+units=null" if one.get("units") is None
                else "intervention+units=list")
        if one.get("layer", 0) > 0:
            out.add("intervention+upper_layer")
    if interventions:
        if overlap(case):
            out.add("intervention+overlap")
        if k is not None and k < T:
            out.add("intervention+truncate")
        if "step" in case:
            out.add("intervention+jacobian")
        if req.get("connectivity"):
            out.add("intervention+connectivity")
    if "readout.weight" in req["weights"]["tensors"]:
        out |= {"readout", f"readout+layers={L}"}
        if loss["type"] not in ("cross_entropy", "next_token"):
            out.add("readout+hidden_loss")
        if loss["type"] == "cross_entropy" and None in loss["targets"]:
            out.add("cross_entropy+null")
        if k is not None and k < T:
            out.add("readout+truncate")
        if clip is not None:
            total = float(EXPECTED[case["name"]]["grad_norm.total"])
            out.add("readout+clip<total" if clip["max_norm"] < total else "readout+clip>=total")
        if interventions:
            out.add("readout+intervention")
    return out


def test_fixture_covers_every_feature() -> None:
    assert set(CASES) == set(EXPECTED), "json and npz list different cases"
    for name, case in CASES.items():
        assert "/" not in name and "." not in name, name
        assert case["request"]["weights"].keys() == {"tensors"}
        missing = required_paths(case) - set(EXPECTED[name])
        assert not missing, f"{name}: the fixture lacks {sorted(missing)}"
        assert EXPECTED[name]["input_grad"].any(), f"{name}: all gradients vanish"

    by_cell: dict[str, set[str]] = {cell: set() for cell in CELLS}
    for case in CASES.values():
        by_cell[case["request"]["cell"]] |= features(case)
    # every cell with 1, 2 and 3 layers
    for cell, feats in by_cell.items():
        assert {"layers=1", "layers=2", "layers=3"} <= feats, f"{cell}: {sorted(feats)}"
    # every other feature in at least two cells
    wanted = ["input=text", "input=values", "input=scalars", "loss=last_hidden_sum",
              "loss=hidden_unit+step", "loss=hidden_unit-step", "loss=all_hidden_sum",
              "loss=mse", "truncate=1", "truncate=3", "truncate>=T", "truncate+multilayer",
              "initial_state.h", "large_bias", "jacobian"]
    for feature in wanted:
        cells = [cell for cell, feats in by_cell.items() if feature in feats]
        assert len(cells) >= 2, f"{feature} is covered by {cells} only"
    assert "initial_state.c" in by_cell["lstm"]
    # full Jacobian matrices for the LSTM, GRU and a plain RNN, one of them an upper layer
    assert {"lstm", "gru", "rnn_tanh"} <= {c["request"]["cell"] for c in CASES.values()
                                           if "step" in c}
    assert any("jacobian+upper_layer" in features(c) for c in CASES.values())
    # ReLU RNNs see negative pre-activations (dead units: exact zeros in the gradients)
    for name, case in CASES.items():
        if case["request"]["cell"] == "rnn_relu":
            for k in range(case["request"]["num_layers"]):
                pre = EXPECTED[name][f"layers.{k}.pre.a"]
                assert (pre < 0).any() and (pre > 0).any(), f"{name} layer {k}"
    # the gradient-flow lab, each in two cells: clipping that shrinks the gradients and
    # clipping that leaves them; interventions on all units and on listed ones, on an upper
    # layer, overlapping (list order decides), under truncation
    lab = ["clip<total", "clip>=total", "intervention+units=null", "intervention+units=list",
           "intervention+upper_layer", "intervention+overlap", "intervention+truncate"]
    for feature in lab:
        cells = [cell for cell, feats in by_cell.items() if feature in feats]
        assert len(cells) >= 2, f"{feature} is covered by {cells} only"
    # every cell: connectivity with 1 and 2 layers, and an intervention on each target
    for cell, feats in by_cell.items():
        assert {"connectivity+layers=1", "connectivity+layers=2"} <= feats, (
            f"{cell}: connectivity with 1 and with 2 layers")
        targets = {f.split(".", 1)[1] for f in feats if f.startswith("intervention.")}
        assert targets == TARGETS[cell], f"{cell}: interventions on {sorted(targets)}"
    every = set().union(*by_cell.values())
    assert {"connectivity+truncate", "intervention+jacobian",
            "intervention+connectivity"} <= every
    for name, case in CASES.items():
        expected = EXPECTED[name]
        if "clip" in case["request"]:
            max_norm = case["request"]["clip"]["max_norm"]
            total, clipped = expected["grad_norm.total"], expected["grad_norm.clipped"]
            coef = min(1.0, max_norm / (total + 1e-6))  # clip_grad_norm_'s coefficient
            assert clipped == pytest.approx(total * coef, rel=1e-12), name
        # the fixture holds the replaced values, the last intervention winning
        for (layer, target), want in replaced(case).items():
            path = f"layers.{layer}.{target if target in ('c', 'h') else 'gates.' + target}"
            hit = ~np.isnan(want)
            assert np.array_equal(expected[path][hit], want[hit]), f"{name}: {path}"
        if case["request"]["cell"] == "lstm":
            for k in range(case["request"]["num_layers"]):
                for term in FLOW:  # no flow into the state before step 0
                    assert expected[f"layers.{k}.jacobian.flow.{term}"][0] == 0.0, name
    # each flow path carries gradient in some truncated case, and is 0 where it truncates
    for term in FLOW:
        cut = [(window, EXPECTED[name][f"layers.{k}.jacobian.flow.{term}"])
               for name, case in CASES.items() if case["request"]["cell"] == "lstm"
               if (window := case["request"].get("truncate", 10**9)) < steps(case)
               for k in range(case["request"]["num_layers"])]
        assert any(f.any() and not f[window::window].any() for window, f in cut), term
    # the readout: every cell, 1 and 2 layers, each loss on it, with truncation and clipping
    # (below and above the total norm); a hidden-state loss leaves its gradients exactly 0
    for cell, feats in by_cell.items():
        assert "readout" in feats, f"{cell}: no readout case"
    for feature in ["readout+layers=1", "readout+layers=2", "loss=cross_entropy",
                    "cross_entropy+null", "loss=next_token", "readout+truncate",
                    "readout+clip<total", "readout+clip>=total", "readout+hidden_loss"]:
        cells = [cell for cell, feats in by_cell.items() if feature in feats]
        assert len(cells) >= 2, f"{feature} is covered by {cells} only"
    assert "readout+intervention" in every
    readout_cases = [n for n, c in CASES.items() if "readout.weight" in c["request"]["weights"]
                     ["tensors"]]
    for name in readout_cases:
        expected = EXPECTED[name]
        assert np.allclose(expected["outputs.probs"].sum(axis=1), 1.0), name
        loss = CASES[name]["request"]["loss"]["type"]
        readout_moves = expected["param_grads.readout.weight"].any()
        assert readout_moves == (loss in ("cross_entropy", "next_token")), name
    # truncation leaves exact zeros somewhere, so the exact-zero check is exercised
    assert any(
        not EXPECTED[name]["layers.0.grads.h"].any(axis=1).all()
        for name, case in CASES.items()
        if case["request"].get("truncate", 10**9) < steps(case)
    )
