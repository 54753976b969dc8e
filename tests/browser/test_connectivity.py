"""The connectivity view: ‖∂(Σ_j h_t[j]) / ∂x_s‖ as a lower-triangular map with token
labels, the numbers gatescope.run gives, per layer, in the URL; a too-long input is refused
with the server's reason beside the button."""

from __future__ import annotations

import re

import numpy as np
from playwright.sync_api import Page, expect

import gatescope
from tests.helpers.browser import click_cell, open_page, shot


def wait_connectivity(page: Page) -> None:
    page.wait_for_function("document.body.dataset.connectivity === 'ready'", timeout=30_000)


def shown(page: Page) -> np.ndarray:
    v = page.evaluate("(() => { const v = document.getElementById('connectivity-plot').gsValues;"
                      " return {shape: v.shape, data: Array.from(v.data)}; })()")
    return np.array(v["data"]).reshape(v["shape"])


def test_connectivity_is_computed_drawn_per_layer_and_linked(page, server):
    open_page(page, server, "?H=8&L=2&fb=1&seq=a+cat+sat+on+a+mat")
    page.get_by_role("button", name="Compute connectivity").click()
    wait_connectivity(page)
    expect(page).to_have_url(re.compile("conn=1"))
    request = page.evaluate("window.gatescope.state.request")
    result = gatescope.run({**request, "connectivity": True})
    np.testing.assert_allclose(shown(page), result.layers[0].connectivity, rtol=1e-12)
    assert np.all(np.triu(shown(page), 1) == 0) and np.all(np.diag(shown(page)) > 0)
    ticks = page.evaluate("document.getElementById('connectivity-plot').layout.xaxis.ticktext")
    assert ticks == ["a", "␣", "c", "a", "t", "␣", "s", "a", "t", "␣", "o", "n", "␣", "a", "␣",
                     "m", "a", "t"]
    expect(page.locator("#connectivity-summary")).to_contain_text("Layer 0, 18 steps")
    page.locator("#layer").select_option("1")
    expect(page.locator("#connectivity-summary")).to_contain_text("Layer 1, 18 steps")
    np.testing.assert_allclose(shown(page), result.layers[1].connectivity, rtol=1e-12)
    click_cell(page, 2, 9, plots="#connectivity-plot")  # row t = 9: the step moves there
    page.wait_for_function("window.gatescope.state.view.step === 9")
    page.locator("#connectivity").scroll_into_view_if_needed()
    shot(page, "desktop-connectivity")
    # the link alone brings it back
    page.goto(page.url)
    wait_connectivity(page)
    np.testing.assert_allclose(shown(page), result.layers[1].connectivity, rtol=1e-12)
    page.get_by_role("button", name="Hide").click()
    expect(page).not_to_have_url(re.compile("conn="))
    assert page.evaluate("document.getElementById('connectivity-plot').data") is None


def test_too_long_for_connectivity_is_refused_with_the_limit(pages, server):
    page = pages.new()
    pages.watch.allowed_console.append(re.compile(r"status of 422"))  # Chromium logs the refusal
    open_page(page, server, "?H=4&seq=" + "ab" * 300)  # 600 steps: runs, but T > 512
    page.get_by_role("button", name="Compute connectivity").click()
    page.wait_for_function("document.body.dataset.connectivity === 'error'")
    expect(page.locator("#error-connectivity")).to_contain_text("512")
    expect(page.locator("#connectivity-run")).to_be_enabled()
    # a refused ask is not repeated by the next run
    asked = []
    page.on("request", lambda r: asked.append(r.post_data or "") if "/run" in r.url else None)
    page.locator("#seed").fill("1")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function("document.body.dataset.state === 'ready'")
    # connectivity would have been asked, synchronously, while the result was drawn
    assert page.evaluate("document.body.dataset.connectivity") == "error"
    assert len(asked) == 1 and '"connectivity"' not in asked[0]
    expect(page.locator("#error-connectivity")).to_be_hidden()
