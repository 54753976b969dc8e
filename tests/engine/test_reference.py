"""The readable reference (core/reference.py) as a third oracle.

1. Against PyTorch: every golden case (tests/fixtures/pytorch_cases.*) the reference can
   express — any cell, layers, truncation, initial state, a hidden-state loss, clipping —
   matches to a relative error of 1e-9: values, gates, pre-activations and every gradient.
2. Against the fast path (engine.forward / engine.backward): random shapes, N ≥ 2 sequences,
   1–3 layers, with and without truncation, every cell, a random upstream gradient: 1e-12.
3. Each cell's step_backward against central differences of its step_forward: 1e-7.

Relative error, entry by entry: |a − b| / max(|b|, floor · s), s the largest |b| of the
array, or of its own slice along the first axis (each step of a time series, each layer of
h0, each row of a weight), so a gradient that vanishes to 1e−27 at early steps is still
checked to its own digits. An all-zero step (a truncated gradient)
has s = 0 and then demands exact zeros. floor is 1e-3 against the fast path and the finite
differences: entries down to a thousandth of their step's largest are checked to their own
digits. Against PyTorch it is 1, the fixture test's own measure (each step against its
largest entry): PyTorch's tanh and NumPy's differ by an ulp, and 1 − h² of a saturated unit
(the big-bias cases) turns that into ~1e-9 of a small entry, a disagreement of libraries,
not of equations.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gatescope.core import engine, reference
from gatescope.core.cells import CELLS
from gatescope.core.params import param_names, pytorch_init

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY = 1e-300
FLOOR = 1e-3  # entries below 1/1000 of their scale are compared at that scale
FLOOR_PYTORCH = 1.0  # each step against its largest entry (see above)
RTOL_PYTORCH = 1e-9
RTOL_FAST = 1e-12
RTOL_NUMERIC = 1e-7
HIDDEN_LOSSES = {"last_hidden_sum", "hidden_unit", "all_hidden_sum", "mse"}


def rel_error(actual: np.ndarray, expected: np.ndarray, per_step: bool = False,
              floor: float = FLOOR) -> float:
    """max |a − b| / max(|b|, floor · s): s = max |b| over the array, or over each slice
    along the first axis (each step) when per_step."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} against {b.shape}"
    if a.size == 0:
        return 0.0
    mag = np.abs(b)
    if per_step and b.ndim >= 2:
        scale = mag.max(axis=tuple(range(1, b.ndim)), keepdims=True)
    else:
        scale = mag.max(keepdims=True)
    denom = np.maximum(mag, np.maximum(floor * scale, TINY))
    return float(np.max(np.abs(a - b) / denom))


def check(pairs: dict[str, tuple[np.ndarray, np.ndarray]], rtol: float,
          per_step: bool = True, floor: float = FLOOR) -> float:
    """Every (actual, expected) pair within rtol; returns the largest error. A non-finite
    value fails."""
    problems, worst = [], 0.0
    for path, (actual, expected) in sorted(pairs.items()):
        if not np.all(np.isfinite(actual)):
            problems.append(f"{path}: non-finite values")
            continue
        err = rel_error(actual, expected, per_step, floor)
        worst = max(worst, err)
        if not err < rtol:
            problems.append(f"{path}: relative error {err:.3g}")
    assert not problems, "\n  ".join(["", *problems])
    return worst


# ── 1. against PyTorch ────────────────────────────────────────────────────────────────

def load_fixtures() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, np.ndarray]]]:
    """({case name: case}, {case name: {response path: array}}) from the json and npz."""
    document = json.loads((FIXTURES / "pytorch_cases.json").read_text(encoding="utf-8"))
    cases = {case["name"]: case for case in document["cases"]}
    expected: dict[str, dict[str, np.ndarray]] = {}
    with np.load(FIXTURES / "pytorch_cases.npz", allow_pickle=False) as npz:
        for key in npz.files:
            name, path = key.split("/", 1)
            expected.setdefault(name, {})[path] = npz[key]
    return cases, expected


CASES, EXPECTED = load_fixtures()


def expressible(case: dict[str, Any]) -> bool:
    """Cases without interventions (a clamp inside the step) and with a loss on the hidden
    states (a readout model under such a loss is the plain recurrence: its readout is not
    in L)."""
    req = case["request"]
    loss = req.get("loss", {"type": "last_hidden_sum"})["type"]
    return not req.get("interventions") and loss in HIDDEN_LOSSES


REFERENCE_CASES = sorted(name for name, case in CASES.items() if expressible(case))


