"""Batches: `input.batch` runs its sequences together; each result equals a run of that
sequence alone, field by field (within 1e−12: the batched products may round differently),
`param_grads_total` is their sum, and each sequence's errors say which it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gatescope
from gatescope.contract.limits import Limits
from gatescope.models.store import ModelStore
from tests.helpers.api import read_binary
from tests.helpers.compare import walk

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def assert_same(batched: Any, single: Any, what: str) -> None:
    a, b = dict(walk(batched.as_dict())), dict(walk(single.as_dict()))
    assert a.keys() == b.keys(), what
    for path, want in b.items():
        np.testing.assert_allclose(a[path], want, rtol=1e-12, atol=1e-14,
                                   err_msg=f"{what}: {path}")


CASES = {
    "lstm, texts of different lengths": {
        "cell": "lstm", "hidden_size": 6, "num_layers": 2, "truncate": 3,
        "input": {"batch": [{"text": "hello"}, {"text": "gates"}, {"text": "hi"},
                            {"text": "forget gate"}]},
        "loss": {"type": "all_hidden_sum"}, "clip": {"max_norm": 0.5}},
    "bidirectional gru, values, a loss each": {
        "cell": "gru", "hidden_size": 4, "bidirectional": True,
        "input": {"batch": [{"values": [[0.5, -1.0]] * 4}, {"values": [[1.0, 0.0]] * 4},
                            {"values": [[0.0, 2.0]] * 3}]},
        "losses": [{"type": "hidden_unit", "unit": 7},
                   {"type": "upstream", "dh": [[0.1] * 8, None, None, [1.0] * 8]},
                   {"type": "mse", "targets": [[0.2] * 8] * 3}]},
    "rnn relu, forward only": {
        "cell": "rnn_relu", "hidden_size": 5, "backward": False,
        "input": {"batch": [{"text": "abc"}, {"text": "cab"}]}},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_result_is_its_sequences_single_run(name: str) -> None:
    request = CASES[name]
    batch = gatescope.run_batch(request)
    seqs = request["input"]["batch"]
    texts = "".join(s.get("text", "") for s in seqs)
    vocab = "".join(sorted(set(texts))) if texts else None  # the batch's shared vocab
    for n, (seq, result) in enumerate(zip(seqs, batch.batch, strict=True)):
        single = {k: v for k, v in request.items() if k not in ("losses",)}
        single["input"] = {**seq, **({"vocab": vocab} if "text" in seq else {})}
        if "losses" in request:
            single["loss"] = request["losses"][n]
        assert_same(result, gatescope.run(single), f"sequence {n}")
    if request.get("backward", True):
        assert batch.param_grads_total is not None
        for name_, total in batch.param_grads_total.items():
            np.testing.assert_allclose(total, sum(r.param_grads[name_] for r in batch.batch),
                                       rtol=1e-13)
    else:
        assert batch.param_grads_total is None


def test_a_stored_model_with_an_embedding_in_a_batch(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    info, _ = store.add((FIXTURES / "models" / "bigru_tagger.safetensors").read_bytes(),
                        "m.safetensors")
    weights = {"model_id": info.model_id}
    batch = gatescope.run_batch({"weights": weights, "input": {"batch": [
        {"tokens": [1, 2, 3]}, {"tokens": [4, 0, 8, 8, 2]}]}}, models=store)
    for seq, result in zip(([1, 2, 3], [4, 0, 8, 8, 2]), batch.batch, strict=True):
        single = gatescope.run({"weights": weights, "input": {"tokens": seq}}, models=store)
        assert_same(result, single, str(seq))
    assert "embed.weight" in batch.param_grads_total


@pytest.mark.parametrize(("request_", "loc", "words"), [
    ({"input": {"batch": [{"text": "ab"}, {"values": [[1.0]]}]}}, ["input", "batch", 1],
     "input size"),
    ({"input": {"batch": [{"text": "ab"}, {"text": "abc", "vocab": "ab"}]}},
     ["input", "batch", 1, "text"], "sequence 1"),
    ({"input": {"batch": [{"text": "ab"}, {"text": "ba"}]},
      "losses": [{"type": "hidden_unit", "unit": 99}, {"type": "all_hidden_sum"}]},
     ["losses", 0, "hidden_unit", "unit"], "sequence 0"),
    ({"input": {"batch": [{"text": "ab"}]}, "connectivity": True}, ["connectivity"],
     "one sequence at a time"),
])
def test_a_sequences_error_says_which(request_, loc, words) -> None:
    with pytest.raises(ValueError) as caught:
        gatescope.run_batch(request_)
    detail = caught.value.errors()[0]  # type: ignore[attr-defined]
    assert list(detail["loc"])[:len(loc)] == loc and words in detail["msg"], detail


def test_limits_on_a_batch() -> None:
    request = {"hidden_size": 64, "input": {"batch": [{"values": [[0.5] * 4] * 200}] * 8}}
    with pytest.raises(ValueError, match="GATESCOPE_MAX_BATCH"):
        gatescope.run_batch(request, limits=Limits(max_batch=4))
    tight = Limits(max_response_bytes=20 * 2**20)  # each sequence's fits; all 8 in JSON not
    with pytest.raises(ValueError, match="the batch's json response would be"):
        gatescope.run_batch(request, limits=tight, encoding="json")
    assert len(gatescope.run_batch(request, limits=tight, encoding="binary").batch) == 8


def test_a_batch_over_http(client) -> None:
    request = CASES["lstm, texts of different lengths"]
    r = client.post("/api/v1/run?encoding=binary", json=request)
    assert r.status_code == 200, r.text
    body = read_binary(r.content)
    assert len(body["batch"]) == 4 and "param_grads_total" in body
    local = gatescope.run_batch(request)
    np.testing.assert_array_equal(body["batch"][3]["layers"][1]["h"], local.batch[3].layers[1].h)
    r = client.post("/api/v1/run", json={"input": {"batch": [{"text": "a"}]}, "losses": [
        {"type": "all_hidden_sum"}, {"type": "all_hidden_sum"}]})
    assert r.status_code == 422 and "one per sequence" in r.text
    r = client.post("/api/v1/jacobian", json={"input": {"batch": [{"text": "a"}]}, "step": 0})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["input", "batch"]


def test_the_batch_budget_counts_the_sum_and_the_weights_are_drawn_once(monkeypatch) -> None:
    """param_grads_total is one more copy of every gradient: the response budget counts it;
    and a batch's sequences share the weights its first one drew."""
    from gatescope.runner import prepare as prepare_module
    request = {"hidden_size": 64, "input": {"batch": [{"values": [[0.5, 1.0]] * 40}]},
               "fields": ["param_grads"]}
    one = gatescope.run_batch(request, encoding="binary")
    from gatescope.contract.encoding import BinaryLayout
    size = BinaryLayout(one.as_dict(), one.finite).size
    with pytest.raises(ValueError, match="the batch's binary response"):
        gatescope.run_batch(request, limits=Limits(max_response_bytes=size - 1),
                            encoding="binary")
    draws = []
    real = prepare_module.pytorch_init
    monkeypatch.setattr(prepare_module, "pytorch_init",
                        lambda *a, **k: draws.append(1) or real(*a, **k))
    # 34 MB of float64 weights: over the seeded cache's 16 MiB, so each prepare would draw
    gatescope.run_batch({"hidden_size": 1024, "weights": {"seed": 12345}, "fields": ["h"],
                         "input": {"batch": [{"values": [[1.0]]}] * 3}})
    assert len(draws) == 1
