"""The saturation view: per sigmoid gate, each unit's share of steps below 0.1 and above
0.9 (Karpathy et al. 2015) — computed from the numbers gatescope.run gives — for the layer
shown; a click on a unit's point follows that unit."""

from __future__ import annotations

import numpy as np
from playwright.sync_api import Page, expect

import gatescope
from tests.helpers.browser import click_cell, open_page, shot

SEQ = "the+quick+brown+fox+jumps+over+the+lazy+dog"


def shown(page: Page) -> dict[str, dict[str, list[float]]]:
    return page.evaluate("Object.fromEntries([...document.querySelectorAll('#saturation-plots "
                         ".satplot')].map(d => [d.dataset.gate, d.gsSaturation]))")


def expected(gates: np.ndarray) -> dict[str, np.ndarray]:
    return {"low": (gates < 0.1).mean(axis=0), "high": (gates > 0.9).mean(axis=0)}


def test_gru_gates_saturation_per_unit_and_layer(page, server):
    open_page(page, server, f"?cell=gru&H=12&L=2&seed=3&seq={SEQ}")
    result = gatescope.run(page.evaluate("window.gatescope.state.request"))
    got = shown(page)
    assert sorted(got) == ["r", "z"]
    for g in ("r", "z"):
        want = expected(result.layers[0].gates[g])
        np.testing.assert_allclose(got[g]["low"], want["low"], rtol=1e-12, err_msg=g)
        np.testing.assert_allclose(got[g]["high"], want["high"], rtol=1e-12, err_msg=g)
    expect(page.locator("#saturation-summary")).to_contain_text("Layer 0, over 43 steps")
    # the layer selector moves the view to layer 1's gates
    page.locator("#layer").select_option("1")
    expect(page.locator("#saturation-summary")).to_contain_text("Layer 1")
    got = shown(page)
    for g in ("r", "z"):
        want = expected(result.layers[1].gates[g])
        np.testing.assert_allclose(got[g]["high"], want["high"], rtol=1e-12, err_msg=g)


def test_lstm_point_click_follows_the_unit_and_rnn_says_why_empty(page, server):
    open_page(page, server, f"?H=8&fb=1&seq={SEQ}")  # forget bias 1: f often > 0.9
    result = gatescope.run(page.evaluate("window.gatescope.state.request"))
    got = shown(page)
    assert sorted(got) == ["f", "i", "o"]
    want = expected(result.layers[0].gates["f"])
    np.testing.assert_allclose(got["f"]["high"], want["high"], rtol=1e-12)
    assert max(want["high"]) > 0.5  # the setup really saturates something
    open_count = int(np.sum(want["high"] > 0.5))
    expect(page.locator("#saturation-summary")).to_contain_text(
        f"f: {open_count} of 8 units open (> 0.9)")
    page.wait_for_function("document.body.dataset.matrices")  # the page's last layout change
    points = list(zip(want["low"], want["high"], strict=True))
    j = next(j for j, p in enumerate(points) if points.count(p) == 1 and j != 0)  # unit 0: shown
    click_cell(page, want["low"][j], want["high"][j], which=1,
               plots="#saturation-plots .satplot")
    page.wait_for_function(f"window.gatescope.state.view.unit === {j}")
    page.locator("#saturation").scroll_into_view_if_needed()
    shot(page, "desktop-saturation")
    page.goto(f"{server}/?cell=rnn_tanh&H=4&seq=abc")
    page.wait_for_function("document.body.dataset.state === 'ready'")
    expect(page.locator("#saturation-summary")).to_contain_text("A vanilla RNN has no gates")
    expect(page.locator("#saturation-plots .satplot")).to_have_count(0)
