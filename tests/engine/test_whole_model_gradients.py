"""Whole models' new gradients against central finite differences of the run's own loss, in
float64 — the embedding's, the reverse directions', the layer above reading [h→; h←], an
LSTM's projection (proj_size), a one-output head under bce_with_logits — and the reverse
direction against its definition: the same cell run forward over the reversed sequence."""

from __future__ import annotations

import numpy as np
import pytest

import gatescope
from gatescope.core.cells import CELLS
from gatescope.core.params import pytorch_init, shapes

EPS = 1e-6
T, V, E, H = 5, 7, 3, 2


def whole_model(cell: str, seed: int = 3) -> dict[str, np.ndarray]:
    """An embedding, a 2-layer bidirectional RNN and a one-output head, as a state_dict."""
    rng = np.random.default_rng(seed)
    rnn = pytorch_init(CELLS[cell], E, H, 2, seed, None, np.float64, directions=2)
    return {"emb.weight": rng.normal(size=(V, E)),
            **{f"rnn.{k}": 2.0 * v for k, v in rnn.items()},  # larger: less linear
            "out.weight": rng.normal(size=(1, 2 * H)), "out.bias": rng.normal(size=1)}


TOKENS = [3, 0, 3, 5, 1]  # tokens 2, 4 and 6 are never read
REQUEST = {"input": {"tokens": TOKENS},
           "loss": {"type": "bce_with_logits", "targets": [1, None, 0, 0.25, 1]}}


def loss_of(state: dict[str, np.ndarray], cell: str) -> float:
    return gatescope.from_torch(state, cell=cell).run(REQUEST).loss


def projected_model(seed: int = 4) -> dict[str, np.ndarray]:
    """An embedding, a 2-layer bidirectional LSTM with proj_size 2 (H = 3), a binary head."""
    rng = np.random.default_rng(seed)
    P, Hc = 2, 3
    rnn = {k: rng.uniform(-0.8, 0.8, shape)
           for k, shape in shapes(CELLS["lstm"], E, Hc, 2, 2, P).items()}
    return {"emb.weight": rng.normal(size=(V, E)), **{f"rnn.{k}": v for k, v in rnn.items()},
            "out.weight": rng.normal(size=(1, 2 * P)), "out.bias": rng.normal(size=1)}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh", "lstm proj_size"])
def test_every_parameter_gradient_matches_finite_differences(cell: str) -> None:
    if cell == "lstm proj_size":
        cell, state = "lstm", projected_model()
        assert "rnn.weight_hr_l1_reverse" in state
    else:
        state = whole_model(cell)
    result = gatescope.from_torch(state, cell=cell).run(REQUEST)
    assert list(result.param_grads) == list(state)  # the file's names, PyTorch's order
    for name, tensor in state.items():
        numeric = np.zeros_like(tensor)
        for idx in np.ndindex(tensor.shape):
            old = tensor[idx]
            tensor[idx] = old + EPS
            up = loss_of(state, cell)
            tensor[idx] = old - EPS
            down = loss_of(state, cell)
            tensor[idx] = old
            numeric[idx] = (up - down) / (2 * EPS)
        analytic = result.param_grads[name]
        scale = max(np.abs(numeric).max(), 1e-8)
        assert np.abs(analytic - numeric).max() / scale < 1e-6, name
    emb = result.param_grads["emb.weight"]
    assert not emb[[2, 4, 6]].any() and emb[[0, 1, 3, 5]].any()  # unread rows exactly 0
    # ∂L/∂ the embedded vectors, summed per token, is the embedding's gradient
    summed = np.zeros_like(emb)
    np.add.at(summed, TOKENS, result.input_grad)
    np.testing.assert_allclose(summed, emb, rtol=0, atol=1e-15)


def test_bce_is_torchs_formula_and_its_probabilities_are_sigmoids() -> None:
    state = whole_model("gru")
    result = gatescope.from_torch(state, cell="gru").run(REQUEST)
    z = result.outputs["logits"][:, 0]
    p = result.outputs["probs"][:, 0]
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z)), rtol=1e-15)
    y = np.array([1, np.nan, 0, 0.25, 1])
    has = ~np.isnan(y)
    want = -np.mean(y[has] * np.log(p[has]) + (1 - y[has]) * np.log(1 - p[has]))
    assert result.loss == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_relu"])
