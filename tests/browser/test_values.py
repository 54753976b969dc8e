"""The page runs its example on load, and every heatmap shows exactly the numbers the API
computes: T columns, H rows, the same values as `gatescope.run` on the same request."""

from __future__ import annotations

import numpy as np
from playwright.sync_api import expect

import gatescope
from tests.helpers.browser import (
    all_maps,
    assert_maps_match,
    click_run,
    field,
    grad_titles,
    maps,
    open_page,
    page_request,
    png_sizes,
    short,
    shot,
    value_titles,
)

# colors.js's scales, written out here independently: viridis (9 stops) for 0..1 values,
# ColorBrewer RdBu (11 stops, white at 0) for signed ones; 1024-entry lookup.
VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962",
           "#addc30", "#fde725"]
RDBU = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#ffffff", "#fddbc7",
        "#f4a582", "#d6604d", "#b2182b", "#67001f"]


def colour(value: float, kind: str, zmin: float, zmax: float) -> np.ndarray:
    stops = np.array([[int(h[k:k + 2], 16) for k in (1, 3, 5)]
                      for h in (VIRIDIS if kind == "unit" else RDBU)], dtype=float)
    k = min(max(round((value - zmin) * 1023 / (zmax - zmin)), 0), 1023)
    pos = k / 1023 * (len(stops) - 1)
    lo = min(int(pos), len(stops) - 2)
    return stops[lo] + (stops[lo + 1] - stops[lo]) * (pos - lo)


def test_default_example_runs_on_load(pages, server):
    page = pages.new()
    page.goto(f"{server}/")
    # "running" first, then "ready": the example runs without a click
    page.wait_for_function("['running', 'ready'].includes(document.body.dataset.state)")
    page.wait_for_function("document.body.dataset.state === 'ready'")
    state = page.evaluate("""() => { const s = window.gatescope.state;
      return {config: s.ranConfig, steps: s.result.steps, hidden: s.result.hidden_size,
              cell: s.result.cell, step: document.body.dataset.step}; }""")
    assert state["config"]["cell"] == "lstm" and state["config"]["sequence"] == "hello world"
    assert (state["cell"], state["steps"], state["hidden"]) == ("lstm", 11, 16)
    assert state["step"] == "0"
    value_maps = page.locator("#value-maps .map .plot")
    expect(value_maps).to_have_count(6)
    expect(page.locator("#grad-maps .map .plot")).to_have_count(6)
    for k in range(6):
        expect(value_maps.nth(k).locator(".main-svg").first).to_be_visible()
    assert [short(m["title"]) for m in maps(page, "value")] == value_titles("lstm")
    assert [short(m["title"]) for m in maps(page, "grad")] == grad_titles("lstm")
    expect(page.locator("#values-title")).to_contain_text("LSTM · T=11, H=16")
    expect(page.locator("#status")).to_contain_text("11 steps × 16 units")
    shot(page, "desktop-lstm")
    shot(page, "desktop-lstm-full", full_page=True)


def test_run_from_the_form_shows_the_api_numbers(page, server):
    open_page(page, server)
    field(page, "Sequence").fill("the cat sat")
    field(page, "Hidden size").fill("7")
    for dtype in ("float64", "float32"):
        field(page, "Precision").select_option(dtype)
        click_run(page)
        check_maps_against_the_api(page, dtype)


def check_maps_against_the_api(page, dtype: str) -> None:
    request = page_request(page)
    assert request["input"] == {"text": "the cat sat"}
    assert (request["hidden_size"], request["dtype"]) == (7, dtype)
    result = gatescope.run(request)
    T, H = 11, 7
    assert (result.steps, result.hidden_size) == (T, H)

    shown = all_maps(page)
    assert [short(m["title"]) for m in shown] == value_titles("lstm") + grad_titles("lstm")
    assert png_sizes(page) == [[T, H]] * len(shown)
    assert_maps_match(shown, result, 0)

    # a few pixels of each image against the colour scale: time across, units down
    pixels = page.evaluate("""async (cells) => Promise.all(
      [...document.querySelectorAll('#value-maps .map .plot, #grad-maps .map .plot')]
        .map(async (plot) => {
          const img = new Image();
          img.src = plot.data[0].source;
          await img.decode();
          const c = document.createElement('canvas');
          c.width = img.naturalWidth; c.height = img.naturalHeight;
          const ctx = c.getContext('2d');
          ctx.drawImage(img, 0, 0);
          return cells.map(([t, j]) => Array.from(ctx.getImageData(t, j, 1, 1).data));
        }))""", [[0, 0], [10, 0], [3, 6], [7, 2]])
    for m, got in zip(shown, pixels, strict=True):
        data = np.asarray(m["data"]).reshape(T, H)
        for (t, j), rgba in zip([(0, 0), (10, 0), (3, 6), (7, 2)], got, strict=True):
            want = colour(data[t, j], m["kind"], m["zmin"], m["zmax"])
            assert rgba[3] == 255
            assert np.abs(np.array(rgba[:3]) - want).max() <= 1.5, (m["title"], t, j, rgba, want)
