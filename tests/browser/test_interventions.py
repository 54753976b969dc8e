"""The interventions view: a region picked on a value heatmap (or typed), a value, a re-run,
and (intervened − original) of every value map and ∂L/∂h as diverging heatmaps — the
numbers gatescope.run gives for both requests — with the experiment in the URL."""

from __future__ import annotations

import re

import numpy as np
from playwright.sync_api import Page, expect

import gatescope
from tests.helpers.browser import click_cell, js_fmt, open_page, shot

LSTM_MAPS = ["i", "f", "g", "o", "c", "h"]


def wait_interventions(page: Page) -> None:
    page.wait_for_function("document.body.dataset.interventions === 'ready'", timeout=30_000)


def shown_differences(page: Page) -> dict[str, np.ndarray]:
    """Each Δ map of the interventions view by its key, as (T, H)."""
    maps = page.evaluate("""() => [...document.querySelectorAll('#iv-maps .map')].map((m) => {
      const v = m.querySelector('.plot').gsValues;
      return {title: m.querySelector('h3').textContent, shape: v.shape, data: Array.from(v.data)};
    })""")
    out = {}
    for m in maps:
        key = m["title"].split(" ")[1]
        out[key] = np.array(m["data"]).reshape(m["shape"])
    return out


Run = gatescope.RunResult


def expected_differences(request: dict, interventions: list[dict], layer: int = 0
                         ) -> tuple[dict[str, np.ndarray], Run, Run]:
    before = gatescope.run(request)
    after = gatescope.run({**request, "interventions": interventions})
    a, b = after.layers[layer], before.layers[layer]
    want = {name: a.gates[name] - b.gates[name] for name in a.gates}
    want["h"] = a.h - b.h
    if a.c is not None:
        want["c"] = a.c - b.c
    want["∂L/∂h"] = a.grads["h"] - b.grads["h"]
    return want, before, after


def test_a_region_picked_on_a_heatmap_is_forced_and_the_difference_shown(page, server):
    open_page(page, server, "?H=6&fb=1&seq=hello+world")
    page.get_by_role("button", name="Select on a heatmap").click()
    expect(page.locator("#iv-pick")).to_have_attribute("aria-pressed", "true")
    click_cell(page, 2, 1, which=LSTM_MAPS.index("f"))
    expect(page.locator("#iv-pick-status")).to_contain_text("Corner at step 2, unit 1")
    assert page.evaluate("window.gatescope.state.view.step") == 0  # picking does not step
    click_cell(page, 5, 3, which=LSTM_MAPS.index("f"))
    expect(page.locator("#iv-pick")).to_have_attribute("aria-pressed", "false")
    assert page.locator("#iv-target").input_value() == "f"
    assert [page.locator(f"#iv-{k}").input_value() for k in ("t0", "t1", "u0", "u1")] == \
        ["2", "5", "1", "3"]
    page.locator("#iv-value").fill("1")
    page.get_by_role("button", name="Run with interventions").click()
    wait_interventions(page)
    expect(page).to_have_url(re.compile(r"iv=0%3Af%3A2-6%3A1-3%3A1"))

    request = page.evaluate("window.gatescope.state.request")
    iv = {"layer": 0, "target": "f", "start": 2, "stop": 6, "units": [1, 2, 3], "value": 1.0}
    want, before, after = expected_differences(request, [iv])
    shown = shown_differences(page)
    assert sorted(shown) == sorted(want)
    for name, diff in want.items():
        np.testing.assert_allclose(shown[name], diff, rtol=1e-12, atol=1e-15, err_msg=name)
    # the forced region is exactly 1 − f; nothing before step 2 moved
    np.testing.assert_allclose(shown["f"][2:6, 1:4], 1 - before.layers[0].gates["f"][2:6, 1:4])
    assert np.all(shown["h"][:2] == 0) and np.any(shown["h"][2:] != 0)
    summary = page.locator("#iv-summary")
    expect(summary).to_contain_text("f ← 1 for units 1–3 at steps 2–5")
    expect(summary).to_contain_text(f"from {js_fmt(before.loss, 6)} to {js_fmt(after.loss, 6)}")
    boxes = page.evaluate("[...document.querySelectorAll('#iv-maps .plot')]"
                          ".map(p => p.layout.shapes.filter(s => s.type === 'rect').length)")
    assert boxes == [1] * 7
    page.locator("#iv-maps").scroll_into_view_if_needed()
    shot(page, "desktop-interventions")


