"""GRU and RNN pages draw their own panels; on a 390 px phone the page works and does not
scroll sideways."""

from __future__ import annotations

from playwright.sync_api import Page, expect

import gatescope
from tests.helpers.browser import (
    MOBILE,
    all_maps,
    assert_maps_match,
    click_run,
    field,
    grad_titles,
    open_page,
    page_request,
    short,
    shot,
    value_titles,
)

STRIPS = {
    "gru": ["x_t", "h_{t−1}", "r", "z", "n", "(1−z)⊙n", "z⊙h_{t−1}", "h_t"],
    "rnn_tanh": ["x_t", "h_{t−1}", "a", "h_t"],
}
EQUATIONS = {
    "gru": ["r = σ(a_r)", "z = σ(a_z)", "n = tanh(a_n)", "h_t = (1−z)·n + z·h_{t−1}",
            "∂L/∂a_n", "∂L/∂a_z", "∂L/∂a_r", "‖∂h_t/∂h_{t−1}‖_F"],
    "rnn_tanh": ["h_t = tanh(a)", "∂L/∂a = ∂L/∂h_t·(1−h_t²)", "‖∂h_t/∂h_{t−1}‖_F"],
}
BARS = {"gru": 3, "rnn_tanh": 1}  # one row of bars per gate (h for an RNN)
LABEL = {"gru": "GRU", "rnn_tanh": "RNN_TANH"}


def check_cell(page: Page, cell: str) -> None:
    expect(page.locator("#values-title")).to_contain_text(f"layer 0 · {LABEL[cell]} · T=")
    shown = all_maps(page)
    titles = [short(m["title"]) for m in shown]
    assert titles == value_titles(cell) + grad_titles(cell)
    assert_maps_match(shown, gatescope.run(page_request(page)), 0)
    names = page.locator("#diagram .strip-row .name").all_text_contents()
    assert names == STRIPS[cell]
    text = page.locator("#equations").inner_text()
    for piece in EQUATIONS[cell]:
        assert piece in text, (piece, text)
    assert "c_t" not in text  # no LSTM leftovers
    box = page.locator("#bars canvas").bounding_box()
    assert box is not None and box["height"] == 26 * BARS[cell]


def test_gru_and_rnn_pages_render_their_own_panels(page, server):
    open_page(page, server, "?cell=gru&seq=gated+units")
    expect(field(page, "Cell")).to_have_value("gru")
    expect(field(page, "Forget-gate bias")).to_be_hidden()
    check_cell(page, "gru")
    shot(page, "desktop-gru")

    field(page, "Cell").select_option("rnn_tanh")
    click_run(page)
    check_cell(page, "rnn_tanh")
    shot(page, "desktop-rnn-tanh")
    # narrowed to a phone, the maps shrink to the new width and the cursors follow
    page.set_viewport_size(MOBILE)
    page.wait_for_function("""() => [...document.querySelectorAll('.map .plot')].every((p) =>
        p._fullLayout.width === Math.round(p.getBoundingClientRect().width)
        && p._fullLayout.width < 390)""")
    page.wait_for_function("""() => [...document.querySelectorAll('.map')].every((m) => {
        const p = m.querySelector('.plot'), xa = p._fullLayout.xaxis;
        const left = p.getBoundingClientRect().left + xa._offset + xa.l2p(-0.5);
        return Math.abs(m.querySelector('.cursor').getBoundingClientRect().left - left) <= 3;
    })""")
    assert page.evaluate("document.documentElement.scrollWidth") <= MOBILE["width"] + 2
    shot(page, "mobile-rnn-tanh")


def test_mobile_page_is_usable_without_sideways_scrolling(pages, server):
    page = pages.new(MOBILE)
    open_page(page, server)
    shot(page, "mobile-lstm")
    shot(page, "mobile-lstm-full", full_page=True)
    run = page.get_by_role("button", name="Run", exact=True)
    sequence = field(page, "Sequence")
    for control in (run, sequence):
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= MOBILE["width"]
    sequence.fill("mobile")
    run.click()
    page.wait_for_function("window.gatescope.state.result.steps === 6"
                           " && document.body.dataset.state === 'ready'")
    expect(page.locator("#values-title")).to_contain_text("T=6, H=16")
    # the step panel follows the maps in one column
    panel = page.locator(".step-panel").bounding_box()
    plots = page.locator(".plots").bounding_box()
    assert panel is not None and plots is not None and panel["y"] > plots["y"]
    widths = page.evaluate("""() => ({doc: document.documentElement.scrollWidth,
      body: document.body.scrollWidth,
      wide: [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
        .slice(0, 8).map((e) => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className
                           + ' right=' + Math.round(e.getBoundingClientRect().right))})""")
    shot(page, "mobile-lstm-after-run", full_page=True)
    assert widths["doc"] <= MOBILE["width"] + 2, widths
    assert widths["body"] <= MOBILE["width"] + 2, widths
