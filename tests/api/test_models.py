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
     "the file holds 2 RNNs: 'a', 'b'; say which with the rnn field"),
    ("no RNN", lambda: npz_bytes({"fc.weight": np.ones((2, 2), np.float32)}),
     "no recurrent layer in the file"),
    ("proj_size", lambda: npz_bytes({**state_dict(L=1), "weight_hr_l0":
                                     np.ones((2, 3), np.float32)}), "proj_size"),
    ("half a bidirectional layer", lambda: npz_bytes({**state_dict(L=1), "weight_ih_l0_reverse":
                                                      np.ones((12, 4), np.float32)}),
     "weight_hh_l0_reverse is missing"),
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


# ── zip bombs and declared shapes in an .npz ─────────────────────────────────────────

def _deflated_zeros(head: bytes, nbytes: int) -> bytes:
    """A raw deflate stream of `head` then `nbytes` zero bytes, built in milliseconds from
    one compressed MiB of zeros repeated (each segment ends in a full flush, so segments
    can follow each other)."""
    import zlib

    def segment(data: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    assert nbytes % 2**20 == 0
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    return segment(head) + segment(bytes(2**20)) * (nbytes // 2**20) + end


def npz_bomb(name: str = "weight_hh_l0", nbytes: int = 500 * 2**20) -> bytes:
    """A valid .npz whose one member is a float32 vector of `nbytes` zeros: about 0.5 MB
    that inflates to 500 MiB (under the 512 MiB that used to be the cap), with honest sizes
    and CRC: zipfile would read it all."""
    import struct
    import zlib

    import numpy.lib.format as npy
    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                        "shape": (nbytes // 4,)})
    head = header.getvalue()
    crc, zeros = zlib.crc32(head), bytes(2**24)
    for _ in range(nbytes // len(zeros)):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(nbytes % len(zeros)), crc)
    body, raw = _deflated_zeros(head, nbytes), f"{name}.npy".encode()
    size = len(head) + nbytes
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(body), size,
                        len(raw), 0) + raw
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(body),
                          size, len(raw), 0, 0, 0, 0, 0, 0) + raw
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(body), 0)
    return local + body + central + end


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """(Its whole CRC was checked once by inflating it all: 2 s, too slow to repeat.)"""
    import numpy.lib.format as npy
    data = npz_bomb()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # an archive zipfile reads as 500 MiB
        (info,) = zf.infolist()
        assert info.file_size > 500 * 2**20
        with zf.open(info) as f:
            assert npy.read_array_header_1_0(f) if npy.read_magic(f) == (1, 0) else False
            assert f.read(2**24) == bytes(2**24)
    return data


def test_an_npz_bomb_is_refused_in_milliseconds_naming_the_limit(client, bomb, monkeypatch):
    """0.5 MB that inflates to 500 MiB: refused from the archive's directory, before any
    member is inflated (read_array is never reached), in a few milliseconds. (Before the
    cap was the upload limit, this one was inflated: 3 s and 500 MiB in the worker.)"""
    import time

    from gatescope.models.files import read_model_file
    assert len(bomb) < 600_000
    inflated = []
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: inflated.append(1))
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="over the limit of 64 MiB"):
        read_model_file("bomb.npz", bomb)
    assert time.perf_counter() - t0 < 0.05 and not inflated
    t0 = time.perf_counter()
    r = upload(client, bomb, "bomb.npz")
    took = time.perf_counter() - t0
    assert r.status_code == 422, r.text
    msg = r.json()["detail"][0]["msg"]
    assert "unpack to 500.0 MiB" in msg and "over the limit of 64 MiB" in msg
    assert took < 1.0, took  # the round trip through a worker; inflating it took 3 s