def request_arrays(req: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                 np.ndarray, np.ndarray | None]:
    """A /run request's X (T, 1, D), weights, h0 and c0 (L, 1, H), in float64."""
    inp = req["input"]
    if "text" in inp:
        vocab = inp.get("vocab") or "".join(sorted(set(inp["text"])))
        X = np.zeros((len(inp["text"]), len(vocab)))
        X[np.arange(len(inp["text"])), [vocab.index(ch) for ch in inp["text"]]] = 1.0
    else:
        X = np.asarray(inp["values"], dtype=np.float64)
        X = X.reshape(len(X), -1)  # T numbers are T×1
    tensors = req["weights"]["tensors"]
    L = req["num_layers"]
    params = {name: np.asarray(tensors[name], dtype=np.float64)
              for k in range(L) for name in param_names(k)}
    H = params["weight_hh_l0"].shape[1]
    state = req.get("initial_state") or {}
    h0 = np.asarray(state.get("h", np.zeros((L, H))), dtype=np.float64)[:, None, :]
    c0 = None
    if req["cell"] == "lstm":
        c0 = np.asarray(state.get("c", np.zeros((L, H))), dtype=np.float64)[:, None, :]
    return X[:, None, :], params, h0, c0


def hidden_loss(loss: dict[str, Any], h: np.ndarray) -> tuple[float, np.ndarray]:
    """L and ∂L/∂h_t of a loss on the top layer's h: (T, 1, H)."""
    dh = np.zeros_like(h)
    if loss["type"] == "last_hidden_sum":  # L = Σ_j h_{T−1}[j]
        dh[-1] = 1.0
        return float(h[-1].sum()), dh
    if loss["type"] == "hidden_unit":  # L = h_step[unit]
        step = len(h) - 1 if loss.get("step") is None else loss["step"]
        dh[step, :, loss["unit"]] = 1.0
        return float(h[step, :, loss["unit"]].sum()), dh
    if loss["type"] == "all_hidden_sum":  # L = Σ_t Σ_j h_t[j]
        return float(h.sum()), np.ones_like(h)
    assert loss["type"] == "mse"  # L = ½ Σ_t ‖h_t − y_t‖²
    diff = h - np.asarray(loss["targets"], dtype=np.float64)[:, None, :]
    return float(0.5 * np.sum(diff**2)), diff


def reference_arrays(case: dict[str, Any]) -> dict[str, np.ndarray]:
    """The reference's answer to a case, under the fixture's response paths."""
    req = case["request"]
    X, params, h0, c0 = request_arrays(req)
    layers = reference.forward(req["cell"], params, X, h0, c0)
    loss, dH_top = hidden_loss(req.get("loss", {"type": "last_hidden_sum"}), layers[-1].h)
    grads = reference.backward(layers, dH_top, req.get("truncate"))

    out = {"loss": np.asarray(loss), "input_grad": grads.input[:, 0],
           "initial_state_grad.h": grads.h0[:, 0]}
    if grads.c0 is not None:
        out["initial_state_grad.c"] = grads.c0[:, 0]
    for k, (fwd, bwd) in enumerate(zip(layers, grads.layers, strict=True)):
        p = f"layers.{k}."
        out[p + "h"] = fwd.h[:, 0]
        out[p + "grads.h"] = bwd.h[:, 0]
        if fwd.c is not None and bwd.c is not None:
            out[p + "c"] = fwd.c[:, 0]
            out[p + "grads.c"] = bwd.c[:, 0]
        out |= {p + f"gates.{g}": a[:, 0] for g, a in fwd.gates.items()}
        out |= {p + f"pre.{g}": a[:, 0] for g, a in fwd.pre.items()}
        out |= {p + f"grads.gates.{g}": a[:, 0] for g, a in bwd.pre.items()}
    param_grads = {name: g.copy() for name, g in grads.params.items()}
    clip = req.get("clip")
    if clip is not None:  # torch.nn.utils.clip_grad_norm_ over every parameter
        total = float(np.linalg.norm([np.linalg.norm(g) for g in param_grads.values()]))
        coef = min(1.0, clip["max_norm"] / (total + 1e-6))
        param_grads = {name: g * coef for name, g in param_grads.items()}
        out["grad_norm.total"] = np.asarray(total)
    out |= {f"param_grads.{name}": g for name, g in param_grads.items()}
    return out


def test_reference_cases_cover_the_fixture() -> None:
    """The cases the reference is checked on span every cell, 1–3 layers, truncation, initial
    states, every hidden-state loss and clipping, so skipping the others hides nothing."""
    reqs = [CASES[name]["request"] for name in REFERENCE_CASES]
    assert len(reqs) >= 30
    for cell in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        mine = [r for r in reqs if r["cell"] == cell]
        assert {r["num_layers"] for r in mine} == {1, 2, 3}, cell
        assert any(r.get("truncate") for r in mine), cell
        assert any(r.get("initial_state") for r in mine), cell
    assert any("c" in (r.get("initial_state") or {}) for r in reqs)
    assert {r.get("loss", {}).get("type") for r in reqs} >= HIDDEN_LOSSES
    assert any(r.get("clip") for r in reqs)
    assert any(r.get("truncate") and r["num_layers"] > 1 for r in reqs)


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_reference_matches_pytorch(name: str) -> None:
    actual = reference_arrays(CASES[name])
    expected = EXPECTED[name]
    unknown = sorted(set(actual) - set(expected))
    assert not unknown, f"the fixture has no {unknown}"
    L = CASES[name]["request"]["num_layers"]
    assert len([p for p in actual if p.startswith("param_grads.")]) == 4 * L
    check({path: (a, expected[path]) for path, a in actual.items()}, RTOL_PYTORCH,
          floor=FLOOR_PYTORCH)


