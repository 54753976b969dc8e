"""/models: uploads (safetensors, npz, prefixed state_dicts), inference of the cell and
sizes, content-addressed ids, persistence across restarts, and every refusal."""

from __future__ import annotations

import io
import pickle
import threading
import zipfile

import numpy as np
import pytest

import gatescope
from tests.helpers.api import make_client, npz_bytes, safetensors_bytes, state_dict, upload


def test_upload_infers_the_model_and_is_content_addressed(client):
    data = safetensors_bytes(state_dict("lstm", D=4, H=3, L=2, seed=11))
    r = upload(client, data, "my-lstm.safetensors", vocab="abcd")
    assert r.status_code == 201
    info = r.json()
    assert {k: info[k] for k in ("name", "cell", "input_size", "hidden_size", "num_layers",
                                 "vocab")} == {"name": "my-lstm", "cell": "lstm",
                                               "input_size": 4, "hidden_size": 3,
                                               "num_layers": 2, "vocab": "abcd"}
    again = upload(client, data, "my-lstm.safetensors", vocab="abcd")
    assert again.status_code == 200 and again.json()["model_id"] == info["model_id"]
    r = client.get(f"/api/v1/models/{info['model_id']}")
    assert r.status_code == 200 and r.json() == info
    listing = client.get("/api/v1/models").json()
    assert listing["count"] == len(listing["data"]) and info in listing["data"]


def test_uploaded_model_survives_a_restart_and_runs_like_inline_tensors(tmp_path):
    tensors = state_dict("gru", D=3, H=5, L=2, seed=3, dtype=np.float64)
    with make_client(tmp_path) as first:
        r = upload(first, safetensors_bytes(tensors), "gru.safetensors", vocab="xyz")
        assert r.status_code == 201
        model_id = r.json()["model_id"]
    req = {"input": {"text": "zyxxy"}, "loss": {"type": "all_hidden_sum"}}
    with make_client(tmp_path) as second:  # a new app on the same data directory
        assert second.get(f"/api/v1/models/{model_id}").status_code == 200
        by_id = second.post("/api/v1/run", json={**req, "weights": {"model_id": model_id}})
        inline = second.post("/api/v1/run", json={
            **req, "cell": "gru",
            "input": {"text": "zyxxy", "vocab": "xyz"},
            "weights": {"tensors": {k: v.tolist() for k, v in tensors.items()}}})
    assert by_id.status_code == inline.status_code == 200
    assert by_id.json() == inline.json()


def test_npz_and_a_prefixed_state_dict_with_other_tensors(client):
    tensors = {f"encoder.rnn.{k}": v for k, v in state_dict("rnn_tanh", L=1).items()}
    tensors["decoder.weight"] = np.ones((2, 3), np.float32)
    tensors["step_count"] = np.array([3], np.int64)  # not a float: ignored, not needed
    r = upload(client, npz_bytes(tensors), "model.npz", cell="rnn_relu")
    assert r.status_code == 201, r.text
    info = r.json()
    assert (info["cell"], info["prefix"], info["format"]) == ("rnn_relu", "encoder.rnn.", "npz")
    run = client.post("/api/v1/run", json={"input": {"values": [[0.1, 0.2, 0.3, 0.4]] * 3},
                                           "weights": {"model_id": info["model_id"]}})
    assert run.status_code == 200 and run.json()["cell"] == "rnn_relu"


@pytest.mark.parametrize(("dtype", "ok"), [(np.float16, True), (np.float32, True),
                                           (np.float64, True)])
def test_float_dtypes_load(client, dtype, ok):
    r = upload(client, safetensors_bytes(state_dict("lstm", L=1, dtype=dtype)))
    assert r.status_code in (200, 201)


