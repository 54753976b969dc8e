"""The formula view: the four terms of ∂c_t/∂c_{t−1} per step (norms and flow) with the
equation in the same colours, and the H×H matrices at the cursor's step from /jacobian;
a GRU or an RNN shows ∂h_t/∂h_{t−1} with its explanation."""

from __future__ import annotations

import numpy as np
from playwright.sync_api import Page, expect

import gatescope
from tests.helpers.browser import open_page, shot


def wait_matrices(page: Page, step: int, layer: int = 0) -> None:
    page.wait_for_function(f"document.body.dataset.matrices === '{step}/{layer}'",
                           timeout=30_000)


def lines(page: Page, plot: str) -> dict[str, list]:
    return page.evaluate(f"Object.fromEntries(document.getElementById('{plot}').data"
                         ".map(t => [t.name, t.y]))")


def test_lstm_terms_flow_and_matrices_are_the_apis(page, server):
    open_page(page, server, "?H=6&L=2&layer=1&t=4&seq=the+cat+sat")
    wait_matrices(page, 4, 1)
    request = page.evaluate("window.gatescope.state.request")
    result = gatescope.run(request)
    jac = result.layers[1].jacobian
    shown = lines(page, "formula-norms")
    assert list(shown) == ["direct", "forget", "input", "candidate", "total"]
    for name, y in shown.items():
        want = np.where(jac[name] > 0, jac[name], np.nan)
        np.testing.assert_allclose(np.array(y, dtype=float), want, rtol=1e-12)
    flow = lines(page, "formula-flow")
    for name, y in flow.items():
        want = np.where(jac["flow"][name] > 0, jac["flow"][name], np.nan)
        np.testing.assert_allclose(np.array(y, dtype=float), want, rtol=1e-12)
    expect(page.locator("#formula-eq .term")).to_have_count(4)
    matrices = gatescope.jacobian(request, step=4, layer=1)
    shown = page.evaluate("[...document.querySelectorAll('#formula-matrices .matrix')]"
                          ".map(d => Array.from(d.gsValues.data))")
    want = [*(matrices.terms[k] for k in ("direct", "forget", "input", "candidate")),
            matrices.total]
    assert len(shown) == 5
    for got, expected in zip(shown, want, strict=True):
        np.testing.assert_allclose(np.array(got).reshape(6, 6), expected, rtol=1e-12,
                                   atol=1e-300)
    # stepping moves the matrices to the new step
    page.locator("body").press("ArrowRight")
    wait_matrices(page, 5, 1)
    expect(page.locator("#formula-step-title")).to_contain_text("t = 5")
    shot(page, "desktop-formula")


def test_rnn_shows_the_fixed_pattern(page, server):
    open_page(page, server, "?cell=rnn_tanh&H=5&t=2")
    wait_matrices(page, 2)
    expect(page.locator("#formula-eq")).to_contain_text("diag(1 − h_t²)·W_hh")
    assert list(lines(page, "formula-norms")) == ["total"]
    shown = page.evaluate("[...document.querySelectorAll('#formula-matrices .matrix')]"
                          ".map(d => Array.from(d.gsValues.data))")
    request = page.evaluate("window.gatescope.state.request")
    total = gatescope.jacobian(request, step=2).total
    assert len(shown) == 1
    np.testing.assert_allclose(np.array(shown[0]).reshape(5, 5), total, rtol=1e-12)
