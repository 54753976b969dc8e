"""Models with a readout (API.md, "Models with a readout"), in-process: outputs, the losses
on them, their gradients beside the RNN's, clipping, the lab's features unchanged, float32,
overflow, and every refusal with the field and the limit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

import gatescope
from gatescope.core.cells import CELLS
from gatescope.core.params import pytorch_init
from gatescope.models.stored import StoredModel

VOCAB = "abc"


def tensors(cell: str = "lstm", D: int = 3, H: int = 4, L: int = 1, K: int | None = 3,
            seed: int = 0) -> dict[str, np.ndarray]:
    """A state_dict (float64), with a readout of K outputs unless K is None."""
    out = pytorch_init(CELLS[cell], D, H, L, seed, None, np.float64)
    if K is not None:
        rng = np.random.default_rng(seed + 100)
        out["readout.weight"] = rng.normal(size=(K, H))
        out["readout.bias"] = rng.normal(size=K)
    return out


def inline(t: dict[str, np.ndarray]) -> dict:
    return {"tensors": {k: np.asarray(v).tolist() for k, v in t.items()}}


def request(t: dict[str, np.ndarray], loss: dict | None = None, text: str = "abcab",
            **extra) -> dict:
    req = {"input": {"text": text, "vocab": VOCAB}, "weights": inline(t), **extra}
    if loss is not None:
        req["loss"] = loss
    return req


def error_of(req: dict, **kwargs) -> tuple[tuple, str]:
    with pytest.raises(ValidationError) as info:
        gatescope.run(req, **kwargs)
    first = info.value.errors()[0]
    return tuple(first["loc"]), first["msg"]


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("cell", list(CELLS))
def test_outputs_are_the_linear_readout_and_its_softmax(cell):
    t = tensors(cell, L=2)
    result = gatescope.run(request(t, {"type": "next_token"}, cell=cell, num_layers=2))
    top = result.layers[-1].h
    logits = top @ t["readout.weight"].T + t["readout.bias"]
    np.testing.assert_allclose(result.outputs["logits"], logits, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(result.outputs["probs"], np.exp(log_softmax(logits)),
                               rtol=1e-13, atol=1e-15)
    data = result.to_json()
    assert np.shape(data["outputs"]["logits"]) == np.shape(data["outputs"]["probs"]) == (5, 3)
    assert list(data["param_grads"])[-2:] == ["readout.weight", "readout.bias"]
    json.dumps(data, allow_nan=False)


def test_a_model_without_readout_has_no_outputs():
    data = gatescope.run(request(tensors(K=None))).to_json()
    assert "outputs" not in data
    assert not any(name.startswith("readout") for name in data["param_grads"])


def test_cross_entropy_is_the_mean_over_targeted_steps():
    t = tensors()
    targets = [2, None, 0, None, 1]
    result = gatescope.run(request(t, {"type": "cross_entropy", "targets": targets}))
    log_p = np.log(result.outputs["probs"])
    want = -np.mean([log_p[s, k] for s, k in enumerate(targets) if k is not None])
    assert result.loss == pytest.approx(want, rel=1e-13)
    # ∂L/∂b = Σ_t (p_t − onehot(k_t)) / n over the targeted steps
    onehot = np.eye(3)[[2, 0, 1]]
    db = (result.outputs["probs"][[0, 2, 4]] - onehot).sum(axis=0) / 3
    np.testing.assert_allclose(result.param_grads["readout.bias"], db, rtol=1e-12)


def test_next_token_uses_the_models_labels_in_their_order():
    """A stored model whose labels are not the vocab's order: the targets are indices into
    the labels, so the loss is −mean log p_t[labels.index(text[t + 1])]."""
    t = tensors()
    labels = ["c", "a", "b"]

    class Store:
        def load(self, model_id: str) -> StoredModel:
            rnn = {k: v for k, v in t.items() if not k.startswith("readout")}
            readout = {k: v for k, v in t.items() if k.startswith("readout")}
            return StoredModel("lstm", rnn, VOCAB, readout, labels, "a_task", {"x": 1})

    text = "abcab"
    result = gatescope.run({"input": {"text": text}, "weights": {"model_id": "m"},
                            "loss": {"type": "next_token"}}, models=Store())
    log_p = np.log(result.outputs["probs"])
    want = -np.mean([log_p[s, labels.index(ch)] for s, ch in enumerate(text[1:])])
    assert result.loss == pytest.approx(want, rel=1e-13)


def test_next_token_without_labels_predicts_the_input_vocab():
    t = tensors()
    result = gatescope.run(request(t, {"type": "next_token"}))
    same = gatescope.run(request(t, {"type": "cross_entropy", "targets": [1, 2, 0, 1, None]}))
    assert result.loss == same.loss
    for name, g in same.param_grads.items():
        np.testing.assert_array_equal(result.param_grads[name], g)


def test_a_hidden_state_loss_leaves_the_readout_out_of_the_loss():
    """Outputs are still returned; the readout's gradients are exactly zero; everything
    else is what the same RNN gives without a readout."""
    t = tensors(L=2)
    rnn = {k: v for k, v in t.items() if not k.startswith("readout")}
    for loss in ({"type": "all_hidden_sum"}, {"type": "hidden_unit", "step": 2, "unit": 1}):
        with_readout = gatescope.run(request(t, loss, num_layers=2))
        plain = gatescope.run(request(rnn, loss, num_layers=2))
        assert with_readout.loss == plain.loss and with_readout.outputs is not None
        assert not with_readout.param_grads["readout.weight"].any()
        assert not with_readout.param_grads["readout.bias"].any()
        for name, g in plain.param_grads.items():
            np.testing.assert_array_equal(with_readout.param_grads[name], g)
        np.testing.assert_array_equal(with_readout.input_grad, plain.input_grad)


def test_clipping_counts_the_readout_gradients():
    t = tensors()
    req = request(t, {"type": "next_token"})
    plain = gatescope.run(req)
    total = np.sqrt(sum(np.sum(g * g) for g in plain.param_grads.values()))
    rnn_only = np.sqrt(sum(np.sum(g * g) for n, g in plain.param_grads.items()
                           if not n.startswith("readout")))
    assert total > rnn_only * 1.01  # the readout's share is not negligible here
    clipped = gatescope.run({**req, "clip": {"max_norm": total / 3}})
    assert clipped.grad_norm["total"] == pytest.approx(total, rel=1e-13)
    coef = (total / 3) / (total + 1e-6)
    for name, g in plain.param_grads.items():
        np.testing.assert_allclose(clipped.param_grads[name], g * coef, rtol=1e-13)


def test_lab_features_and_the_jacobian_are_unchanged_by_a_readout():
    t = tensors(L=2)
    rnn = {k: v for k, v in t.items() if not k.startswith("readout")}
    extra = {"num_layers": 2, "connectivity": True, "truncate": 2,
             "interventions": [{"layer": 1, "target": "h", "start": 1, "stop": 3,
                                "units": [0], "value": 0.25}]}
    with_readout = gatescope.run(request(t, {"type": "all_hidden_sum"}, **extra))
    plain = gatescope.run(request(rnn, {"type": "all_hidden_sum"}, **extra))
    for k in range(2):
        np.testing.assert_array_equal(with_readout.layers[k].connectivity,
                                      plain.layers[k].connectivity)
        np.testing.assert_array_equal(with_readout.layers[k].h, plain.layers[k].h)
        for name, a in plain.layers[k].jacobian["flow"].items():
            np.testing.assert_array_equal(with_readout.layers[k].jacobian["flow"][name], a)
    # the readout sees the replaced h
    np.testing.assert_allclose(with_readout.outputs["logits"][1],
                               t["readout.weight"] @ with_readout.layers[1].h[1]
                               + t["readout.bias"], rtol=1e-13)
    jac = gatescope.jacobian(request(t, {"type": "next_token"}, num_layers=2), step=3, layer=1)
    jac_plain = gatescope.jacobian(request(rnn, num_layers=2), step=3, layer=1)
    np.testing.assert_array_equal(jac.total, jac_plain.total)


def test_float32_outputs_and_gradients():
    t = tensors()
    req = request(t, {"type": "cross_entropy", "targets": [0, 1, None, 2, 0]})
    r64 = gatescope.run(req)
    r32 = gatescope.run({**req, "dtype": "float32"})
    for name in ("logits", "probs"):
        assert r32.outputs[name].dtype == np.float32
        np.testing.assert_allclose(r32.outputs[name], r64.outputs[name], rtol=1e-5, atol=1e-6)
    for name in ("readout.weight", "readout.bias", "weight_hh_l0"):
        assert r32.param_grads[name].dtype == np.float32
        np.testing.assert_allclose(r32.param_grads[name], r64.param_grads[name], rtol=1e-4,
                                   atol=1e-6)
    assert r32.loss == pytest.approx(r64.loss, rel=1e-5)


def test_overflowed_outputs_are_null_with_a_warning():
    from tests.helpers.requests import exploding_relu_request
    req = exploding_relu_request()
    req["weights"]["tensors"].update({"readout.weight": [[1.0, -1.0], [0.5, 0.5]],
                                      "readout.bias": [0.0, 0.0]})
    req["loss"] = {"type": "cross_entropy", "targets": [0] * 200}
    data = gatescope.run(req).to_json()
    text = json.dumps(data, allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text
    first = next(t for t, row in enumerate(data["outputs"]["logits"]) if None in row)
    assert all(None not in row for row in data["outputs"]["probs"][:first])
    assert any(f"field outputs.logits overflowed from step {first} on" in w
               for w in data["warnings"]), data["warnings"]


T5 = [0, 1, 2, 0, 1]

BAD = [
    # (how the request changes, loc, words the message must contain)
    ({"weights": inline(tensors(K=None)), "loss": {"type": "cross_entropy", "targets": T5}},
     ("loss", "cross_entropy"), "no readout"),
    ({"weights": inline(tensors(K=None)), "loss": {"type": "next_token"}},
     ("loss", "next_token"), "no readout"),
    ({"loss": {"type": "cross_entropy", "targets": [0, 1]}},
     ("loss", "cross_entropy", "targets"), "T = 5 entries"),
    ({"loss": {"type": "cross_entropy", "targets": [0, 1, 3, 0, 1]}},
     ("loss", "cross_entropy", "targets", 2), "K = 3"),
    ({"loss": {"type": "cross_entropy", "targets": [None] * 5}},
     ("loss", "cross_entropy"), "at least one"),
    ({"loss": {"type": "cross_entropy", "targets": [0, -1, 0, 0, 0]}},
     ("loss", "cross_entropy", "targets", 1), "greater than or equal to 0"),
    ({"loss": {"type": "cross_entropy", "targets": [0, 1.5, 0, 0, 0]}},
     ("loss", "cross_entropy", "targets", 1), "integer"),
    ({"input": {"values": [[0.0, 1.0, 0.0]]}, "loss": {"type": "next_token"}},
     ("loss", "next_token"), "text input"),
    ({"input": {"text": "a", "vocab": VOCAB}, "loss": {"type": "next_token"}},
     ("loss", "next_token"), "at least 2 characters"),
    ({"weights": inline(tensors(K=4)), "loss": {"type": "next_token"}},
     ("loss", "next_token"), "labels"),
    ({"weights": inline({**tensors(), "readout.weight": [[0.0] * 3] * 3}),
      "loss": {"type": "next_token"}}, ("weights", "tensors", "readout.weight"), "(K, 4)"),
    ({"weights": inline({**tensors(), "readout.bias": [0.0] * 2})},
     ("weights", "tensors", "readout.bias"), "(3,)"),
    ({"weights": inline({k: v for k, v in tensors().items() if k != "readout.weight"})},
     ("weights", "tensors", "readout.weight"), "missing"),
    ({"weights": inline({k: v for k, v in tensors().items() if k != "readout.bias"})},
     ("weights", "tensors", "readout.bias"), "missing"),
    ({"weights": inline({**tensors(), "readout.weight": [[0.0] * 4] * 1025,
                         "readout.bias": [0.0] * 1025})},
     ("weights", "tensors", "readout.weight"), "1024"),
    ({"weights": inline({**tensors(), "readout.weights": [0.0]})},
     ("weights", "tensors", "readout.weights"), "not a tensor of a recurrent layer"),
]


@pytest.mark.parametrize(("change", "loc", "words"), BAD,
                         ids=[f"{'.'.join(map(str, c[1]))}-{n}" for n, c in enumerate(BAD)])
def test_bad_readout_requests_name_the_field_and_the_limit(change, loc, words):
    got_loc, msg = error_of({**request(tensors()), **change})
    assert got_loc == loc, msg
    assert words in msg


def test_next_token_names_the_characters_the_labels_lack():
    class Store:
        def load(self, model_id: str) -> StoredModel:
            t = tensors(D=4)
            return StoredModel("lstm", {k: v for k, v in t.items() if "readout" not in k},
                               "abcd", {k: v for k, v in t.items() if "readout" in k},
                               ["a", "b", "c"])

    loc, msg = error_of({"input": {"text": "dadbd"}, "weights": {"model_id": "m"},
                         "loss": {"type": "next_token"}}, models=Store())
    assert loc == ("loss", "next_token") and "'d'" in msg and "3 labels" in msg
    # the first character is an input only, never a target
    assert gatescope.run({"input": {"text": "dabc"}, "weights": {"model_id": "m"},
                          "loss": {"type": "next_token"}}, models=Store()).loss > 0


# ── {"type": "task"}: the loss a stored model was trained with ─────────────────────────

BRACKETS = "bracket_depth:length=8,max_depth=3"


class TaskStore:
    """One stored model: an LSTM on "()." with a K-output readout, trained (it says) on
    `task`, with `labels` (the bracket task's depths by default)."""

    def __init__(self, task: str | None = BRACKETS, K: int = 4,
                 labels: tuple[str, ...] | None = tuple("0123")) -> None:
        self.t = tensors(D=3, H=5, K=K, seed=3)
        self.task, self.labels = task, None if labels is None else list(labels)

    def load(self, model_id: str) -> StoredModel:
        rnn = {k: v for k, v in self.t.items() if not k.startswith("readout")}
        ro = {k: v for k, v in self.t.items() if k.startswith("readout")}
        return StoredModel("lstm", rnn, "().", ro, self.labels, self.task, {"x": 1})


def test_task_loss_is_cross_entropy_on_the_tasks_targets():
    from gatescope import tasks

    store = TaskStore()
    text = "(()(.))"
    want = tasks.get(BRACKETS).targets(text)
    assert want == [1, 2, 1, 2, 2, 1, 0]
    base = {"input": {"text": text}, "weights": {"model_id": "m"}}
    got = gatescope.run({**base, "loss": {"type": "task"}}, models=store)
    same = gatescope.run({**base, "loss": {"type": "cross_entropy", "targets": want}},
                         models=store)
    assert got.loss == same.loss
    for name, g in same.param_grads.items():
        np.testing.assert_array_equal(got.param_grads[name], g)
    np.testing.assert_array_equal(got.input_grad, same.input_grad)
    # and by hand: −mean_t log p_t[depth_t]
    log_p = np.log(got.outputs["probs"])
    assert got.loss == pytest.approx(-np.mean([log_p[t, k] for t, k in enumerate(want)]),
                                     rel=1e-13)


def test_task_loss_skips_the_steps_the_task_does_not_score():
    """Delayed recall scores only the "?" steps, each against the first symbol."""
    t = tensors(D=4, H=5, K=3, seed=4)
    task = "delayed_recall:d=3,symbols=3"

    class Store:
        def load(self, model_id: str) -> StoredModel:
            return StoredModel("lstm", {k: v for k, v in t.items() if "readout" not in k},
                               "?abc", {k: v for k, v in t.items() if "readout" in k},
                               ["a", "b", "c"], task)

    base = {"input": {"text": "cab?a?"}, "weights": {"model_id": "m"}}
    got = gatescope.run({**base, "loss": {"type": "task"}}, models=Store())
    same = gatescope.run({**base, "loss": {"type": "cross_entropy",
                                           "targets": [None, None, None, 2, None, 2]}},
                         models=Store())
    assert got.loss == same.loss
    np.testing.assert_array_equal(got.param_grads["readout.weight"],
                                  same.param_grads["readout.weight"])


TASK_BAD = [
    # (store, request changes, words the message must contain)
    (TaskStore(task=None), {}, "names no task"),
    (TaskStore(task="next_char"), {}, "not a task gatescope defines"),
    (TaskStore(), {"input": {"values": [[1.0, 0.0, 0.0]] * 3}}, "text input"),
    (TaskStore(), {"input": {"text": "(()))"}}, "never opened"),
    (TaskStore(), {"input": {"text": "(((("}}, "max_depth"),
    (TaskStore(K=5, labels=None), {}, "K = 5"),
    (TaskStore(labels=("3", "2", "1", "0")), {}, "not the bracket_depth task's classes"),
    (TaskStore(task="delayed_recall:d=3,symbols=4"), {"input": {"text": "((.)"}},
     "not an instance"),
]


@pytest.mark.parametrize(("store", "change", "words"), TASK_BAD,
                         ids=[c[2].replace(" ", "_") for c in TASK_BAD])
def test_task_loss_refusals_name_the_field(store, change, words):
    req = {"input": {"text": "(.)"}, "weights": {"model_id": "m"}, "loss": {"type": "task"},
           **change}
    loc, msg = error_of(req, models=store)
    assert loc == ("loss", "task"), msg
    assert words in msg


def test_task_loss_with_inline_weights_or_no_readout_is_422():
    loc, msg = error_of(request(tensors(), {"type": "task"}))
    assert loc == ("loss", "task") and "names no task" in msg
    loc, msg = error_of(request(tensors(K=None), {"type": "task"}))
    assert loc == ("loss", "task") and "no readout" in msg