def test_bfloat16_rnn_tensor_is_refused_naming_the_dtype(client):
    """numpy has no bfloat16, so this file is assembled by hand: the other tensors come from
    the safetensors package, weight_hh_l0 is replaced by a BF16 entry of the right size."""
    import json
    import struct
    tensors = state_dict("lstm", L=1)
    del tensors["weight_hh_l0"]
    base = safetensors_bytes(tensors)
    n = struct.unpack("<Q", base[:8])[0]
    header, payload = json.loads(base[8:8 + n]), base[8 + n:]
    header["weight_hh_l0"] = {"dtype": "BF16", "shape": [12, 3],
                              "data_offsets": [len(payload), len(payload) + 72]}
    raw = json.dumps(header).encode()
    r = upload(client, struct.pack("<Q", len(raw)) + raw + payload + bytes(72))
    assert r.status_code == 422
    assert "'weight_hh_l0' has dtype BF16" in r.json()["detail"][0]["msg"]


def test_integer_rnn_tensor_is_refused_naming_the_dtype(client):
    tensors = state_dict("lstm", L=1)
    tensors["bias_hh_l0"] = np.zeros(12, np.int64)
    r = upload(client, safetensors_bytes(tensors))
    assert r.status_code == 422
    assert "'bias_hh_l0' has dtype I64" in r.json()["detail"][0]["msg"]
    assert "F16, F32 and F64" in r.json()["detail"][0]["msg"]


def test_pickled_files_are_refused_with_the_fix(client):
    payload = pickle.dumps({"weight_ih_l0": [1.0]})
    for name in ("model.pt", "model.safetensors"):
        r = upload(client, payload, name)
        assert r.status_code == 415
        msg = r.json()["detail"][0]["msg"]
        assert "never unpickles" in msg
        assert "from safetensors.torch import save_file" in msg
        assert 'save_file(model.state_dict(), "model.safetensors")' in msg
    torch_style = io.BytesIO()
    with zipfile.ZipFile(torch_style, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
    r = upload(client, torch_style.getvalue(), "model.bin")
    assert r.status_code == 415


def test_object_arrays_in_npz_need_pickle_and_are_refused(client):
    buf = io.BytesIO()
    np.savez(buf, weight_ih_l0=np.array([{"x": 1}], dtype=object))
    r = upload(client, buf.getvalue(), "model.npz")
    assert r.status_code == 422 and "unpickling" in r.text


CASES = [
    ("two RNNs", lambda: npz_bytes({**{f"a.{k}": v for k, v in state_dict(L=1).items()},
                                    **{f"b.{k}": v for k, v in state_dict(L=1).items()}}),
     "several recurrent layers"),
    ("no RNN", lambda: npz_bytes({"fc.weight": np.ones((2, 2), np.float32)}),
     "no recurrent-layer tensors"),
    ("bidirectional", lambda: npz_bytes({**state_dict(L=1), "weight_ih_l0_reverse":
                                         np.ones((12, 4), np.float32)}), "bidirectional"),
    ("missing tensor", lambda: npz_bytes({k: v for k, v in state_dict(L=2).items()
                                          if k != "weight_hh_l1"}), "weight_hh_l1 is missing"),
    ("bad shape", lambda: npz_bytes({**state_dict(L=1), "bias_ih_l0":
                                     np.ones(11, np.float32)}), "(12,)"),
    ("G = 2", lambda: npz_bytes({**state_dict(L=1), "weight_hh_l0":
                                 np.ones((6, 3), np.float32)}), "not 4, 3 or 1"),
    ("NaN", lambda: npz_bytes({**state_dict(L=1), "bias_ih_l0":
                               np.full(12, np.nan, np.float32)}), "NaN"),
    ("truncated", lambda: safetensors_bytes(state_dict(L=1))[:200], "truncated"),
    ("damaged npz", lambda: npz_bytes(state_dict(L=1))[:100], "damaged"),
]


@pytest.mark.parametrize(("what", "make", "words"), CASES, ids=[c[0] for c in CASES])
def test_files_that_are_not_runnable_models_are_422(client, what, make, words):
    r = upload(client, make(), "model.npz" if "npz" in what else "model.safetensors")
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"][0]["msg"]


def test_cell_and_vocab_form_fields_are_checked(client):
    lstm = safetensors_bytes(state_dict("lstm", D=4, L=1))
    r = upload(client, lstm, cell="gru")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "cell"]
    r = upload(client, lstm, vocab="abc")
    assert r.status_code == 422 and "4 distinct characters" in r.text
    r = upload(client, lstm, cell="transformer")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "cell"]
    r = client.post("/api/v1/models", files={"cell": (None, "lstm")})  # a form, no file
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "file"]
    r = upload(client, b"hello, not a model", "notes.txt")
    assert r.status_code == 415 and "neither .safetensors nor .npz" in r.text