@pytest.mark.parametrize("truncate", [None, 2])
def test_a_reverse_direction_is_the_cell_run_over_the_reversed_sequence(cell, truncate):
    """Layer 0's reverse direction, every field flipped back, equals a one-direction model
    with the _reverse weights run on x_{T−1} … x_0: states, gates, gradients (under a loss
    on that direction only), Jacobian norms and flow, truncation windows in its reading
    order, interventions and /jacobian's matrices."""
    rng = np.random.default_rng(5)
    D = 3
    bi = pytorch_init(CELLS[cell], D, H, 1, 9, None, np.float64, directions=2)
    uni = {k.removesuffix("_reverse"): v for k, v in bi.items() if k.endswith("_reverse")}
    X = rng.normal(size=(6, D))
    gate = "f" if cell == "lstm" else "h"
    common = {"cell": cell, "truncate": truncate}
    # L = Σ over both directions' states: each direction's gradient is its own part's
    both = gatescope.run({**common, "input": {"values": X.tolist()},
                          "weights": {"tensors": {k: v.tolist() for k, v in bi.items()}},
                          "loss": {"type": "all_hidden_sum"},
                          "interventions": [{"direction": "reverse", "target": gate,
                                             "start": 1, "stop": 3, "units": [0],
                                             "value": 0.5}]})
    # input steps 1, 2 are the reverse direction's reading steps 4, 3
    one = gatescope.run({**common, "input": {"values": X[::-1].tolist()},
                         "weights": {"tensors": {k: v.tolist() for k, v in uni.items()}},
                         "loss": {"type": "all_hidden_sum"},
                         "interventions": [{"target": gate, "start": 3, "stop": 5,
                                            "units": [0], "value": 0.5}]})
    rev, fwd = both.layers[1], one.layers[0]
    assert (rev.layer, rev.direction) == (0, "reverse")
    compared = 0
    for field in ("h", "c", "gates", "pre", "grads", "jacobian"):
        want = dict(_arrays(getattr(fwd, field)))
        got = dict(_arrays(getattr(rev, field)))
        assert got.keys() == want.keys(), field
        for path, a in got.items():
            if a is None:
                assert want[path] is None
                continue
            np.testing.assert_allclose(a, want[path][::-1], rtol=1e-12, atol=1e-300,
                                       err_msg=f"{field}.{path}")
            compared += 1
    assert compared >= {"lstm": 20, "gru": 12, "rnn_relu": 6}[cell]
    # the reverse direction's Jacobian at input step t is the one-direction run's at T−1−t
    for t in (1, 4):
        jb = gatescope.jacobian({**common, "input": {"values": X.tolist()},
                                 "weights": {"tensors": {k: v.tolist() for k, v in bi.items()}},
                                 "step": t, "direction": "reverse"})
        ju = gatescope.jacobian({**common, "input": {"values": X[::-1].tolist()},
                                 "weights": {"tensors": {k: v.tolist() for k, v in uni.items()}},
                                 "step": 5 - t})
        np.testing.assert_allclose(jb.total, ju.total, rtol=1e-12)


def _arrays(obj, path=""):
    """(dotted path, array) of nested dicts; a bare array (or None) is at path ""."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _arrays(v, f"{path}.{k}" if path else k)
    else:
        yield path, obj


def test_bidirectional_connectivity_matches_finite_differences() -> None:
    """Every unit of a 2-layer bidirectional GRU: row t, column s = ‖∂(Σ_j h_t[j])/∂x_s‖₂
    over every s (a reverse direction looks ahead; the layer above sees everything)."""
    rng = np.random.default_rng(8)
    D, T = 2, 5
    params = pytorch_init(CELLS["gru"], D, H, 2, 1, None, np.float64, directions=2)
    tensors = {k: (2.0 * v).tolist() for k, v in params.items()}
    X = rng.normal(size=(T, D))
    request = {"cell": "gru", "weights": {"tensors": tensors}, "connectivity": True}
    result = gatescope.run({**request, "input": {"values": X.tolist()}})
    assert [(e.layer, e.direction) for e in result.layers] == [
        (0, "forward"), (0, "reverse"), (1, "forward"), (1, "reverse")]

    def states(x: np.ndarray) -> list[np.ndarray]:
        run = gatescope.run({**request, "connectivity": False,
                             "input": {"values": x.tolist()}})
        return [e.h.sum(axis=1) for e in run.layers]  # (T,) Σ_j h_t[j] per unit

    numeric = np.zeros((4, T, T, D))  # unit, t, s, d
    for s in range(T):
        for d in range(D):
            up, down = X.copy(), X.copy()
            up[s, d] += EPS
            down[s, d] -= EPS
            for u, (a, b) in enumerate(zip(states(up), states(down), strict=True)):
                numeric[u, :, s, d] = (a - b) / (2 * EPS)
    for u, entry in enumerate(result.layers):
        np.testing.assert_allclose(entry.connectivity, np.linalg.norm(numeric[u], axis=-1),
                                   rtol=1e-6, atol=1e-9)
    assert not np.triu(result.layers[0].connectivity, 1).any()  # forward: no look-ahead
    assert not np.tril(result.layers[1].connectivity, -1).any()  # reverse: no look-back
    assert (np.triu(result.layers[1].connectivity, 1) > 0).any()  # … but looks ahead
    assert (result.layers[2].connectivity > 0).all()  # above both: every step on every step
