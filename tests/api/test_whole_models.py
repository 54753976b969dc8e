"""Whole models as practitioners write them, against PyTorch (tests/fixtures/generate_models.py,
run by hand): an nn.Embedding in front, bidirectional / relu / bias=False RNNs and *Cell
loops, Linear heads under their own names, other layers around. Each case's file is
uploaded as it is; its description must say what was found and ignored, and its run must
match autograd to 1e-9 on every stored field — states and gates per direction, ∂L/∂h and
∂L/∂c, gate gradients, outputs, loss, every parameter gradient under its file name, the
embedding's gradient — in process (a ModelStore) and over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gatescope
from gatescope.contract.limits import Limits
from gatescope.models.layout import Choice
from gatescope.models.store import ModelStore
from tests.helpers.api import read_binary, upload
from tests.helpers.compare import FIXTURES, load_fixtures, mismatches, walk

CASES, EXPECTED = load_fixtures("whole_models")


def _form(case: dict[str, Any]) -> dict[str, str]:
    return dict(case["upload"])


def _described(info: dict[str, Any], case: dict[str, Any]) -> None:
    want = case["description"]
    for key in ("embedding", "rnn", "head", "ignored"):
        assert info[key] == want[key], (key, info[key], want[key])


@pytest.mark.parametrize("name", sorted(CASES))
def test_in_process_matches_pytorch(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    data = (FIXTURES / case["file"]).read_bytes()
    store = ModelStore(tmp_path)
    form = _form(case)
    info, _ = store.add(data, Path(case["file"]).name, form.get("cell"), form.get("vocab"),
                        choice=Choice(rnn=form.get("rnn")))
    _described(info.model_dump(), case)
    result = gatescope.run({**case["request"], "weights": {"model_id": info.model_id}},
                           models=store)
    actual = dict(walk(result.as_dict()))
    expected = EXPECTED[name]
    assert not sorted(set(expected) - set(actual)), "fields the fixture checks are missing"
    problems = mismatches(actual, expected)
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)
    # exactly the model's parameters, under the file's names: nothing more, nothing less
    assert set(result.param_grads) == {p.split(".", 1)[1] for p in expected
                                       if p.startswith("param_grads.")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_over_http_matches_pytorch(name: str, client: Any) -> None:
    case = CASES[name]
    r = upload(client, (FIXTURES / case["file"]).read_bytes(), Path(case["file"]).name,
               **_form(case))
    assert r.status_code in (200, 201), r.text  # 200: another test stored it already
    _described(r.json(), case)
    request = {**case["request"], "weights": {"model_id": r.json()["model_id"]}}
    got = client.post("/api/v1/run?encoding=binary", json=request)
    assert got.status_code == 200, got.text
    actual = dict(walk(read_binary(got.content)))
    problems = mismatches(actual, EXPECTED[name])
    assert not problems, f"{name}:\n  " + "\n  ".join(problems)


def test_the_fixtures_cover_what_the_issue_names() -> None:
    """Embeddings, bidirectional layers, proj_size, bias=False, *Cell loops (stacked too),
    heads of several names and widths (binary among them), a relu RNN, two RNNs in one
    file."""
    descriptions = [c["description"] for c in CASES.values()]
    assert sum(d["embedding"] is not None for d in descriptions) >= 2
    assert sum(d["rnn"]["bidirectional"] for d in descriptions) >= 2
    assert any(not d["rnn"]["bias"] for d in descriptions)
    assert sum(d["rnn"]["cells"] for d in descriptions) >= 3
    assert any(d["rnn"]["cells"] and d["rnn"]["layers"] > 1 for d in descriptions)
    heads = {d["head"]["name"].rsplit(".", 1)[-1] for d in descriptions if d["head"]}
    assert len(heads) >= 5
    assert any(d["head"] and d["head"]["out_features"] == 1 for d in descriptions)
    assert {d["rnn"]["cell"] for d in descriptions} == {"lstm", "gru", "rnn_tanh", "rnn_relu"}
    assert any(d["rnn"]["proj_size"] and d["rnn"]["bidirectional"] for d in descriptions)
    # upstream gradients (dh with null rows, dc) and hidden-state losses below the top
    losses = [c["request"]["loss"] for c in CASES.values()]
    assert any(x["type"] == "upstream" and x.get("layer") == 0 and "dc" in x for x in losses)
    assert any(x["type"] == "upstream" and None in x["dh"] for x in losses)
    assert any(x["type"] != "upstream" and x.get("layer") == 0 for x in losses)
    # the one-step Jacobians' norms, from autograd, for every unit of every case
    assert all(f"layers.{u}.jacobian.total" in EXPECTED[name]
               for name, c in CASES.items()
               for u in range(c["description"]["rnn"]["layers"]
                              * (2 if c["description"]["rnn"]["bidirectional"] else 1)))
    assert any(c["request"].get("truncate") for c in CASES.values()
               if c["description"]["rnn"]["bidirectional"])
    silero = CASES["silero_like_lstmcell"]["description"]
    assert silero["rnn"]["name"] == "_model.decoder.rnn" and silero["head"] is None
    assert any("_model.encoder" in n for n in silero["ignored"])
    assert EXPECTED["silero_like_lstmcell"]["layers.0.h"].shape[-1] == 128


def test_unused_embedding_rows_have_exactly_zero_gradient() -> None:
    grads = EXPECTED["bigru_tagger"]["param_grads.embed.weight"]
    read = set(CASES["bigru_tagger"]["request"]["input"]["tokens"])
    for v in range(grads.shape[0]):
        assert (np.abs(grads[v]).max() > 0) == (v in read)


def test_limits_apply_to_whole_models(tmp_path: Path) -> None:
    """A server's lowered limits hold for a bidirectional model's units too."""
    case = CASES["bigru_tagger"]
    store = ModelStore(tmp_path)
    info, _ = store.add((FIXTURES / case["file"]).read_bytes(), "m.safetensors")
    tight = Limits(max_work=8 * 3 * 3)  # T·H·L = 8·3·2 fits, but not × 2 directions
    with pytest.raises(Exception) as caught:
        gatescope.run({**case["request"], "weights": {"model_id": info.model_id}},
                      models=store, limits=tight)
    assert "× 2 directions" in str(caught.value)
