"""Damaged, full and read-only storage: every fault is a clear answer, never a 500.

A stored model's file with a flipped bit, cut short or missing, and a cut-short info.json;
a preset damaged on disk; a full disk (ENOSPC, patched in and on a small tmpfs) and a
read-only data directory (an ro mount); half-written uploads swept; the bounded model
cache. The tests marked slow start real `gatescope serve` processes or mount file systems
(as root; they skip, saying why, where mounting is not permitted).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import numpy as np
import pytest

from gatescope.api import compute
from gatescope.models import store as store_module
from gatescope.models.store import (
    DamagedModelError,
    ModelStore,
    StorageFullError,
    StorageUnavailableError,
)
from gatescope.settings import Settings
from tests.helpers.api import make_client, npz_bytes, safetensors_bytes, state_dict, upload
from tests.helpers.server import running_server

RUN = {"input": {"values": [[0.5, -0.25, 1.0, 0.0]] * 3}}


def model_bytes(seed: int, H: int = 3) -> bytes:
    return safetensors_bytes(state_dict("gru", D=4, H=H, L=1, seed=seed))


def flip_bit(path: Path) -> None:
    """Flip the lowest bit of the first tensor byte of a .safetensors file (the first
    value's lowest mantissa bit: the model stays finite and runnable, only different)."""
    data = bytearray(path.read_bytes())
    at = 8 + int.from_bytes(data[:8], "little")
    data[at] ^= 1
    path.write_bytes(bytes(data))


def cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


DAMAGES = {"flipped bit": flip_bit, "cut short": cut_short, "missing": Path.unlink}


# ── a damaged stored model ───────────────────────────────────────────────────────────

@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_damaged_model_file_is_409_naming_the_model_and_the_fix(client, data_dir, damage):
    seed = 1000 + list(DAMAGES).index(damage)
    data = model_bytes(seed)
    model_id = upload(client, data).json()["model_id"]
    DAMAGES[damage](data_dir / "models" / model_id / "model.safetensors")

    r = client.post("/api/v1/run", json={**RUN, "weights": {"model_id": model_id}})
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert f"model {model_id} is damaged on the server" in detail
    assert "upload its file again" in detail
    assert {"flipped bit": "no longer hash to its id", "cut short": "bytes, not the",
            "missing": "is missing"}[damage] in detail
    jac = client.post("/api/v1/jacobian", json={**RUN, "step": 1,
                                                "weights": {"model_id": model_id}})
    assert jac.status_code == 409

    listing = client.get("/api/v1/models?limit=1000").json()
    listed = [m["model_id"] for m in listing["data"]]
    assert listing["count"] == len(listed)  # what is left out is not counted either
    described = client.get(f"/api/v1/models/{model_id}")
    if damage == "flipped bit":  # the list and the description read info.json, not the file
        assert model_id in listed and described.status_code == 200
    else:  # a file of the wrong size, or none, shows from a stat
        assert model_id not in listed and described.status_code == 409

    # the damaged copy stayed where it was; uploading the file again replaces it
    again = upload(client, data)
    assert again.status_code == 201, again.text
    assert client.post("/api/v1/run", json={**RUN, "weights": {"model_id": model_id}}
                       ).status_code == 200
    assert (data_dir / "models" / model_id / "model.safetensors").read_bytes() == data
    aside = data_dir / "models" / f".damaged-{model_id}"
    assert aside.is_dir() and (damage == "missing") != (aside / "model.safetensors").exists()


def test_a_file_damaged_after_it_ran_is_not_run_from_memory(client, data_dir):
    """The worker keeps the model it loaded, but only while its file is unchanged."""
    model_id = upload(client, model_bytes(1010)).json()["model_id"]
    req = {**RUN, "weights": {"model_id": model_id}}
    assert client.post("/api/v1/run", json=req).status_code == 200
    flip_bit(data_dir / "models" / model_id / "model.safetensors")
    assert client.post("/api/v1/run", json=req).status_code == 409


@pytest.mark.parametrize("info_json", [b'{"model_id": "', b"", b"[]", None],
                         ids=["cut short", "empty", "not an object", "missing"])
def test_a_damaged_info_json_leaves_the_model_out_of_the_list(client, data_dir, caplog,
                                                              info_json):
    seed = 1020 + [b'{"model_id": "', b"", b"[]", None].index(info_json)
    model_id = upload(client, model_bytes(seed)).json()["model_id"]
    path = data_dir / "models" / model_id / "info.json"
    if info_json is None:
        path.unlink()
    else:
        path.write_bytes(info_json)
    caplog.set_level(logging.WARNING, "gatescope.models.store")
    for _ in range(3):
        r = client.get("/api/v1/models?limit=1000")
        assert r.status_code == 200
        listing = r.json()
        assert model_id not in [m["model_id"] for m in listing["data"]]
        assert listing["count"] == len(listing["data"])
    said = [rec for rec in caplog.records if model_id in rec.getMessage()]
    assert len(said) == 1 and not said[0].exc_info  # once, without a traceback
    assert "info.json" in said[0].getMessage()
    r = client.get(f"/api/v1/models/{model_id}")
    assert r.status_code == 409 and "info.json" in r.json()["detail"]
    r = client.post("/api/v1/run", json={**RUN, "weights": {"model_id": model_id}})
    assert r.status_code == 409 and model_id in r.json()["detail"]


def test_an_info_json_of_another_model_is_damage(client, data_dir):
    first = upload(client, model_bytes(1030)).json()["model_id"]
    second = upload(client, model_bytes(1031)).json()["model_id"]
    models = data_dir / "models"
    shutil.copy(models / first / "info.json", models / second / "info.json")
    assert client.get(f"/api/v1/models/{second}").status_code == 409
    assert client.get(f"/api/v1/models/{first}").status_code == 200


def test_a_damaged_preset_is_409_saying_reinstall(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "tiny.safetensors").write_bytes(model_bytes(1040))
    store = ModelStore(tmp_path / "data", presets_dir=presets)
    (model_id,) = store.presets()
    store.load(model_id)
    flip_bit(presets / "tiny.safetensors")
    with pytest.raises(DamagedModelError, match="reinstall gatescope") as caught:
        store.load(model_id)
    assert f"preset {model_id} is damaged" in str(caught.value)
    assert [m.model_id for m in store.list()] == [model_id]  # still listed: read-only


def test_the_bytes_are_checked_against_the_id_when_loaded(tmp_path):
    """The store itself, without a server: a same-size change is found by the hash."""
    store = ModelStore(tmp_path)
    info, _ = store.add(model_bytes(1050), "m.safetensors")
    path = tmp_path / "models" / info.model_id / "model.safetensors"
    flip_bit(path)
    with pytest.raises(DamagedModelError, match="no longer hash to its id"):
        ModelStore(tmp_path).load(info.model_id)


# ── full and read-only storage, without mounting ─────────────────────────────────────

@contextmanager
def in_process_uploads(tmp_path: Path, monkeypatch) -> Iterator:
    """An app whose uploads are stored in this process (not in a worker), so that a
    patched write reaches them."""
    with make_client(tmp_path) as client:
        monkeypatch.setattr(compute, "_store", ModelStore(tmp_path))

        async def here(fn, *args, finished=None):
            return fn(*args)

        monkeypatch.setattr(client.app.state.compute, "call", here)
        yield client


@pytest.mark.parametrize(("code", "status", "words"), [
    (errno.ENOSPC, 507, "storage for models is full"),
    (errno.EDQUOT, 507, "storage for models is full"),
    (errno.EROFS, 503, "read-only"),
    (errno.EIO, 503, "could not write the model"),
], ids=["ENOSPC", "EDQUOT", "EROFS", "EIO"])
def test_an_upload_the_disk_cannot_take(tmp_path, monkeypatch, code, status, words):
    def failing(path, data):
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])  # a part is written, then the disk says no
        raise OSError(code, os.strerror(code), str(path))

    with in_process_uploads(tmp_path, monkeypatch) as client:
        monkeypatch.setattr(store_module, "_write", failing)
        r = upload(client, model_bytes(1060))
        assert r.status_code == status, r.text
        assert words in r.json()["detail"] and str(tmp_path) not in r.json()["detail"]
        models = tmp_path / "models"
        assert list(models.iterdir()) == []  # nothing half-written is left
        monkeypatch.undo()  # the disk has room again; uploads go to the worker again
        assert upload(client, model_bytes(1060)).status_code == 201


