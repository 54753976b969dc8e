"""Trained models in the explorer: a bundled preset loads with its card's example in one
click and runs; the readout's top five guesses per step; "find units" ranks the bracket
model's depth unit (named in its card) first — with the page's properties defined exactly
as the trainer's (gatescope.core.units)."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect

import gatescope
from gatescope.core import units
from gatescope.models.store import ModelStore
from tests.helpers.browser import (
    assert_maps_match,
    maps,
    open_page,
    page_request,
    revision,
    shot,
    wait_new_result,
)


def preset(server: str, kind: str, cell: str) -> dict[str, Any]:
    """The bundled preset for a task kind and cell, as GET /api/v1/models lists it."""
    with urllib.request.urlopen(f"{server}/api/v1/models") as r:
        listed = json.load(r)["data"]
    found = [m for m in listed if m["preset"] and m["cell"] == cell
             and (m["task"] or "").split(":")[0] == kind]
    assert found, f"no bundled {cell} preset for {kind}"
    return found[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ModelStore:
    """The bundled presets, read in-process, to compute what the page must show."""
    return ModelStore(tmp_path_factory.mktemp("presets-data"))


def choose_preset(page: Page, server: str, info: dict[str, Any]) -> None:
    """Open the page and pick the preset from the "Trained model" menu."""
    open_page(page, server)
    before = revision(page)
    page.locator("#preset").select_option(info["model_id"])
    wait_new_result(page, before)


def shown_top(page: Page) -> list[list[list[float]]]:
    return page.evaluate("document.getElementById('predictions-grid').gsTop")


def test_a_preset_loads_with_its_example_and_shows_five_guesses_per_step(page, server, store):
    info = preset(server, "bracket_depth", "lstm")
    choose_preset(page, server, info)
    expect(page).to_have_url(re.compile(f"model={info['model_id']}"))
    request = page_request(page)
    example = info["card"]["example"]
    assert request["weights"] == {"model_id": info["model_id"]}
    assert request["input"] == {"text": example} and request["loss"] == {"type": "task"}
    result = gatescope.run(request, models=store)
    assert_maps_match(maps(page), result, 0)
    # Karpathy's view: under each character, the five most probable labels
    T = len(example)
    expect(page.locator("#predictions .pred-col")).to_have_count(T)
    counts = page.locator("#predictions .pred-col").evaluate_all(
        "cols => cols.map(c => c.querySelectorAll('.pred-guess').length)")
    assert counts == [min(5, len(info["labels"]))] * T
    top = shown_top(page)
    probs = result.outputs["probs"]
    # the five largest probabilities, best first, each under its own label
    np.testing.assert_allclose([[p for _, p in step] for step in top],
                               -np.sort(-probs, axis=1)[:, :5], rtol=1e-6)
    for t, step in enumerate(top):
        np.testing.assert_allclose([p for _, p in step], probs[t, [j for j, _ in step]], rtol=1e-6)
    # the cursor's column follows the step
    expect(page.locator("#predictions .pred-col.current")).to_have_count(1)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    current = page.locator("#predictions .pred-col").evaluate_all(
        "cols => cols.findIndex(c => c.classList.contains('current'))")
    assert current == 2 == page.evaluate("window.gatescope.state.view.step")
    first = page.locator("#predictions .pred-col").first.locator(".pred-guess").first
    expect(first).to_have_text(info["labels"][top[0][0][0]])
    assert page.locator("#preset").input_value() == info["model_id"]
    page.locator("#predictions").scroll_into_view_if_needed()
    shot(page, "desktop-preset-predictions")


def test_find_units_ranks_the_cards_depth_unit_first(page, server, store):
    info = preset(server, "bracket_depth", "lstm")
    known = [u for u in info["card"]["units"] if u["property"] == "depth"]
    assert known, "the bracket model's card names no depth unit"
    text = info["card"]["example"]
    query = f"?w=model&model={info['model_id']}&loss=task&seq={urllib.request.quote(text)}"
    open_page(page, server, query)
    assert page.locator("#fu-property").input_value() == "depth"  # chosen for the task
    ranked = page.evaluate("document.getElementById('fu-list').gsRanked")
    assert ranked[0][0] == known[0]["unit"], (ranked[:3], known)
    # the same ranking as the trainer's analysis, on this input
    result = gatescope.run(page_request(page), models=store)
    want = units.rank_units(result.layers[-1].h, units.depth(text))
    assert [j for j, _ in ranked] == [j for j, _ in want]
    np.testing.assert_allclose([r for _, r in ranked], [r for _, r in want], rtol=1e-9)
    expect(page.locator("#fu-summary")).to_contain_text(
        f"unit {known[0]['unit']} follows bracket depth")
    page.locator("#fu-list button").nth(1).click()
    second = ranked[1][0]
    page.wait_for_function(f"window.gatescope.state.view.unit === {second}")
    expect(page.locator("#fu-plot")).to_have_attribute("data-unit", str(second))
    page.locator("#find-units").scroll_into_view_if_needed()
    shot(page, "desktop-find-units")


def test_a_character_model_outlines_the_character_that_comes_next(page, server, store):
    info = preset(server, "char_lm", "lstm")
    choose_preset(page, server, info)
    tokens = page.evaluate("window.gatescope.state.result.tokens")
    top = shown_top(page)
    labels = info["labels"]
    hits = page.locator("#predictions .pred-col").evaluate_all(
        "cols => cols.map(c => [...c.querySelectorAll('.pred-guess')]"
        ".findIndex(g => g.classList.contains('hit')))")
    for t in range(len(tokens)):
        guessed = [labels[j] for j, _ in top[t]]
        nxt = tokens[t + 1] if t + 1 < len(tokens) else None
        want = guessed.index(nxt) if nxt in guessed else -1
        assert hits[t] == want, t
    assert sum(h >= 0 for h in hits) > len(tokens) / 2  # a trained model mostly guesses right
    assert page.locator("#fu-property").input_value() == "in_quotes"


def test_the_page_defines_the_properties_as_the_trainer_does(page, server):
    open_page(page, server, "?H=2")
    text = "def f(x):\n    s = 'a(b\"' + \"c'd\"\n  [1, {2}]\n)) \n\n  x"
    shown = page.evaluate("""async (text) => {
      const m = await import('/js/views/findunits.js');
      return Object.fromEntries(Object.entries(m.PROPERTIES)
        .map(([k, p]) => [k, p.values([...text])]));
    }""", text)
    assert sorted(shown) == sorted(units.PROPERTIES)
    for name, values in shown.items():
        np.testing.assert_array_equal(values, units.PROPERTIES[name](text), err_msg=name)
