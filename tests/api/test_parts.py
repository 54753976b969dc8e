"""Forward-only runs and chosen fields: `backward: false` computes the values and the loss and
no gradient; `fields` (or ?fields=) sends only the parts named. What is sent equals the full
run's; what is left out is absent, not empty; the budget counts only what is sent."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import gatescope
from gatescope.contract.limits import Limits
from tests.helpers.api import read_binary
from tests.helpers.compare import walk

BASE = {"cell": "lstm", "hidden_size": 8, "num_layers": 2, "input": {"text": "hello world"},
        "loss": {"type": "all_hidden_sum"}}
GRADIENT_PATHS = ("grads", "jacobian", "input_grad", "param_grads", "initial_state_grad")


def arrays(result: Any) -> dict[str, np.ndarray]:
    return dict(walk(result.as_dict()))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_forward_only_values_equal_the_full_runs(cell: str) -> None:
    full = arrays(gatescope.run({**BASE, "cell": cell, "bidirectional": True}))
    result = gatescope.run({**BASE, "cell": cell, "bidirectional": True, "backward": False})
    forward = arrays(result)
    assert result.backward is False and result.as_dict()["backward"] is False
    assert forward, "the forward pass sends its values"
    for path, a in forward.items():
        assert not any(f".{g}." in f".{path}." for g in GRADIENT_PATHS), path
        np.testing.assert_array_equal(a, full[path], err_msg=path)
    kept = {p for p in full if not any(f".{g}." in f".{p}." for g in GRADIENT_PATHS)}
    assert set(forward) == kept  # every value, the loss among them
    assert "loss" in forward


def test_chosen_fields_hold_only_what_was_asked() -> None:
    full = arrays(gatescope.run(BASE))
    result = gatescope.run({**BASE, "fields": ["h", "gates"]})
    got = arrays(result)
    assert {p.split(".")[2] for p in got if p.startswith("layers.")} == {"h", "gates"}
    assert not any(p.startswith(("input_grad", "param_grads", "initial_state_grad"))
                   for p in got)
    for path, a in got.items():
        np.testing.assert_array_equal(a, full[path], err_msg=path)
    assert result.as_dict()["fields"] == ["h", "gates"]
    # a gradient part alone: its values are the full run's
    grads = arrays(gatescope.run({**BASE, "fields": ["param_grads"]}))
    assert set(grads) == {p for p in full if p.startswith("param_grads.")} | {"loss"}
    for path, a in grads.items():
        np.testing.assert_array_equal(a, full[path], err_msg=path)


def test_the_budget_counts_only_what_is_sent() -> None:
    big = {"cell": "lstm", "hidden_size": 256, "input": {"values": [[0.5] * 8] * 512}}
    tight = Limits(max_response_bytes=4 * 2**20)
    with pytest.raises(ValueError, match="over this server's budget"):
        gatescope.run(big, limits=tight, encoding="json")
    result = gatescope.run({**big, "fields": ["h"]}, limits=tight, encoding="json")
    assert result.layers[0].h.shape == (512, 256)


@pytest.mark.parametrize(("extra", "words"), [
    ({"backward": False, "fields": ["h", "grads"]}, "cannot ask for grads"),
    ({"backward": False, "connectivity": True}, "connectivity needs gradients"),
    ({"backward": False, "clip": {"max_norm": 1.0}}, "clip needs gradients"),
    ({"fields": ["h", "nope"]}, "'h'"),
])
def test_contradictions_are_422s(client, extra, words) -> None:
    r = client.post("/api/v1/run", json={**BASE, **extra})
    assert r.status_code == 422, r.text
    assert words in r.text


def test_fields_in_the_query(client) -> None:
    r = client.post("/api/v1/run?encoding=binary&fields=h,outputs", json=BASE)
    assert r.status_code == 200, r.text
    body = read_binary(r.content)
    assert set(body["layers"][0]) == {"layer", "direction", "h"}
    assert body["fields"] == ["h", "outputs"] and "param_grads" not in body
    same = client.post("/api/v1/run?fields=h", json={**BASE, "fields": ["h"]})
    assert same.status_code == 200
    r = client.post("/api/v1/run?fields=h", json={**BASE, "fields": ["c"]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "fields"]
    r = client.post("/api/v1/run?fields=h,bogus", json=BASE)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "fields"]
    r = client.post("/api/v1/run?fields=grads", json={**BASE, "backward": False})
    assert r.status_code == 422 and "cannot ask for grads" in r.text


def test_a_small_json_response_for_the_parts_asked(client) -> None:
    big = {"cell": "lstm", "hidden_size": 64, "input": {"values": [[0.5] * 4] * 256}}
    full = client.post("/api/v1/run", json=big, headers={"accept-encoding": "identity"})
    some = client.post("/api/v1/run?fields=h,gates", json=big,
                       headers={"accept-encoding": "identity"})
    assert full.status_code == some.status_code == 200
    assert len(some.content) < 0.45 * len(full.content)


UPSTREAM = {"cell": "lstm", "hidden_size": 3, "num_layers": 2, "input": {"values": [[1.0]] * 4}}


@pytest.mark.parametrize(("loss", "loc", "words"), [
    ({"type": "upstream"}, ["loss", "upstream"], "give dh, dc or both"),
    ({"type": "upstream", "layer": 2, "dh": [None] * 4}, ["loss", "upstream", "layer"],
     "layer 2 does not exist"),
    ({"type": "upstream", "dh": [None] * 3}, ["loss", "upstream", "dh"], "T = 4 rows"),
    ({"type": "upstream", "dh": [[1.0, 2.0], None, None, None]}, ["loss", "upstream", "dh", 0],
     "3 wide"),
    ({"type": "all_hidden_sum", "layer": 3}, ["loss", "all_hidden_sum", "layer"],
     "does not exist"),
])
def test_upstream_and_layer_losses_are_checked(client, loss, loc, words) -> None:
    r = client.post("/api/v1/run", json={**UPSTREAM, "loss": loss})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"][:len(loc)] == loc and words in detail["msg"], detail


def test_upstream_dc_needs_a_cell_state(client) -> None:
    r = client.post("/api/v1/run", json={**UPSTREAM, "cell": "gru", "loss": {
        "type": "upstream", "dc": [None] * 4}})
    assert r.status_code == 422 and "no cell state" in r.text


def test_a_loss_below_the_top_leaves_the_layers_above_exactly_zero() -> None:
    result = gatescope.run({**UPSTREAM, "loss": {"type": "upstream", "layer": 0,
                                                 "dc": [[1.0, 0.0, -1.0], None, None, None]}})
    assert not result.layers[1].grads["h"].any() and not result.layers[1].grads["c"].any()
    assert not any(g.any() for name, g in result.param_grads.items() if name.endswith("_l1"))
    assert result.layers[0].grads["c"][0].any()
    # L = ⟨dc_0, c_0⟩ of layer 0
    assert result.loss == pytest.approx(float(result.layers[0].c[0] @ [1.0, 0.0, -1.0]))


def test_fields_given_twice_in_the_query_is_a_422(client) -> None:
    r = client.post("/api/v1/run?fields=h&fields=c", json=BASE)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "fields"] and "once" in r.text
    same = client.post("/api/v1/run?fields=c,h", json={**BASE, "fields": ["h", "c"]})
    assert same.status_code == 200, same.text  # the same parts, in another order
