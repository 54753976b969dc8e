"""Models with a readout over HTTP: uploads carrying readout.weight/readout.bias and
metadata (labels, task, card), /run's outputs and readout gradients in every encoding,
bundled presets, persistence, and every refusal with the field and the limit."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

import gatescope
from gatescope.models.store import PRESETS_DIR, ModelStore
from tests.helpers.api import (
    CARD,
    VOCAB,
    make_client,
    metadata,
    npz_bytes,
    readout_model,
    safetensors_bytes,
    state_dict,
    upload,
)


def test_upload_with_a_readout_and_metadata_describes_them(client):
    r = upload(client, safetensors_bytes(readout_model(), metadata()), "chars.safetensors")
    assert r.status_code == 201, r.text
    info = r.json()
    assert {k: info[k] for k in ("name", "cell", "input_size", "hidden_size", "num_layers",
                                 "vocab", "readout", "labels", "task", "card", "preset")} == {
        "name": "chars", "cell": "gru", "input_size": 4, "hidden_size": 3, "num_layers": 2,
        "vocab": VOCAB, "readout": 4, "labels": list(VOCAB), "task": "next_char",
        "card": CARD, "preset": False}
    assert client.get(f"/api/v1/models/{info['model_id']}").json() == info
    assert info in client.get("/api/v1/models").json()["data"]


def test_a_model_without_readout_says_so(client):
    info = upload(client, safetensors_bytes(state_dict("lstm", seed=41))).json()
    assert (info["readout"], info["labels"], info["task"], info["card"], info["preset"]) == (
        None, None, None, None, False)


def test_run_by_model_id_returns_outputs_and_readout_gradients(client):
    tensors = readout_model()
    model_id = upload(client, safetensors_bytes(tensors, metadata())).json()["model_id"]
    req = {"input": {"text": "abcdab"}, "loss": {"type": "next_token"}, "clip": {"max_norm": 0.5}}
    r = client.post("/api/v1/run", json={**req, "weights": {"model_id": model_id}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert np.shape(body["outputs"]["logits"]) == np.shape(body["outputs"]["probs"]) == (6, 4)
    np.testing.assert_allclose(np.sum(body["outputs"]["probs"], axis=1), 1.0, rtol=1e-12)
    assert list(body["param_grads"])[-2:] == ["readout.weight", "readout.bias"]
    assert np.shape(body["param_grads"]["readout.weight"]) == (4, 3)
    inline = gatescope.run({**req, "cell": "gru", "input": {"text": "abcdab", "vocab": VOCAB},
                            "weights": {"tensors": {k: v.tolist() for k, v in
                                                    tensors.items()}}})
    assert body == inline.to_json()


def decode_binary(data: bytes) -> dict:
    """The GSB1 layout (encoding.BinaryLayout): arrays come back as NumPy views."""
    assert data[:4] == b"GSB1"
    n = struct.unpack("<I", data[4:8])[0]
    header, base = json.loads(data[8:8 + n]), 8 + n

    def resolve(obj):
        if isinstance(obj, dict) and {"offset", "nbytes", "dtype"} <= obj.keys():
            dtype = {"f4": "<f4", "f8": "<f8"}[obj["dtype"]]
            shape = tuple(int(s) for s in obj["shape"].split(","))
            return np.frombuffer(data, dtype, obj["nbytes"] // np.dtype(dtype).itemsize,
                                 base + obj["offset"]).reshape(shape)
        if isinstance(obj, dict):
            return {k: resolve(v) for k, v in obj.items()}
        return obj

    return resolve(header)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_outputs_travel_in_the_typed_and_binary_encodings(client, dtype):
    tensors = readout_model(cell="lstm", L=1, K=2)
    req = {"cell": "lstm", "input": {"values": [[1.0, 0.0, 0.5, -1.0]] * 4}, "dtype": dtype,
           "loss": {"type": "cross_entropy", "targets": [0, None, 1, 1]},
           "weights": {"tensors": {k: v.tolist() for k, v in tensors.items()}}}
    want = gatescope.run(req)
    binary = client.post("/api/v1/run?encoding=binary", json=req)
    assert binary.status_code == 200
    assert binary.headers["content-type"] == "application/octet-stream"
    got = decode_binary(binary.content)
    typed = client.post("/api/v1/run?encoding=typed", json=req).json()
    for name in ("logits", "probs"):
        assert got["outputs"][name].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got["outputs"][name], want.outputs[name])
        assert typed["outputs"][name]["shape"] == "4,2"
    np.testing.assert_array_equal(got["param_grads"]["readout.weight"],
                                  want.param_grads["readout.weight"])


def test_readout_in_npz_under_a_prefix_and_without_bias(client):
    tensors = readout_model(prefix="net.rnn.", readout_prefix="net.", L=1)
    del tensors["net.readout.bias"]  # torch.nn.Linear(bias=False)
    r = upload(client, npz_bytes(tensors), "prefixed.npz", vocab=VOCAB)
    assert r.status_code == 201, r.text
    info = r.json()
    assert (info["prefix"], info["readout"], info["format"]) == ("net.rnn.", 4, "npz")
    run = client.post("/api/v1/run", json={"input": {"text": "abca"},
                                           "weights": {"model_id": info["model_id"]},
                                           "loss": {"type": "next_token"}})
    assert run.status_code == 200, run.text
    z = np.asarray(run.json()["outputs"]["logits"])
    h = np.asarray(run.json()["layers"][0]["h"])
    np.testing.assert_allclose(z, h @ tensors["net.readout.weight"].T, rtol=1e-12)


def test_readout_losses_need_a_readout(client):
    info = upload(client, safetensors_bytes(state_dict("gru", D=4, L=1, seed=43)),
                  vocab=VOCAB).json()
    for loss in ({"type": "next_token"}, {"type": "cross_entropy", "targets": [0, 1]}):
        r = client.post("/api/v1/run", json={"input": {"text": "ab"}, "loss": loss,
                                             "weights": {"model_id": info["model_id"]}})
        assert r.status_code == 422
        detail = r.json()["detail"][0]
        assert detail["loc"][0] == "loss" and "no readout" in detail["msg"]


BAD = [
    # (tensor changes, metadata changes, loc, words the message must contain)
    ({"readout.weight": np.zeros((1025, 3)), "readout.bias": np.zeros(1025)},
     {"labels": json.dumps([str(n) for n in range(1025)])}, ["body", "file", "readout.weight"],
     "1024"),
    ({"readout.weight": np.full((4, 3), np.nan)}, {}, ["body", "file"], "NaN"),
    ({"readout.bias": np.zeros(4, np.int64)}, {}, ["body", "file"], "dtype I64"),
    ({}, {"labels": json.dumps(["a", "b", "c"])}, ["body", "file", "labels"], "K = 4"),
    ({}, {"labels": json.dumps(["a", "b", "c", "a"])}, ["body", "file", "labels"], "distinct"),
    ({}, {"labels": "[a, b"}, ["body", "file", "labels"], "not valid JSON"),
    ({}, {"labels": json.dumps({"a": 0})}, ["body", "file", "labels"], "list of strings"),
    ({}, {"card": json.dumps(["not", "an", "object"])}, ["body", "file", "card"],
     "JSON object"),
    ({}, {"card": '{"score": NaN}'}, ["body", "file", "card"], "not valid JSON"),
    ({}, {"card": json.dumps({"x": "y" * 70_000})}, ["body", "file", "card"], "65,536"),
    ({}, {"task": "t" * 101}, ["body", "file", "task"], "100"),
]


@pytest.mark.parametrize(("tensors", "words"), [
    ({"readout.weight": np.zeros((4, 5))}, "the head 'readout' is 4×5, but the RNN's top "
     "layer has 3 outputs: a head must be K×3"),
    ({"readout.bias": np.zeros(3)}, "'readout.bias' has shape (3,), but 'readout.weight' has "
     "4 rows")])
def test_a_linear_that_does_not_fit_is_ignored_and_refused_when_chosen(client, tensors, words):
    """A (K, H') matrix on another width, or one whose bias does not match its rows, is no
    head of this RNN: the description lists it as ignored; named as the head, it is a 422."""
    data = safetensors_bytes({**readout_model(L=1), **tensors}, {"vocab": VOCAB})
    info = upload(client, data)
    assert info.status_code == 201, info.text
    assert info.json()["head"] is None and info.json()["readout"] is None
    assert info.json()["ignored"] == ["readout.bias", "readout.weight"]
    r = upload(client, data, head="readout")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", "head"] and words in detail["msg"], detail


@pytest.mark.parametrize(("tensors", "meta", "loc", "words"), BAD,
                         ids=[f"{c[2][-1]}-{n}" for n, c in enumerate(BAD)])
def test_bad_readouts_and_metadata_are_422_naming_the_field(client, tensors, meta, loc,
                                                             words):
    data = safetensors_bytes({**readout_model(L=1), **tensors}, metadata(**meta))
    r = upload(client, data)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == loc and words in detail["msg"], detail


def test_labels_without_a_readout_are_refused(client):
    data = safetensors_bytes(state_dict("gru", D=4, L=1, seed=44),
                             {"labels": json.dumps(list(VOCAB))})
    r = upload(client, data)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "file", "labels"]
    assert "no readout" in r.json()["detail"][0]["msg"]


def test_inline_readout_of_the_wrong_shape_is_422(client):
    tensors = {k: v.tolist() for k, v in readout_model(L=1).items()}
    tensors["readout.weight"] = [[0.0, 0.0]] * 4
    r = client.post("/api/v1/run", json={"cell": "gru", "input": {"text": "abc",
                                                                   "vocab": VOCAB},
                                         "weights": {"tensors": tensors}})
    assert r.status_code == 422
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["weights", "tensors", "readout.weight"]
    assert "hidden size 3" in detail["msg"]


def test_a_readout_model_survives_a_restart(tmp_path):
    data = safetensors_bytes(readout_model(seed=7), metadata())
    req = {"input": {"text": "dcba"}, "loss": {"type": "next_token"}}
    with make_client(tmp_path) as first:
        info = upload(first, data, "persist.safetensors").json()
        before = first.post("/api/v1/run", json={**req,
                                                 "weights": {"model_id": info["model_id"]}})
    with make_client(tmp_path) as second:  # a new app on the same data directory
        assert second.get(f"/api/v1/models/{info['model_id']}").json() == info
        after = second.post("/api/v1/run", json={**req,
                                                 "weights": {"model_id": info["model_id"]}})
    assert before.status_code == after.status_code == 200
    assert after.json() == before.json() and "outputs" in after.json()


# ── bundled presets ──────────────────────────────────────────────────────────────────

def write_presets(directory, *files: tuple[str, bytes]):
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        (directory / name).write_bytes(data)
    return directory


def test_presets_are_listed_runnable_and_read_only(tmp_path):
    data = safetensors_bytes(readout_model(cell="lstm", L=1, seed=9), metadata())
    presets = write_presets(tmp_path / "presets", ("tiny-chars.safetensors", data),
                            ("broken.safetensors", b"not a model at all"),
                            ("notes.txt", b"ignored"))
    with make_client(tmp_path / "other") as plain:  # the id an upload of the file gets
        uploaded_id = upload(plain, data).json()["model_id"]
    with make_client(tmp_path / "data", presets_dir=presets) as client:
        listing = client.get("/api/v1/models").json()
        assert listing["count"] == 1  # the broken file is left out, the list still works
        info = listing["data"][0]
        assert (info["name"], info["preset"], info["model_id"], info["readout"]) == (
            "tiny-chars", True, uploaded_id, 4)
        assert (info["labels"], info["task"], info["card"]) == (list(VOCAB), "next_char", CARD)
        assert client.get(f"/api/v1/models/{uploaded_id}").json() == info
        r = client.post("/api/v1/run", json={"input": {"text": "abcd"},
                                             "loss": {"type": "next_token"},
                                             "weights": {"model_id": uploaded_id}})
        assert r.status_code == 200, r.text
        assert np.shape(r.json()["outputs"]["probs"]) == (4, 4)
        again = upload(client, data)  # the preset's own bytes: already there, not stored
        assert again.status_code == 200 and again.json() == info
        assert not any((tmp_path / "data" / "models").iterdir())
        other = upload(client, safetensors_bytes(state_dict("gru", seed=45))).json()
        ids = [m["model_id"] for m in client.get("/api/v1/models").json()["data"]]
        assert ids == [uploaded_id, other["model_id"]]  # presets first
    assert sorted(p.name for p in presets.iterdir()) == [
        "broken.safetensors", "notes.txt", "tiny-chars.safetensors"]


def test_the_presets_dir_follows_the_environment(tmp_path, monkeypatch):
    from gatescope.settings import Settings
    monkeypatch.setenv("GATESCOPE_PRESETS_DIR", str(tmp_path))
    assert Settings().presets_dir == tmp_path
    monkeypatch.delenv("GATESCOPE_PRESETS_DIR")
    assert ModelStore(tmp_path / "data").presets_dir == PRESETS_DIR


def test_every_bundled_preset_is_a_runnable_model(tmp_path):
    """Whatever ships in the package's presets/ must pass an upload's checks and run (with
    no presets yet, this checks the directory and its README)."""
    assert (PRESETS_DIR / "README.md").is_file()
    files = sorted(PRESETS_DIR.glob("*.safetensors"))
    store = ModelStore(tmp_path)
    assert len(store.presets()) == len(files), "a bundled preset fails the checks (see log)"
    for model_id, (_, info) in store.presets().items():
        assert info.preset
        text = "".join((info.vocab or "ab")[:2]) * 2
        req = {"weights": {"model_id": model_id}}
        req["input"] = {"text": text} if info.vocab else {"values": [[0.0] * info.input_size]}
        result = gatescope.run(req, models=store)
        assert (result.outputs is not None) == (info.readout is not None)


def test_a_header_length_of_128_mod_256_is_not_mistaken_for_a_pickle(client):
    """Its first byte is 0x80, as a pickle's is; the framing tells them apart."""
    tensors = readout_model(L=1, seed=12)
    for pad in range(256):
        data = safetensors_bytes(tensors, metadata(card=json.dumps({"pad": "x" * pad})))
        if data[0] == 0x80:
            break
    else:
        pytest.fail("no padding gives a header length of 128 mod 256")
    r = upload(client, data)
    assert r.status_code == 201, r.text


def test_the_task_loss_of_a_trained_upload(client):
    """A model `gatescope train` wrote names its task: {"type": "task"} is cross-entropy on
    the task's targets for the text; a text that is not an instance is a 422 saying why."""
    from gatescope import tasks
    from gatescope.training import TrainConfig, model_bytes, train

    config = TrainConfig(task="bracket_depth:length=8,max_depth=3", cell="gru", hidden=4,
                         steps=3, batch=4, eval_size=8)
    info = upload(client, model_bytes(train(config, progress=None)), "depth.safetensors").json()
    assert info["task"] == "bracket_depth:length=8,max_depth=3"
    text = "((.)(()"
    base = {"input": {"text": text}, "weights": {"model_id": info["model_id"]}}
    by_task = client.post("/api/v1/run", json={**base, "loss": {"type": "task"}})
    assert by_task.status_code == 200, by_task.text
    targets = tasks.get(info["task"]).targets(text)
    by_hand = client.post("/api/v1/run", json={**base, "loss": {"type": "cross_entropy",
                                                                "targets": targets}})
    assert by_task.json()["loss"] == by_hand.json()["loss"]
    assert by_task.json()["param_grads"] == by_hand.json()["param_grads"]
    bad = client.post("/api/v1/run", json={**base, "input": {"text": "(.))"},
                                           "loss": {"type": "task"}})
    assert bad.status_code == 422
    detail = bad.json()["detail"][0]
    assert detail["loc"] == ["loss", "task"] and "never opened" in detail["msg"], detail
