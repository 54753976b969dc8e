"""The gradient race: a tanh RNN, an LSTM and a GRU on the form's sequence, ‖∂L/∂h_t‖
overlaid on a log scale, each one's memory horizon in words, a recurrent-weight-scale
slider that provokes explosion, all in the URL."""

from __future__ import annotations

import numpy as np
from playwright.sync_api import Page, expect

import gatescope
from tests.helpers.browser import open_page, shot

SEQ = "the quick brown fox jumps over the lazy dog " * 3
CELLS = ["rnn_tanh", "lstm", "gru"]


def race_results(page: Page) -> list[gatescope.RunResult]:
    """The same three requests, run in-process."""
    requests = page.evaluate("window.gatescope.state.raceRequests")
    assert [r["cell"] for r in requests] == CELLS
    return [gatescope.run(r) for r in requests]


def horizon(norms: np.ndarray) -> int:
    """The longest lag back from the last step with ‖∂L/∂h_t‖ ≥ 1e−6 of its largest value."""
    above = np.nonzero(norms >= 1e-6 * norms.max())[0]
    return len(norms) - 1 - int(above[0])


def wait_race(page: Page, query_part: str = "race=1") -> None:
    page.wait_for_function(f"document.body.dataset.race === 'ready' && "
                           f"location.search.includes('{query_part}')", timeout=60_000)


def test_race_overlays_the_three_cells_and_states_their_horizons(page, server):
    open_page(page, server, "?H=24&seq=" + SEQ.replace(" ", "+"))
    page.get_by_role("button", name="Race").click()
    wait_race(page)
    traces = page.evaluate("document.getElementById('race-plot').data"
                           ".map(t => ({name: t.name, y: t.y}))")
    assert [t["name"] for t in traces] == ["RNN (tanh)", "LSTM", "GRU"]
    assert page.evaluate("document.getElementById('race-plot')._fullLayout.yaxis.type") == "log"
    results = race_results(page)
    for trace, result in zip(traces, results, strict=True):
        norms = result.layers[0].grads["h_norm"]
        np.testing.assert_allclose(np.array(trace["y"], dtype=float), norms, rtol=1e-12)
    items = page.locator("#race-horizons li")
    expect(items).to_have_count(3)
    for k in range(len(CELLS)):
        norms = results[k].layers[0].grads["h_norm"]
        assert items.nth(k).get_attribute("data-horizon") == str(horizon(norms))
    # the lecture's claim, on the page: the RNN forgets sooner than the LSTM (forget bias 1)
    assert int(items.nth(0).get_attribute("data-horizon")) < int(
        items.nth(1).get_attribute("data-horizon"))
    expect(items.nth(0)).to_contain_text("then vanishes")
    shot(page, "desktop-race")


def test_the_weight_scale_provokes_explosion_and_the_url_restores_it(page, server, context):
    open_page(page, server, "?H=24&seq=" + SEQ.replace(" ", "+"))
    page.get_by_role("button", name="Race").click()
    wait_race(page)
    page.get_by_label("Recurrent weight scale").fill("3")
    wait_race(page, "rs=3")
    rnn = page.locator("#race-horizons li").first
    expect(rnn).to_contain_text("explodes")
    results = race_results(page)
    norms = results[0].layers[0].grads["h_norm"]
    assert norms[0] > 100 * norms[-1]  # in-process too: it grows going back
    copied = page.url
    other = context.new_page()
    try:
        other.goto(copied)
        wait_race(other, "rs=3")
        expect(other.get_by_label("Recurrent weight scale")).to_have_value("3")
        expect(other.locator("#race-horizons li").first).to_contain_text("explodes")
    finally:
        other.close()
