"""Units worth looking at (gatescope.core.units): the input properties on texts worked by hand,
ranking by |Pearson r| against numpy's corrcoef, and the cards' unit lists."""

from __future__ import annotations

import numpy as np
import pytest

from gatescope import tasks
from gatescope.core import units
from gatescope.core.cells import CELLS
from gatescope.training.trainer import init_params, top_units, unit_texts


def test_depth_counts_every_bracket_kind():
    assert units.depth("f([a], {b}))").tolist() == [0, 1, 2, 2, 1, 1, 1, 2, 2, 1, 0, -1]
    assert units.depth("(().").tolist() == [1, 2, 1, 1]


def test_in_quotes_opens_and_closes_with_the_same_character():
    text = """a='x"y' "it's" b"""
    want = [0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    assert len(text) == len(want)
    assert units.in_quotes(text).tolist() == want
    assert units.in_quotes("'\\'x").tolist() == [1, 1, 0, 0]  # no escapes: \\ is a character


def test_indent_grows_while_typed_then_holds():
    text = "ab\n  x y\n    z\n\n"
    want = [0, 0, 0, 1, 2, 2, 2, 2, 0, 1, 2, 3, 4, 4, 0, 0]
    assert len(text) == len(want)
    assert units.indent(text).tolist() == want
    assert units.indent("  ").tolist() == [1, 2]  # a window that starts mid-indentation


def test_since_start_and_values_are_time_first():
    assert units.since_start("abc").tolist() == [0, 1, 2]
    v = units.values("depth", ["((", "()"])
    assert v.shape == (2, 2) and v.tolist() == [[1, 1], [2, 0]]
    with pytest.raises(ValueError, match="unknown property"):
        units.values("colour", ["a"])


def test_rank_units_is_pearson_by_absolute_value():
    rng = np.random.default_rng(0)
    v = rng.normal(size=200)
    h = np.stack([rng.normal(size=200),          # unrelated
                  -2.0 * v + 0.1 * rng.normal(size=200),  # strongly, inversely
                  np.full(200, 3.0),              # constant: r = 0, not NaN
                  v + rng.normal(size=200)], axis=1)  # partly
    ranked = units.rank_units(h, v)
    assert [j for j, _ in ranked][:2] == [1, 3] and ranked[-1] == (2, 0.0)
    for j, r in ranked:
        want = 0.0 if j == 2 else np.corrcoef(h[:, j], v)[0, 1]
        assert r == pytest.approx(want, abs=1e-12)
    assert ranked[0][1] < -0.99
    assert all(r == 0.0 for _, r in units.rank_units(h, np.ones(200)))
    # (T, n, H) states and (T, n) values flatten in the same order
    h3, v3 = h.reshape(20, 10, 4), v.reshape(20, 10)
    assert units.rank_units(h3, v3) == ranked
    with pytest.raises(ValueError, match="values"):
        units.pearson(h, v[:-1])


def test_why_reads_the_numbers():
    assert units.why("depth", 0.974, 64, 40) == (
        "its h tracks the bracket depth (r = 0.97 over 64 validation sequences of 40 steps)")
    assert "tracks whether the text is inside a string literal, inversely (r = -0.91" in \
        units.why("in_quotes", -0.91, 64, 100)
    assert "barely related" in units.why("indent", 0.05, 64, 100)


def test_top_units_finds_a_unit_planted_to_count_brackets():
    """A GRU whose unit 2 is wired to add +x for "(" and −x for ")" and hold its value
    (update gate shut): its h is tanh of a running count, so it must rank first for depth."""
    task = tasks.get("bracket_depth:length=30,max_depth=4")
    H = 6
    p = init_params(CELLS["gru"], D=3, H=H, L=1, K=5, seed=1, dtype=np.dtype(np.float64))
    texts = unit_texts(task, seed=1, n=32)
    ranked = top_units(CELLS["gru"], p, task, texts)
    assert [u["property"] for u in ranked] == ["depth"] * 3
    j = 2
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        p[name][[j, H + j, 2 * H + j]] = 0.0
    # z = σ(b) ≈ 1 keeps h except where a bracket arrives: z → 0 there, n = tanh(h·w + x)
    p["bias_ih_l0"][H + j] = 20.0
    p["weight_ih_l0"][H + j, :2] = -40.0  # "(" or ")": open the update for this step
    p["weight_ih_l0"][2 * H + j, :2] = [0.05, -0.05]  # small: tanh is nearly linear
    p["weight_hh_l0"][2 * H + j, j] = 1.0  # n = tanh(h_{t-1} ± 0.05) ≈ h_{t-1} ± 0.05
    p["bias_hh_l0"][:H] = 20.0  # r ≈ 1: the candidate sees the whole previous h
    ranked = top_units(CELLS["gru"], p, task, texts)
    assert ranked[0]["unit"] == j and ranked[0]["r"] > 0.95, ranked
    assert ranked[0]["layer"] == 0 and "tracks the bracket depth" in ranked[0]["why"]
