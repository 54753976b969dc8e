"""gatescope.from_torch with a live torch.nn.Module: the same parts and numbers as an upload
of its file, and a plain RNN's nonlinearity read off the module itself. torch is optional
for gatescope, so this runs where torch is installed (make fixtures installs it; CI does not:
the in-memory path itself is checked without torch in test_whole_model_gradients.py)."""

from __future__ import annotations

import numpy as np
import pytest

import gatescope

torch = pytest.importorskip("torch")


def test_a_live_module_runs_with_its_own_names_and_nonlinearity() -> None:
    torch.manual_seed(0)
    net = torch.nn.ModuleDict({"emb": torch.nn.Embedding(6, 3),
                               "rnn": torch.nn.RNN(3, 4, nonlinearity="relu"),
                               "head": torch.nn.Linear(4, 2)}).double()
    model = gatescope.from_torch(net, vocab="abcdef")
    assert model.info.rnn is not None and model.info.rnn.cell == "rnn_relu"
    assert model.info.embedding is not None and model.info.embedding.name == "emb"
    ids = torch.tensor([0, 3, 5, 1])
    out, _ = net["rnn"](net["emb"](ids)[:, None])
    logits = net["head"](out[:, 0])
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0, 1, 1]))
    loss.backward()
    result = model.run({"input": {"text": "adfb"},
                        "loss": {"type": "cross_entropy", "targets": [1, 0, 1, 1]}})
    assert result.loss == pytest.approx(loss.item(), rel=1e-12)
    for name, p in net.named_parameters():
        np.testing.assert_allclose(result.param_grads[name], p.grad.numpy(), atol=1e-14)
    with pytest.raises(ValueError, match="rnn_tanh"):  # a state_dict cannot tell
        gatescope.from_torch(net.state_dict())


def test_tied_weights_have_one_gradient_the_sum_of_both_uses() -> None:
    """word_language_model --tied: decoder.weight is encoder.weight; named_parameters() has
    it once, its gradient the embedding's and the head's together."""
    torch.manual_seed(1)
    net = torch.nn.ModuleDict({"encoder": torch.nn.Embedding(7, 4),
                               "rnn": torch.nn.LSTM(4, 4),
                               "decoder": torch.nn.Linear(4, 7)}).double()
    net["decoder"].weight = net["encoder"].weight
    ids = torch.tensor([1, 4, 2, 6])
    out, _ = net["rnn"](net["encoder"](ids)[:, None])
    loss = torch.nn.functional.cross_entropy(net["decoder"](out[:, 0]),
                                             torch.tensor([4, 2, 6, 0]))
    loss.backward()
    result = gatescope.from_torch(net).run({"input": {"tokens": ids.tolist()}, "loss": {
        "type": "cross_entropy", "targets": [4, 2, 6, 0]}})
    assert sorted(result.param_grads) == sorted(n for n, _ in net.named_parameters())
    for name, p in net.named_parameters():
        np.testing.assert_allclose(result.param_grads[name], p.grad.numpy(), atol=1e-14)