def test_an_npz_under_the_cap_declaring_too_many_values_is_refused_before_inflating(
        monkeypatch):
    """A 16 MiB weight_hh_l0 (4M float32, more than 4·H·H for H ≤ 1000) is under the cap;
    its header alone refuses it, and every header is read before any member is inflated:
    the well-formed member before it is not inflated either."""
    from gatescope.contract.limits import Limits
    from gatescope.models.files import read_model_file
    good = npz_bytes({"bias_hh_l0": np.zeros(12, np.float32)})
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        with zipfile.ZipFile(io.BytesIO(good)) as g:
            zf.writestr("bias_hh_l0.npy", g.read("bias_hh_l0.npy"))
        with zipfile.ZipFile(io.BytesIO(npz_bomb(nbytes=16 * 2**20))) as b:
            info = b.infolist()[0]
            zf.writestr(info, b.read(info), compress_type=zipfile.ZIP_DEFLATED)
    inflated = []
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: inflated.append(1))
    with pytest.raises(ValueError, match=r"declares shape \(4194304,\): 4,194,304 values, "
                       r"more than a weight_hh .* \(4,000,000 values\)"):
        read_model_file("m.npz", archive.getvalue(), Limits(max_hidden=1000))
    assert not inflated


def test_an_npz_member_past_the_layer_limit_is_refused_from_its_header(client):
    tensors = state_dict("gru", L=1)
    tensors["weight_hh_l7"] = tensors["weight_hh_l0"]
    r = upload(client, npz_bytes(tensors), "m.npz")
    assert r.status_code == 422
    assert "layer 7, over this server's limit of 4 layers" in r.json()["detail"][0]["msg"]


# ── safetensors offsets, as the safetensors library reads them ───────────────────────

def _tiled(order: list[str], spans: dict[str, tuple[int, int]] | None = None,
           extra: int = 0) -> bytes:
    """An LSTM (D = 4, H = 3, L = 1) as .safetensors, its tensors' bytes laid out in
    `order`, or at `spans` (name → (begin, end)) over a buffer of the right total size,
    plus `extra` bytes no tensor owns."""
    import json
    import struct
    tensors = state_dict("lstm", L=1)
    header, payload, at = {}, b"", 0
    for name in order:
        raw = tensors[name].tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [at, at + len(raw)]}
        payload, at = payload + raw, at + len(raw)
    size = len(payload)
    for name, (begin, end) in (spans or {}).items():
        header[name]["data_offsets"] = [begin, end]
        size = max(size, end)
    payload = payload[:size].ljust(size, b"\0") + bytes(extra)
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


NAMES = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]  # 192, 144, 48, 48 B
LAYOUTS = {
    "tiled": (_tiled(NAMES), None),
    "tiled, listed out of order": (_tiled(NAMES[::-1]), None),
    "overlapping": (_tiled(NAMES, {"bias_hh_l0": (360, 408)}), "'bias_hh_l0'"),
    "the same bytes twice": (_tiled(NAMES, {"bias_hh_l0": (336, 384)}), "'bias_ih_l0'"),
    "a gap": (_tiled(NAMES, {"bias_hh_l0": (392, 440)}), "'bias_hh_l0'"),
    "not starting at 0": (_tiled(NAMES, {"weight_ih_l0": (8, 200)}, extra=0),
                          "'weight_ih_l0'"),
    "bytes no tensor owns": (_tiled(NAMES, extra=8), "bytes no tensor owns"),
    "ending before it begins": (_tiled(NAMES, {"bias_hh_l0": (432, 384)}), "'bias_hh_l0'"),
}


@pytest.mark.parametrize(("data", "named"), LAYOUTS.values(), ids=LAYOUTS.keys())
def test_safetensors_offsets_are_checked_as_the_safetensors_library_does(client, data, named):
    """What safetensors 0.8 itself refuses is a 422 naming the tensor; what it reads is
    read."""
    from safetensors import SafetensorError
    from safetensors.numpy import load
    try:
        load(data)
        reference_ok = True
    except SafetensorError:
        reference_ok = False
    assert reference_ok == (named is None)
    r = upload(client, data, "layout.safetensors")
    if named is None:
        assert r.status_code in (200, 201), r.text
    else:
        assert r.status_code == 422, r.text
        assert named in r.json()["detail"][0]["msg"]
        assert "safetensors library refuses" in r.json()["detail"][0]["msg"]


def test_offsets_of_tensors_gatescope_does_not_read_are_checked_too(client):
    """An embedding's bytes may not overlap the RNN's, although gatescope never reads it."""
    import json
    import struct
    base = safetensors_bytes(state_dict("lstm", L=1))
    n = struct.unpack("<Q", base[:8])[0]
    header, payload = json.loads(base[8:8 + n]), base[8 + n:]
    header["embedding.weight"] = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    raw = json.dumps(header).encode()
    r = upload(client, struct.pack("<Q", len(raw)) + raw + payload)
    assert r.status_code == 422 and "overlap" in r.json()["detail"][0]["msg"]


