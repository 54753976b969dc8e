"""The tasks (gatescope.tasks): generated from a seed, named so they can be rebuilt, with
targets() that agree with batch() and refuse texts that are not instances."""

from __future__ import annotations

import numpy as np
import pytest

from gatescope import tasks
from gatescope.core.inputs import encode_text
from gatescope.tasks import char_lm

SMALL = ["delayed_recall:d=7,symbols=3", "adding:digits=12", "bracket_depth:length=30",
         "char_lm:length=50"]


def as_lists(targets: np.ndarray) -> list[list[int | None]]:
    return [[None if v == -1 else int(v) for v in col] for col in targets.T]


@pytest.mark.parametrize("name", SMALL)
def test_batches_are_deterministic_from_the_seed(name):
    task = tasks.get(name)
    texts, targets = task.batch(np.random.default_rng(5), 16)
    again, targets_again = task.batch(np.random.default_rng(5), 16)
    other, _ = task.batch(np.random.default_rng(6), 16)
    assert texts == again and np.array_equal(targets, targets_again)
    assert texts != other
    assert len(texts) == 16 and all(len(t) == task.seq_len for t in texts)
    assert targets.shape == (task.seq_len, 16) and targets.dtype.kind == "i"
    assert targets.min() >= -1 and targets.max() < len(task.labels)


@pytest.mark.parametrize("name", SMALL)
def test_targets_agree_with_batch(name):
    task = tasks.get(name)
    texts, targets = task.batch(np.random.default_rng(0), 64)
    assert [task.targets(text) for text in texts] == as_lists(targets)
    example = task.example()
    assert example == task.example()
    assert any(t is not None for t in task.targets(example))


@pytest.mark.parametrize("name", SMALL)
def test_one_hot_is_how_inputs_encodes_text(name):
    task = tasks.get(name)
    texts, _ = task.batch(np.random.default_rng(1), 3)
    X = tasks.one_hot(tasks.encode(texts, task.vocab), len(task.vocab), np.dtype(np.float64))
    for j, text in enumerate(texts):
        np.testing.assert_array_equal(X[:, j], encode_text(text, task.vocab, np.float64))
    tokens, _ = task.sample(np.random.default_rng(1), 3)
    assert tasks.decode(tokens, task.vocab) == texts


@pytest.mark.parametrize("name", SMALL)
def test_names_rebuild_the_task(name):
    task = tasks.get(name)
    assert tasks.get(task.name) == task
    assert task.name.startswith(task.kind + ":")


def test_defaults_and_option_parsing():
    assert tasks.get("delayed_recall:d=20").name == "delayed_recall:d=20,symbols=4"
    assert tasks.get("adding") == tasks.get("adding:digits=50")
    assert tasks.get(" bracket_depth: max_depth=3 , length=9").name == \
        "bracket_depth:length=9,max_depth=3"
    for bad, words in [("nope", "unknown task"), ("adding:length=5", "not an option"),
                       ("adding:digits", "not an option"), ("adding:digits=x", "integer"),
                       ("adding:digits=1", "2..4000"), ("delayed_recall:d=3,d=4", "twice"),
                       ("delayed_recall:symbols=27", "2..26")]:
        with pytest.raises(ValueError, match=words):
            tasks.get(bad)


def test_delayed_recall_structure():
    task = tasks.get("delayed_recall:d=6,symbols=5")
    texts, targets = task.batch(np.random.default_rng(2), 200)
    assert task.vocab == "?abcde" and task.labels == tuple("abcde") and task.seq_len == 7
    for text, target in zip(texts, targets.T, strict=True):
        assert text[-1] == "?" and "?" not in text[:-1]
        assert target[-1] == "abcde".index(text[0]) and (target[:-1] == -1).all()
    assert {t[0] for t in texts} == set("abcde")  # every symbol is asked for
    assert task.targets("ab?c?") == [None, None, 0, None, 0]  # any delay, every "?"
    for bad in ["?ab?", "abc", "", "abz?"]:
        with pytest.raises(ValueError):
            task.targets(bad)
    assert task.metric.baseline == pytest.approx(0.2)


