"""What used to be refused, misread or silently wrong about a practitioner's model file, now
each a clear answer: found and described, or a 422 that names the field and the choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers.api import safetensors_bytes, state_dict, upload


def _detail(r: Any) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    return r.json()["detail"][0]


def _run(client: Any, model_id: str, **request: Any) -> Any:
    return client.post("/api/v1/run", json={**request, "weights": {"model_id": model_id}})


def with_prefix(prefix: str, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {prefix + k: v for k, v in tensors.items()}


def test_a_plain_rnn_without_its_cell_is_a_422_never_tanh(client):
    data = safetensors_bytes(with_prefix("rnn.", state_dict("rnn_relu", L=1, seed=5)))
    d = _detail(upload(client, data))
    assert d["loc"] == ["body", "cell"]
    assert "rnn_tanh" in d["msg"] and "rnn_relu" in d["msg"]
    assert "cannot be read from its tensors" in d["msg"]
    for cell in ("rnn_tanh", "rnn_relu"):
        r = upload(client, data, cell=cell)
        assert r.status_code == 201 and r.json()["cell"] == cell
    # the file's own metadata may say it instead
    r = upload(client, safetensors_bytes(with_prefix("rnn.", state_dict("rnn_relu", L=1,
                                                                        seed=5)),
                                         {"cell": "rnn_relu"}))
    assert r.status_code == 201 and r.json()["rnn"]["cell"] == "rnn_relu"


def test_two_rnns_are_a_422_listing_them_and_the_rnn_field_picks_one(client):
    data = safetensors_bytes({**with_prefix("encoder.", state_dict(L=1, seed=1)),
                              **with_prefix("decoder.", state_dict(L=1, seed=2))})
    d = _detail(upload(client, data))
    assert d["loc"] == ["body", "rnn"]
    assert "'decoder', 'encoder'" in d["msg"] and "rnn field" in d["msg"]
    picked = upload(client, data, rnn="decoder").json()
    assert picked["rnn"]["name"] == "decoder"
    assert picked["ignored"] == sorted(with_prefix("encoder.", state_dict(L=1)))
    other = upload(client, data, rnn="encoder").json()
    assert other["model_id"] != picked["model_id"]  # the choice is part of the id
    d = _detail(upload(client, data, rnn="middle"))
    assert d["loc"] == ["body", "rnn"] and "'decoder', 'encoder'" in d["msg"]


def test_an_embedding_as_wide_as_its_vocab_is_never_fed_one_hot(client):
    """V = E = 4: text one-hot over 4 characters would fit weight_ih_l0 exactly — and be
    wrong. The embedding is found, so text goes through it or is refused."""
    rng = np.random.default_rng(0)
    tensors = {"embedding.weight": rng.normal(size=(4, 4)).astype(np.float32),
               **with_prefix("lstm.", state_dict(D=4, L=1))}
    info = upload(client, safetensors_bytes(tensors)).json()
    assert info["embedding"] == {"name": "embedding", "num_embeddings": 4, "embedding_dim": 4}
    d = _detail(_run(client, info["model_id"], input={"text": "abca"}))
    assert d["loc"] == ["input", "vocab"] and "input.tokens" in d["msg"]
    d = _detail(_run(client, info["model_id"], input={"values": [[1, 0, 0, 0]]}))
    assert d["loc"] == ["input", "values"] and "token ids" in d["msg"]
    d = _detail(_run(client, info["model_id"], input={"tokens": [0, 4]}))
    assert d["loc"] == ["input", "tokens", 1] and "V = 4" in d["msg"]
    d = _detail(_run(client, info["model_id"], input={"text": "abca", "vocab": "abc"}))
    assert d["loc"] == ["input", "vocab"] and "V = 4" in d["msg"]
    by_text = _run(client, info["model_id"], input={"text": "abca", "vocab": "abcd"}).json()
    by_ids = _run(client, info["model_id"], input={"tokens": [0, 1, 2, 0]}).json()
    assert by_text["token_ids"] == by_ids["token_ids"] == [0, 1, 2, 0]
    assert by_text["layers"][0]["h"] == by_ids["layers"][0]["h"]
    assert by_text["tokens"] == list("abca") and by_ids["tokens"] is None
    # an embedding model's vocab given at upload: text reads through it by default
    with_vocab = upload(client, safetensors_bytes(tensors), vocab="wxyz").json()
    assert _run(client, with_vocab["model_id"], input={"text": "zyx"}).json()["token_ids"] \
        == [3, 2, 1]
    d = _detail(upload(client, safetensors_bytes(tensors), vocab="wxy"))
    assert d["loc"] == ["body", "vocab"] and "4 distinct characters" in d["msg"]


def test_tokens_need_a_model_with_an_embedding(client):
    r = client.post("/api/v1/run", json={"input": {"tokens": [0, 1]}})
    d = _detail(r)
    assert d["loc"] == ["input", "tokens"] and "embedding" in d["msg"]
    r = client.post("/api/v1/run", json={"input": {"tokens": [0], "text": "a"}})
    assert r.status_code == 422 and "exactly one" in r.text


HEAD_NAMES = ["fc", "decoder", "classifier", "head", "out", "linear", "net.proj"]


@pytest.mark.parametrize("name", HEAD_NAMES)
def test_a_head_of_any_name_is_found_and_runs(client, name):
    rng = np.random.default_rng(len(name))
    tensors = {**with_prefix("rnn.", state_dict("gru", L=1, seed=len(name))),
               f"{name}.weight": rng.normal(size=(5, 3)).astype(np.float32),
               f"{name}.bias": rng.normal(size=5).astype(np.float32)}
    info = upload(client, safetensors_bytes(tensors)).json()
    assert info["head"] == {"name": name, "out_features": 5, "bias": True}
    assert info["readout"] == 5 and info["ignored"] == []
    out = _run(client, info["model_id"], input={"values": [[1, 0, 0, 1]] * 3},
               loss={"type": "cross_entropy", "targets": [4, None, 0]}).json()
    assert len(out["outputs"]["logits"][0]) == 5
    assert set(out["param_grads"]) == set(tensors)  # the file's names, nothing stripped


def test_a_one_output_head_is_binary(client):
    rng = np.random.default_rng(1)
    tensors = {**with_prefix("lstm.", state_dict(L=1)),
               "fc.weight": rng.normal(size=(1, 3)).astype(np.float32),
               "fc.bias": np.zeros(1, np.float32)}
    info = upload(client, safetensors_bytes(tensors)).json()
    d = _detail(_run(client, info["model_id"], input={"values": [[1, 0, 0, 1]] * 2},
                     loss={"type": "cross_entropy", "targets": [0, 0]}))
    assert d["loc"] == ["loss", "cross_entropy"] and "bce_with_logits" in d["msg"]
    out = _run(client, info["model_id"], input={"values": [[1, 0, 0, 1]] * 2},
               loss={"type": "bce_with_logits", "targets": [1, None]}).json()
    assert 0 < out["outputs"]["probs"][0][0] < 1 and out["loss"] > 0
    assert any(out["param_grads"]["fc.weight"][0])
    d = _detail(_run(client, info["model_id"], input={"values": [[1, 0, 0, 1]] * 2},
                     loss={"type": "bce_with_logits", "targets": [1]}))
    assert d["loc"] == ["loss", "bce_with_logits", "targets"]
    r = client.post("/api/v1/run", json={
        "input": {"values": [[1.0]]}, "cell": "rnn_tanh",
        "weights": {"tensors": {"weight_ih_l0": [[1.0]], "weight_hh_l0": [[0.5]],
                                "bias_ih_l0": [0.0], "bias_hh_l0": [0.0],
                                "readout.weight": [[1.0], [2.0]], "readout.bias": [0, 0]}},
        "loss": {"type": "bce_with_logits", "targets": [1]}})
    d = _detail(r)
    assert "K = 2" in d["msg"] and "cross_entropy" in d["msg"]


def test_embedding_or_head_ambiguity_is_a_422_the_fields_decide(client):
    """D = H = 3 and one bias-less (5, 3) matrix: an embedding in front or a head on top?"""
    rng = np.random.default_rng(2)
    tensors = {**with_prefix("rnn.", state_dict("gru", D=3, L=1)),
               "m.weight": rng.normal(size=(5, 3)).astype(np.float32)}
    data = safetensors_bytes(tensors)
    d = _detail(upload(client, data))
    assert d["loc"] == ["body", "head"]
    assert "embedding 'm', head 'none'" in d["msg"] and "embedding 'none', head 'm'" in d["msg"]
    as_head = upload(client, data, head="m", embedding="none").json()
    assert as_head["head"]["name"] == "m" and as_head["embedding"] is None
    as_embedding = upload(client, data, embedding="m").json()
    assert as_embedding["embedding"]["name"] == "m" and as_embedding["head"] is None
    neither = upload(client, data, embedding="none", head="none").json()
    assert neither["ignored"] == ["m.weight"]
    assert len({as_head["model_id"], as_embedding["model_id"], neither["model_id"]}) == 3


def test_word_language_model_layout_needs_no_choice(client):
    """PyTorch's word_language_model: encoder (V×E, no bias), rnn, decoder (V×H + bias),
    with E = H: only one way has both parts."""
    rng = np.random.default_rng(3)
    tensors = {"encoder.weight": rng.normal(size=(6, 3)).astype(np.float32),
               **with_prefix("rnn.", state_dict(D=3, L=2)),
               "decoder.weight": rng.normal(size=(6, 3)).astype(np.float32),
               "decoder.bias": rng.normal(size=6).astype(np.float32)}
    info = upload(client, safetensors_bytes(tensors), vocab="abcdef").json()
    assert info["embedding"]["name"] == "encoder" and info["head"]["name"] == "decoder"
    out = _run(client, info["model_id"], input={"text": "fadeb"},
               loss={"type": "next_token"}).json()
    assert out["token_ids"] == [5, 0, 3, 4, 1] and out["loss"] > 0
    assert next(iter(out["param_grads"])) == "encoder.weight"
    assert list(out["param_grads"])[-2:] == ["decoder.weight", "decoder.bias"]


def test_a_cell_file_is_read_not_refused_with_its_tensors_none(client):
    tensors = {k.replace("_l0", ""): v for k, v in
               with_prefix("decoder.rnn.", state_dict(D=4, L=1)).items()}
    rng = np.random.default_rng(4)
    tensors["decoder.conv.weight"] = rng.normal(size=(1, 3, 1)).astype(np.float32)
    info = upload(client, safetensors_bytes(tensors)).json()
    assert info["rnn"] == {"name": "decoder.rnn", "cell": "lstm", "layers": 1,
                           "bidirectional": False, "proj_size": 0, "cells": True,
                           "bias": True}
    assert info["ignored"] == ["decoder.conv.weight"]


def test_inline_tensors_without_biases_use_and_return_none(client):
    W = state_dict("gru", D=2, H=3, L=1, dtype=np.float64)
    tensors = {k: v.tolist() for k, v in W.items() if k.startswith("weight")}
    out = client.post("/api/v1/run", json={"cell": "gru", "input": {"values": [[1, 2], [0, 1]]},
                                           "weights": {"tensors": tensors}}).json()
    assert set(out["param_grads"]) == {"weight_ih_l0", "weight_hh_l0"}
    zero = {**tensors, **{k: np.zeros_like(v).tolist() for k, v in W.items()
                          if k.startswith("bias")}}
    same = client.post("/api/v1/run", json={"cell": "gru", "input": {"values": [[1, 2], [0, 1]]},
                                            "weights": {"tensors": zero}}).json()
    assert same["layers"][0]["h"] == out["layers"][0]["h"]
    assert same["param_grads"]["weight_hh_l0"] == out["param_grads"]["weight_hh_l0"]
    some = {**tensors, "bias_ih_l0": W["bias_ih_l0"].tolist()}
    d = _detail(client.post("/api/v1/run", json={"cell": "gru", "input": {"values": [[1, 2]]},
                                                  "weights": {"tensors": some}}))
    assert "bias_hh_l0 is missing" in d["msg"]


def test_a_direction_a_model_lacks_is_a_422(client):
    base = {"input": {"text": "abc"}, "hidden_size": 2}
    d = _detail(client.post("/api/v1/run", json={**base, "interventions": [
        {"direction": "reverse", "target": "h", "value": 0.0}]}))
    assert d["loc"] == ["interventions", 0, "direction"]
    d = _detail(client.post("/api/v1/jacobian", json={**base, "step": 1,
                                                      "direction": "reverse"}))
    assert d["loc"] == ["direction"] and "not bidirectional" in d["msg"]
    out = client.post("/api/v1/run", json={**base, "bidirectional": True}).json()
    assert [(u["layer"], u["direction"]) for u in out["layers"]] == [(0, "forward"),
                                                                    (0, "reverse")]
    assert out["bidirectional"] is True and len(out["initial_state_grad"]["h"]) == 2


def test_proj_size_runs_and_its_own_limits_are_422s(client):
    path = Path(__file__).resolve().parents[1] / "fixtures/models/bilstm_proj_size.safetensors"
    info = upload(client, path.read_bytes()).json()
    assert info["rnn"]["proj_size"] == 2 and info["hidden_size"] == 5
    assert info["head"] == {"name": "fc", "out_features": 3, "bias": True}
    values = [[0.5, -1, 2]] * 3
    out = _run(client, info["model_id"], input={"values": values}).json()
    assert out["proj_size"] == 2 and len(out["layers"][0]["h"][0]) == 2
    assert len(out["layers"][0]["c"][0]) == 5 and len(out["layers"][0]["gates"]["f"][0]) == 5
    assert "encoder.weight_hr_l1_reverse" in out["param_grads"]
    d = _detail(_run(client, info["model_id"], input={"values": values},
                     interventions=[{"target": "h", "value": 0.0}]))
    assert d["loc"] == ["interventions", 0, "target"] and "proj_size" in d["msg"]
    assert _run(client, info["model_id"], input={"values": values},
                interventions=[{"target": "c", "units": [4], "value": 0.0}]).status_code == 200
    d = _detail(_run(client, info["model_id"], input={"values": values},
                     initial_state={"h": [[0.0] * 5] * 4}))
    assert d["loc"] == ["initial_state", "h"] and "2L×P = 4×2" in d["msg"]
    # a projection beside a GRU's weights is no LSTM's
    gru = {f"rnn.{k}": v for k, v in state_dict("gru", D=4, H=3, L=1).items()}
    gru["rnn.weight_hr_l0"] = np.ones((2, 3), np.float32)
    d = _detail(upload(client, safetensors_bytes(gru)))
    assert "projection" in d["msg"]


def test_proj_size_must_be_smaller_than_hidden_size(client):
    rng = np.random.default_rng(9)
    tensors = {"weight_ih_l0": rng.normal(size=(16, 3)), "weight_hh_l0": rng.normal(size=(16, 4)),
               "bias_ih_l0": np.zeros(16), "bias_hh_l0": np.zeros(16),
               "weight_hr_l0": rng.normal(size=(4, 4))}  # P = H = 4
    r = client.post("/api/v1/run", json={"input": {"values": [[1, 2, 3]]}, "weights": {
        "tensors": {k: v.tolist() for k, v in tensors.items()}}})
    d = _detail(r)
    assert d["loc"][-1] == "weight_hr_l0" and "smaller than hidden_size" in d["msg"]
    # bias=False with a projection: only weight_ih and weight_hh get zero biases
    small = {"weight_ih_l0": rng.normal(size=(16, 3)).tolist(),
             "weight_hh_l0": rng.normal(size=(16, 2)).tolist(),
             "weight_hr_l0": rng.normal(size=(2, 4)).tolist()}
    out = client.post("/api/v1/run", json={"input": {"values": [[1, 2, 3]] * 2},
                                           "weights": {"tensors": small}}).json()
    assert set(out["param_grads"]) == set(small) and out["proj_size"] == 2


def test_inline_tensors_without_biases_keep_the_readouts_gradients(client):
    W = state_dict("gru", D=2, H=3, L=1, dtype=np.float64)
    tensors = {k: v.tolist() for k, v in W.items() if k.startswith("weight")}
    tensors["readout.weight"] = [[0.5, -0.2, 0.1], [0.3, 0.3, -0.4]]
    tensors["readout.bias"] = [0.1, -0.1]
    out = client.post("/api/v1/run", json={
        "cell": "gru", "input": {"values": [[1, 2], [0, 1]]}, "weights": {"tensors": tensors},
        "loss": {"type": "cross_entropy", "targets": [1, 0]}, "clip": {"max_norm": 1e-3}}).json()
    assert set(out["param_grads"]) == {"weight_ih_l0", "weight_hh_l0", "readout.weight",
                                       "readout.bias"}
    total = np.sqrt(sum(np.sum(np.square(g)) for g in out["param_grads"].values()))
    assert total == pytest.approx(out["grad_norm"]["clipped"], rel=1e-9)


def test_an_rnn_at_the_top_level_is_chosen_with_a_dot(client):
    data = safetensors_bytes({**state_dict(L=1, seed=3),
                              **with_prefix("dec.lstm.", state_dict(L=1, seed=4))})
    d = _detail(upload(client, data))
    assert "'.' (the top level)" in d["msg"]
    info = upload(client, data, rnn=".").json()
    assert info["rnn"]["name"] == "" and info["ignored"][0].startswith("dec.lstm.")


def test_an_embedding_named_with_a_bias_is_refused(client):
    rng = np.random.default_rng(5)
    tensors = {**with_prefix("rnn.", state_dict(D=3, L=1)),
               "proj.weight": rng.normal(size=(7, 3)).astype(np.float32),
               "proj.bias": np.zeros(7, np.float32)}
    d = _detail(upload(client, safetensors_bytes(tensors), embedding="proj"))
    assert d["loc"] == ["body", "embedding"] and "has a bias" in d["msg"]


def test_a_bidirectional_three_layer_lstm_fits_inline(client):
    from gatescope.core.cells import CELLS
    from gatescope.core.params import pytorch_init
    W = pytorch_init(CELLS["lstm"], 2, 3, 3, 0, None, np.float64, directions=2)
    assert len(W) == 24
    out = client.post("/api/v1/run", json={"input": {"values": [[1, 2]] * 3},
                                           "weights": {"tensors": {k: v.tolist()
                                                                   for k, v in W.items()}}})
    assert out.status_code == 200 and len(out.json()["layers"]) == 6
    jac = client.post("/api/v1/jacobian", json={
        "input": {"values": [[1, 2]] * 3}, "step": 1, "layer": 2, "direction": "reverse",
        "weights": {"tensors": {k: v.tolist() for k, v in W.items()}}}).json()
    assert (jac["layer"], jac["direction"]) == (2, "reverse")