# ── the list, paged; ids that cannot be ids ──────────────────────────────────────────

def test_the_model_list_is_paged(tmp_path):
    from gatescope.models.store import ModelStore
    store = ModelStore(tmp_path)
    uploads = sorted(store.add(safetensors_bytes(state_dict("rnn_tanh", D=2, H=2, L=1,
                                                            seed=2000 + k)),
                               "m.safetensors", "rnn_tanh")[0].model_id for k in range(105))
    presets = sorted(store.presets().values(), key=lambda p: p[1].name)
    everything = [info.model_id for _, info in presets] + uploads
    with make_client(tmp_path) as client:
        first = client.get("/api/v1/models").json()
        assert (first["count"], first["limit"], first["offset"]) == (len(everything), 100, 0)
        assert [m["model_id"] for m in first["data"]] == everything[:100]  # presets first
        seen, offset = [], 0
        while offset < len(everything):
            page = client.get(f"/api/v1/models?limit=7&offset={offset}").json()
            assert page["count"] == len(everything) and len(page["data"]) <= 7
            seen += [m["model_id"] for m in page["data"]]
            offset += 7
        assert seen == everything
        past = client.get("/api/v1/models?offset=100000").json()
        assert past["data"] == [] and past["count"] == len(everything)
        big = client.get("/api/v1/models?limit=1000").json()
        assert [m["model_id"] for m in big["data"]] == everything
        for query in ("limit=0", "limit=1001", "limit=-1", "limit=x", "offset=-1",
                      "offset=1.5", f"offset={2**31 + 1}", "limit=1e3"):
            r = client.get(f"/api/v1/models?{query}")
            assert r.status_code == 422, query
            assert r.json()["detail"][0]["loc"] == ["query", query.split("=")[0]]


def test_an_id_that_cannot_be_a_model_id_is_not_echoed_back(client):
    from urllib.parse import quote
    for model_id in ("a" * 10_000, "x" * 65, "Z" * 21, "\x1b[31mred" * 3):
        r = client.get(f"/api/v1/models/{quote(model_id, safe='')}")
        assert r.status_code == 404
        detail = r.json()["detail"]
        assert len(detail) < 200 and model_id not in detail and model_id[:21] not in detail
        assert repr(model_id[:20]) + "…" in detail  # at most the first 20, escaped
        assert "16 lowercase hexadecimal characters" in detail
    r = client.get("/api/v1/models/0123456789abcdef0")  # short enough to be shown whole
    assert r.status_code == 404 and "'0123456789abcdef0'" in r.json()["detail"]
    r = client.get("/api/v1/models/0123456789abcdef")  # an id's shape: named as it is
    assert r.status_code == 404 and "'0123456789abcdef'" in r.json()["detail"]
    r = client.post("/api/v1/run", json={"input": {"text": "ab"},
                                         "weights": {"model_id": "a" * 10_000}})
    assert r.status_code == 422 and "a" * 100 not in r.text


def test_a_model_stored_before_parts_were_recorded_loads_as_it_was_stored():
    """An info.json of the previous version (no rnn/embedding/head): its RNN under its
    prefix, its readout by that version's one rule (readout.weight under any prefix), no
    embedding — even where the file holds another matrix that would now fit a head."""
    from gatescope.contract.responses import ModelInfo
    from gatescope.models import checks
    rng = np.random.default_rng(1)
    tensors = {**{f"lstm.{k}": v for k, v in state_dict(D=4, H=3, L=1).items()},
               "net.readout.weight": rng.normal(size=(2, 3)).astype(np.float32),
               "net.readout.bias": np.zeros(2, np.float32),
               "fc.weight": rng.normal(size=(5, 3)).astype(np.float32),
               "fc.bias": np.zeros(5, np.float32)}
    data = safetensors_bytes(tensors)
    old = ModelInfo(model_id=checks.content_id(data, "lstm", None), name="old", cell="lstm",
                    input_size=4, hidden_size=3, num_layers=1, vocab=None, prefix="lstm.",
                    readout=2, bytes=len(data))
    assert checks.intact(old, data)
    model = checks.load(old, data)
    assert model.readout is not None and model.readout["readout.weight"].shape == (2, 3)
    assert model.embedding is None
