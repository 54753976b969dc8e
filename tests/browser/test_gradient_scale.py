"""The gradient maps' log colour scale: a vanishing gradient shows its whole fall (each
cell coloured by sign(v)·log₁₀(|v| / floor) / 6, floor = 10⁻⁶ of the map's largest |v|),
the numbers behind the map (what hover and exports read) stay the values themselves, and
the choice is in the URL."""

from __future__ import annotations

import re

import numpy as np
from playwright.sync_api import Page, expect

import gatescope
from tests.helpers.browser import open_page, page_request, shot

SEQ = "the+quick+brown+fox+jumps+over+the+lazy+dog"


def grad_maps(page: Page) -> list[dict]:
    return page.evaluate("""[...document.querySelectorAll('#grad-maps .map .plot')].map(p => ({
      scale: p.gsValues.scale, shape: p.gsValues.shape, data: Array.from(p.gsValues.data),
      painted: Array.from(p.gsValues.painted),
      ticks: p.data[1].marker.colorbar.ticktext || null}))""")


def symlog(v: np.ndarray, decades: int = 6) -> np.ndarray:
    floor = np.abs(v).max() * 10.0**-decades
    return np.where(np.abs(v) > floor, np.sign(v) * np.log10(np.abs(v) / floor) / decades, 0.0)


def test_log_scale_shows_a_vanishing_gradient_and_links(page, server):
    open_page(page, server, f"?cell=rnn_tanh&H=8&seq={SEQ}")
    result = gatescope.run(page_request(page))
    dh = result.layers[0].grads["h"]
    linear = grad_maps(page)[0]
    assert linear["scale"] == "linear" and linear["painted"] == linear["data"]
    page.locator("#grad-scale").select_option("log")
    expect(page).to_have_url(re.compile("gs=log"))
    shown = grad_maps(page)
    assert [m["scale"] for m in shown] == ["log", "log"]  # ∂L/∂h and ∂L/∂a_a
    np.testing.assert_allclose(np.reshape(shown[0]["data"], dh.shape), dh, rtol=1e-12)  # values
    np.testing.assert_allclose(np.reshape(shown[0]["painted"], dh.shape), symlog(dh), atol=1e-12)
    # steps whose gradient is 10⁻⁵..10⁻² of the largest: near-white linearly, coloured here
    share = np.abs(dh).max(axis=1) / np.abs(dh).max()
    faint = (share > 1e-5) & (share < 1e-2)
    assert faint.sum() >= 3 and np.abs(symlog(dh)[faint]).max(axis=1).min() > 0.15
    assert shown[0]["ticks"][2] == "0" and len(shown[0]["ticks"]) == 5
    page.locator("#grad-maps").scroll_into_view_if_needed()
    shot(page, "desktop-gradient-log-scale")
    page.reload()
    page.wait_for_function("document.body.dataset.state === 'ready'")
    assert page.locator("#grad-scale").input_value() == "log"
    assert grad_maps(page)[0]["scale"] == "log"