def test_upload_over_the_limit_is_413_before_it_is_read(tmp_path):
    with make_client(tmp_path, max_upload_bytes=64 * 1024) as small:
        big = npz_bytes({"weight_ih_l0": np.zeros(40_000, np.float32)})
        r = upload(small, big, "big.npz")
        assert r.status_code == 413 and "limit" in r.text


def test_unknown_and_hostile_model_ids_are_404(client):
    for model_id in ("0123456789abcdef", "..", "..%2F..%2Fetc%2Fpasswd", "%00", "a" * 300,
                     "ABCDEF0123456789", "..%2Fmodels", "0123456789abcdef%2F..%2F..%2Fsettings"):
        r = client.get(f"/api/v1/models/{model_id}")
        assert r.status_code == 404, model_id


def test_two_uploads_of_the_same_file_at_once_leave_one_copy(client, data_dir):
    data = safetensors_bytes(state_dict("gru", seed=99))
    results = []

    def go():
        results.append(upload(client, data, "same.safetensors"))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results).count(201) <= 1
    assert {r.json()["model_id"] for r in results} == {results[0].json()["model_id"]}
    models = data_dir / "models"
    assert not [p for p in models.iterdir() if p.name.startswith(".incoming")]
    stored = models / results[0].json()["model_id"]
    assert sorted(p.name for p in stored.iterdir()) == ["info.json", "model.safetensors"]
    assert (stored / "model.safetensors").read_bytes() == data


def test_model_runs_match_pytorch_layout(client):
    """A stored model runs with gatescope.run's own numbers."""
    tensors = state_dict("lstm", D=2, H=3, L=1, seed=5, dtype=np.float64)
    model_id = upload(client, safetensors_bytes(tensors)).json()["model_id"]
    req = {"input": {"values": [[1.0, -1.0], [0.5, 0.25]]}}
    r = client.post("/api/v1/run", json={**req, "weights": {"model_id": model_id}})
    want = gatescope.run({**req, "hidden_size": 3,
                          "weights": {"tensors": {k: v.tolist() for k, v in tensors.items()}}})
    assert r.json() == want.to_json()


def _safetensors_with(entries: dict, payload: bytes = b"") -> bytes:
    """A hand-made header: for shapes and offsets no writer would produce."""
    import json
    import struct
    raw = json.dumps(entries).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


CRAFTED = {
    "shape wraps int64": _safetensors_with({"weight_hh_l0": {
        "dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}}),
    "shape 2**70": _safetensors_with({"weight_hh_l0": {
        "dtype": "F32", "shape": [2**70], "data_offsets": [0, 0]}}),
    "0-d weight": _safetensors_with({"weight_hh_l0": {
        "dtype": "F32", "shape": [], "data_offsets": [0, 4]}}, bytes(4)),
    "zero-sized model": safetensors_bytes({k: v[:, :0] if k == "weight_ih_l0" else v
                                          for k, v in state_dict("lstm", L=1).items()}),
}


@pytest.mark.parametrize("data", CRAFTED.values(), ids=CRAFTED.keys())
def test_crafted_safetensors_are_422_not_500(client, data):
    r = upload(client, data, "crafted.safetensors")
    assert r.status_code == 422, r.text


def test_npz_declaring_a_huge_shape_is_refused_before_allocating(client):
    """A .npy header that declares 10¹¹ floats over a few bytes of data."""
    import numpy.lib.format as npy
    member = io.BytesIO()
    npy.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False,
                                        "shape": (10**11,)})
    member.write(bytes(16))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("weight_hh_l0.npy", member.getvalue())
    r = upload(client, archive.getvalue(), "huge.npz")
    assert r.status_code == 422 and "does not match its data" in r.text