def test_a_linked_experiment_with_two_interventions_reproduces(page, server):
    # wipe c for every unit at step 4, then close o for unit 0 over steps 6–8: from the URL alone
    open_page(page, server, "?H=5&seq=abcdefghij&iv=0:c:4-5:*:0,0:o:6-9:0-0:0")
    wait_interventions(page)
    expect(page.locator("#iv-list li")).to_have_count(2)
    ivs = [{"layer": 0, "target": "c", "start": 4, "stop": 5, "units": None, "value": 0.0},
           {"layer": 0, "target": "o", "start": 6, "stop": 9, "units": [0], "value": 0.0}]
    want, _, _ = expected_differences(page.evaluate("window.gatescope.state.request"), ivs)
    shown = shown_differences(page)
    for name, diff in want.items():
        np.testing.assert_allclose(shown[name], diff, rtol=1e-12, atol=1e-15, err_msg=name)
    # removing one (✕) and running the rest; then clearing: the URL follows
    page.get_by_role("button", name=re.compile(r"^Remove: layer 0: c")).click()
    expect(page.locator("#iv-list li")).to_have_count(1)
    page.get_by_role("button", name="Run with interventions").click()  # the form holds o's
    expect(page).to_have_url(re.compile(r"iv=0%3Ao%3A6-9%3A0-0%3A0$"))
    wait_interventions(page)
    want, _, _ = expected_differences(page.evaluate("window.gatescope.state.request"), ivs[1:])
    np.testing.assert_allclose(shown_differences(page)["h"], want["h"], rtol=1e-12, atol=1e-15)
    page.get_by_role("button", name="Clear").click()
    expect(page).not_to_have_url(re.compile("iv="))
    expect(page.locator("#iv-maps .map")).to_have_count(0)


def test_presets_typed_ranges_and_mistakes_on_a_gru(page, server):
    open_page(page, server, "?cell=gru&H=4&seq=hello+there")
    options = page.locator("#iv-target option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["r", "z", "n", "h"]
    page.get_by_role("button", name="Wipe c = 0").click()
    expect(page.locator("#error-interventions")).to_contain_text("This cell has no c")
    page.get_by_role("button", name="Freeze a GRU (z = 1)").click()
    expect(page.locator("#error-interventions")).to_be_hidden()
    page.locator("#iv-t0").fill("3")
    page.locator("#iv-u0").fill("9")
    page.get_by_role("button", name="Add to the list").click()
    expect(page.locator("#error-interventions")).to_contain_text("within 0–3")
    page.locator("#iv-u0").fill("")
    page.get_by_role("button", name="Add to the list").click()
    expect(page.locator("#iv-list li")).to_have_text(
        ["layer 0: z ← 1 for every unit at steps 3–10 ✕"])
    page.get_by_role("button", name="Run with interventions").click()
    wait_interventions(page)
    want, _, _ = expected_differences(
        page.evaluate("window.gatescope.state.request"),
        [{"layer": 0, "target": "z", "start": 3, "stop": 11, "units": None, "value": 1.0}])
    shown = shown_differences(page)
    # z = 1 freezes h: from step 3 on it stays h_2, so Δh is h_2 − h_t there
    for name, diff in want.items():
        np.testing.assert_allclose(shown[name], diff, rtol=1e-12, atol=1e-15, err_msg=name)


def test_the_picker_refuses_a_map_nothing_can_replace(page, server):
    open_page(page, server, "?cell=rnn_tanh&H=4&seq=hello")
    page.get_by_role("button", name="Select on a heatmap").click()
    click_cell(page, 1, 0, which=1)  # a, the RNN's pre-activation: computed, not a state
    expect(page.locator("#iv-pick-status")).to_contain_text("a is computed from others")
    click_cell(page, 1, 0, which=0)  # h
    click_cell(page, 3, 2, which=0)
    assert page.locator("#iv-target").input_value() == "h"
    assert [page.locator(f"#iv-{k}").input_value() for k in ("t0", "t1", "u0", "u1")] == \
        ["1", "3", "0", "2"]


def test_interventions_that_no_longer_fit_are_dropped_and_history_restores_them(page, server):
    open_page(page, server, "?H=5&seq=abcdefghij&iv=0:f:2-4:*:1")
    wait_interventions(page)
    page.locator("#cell").select_option("gru")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#iv-summary")).to_contain_text("no longer fit this run (a GRU has no f)")
    expect(page).not_to_have_url(re.compile("iv="))
    expect(page.locator("#iv-list li")).to_have_count(0)
    expect(page.locator("#iv-maps .map")).to_have_count(0)
    page.go_back()  # the LSTM link again: its list and its differences come back
    wait_interventions(page)
    expect(page.locator("#iv-list li")).to_have_text(
        ["layer 0: f ← 1 for every unit at steps 2–3 ✕"])
    expect(page.locator("#iv-maps .map")).to_have_count(7)