def test_storage_errors_survive_the_trip_from_a_worker():
    """They are raised in a worker process and re-raised in the server: they pickle."""
    import pickle
    for exc in (StorageFullError("full"), StorageUnavailableError("ro"),
                DamagedModelError("bad")):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc)
        assert back.status == exc.status


def test_a_data_directory_that_cannot_be_created(tmp_path, caplog):
    """Its parent is a file: the server starts, serves the presets, and uploads are 503."""
    (tmp_path / "file").write_text("not a directory")
    caplog.set_level(logging.WARNING, "gatescope.models.store")
    with make_client(tmp_path / "file" / "data") as client:
        listing = client.get("/api/v1/models").json()
        presets = [m for m in listing["data"] if m["preset"]]
        assert presets and listing["count"] == len(presets)
        preset = next(m for m in presets if m["vocab"])
        run = client.post("/api/v1/run", json={"input": {"text": preset["vocab"][:3]},
                                                "weights": {"model_id": preset["model_id"]}})
        assert run.status_code == 200
        r = upload(client, model_bytes(1070))
        assert r.status_code == 503 and "could not write" in r.json()["detail"]
    assert any("cannot be created" in rec.getMessage() for rec in caplog.records)


def test_a_missing_data_directory_is_created(tmp_path, caplog):
    caplog.set_level(logging.WARNING, "gatescope.models.store")
    with make_client(tmp_path / "new" / "data") as client:
        assert upload(client, model_bytes(1080)).status_code == 201
    assert (tmp_path / "new" / "data" / "models").is_dir()
    assert any("created the data directory" in rec.getMessage() for rec in caplog.records)