# ── 2. against the fast path ─────────────────────────────────────────────────────────

def random_problem(cell_name: str, seed: int, truncated: bool) -> dict[str, Any]:
    """Random sizes and inputs; weights from PyTorch's init, a little larger, with larger
    biases (so saturated gates and dead ReLU units occur); an upstream gradient dH_top."""
    rng = np.random.default_rng([seed, sorted(CELLS).index(cell_name), truncated])
    T, N, D, H, L = (int(rng.integers(lo, hi)) for lo, hi in
                     ((3, 9), (2, 5), (1, 6), (2, 6), (1, 4)))
    params = pytorch_init(CELLS[cell_name], D, H, L, seed, None, np.float64)
    params = {name: 2.0 * w for name, w in params.items()}
    return {
        "T": T, "L": L, "H": H,
        "params": params,
        "X": rng.normal(size=(T, N, D)),
        "h0": rng.normal(size=(L, N, H)),
        "c0": rng.normal(size=(L, N, H)) if cell_name == "lstm" else None,
        "dH_top": rng.normal(size=(T, N, H)),
        "truncate": int(rng.integers(1, T)) if truncated else None,  # a window that cuts
    }


def fast_and_reference_pairs(cell_name: str, p: dict[str, Any]
                             ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{quantity: (reference, fast path)} for every value and gradient of one problem."""
    cell = CELLS[cell_name]
    traces = engine.forward(cell, p["params"], p["X"], p["h0"], p["c0"])
    fast = engine.backward(cell, p["params"], p["X"], traces, p["dH_top"], p["truncate"])
    layers = reference.forward(cell_name, p["params"], p["X"], p["h0"], p["c0"])
    ref = reference.backward(layers, p["dH_top"], p["truncate"])

    pairs = {"input": (ref.input, fast.input), "h0": (ref.h0, fast.h0)}
    if cell.has_cell_state:
        assert ref.c0 is not None and fast.c0 is not None
        pairs["c0"] = (ref.c0, fast.c0)
    assert list(ref.params) == list(fast.params)
    pairs |= {f"params.{n}": (g, fast.params[n]) for n, g in ref.params.items()}
    for k, (trace, lf, lb, fb) in enumerate(zip(traces, layers, ref.layers, fast.layers,
                                                strict=True)):
        pairs[f"{k}.h"] = (lf.h, trace.h[1:])
        pairs[f"{k}.dh"] = (lb.h, fb.h)
        if cell.has_cell_state:
            assert lf.c is not None and lb.c is not None and fb.c is not None
            assert trace.c is not None
            pairs[f"{k}.c"] = (lf.c, trace.c[1:])
            pairs[f"{k}.dc"] = (lb.c, fb.c)
        gates, pre, dpre = trace.gates(), trace.pre_activations(), cell.split(fb.pre)
        assert list(lf.gates) == list(gates) == list(cell.gates)
        assert list(lf.pre) == list(pre) == list(lb.pre) == list(dpre)
        pairs |= {f"{k}.gates.{g}": (a, gates[g]) for g, a in lf.gates.items()}
        pairs |= {f"{k}.pre.{g}": (a, pre[g]) for g, a in lf.pre.items()}
        pairs |= {f"{k}.dpre.{g}": (a, dpre[g]) for g, a in lb.pre.items()}
    return pairs


@pytest.mark.parametrize("truncated", [False, True], ids=["full", "truncated"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("cell_name", sorted(CELLS))
def test_reference_matches_fast_path(cell_name: str, seed: int, truncated: bool) -> None:
    problem = random_problem(cell_name, seed, truncated)
    check(fast_and_reference_pairs(cell_name, problem), RTOL_FAST)


def test_truncation_reaches_the_reference() -> None:
    """Truncation really cuts the reference's gradients: with a window of 1 and a loss on
    the last step only, ∂L/∂h_t is exactly zero before it, and ∂L/∂h0 is zero."""
    p = random_problem("lstm", 0, True)
    layers = reference.forward("lstm", p["params"], p["X"], p["h0"], p["c0"])
    dH = np.zeros_like(p["dH_top"])
    dH[-1] = p["dH_top"][-1]
    grads = reference.backward(layers, dH, 1)
    assert not grads.layers[-1].h[:-1].any() and grads.layers[-1].h[-1].any()
    assert grads.c0 is not None
    assert p["T"] > 1 and not grads.h0.any() and not grads.c0.any()


# ── 3. step_backward against central differences ─────────────────────────────────────

def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray,
                     eps: float = 1e-5) -> np.ndarray:
    """∂f/∂x by central differences, perturbing a copy of x that f receives as its
    argument (never a variable f closed over), entry by entry."""
    x = x.copy()
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        plus = f(x)
        x[idx] = old - eps
        minus = f(x)
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def step_problem(cell_name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One step's inputs (x, h_prev, c_prev for the LSTM, weights) and upstream gradients
    (dh, and dc for the LSTM)."""
    rng = np.random.default_rng(sorted(CELLS).index(cell_name))
    N, D, H = 3, 4, 5
    G = {"lstm": 4, "gru": 3}.get(cell_name, 1)
    inputs = {"x": rng.normal(size=(N, D)), "h_prev": rng.normal(size=(N, H)),
              "W_ih": rng.normal(size=(G * H, D)) / 2, "W_hh": rng.normal(size=(G * H, H)) / 2,
              "b_ih": rng.normal(size=G * H), "b_hh": rng.normal(size=G * H)}
    upstream = {"dh": rng.normal(size=(N, H))}
    if cell_name == "lstm":
        inputs["c_prev"] = rng.normal(size=(N, H))
        upstream["dc"] = rng.normal(size=(N, H))
    return inputs, upstream


def step_loss(cell_name: str, inputs: dict[str, np.ndarray],
              upstream: dict[str, np.ndarray]) -> tuple[float, Any]:
    """L = Σ dh ⊙ h (+ Σ dc ⊙ c for the LSTM) after one step, and the step's grads."""
    if cell_name == "lstm":
        h, c, lstm_cache = reference.lstm_step_forward(
            inputs["x"], inputs["h_prev"], inputs["c_prev"], inputs["W_ih"], inputs["W_hh"],
            inputs["b_ih"], inputs["b_hh"])
        loss = float(np.sum(upstream["dh"] * h) + np.sum(upstream["dc"] * c))
        return loss, reference.lstm_step_backward(upstream["dh"], upstream["dc"], lstm_cache)
    args = (inputs["x"], inputs["h_prev"], inputs["W_ih"], inputs["W_hh"], inputs["b_ih"],
            inputs["b_hh"])
    if cell_name == "gru":
        h, gru_cache = reference.gru_step_forward(*args)
        return float(np.sum(upstream["dh"] * h)), reference.gru_step_backward(upstream["dh"],
                                                                              gru_cache)
    h, rnn_cache = reference.rnn_step_forward(*args, cell_name.removeprefix("rnn_"))
    if cell_name == "rnn_relu":  # no pre-activation within reach of the kink at 0
        assert np.abs(rnn_cache.a).min() > 1e-3
    return float(np.sum(upstream["dh"] * h)), reference.rnn_step_backward(upstream["dh"],
                                                                          rnn_cache)


GRAD_OF = {"x": "dx", "h_prev": "dh_prev", "c_prev": "dc_prev", "W_ih": "dW_ih",
           "W_hh": "dW_hh", "b_ih": "db_ih", "b_hh": "db_hh"}


@pytest.mark.parametrize("cell_name", sorted(CELLS))
def test_step_backward_matches_finite_differences(cell_name: str) -> None:
    inputs, upstream = step_problem(cell_name)
    _, grads = step_loss(cell_name, inputs, upstream)
    pairs = {}
    for name, value in inputs.items():
        def f(v: np.ndarray, name: str = name) -> float:
            return step_loss(cell_name, {**inputs, name: v}, upstream)[0]

        numeric = numeric_gradient(f, value)
        assert np.abs(numeric).max() > 1e-3, f"{name}: the loss does not depend on it"
        pairs[name] = (getattr(grads, GRAD_OF[name]), numeric)
    assert set(pairs) == {n for n in GRAD_OF if n != "c_prev" or cell_name == "lstm"}
    check(pairs, RTOL_NUMERIC, per_step=False)


def test_sigmoid_is_stable_for_any_input() -> None:
    x = np.array([-1e4, -800.0, -700.0, -30.0, -1.0, 0.0, 1.0, 30.0, 700.0, 800.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = reference.sigmoid(x)
    with np.errstate(over="ignore"):
        naive = 1.0 / (1.0 + np.exp(-x))
    assert np.all((s >= 0.0) & (s <= 1.0))
    np.testing.assert_allclose(s, naive, rtol=1e-15, atol=0.0)
    assert s[5] == 0.5 and s[0] == 0.0 and s[-1] == 1.0