def test_adding_structure():
    task = tasks.get("adding:digits=20")
    texts, targets = task.batch(np.random.default_rng(3), 300)
    for text, target in zip(texts, targets.T, strict=True):
        assert text[-1] == "=" and text.count("#") == 2 and len(text) == 23
        digits = text[:-1].replace("#", "")
        assert len(digits) == 20 and digits.isdigit()
        first, second = (i - k for k, i in enumerate(i for i, c in enumerate(text) if c == "#"))
        assert 0 <= first < 10 <= second < 20  # digit indices: one mark in each half
        assert target[-1] == int(digits[first]) + int(digits[second])
        assert (target[:-1] == -1).all()
    sums = targets[-1]
    assert sums.min() >= 0 and sums.max() <= 18 and len(set(sums)) > 12
    assert task.targets("1#2#3=") == [None] * 5 + [5]
    for bad in ["1#23=", "1#2#3", "#1#2#3=", "1##2#3=", "1#2#=", "1=#2#3="]:
        with pytest.raises(ValueError):
            task.targets(bad)
    assert np.mean(sums == 9) == pytest.approx(task.metric.baseline, abs=0.05)


def test_bracket_depth_structure_and_baseline():
    task = tasks.get("bracket_depth:length=25,max_depth=3")
    texts, targets = task.batch(np.random.default_rng(4), 2000)
    assert set("".join(texts)) == set("().") and targets.min() == 0 and targets.max() == 3
    assert task.targets("(()).") == [1, 2, 1, 0, 0]
    with pytest.raises(ValueError, match="never opened"):
        task.targets("())")
    with pytest.raises(ValueError, match="max_depth"):
        task.targets("((((")
    # the exact baseline: the most frequent depth's share, over steps and sequences
    share = np.bincount(targets.ravel(), minlength=4) / targets.size
    assert task.metric.baseline == pytest.approx(share.max(), abs=0.01)


def test_char_lm_windows_come_from_the_split_files():
    task = tasks.get("char_lm:length=40")
    train = "".join((char_lm.CORPUS / f"{f}.txt").read_text() for f in char_lm.TRAIN_FILES)
    held = "".join((char_lm.CORPUS / f"{f}.txt").read_text()
                   for f in char_lm.VALIDATION_FILES)
    train, held = char_lm.clean(train), char_lm.clean(held)
    texts, _ = task.batch(np.random.default_rng(5), 20)
    assert all(text in train for text in texts)
    texts, _ = task.batch(np.random.default_rng(5), 20, "validation")
    assert all(text in held for text in texts)
    assert len(task.vocab) == 97 and task.labels == tuple(task.vocab)
    assert char_lm.clean("x\té") == "x\ufffd\ufffd"
    assert task.targets("ab\n") == [task.vocab.index("b"), 0, None]
    with pytest.raises(ValueError, match="not in"):
        task.targets("tab\there")
    with pytest.raises(ValueError, match="at least 2"):
        task.targets("a")
    # unigram baseline: better than uniform over 97 characters, far from perfect
    assert 2.0 < task.metric.baseline < np.log(97) and not task.metric.higher_is_better


def test_metrics():
    z = np.zeros((2, 3, 4))
    z[0, :, 1] = 5.0
    z[1, :, 2] = 5.0
    targets = np.array([[1, 1, -1], [2, 0, -1]])
    assert tasks.base.accuracy(z, targets) == pytest.approx(3 / 4)
    p_hit = np.exp(5) / (np.exp(5) + 3)
    expected = -(3 * np.log(p_hit) + np.log(1 / (np.exp(5) + 3))) / 4
    assert tasks.base.nats_per_token(z, targets) == pytest.approx(expected, rel=1e-12)