def test_half_written_uploads_are_swept_at_start_and_before_each_upload(tmp_path):
    models = tmp_path / "models"
    old, new = models / ".incoming-old", models / ".incoming-new"
    for path in (old, new):
        path.mkdir(parents=True)
        (path / "model.safetensors").write_bytes(b"half")
    stale = time.time() - store_module.STALE_AFTER - 60
    os.utime(old, (stale, stale))
    store = ModelStore(tmp_path)
    assert not old.exists() and new.exists()  # an upload under way is left alone
    os.utime(new, (stale, stale))  # it crashed since
    store.add(model_bytes(1090), "m.safetensors")
    assert not new.exists()


# ── the bounded model cache ──────────────────────────────────────────────────────────

def test_the_model_cache_is_bounded_by_bytes(tmp_path):
    """A GRU with D = 4, H = 16, L = 1 holds 48·4 + 48·16 + 2·48 = 1056 float64 values,
    8448 bytes once loaded."""
    size = 8448
    store = ModelStore(tmp_path, cache_bytes=2 * size + 100)
    ids = [store.add(model_bytes(1100 + k, H=16), "m.safetensors")[0].model_id
           for k in range(3)]
    first = store.load(ids[0])
    assert store.load(ids[0]) is first  # kept
    store.load(ids[1])
    assert store.cached() == ([ids[0], ids[1]], 2 * size)
    store.load(ids[0])  # used: now the most recent
    store.load(ids[2])  # over the budget: the least recently used goes
    assert store.cached() == ([ids[0], ids[2]], 2 * size)
    assert store.load(ids[1]) is not first  # loaded again, from its file
    assert store.cached()[0] == [ids[2], ids[1]]
    tiny = ModelStore(tmp_path, cache_bytes=size - 1)  # every model is larger than that
    model = tiny.load(ids[0])
    assert model.tensors["weight_hh_l0"].shape == (48, 16)  # loaded and run...
    assert tiny.cached() == ([], 0)  # ...but not kept
    assert tiny.load(ids[0]) is not model


