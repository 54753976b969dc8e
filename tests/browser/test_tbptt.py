"""The truncated-BPTT view: window boundaries on every heatmap, full and truncated
gradients side by side, the share lost per step and the cosine similarity of the parameter
gradients — the numbers gatescope.run gives for both."""

from __future__ import annotations

import math

import numpy as np
from playwright.sync_api import expect

import gatescope
from tests.helpers.browser import open_page, shot


def test_truncation_is_compared_with_full_bptt(page, server):
    open_page(page, server, "?k=4&H=6&L=2&loss=all&seq=the+quick+brown+fox+jumps")
    page.wait_for_function("document.body.dataset.tbptt === '4'", timeout=30_000)
    request = page.evaluate("window.gatescope.state.request")
    truncated = gatescope.run(request)
    full = gatescope.run({k: v for k, v in request.items() if k != "truncate"})
    T = truncated.steps
    # boundaries at every heatmap, where each window starts
    xs = page.evaluate("[...document.querySelectorAll('#value-maps .plot, #grad-maps .plot')]"
                       ".map(p => (p.layout.shapes || []).map(s => s.x0))")
    assert all(x == [k - 0.5 for k in range(4, T, 4)] for x in xs) and len(xs) == 12
    top = truncated.layers[-1].grads["h"]
    want = [np.linalg.norm(f - t) / np.linalg.norm(f) for f, t in
            zip(full.layers[-1].grads["h"], top, strict=True)]
    np.testing.assert_allclose(page.evaluate("document.getElementById('tbptt-lost').gsLost"),
                               want, rtol=1e-9)
    flat = [np.concatenate([g.ravel() for g in r.param_grads.values()]) for r in (full, truncated)]
    cos = float(flat[0] @ flat[1] / np.linalg.norm(flat[0]) / np.linalg.norm(flat[1]))
    shown = float(page.evaluate("document.getElementById('tbptt').dataset.cosine"))
    assert math.isclose(shown, cos, rel_tol=1e-9)
    expect(page.locator("#tbptt-summary")).to_contain_text("window of 4 steps")
    shot(page, "desktop-tbptt")


def test_without_truncation_the_view_says_how_to_use_it(page, server):
    open_page(page, server, "?H=4")
    expect(page.locator("#tbptt-summary")).to_contain_text("Set a truncation window")