def test_the_cache_budget_is_a_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("GATESCOPE_MODEL_CACHE_BYTES", "12345")
    settings = Settings(data_dir=tmp_path)
    assert settings.model_cache_bytes == 12345
    assert ModelStore(tmp_path, **settings.store_options).cache_bytes == 12345
    # the server's store and its workers' get it from the settings
    compute.init_worker(tmp_path, settings.limits, None, None, settings.store_options)
    try:
        assert compute._store is not None and compute._store.cache_bytes == 12345
    finally:
        compute._store = None
    monkeypatch.delenv("GATESCOPE_MODEL_CACHE_BYTES")
    assert Settings().model_cache_bytes == ModelStore(tmp_path).cache_bytes == 256 * 2**20


def test_the_npz_cap_follows_the_upload_limit(tmp_path, monkeypatch):
    tensors = state_dict("gru", D=4, H=16, L=1)
    data = npz_bytes(tensors)  # 4·(48·4 + 48·16 + 2·48) = 4224 bytes of float32
    store = ModelStore(tmp_path, max_upload_bytes=4000)
    with pytest.raises(ValueError, match="over the limit of 4,000 bytes"):
        store.add(data, "m.npz")
    monkeypatch.setenv("GATESCOPE_MAX_UPLOAD_BYTES", "4000")
    assert ModelStore(tmp_path, **Settings().store_options).max_upload_bytes == 4000
    assert ModelStore(tmp_path, max_upload_bytes=5000).add(data, "m.npz")[1]


# ── real servers, mounts ─────────────────────────────────────────────────────────────

def mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode:
        raise PermissionError(done.stderr.strip() or f"mount exited {done.returncode}")


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at `path` for the test (unmounted however the test ends); the test
    is skipped when mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        mount("-t", "tmpfs", "-o", options, "tmpfs", str(path))
    except (PermissionError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}): needs root and CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def http_upload(url: str, data: bytes, filename: str = "model.safetensors") -> httpx2.Response:
    return httpx2.post(f"{url}/api/v1/models", files={"file": (filename, data)}, timeout=60)


def http_run(url: str, model_id: str) -> httpx2.Response:
    return httpx2.post(f"{url}/api/v1/run", json={**RUN, "weights": {"model_id": model_id}},
                       timeout=60)


@pytest.mark.slow
def test_a_real_server_answers_damaged_models(tmp_path):
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    with running_server(data_dir, log, compute_processes=1) as url:
        damages = {**DAMAGES, "info.json cut short": lambda p: (p.parent / "info.json")
                   .write_bytes(b'{"model_id": "')}
        ids = {}
        for k, (what, damage) in enumerate(damages.items()):
            r = http_upload(url, model_bytes(1200 + k))
            assert r.status_code == 201
            ids[what] = r.json()["model_id"]
            damage(data_dir / "models" / ids[what] / "model.safetensors")
        for what, model_id in ids.items():
            for _ in range(2):
                r = http_run(url, model_id)
                assert r.status_code == 409, (what, r.text)
                assert f"{model_id} is damaged" in r.json()["detail"]
        for _ in range(2):
            r = httpx2.get(f"{url}/api/v1/models", timeout=60)
            assert r.status_code == 200
            listed = {m["model_id"] for m in r.json()["data"]}
            assert ids["flipped bit"] in listed
            assert not listed & {ids[w] for w in ids if w != "flipped bit"}
        r = http_upload(url, model_bytes(1200))  # the flipped one, again
        assert r.status_code == 201 and http_run(url, ids["flipped bit"]).status_code == 200
    said = log.read_text()
    assert "Traceback" not in said and " 500 " not in said
    for what, model_id in ids.items():  # once per process and problem: server and worker
        assert 1 <= said.count(f"model {model_id} in ") <= 2, (what, said)


@pytest.mark.slow
def test_a_real_server_on_a_full_disk_answers_507(tmp_path):
    with tmpfs(tmp_path / "full", "size=256k") as data_dir:
        log = tmp_path / "server.log"
        with running_server(data_dir, log, compute_processes=1) as url:
            small = http_upload(url, model_bytes(1300))
            assert small.status_code == 201
            big = safetensors_bytes(state_dict("lstm", D=64, H=128, L=1, seed=1301))
            assert len(big) > 256 * 1024
            r = http_upload(url, big)
            assert r.status_code == 507, r.text
            assert "full" in r.json()["detail"] and str(data_dir) not in r.json()["detail"]
            assert not [p for p in (data_dir / "models").iterdir()
                        if p.name.startswith(".incoming")]
            assert http_run(url, small.json()["model_id"]).status_code == 200
            assert http_upload(url, model_bytes(1302)).status_code == 201  # room again
        assert "Traceback" not in log.read_text()


def _preset_run(url: str) -> httpx2.Response:
    listing = httpx2.get(f"{url}/api/v1/models", timeout=60).json()
    preset = next(m for m in listing["data"] if m["preset"] and m["vocab"])
    return httpx2.post(f"{url}/api/v1/run", json={
        "input": {"text": preset["vocab"][:3]}, "weights": {"model_id": preset["model_id"]}},
        timeout=60)


@pytest.mark.slow
def test_a_real_server_on_a_read_only_data_directory(tmp_path):
    # an empty read-only file system: nothing can be created in it
    with tmpfs(tmp_path / "ro-empty", "ro,size=1m") as data_dir:
        log = tmp_path / "empty.log"
        with running_server(data_dir, log, compute_processes=1) as url:
            assert _preset_run(url).status_code == 200
            r = http_upload(url, model_bytes(1400))
            assert r.status_code == 503 and "read-only" in r.json()["detail"]
        said = log.read_text()
        assert "cannot be created (Read-only file system)" in said
        assert "Traceback" not in said
    # models stored, then the file system remounted read-only
    with tmpfs(tmp_path / "ro-stored", "size=1m") as data_dir:
        stored, _ = ModelStore(data_dir).add(model_bytes(1401), "m.safetensors")
        mount("-o", "remount,ro", str(data_dir))
        log = tmp_path / "stored.log"
        with running_server(data_dir, log, compute_processes=1) as url:
            listing = httpx2.get(f"{url}/api/v1/models", timeout=60).json()
            assert stored.model_id in [m["model_id"] for m in listing["data"]]
            assert http_run(url, stored.model_id).status_code == 200
            assert _preset_run(url).status_code == 200
            r = http_upload(url, model_bytes(1402))
            assert r.status_code == 503 and "read-only" in r.json()["detail"]
        said = log.read_text()
        assert "is read-only" in said and "Traceback" not in said


def test_the_model_cache_counts_an_embedding(tmp_path):
    """An embedding is most of a text model's bytes: the cache's budget must see them."""
    emb = np.random.default_rng(0).normal(size=(4096, 4)).astype(np.float32)
    data = safetensors_bytes({"emb.weight": emb, **{f"rnn.{k}": v for k, v in
                                                    state_dict(D=4, L=1).items()}})
    store = ModelStore(tmp_path, cache_bytes=100_000)  # under the embedding's 131 kB float64
    info, _ = store.add(data, "m.safetensors")
    assert store.load(info.model_id).embedding is not None
    assert store.cached() == ([], 0)
