"""The step panel: the cell's diagram strips, the gate bars and the picked unit's equations
with the API's numbers in them; a click on a strip picks a unit."""

from __future__ import annotations

from playwright.sync_api import Page, expect

import gatescope
from tests.helpers.browser import field, js_fmt, open_page, page_request, url_param

LSTM_STRIPS = ["x_t", "h_{t−1}", "i", "f", "g", "o", "c_{t−1}", "f⊙c_{t−1}", "i⊙g", "c_t",
               "tanh(c_t)", "h_t"]


def strips(page: Page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('#diagram .strip-row')]
      .map((row) => ({name: row.querySelector('.name').textContent,
                      width: row.querySelector('canvas').width,
                      shown: row.querySelector('canvas').getBoundingClientRect().width,
                      val: row.querySelector('.val').textContent}))""")


def equation(page: Page, start: str) -> str:
    lines = page.locator("#equations .eq").all_text_contents()
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


def last_number(line: str) -> str:
    return line.rsplit("= ", 1)[1].split()[0]


def magenta_at(page: Page, name: str) -> list[int]:
    """Units drawn in the picked-unit colour on the strip called `name`."""
    return page.evaluate("""(name) => {
      const row = [...document.querySelectorAll('#diagram .strip-row')]
        .find((r) => r.querySelector('.name').textContent === name);
      const c = row.querySelector('canvas');
      const px = c.getContext('2d').getImageData(0, 0, c.width, 1).data;
      const out = [];
      for (let j = 0; j < c.width; j++) {
        if (px[4 * j] === 255 && px[4 * j + 1] === 0 && px[4 * j + 2] === 255) out.push(j);
      }
      return out;
    }""", name)


def check_unit(page: Page, result: gatescope.RunResult, t: int, j: int) -> None:
    layer = result.layers[0]
    title = page.locator("#panel-title")
    expect(title).to_contain_text(f"Step t = {t}")
    expect(title).to_contain_text(f"layer 0 · unit {j}")
    expect(field(page, "Unit")).to_have_value(str(j))
    expect(page.locator("#equations h3").first).to_have_text(f"Forward, unit {j}")
    h_line = equation(page, "h_t = o·tanh(c_t)")
    assert last_number(h_line) == js_fmt(float(layer.h[t, j]), 5), h_line
    assert f"tanh({js_fmt(float(layer.c[t, j]), 5)})" in h_line
    assert last_number(equation(page, "c_t = f·c_{t−1} + i·g")) == js_fmt(float(layer.c[t, j]), 5)
    assert last_number(equation(page, "i = σ(a_i)")) == js_fmt(float(layer.gates["i"][t, j]), 5)
    assert (equation(page, "∂L/∂h_t = ").split()[2]
            == js_fmt(float(layer.grads["h"][t, j]), 5))
    rows = {s["name"]: s for s in strips(page)}
    assert rows["h_t"]["val"] == js_fmt(float(layer.h[t, j]))
    assert rows["f"]["val"] == js_fmt(float(layer.gates["f"][t, j]))
    assert rows["x_t"]["val"] == ""
    for name in ("h_t", "i", "c_t"):
        assert magenta_at(page, name) == [j], name


def test_step_panel_shows_strips_bars_and_equations_of_the_picked_unit(page, server):
    t, unit = 3, 5
    open_page(page, server, f"?t={t}&u={unit}")
    result = gatescope.run(page_request(page))
    H = result.hidden_size

    rows = strips(page)
    assert [r["name"] for r in rows] == LSTM_STRIPS
    vocab = len(result.vocab)
    assert [r["width"] for r in rows] == [vocab] + [H] * (len(LSTM_STRIPS) - 1)
    assert all(r["shown"] > 100 for r in rows), rows
    expect(page.locator("#diagram .flow").first).to_contain_text("four gates")
    bars = page.locator("#bars canvas")
    expect(bars).to_have_count(1)
    box = bars.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] == 4 * 26
    assert page.evaluate("""() => { const c = document.querySelector('#bars canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0; for (let k = 3; k < d.length; k += 4) n += d[k] > 0; return n; }""") > 500
    headings = page.locator("#equations h3").all_text_contents()
    assert headings == [f"Forward, unit {unit}", "Backward", "This step's Jacobian"]
    check_unit(page, result, t, unit)

    # a click on unit 9 of the h_t strip picks unit 9
    strip = page.locator("#diagram .strip-row", has_text="h_t").filter(
        has_not_text="tanh").locator("canvas")
    box = strip.bounding_box()
    assert box is not None
    strip.click(position={"x": box["width"] * 9.5 / H, "y": box["height"] / 2})
    check_unit(page, result, t, 9)
    expect(page).to_have_url(url_param("u", 9))
    view = page.evaluate("window.gatescope.state.view")
    assert {k: view[k] for k in ("step", "unit", "layer")} == {"step": t, "unit": 9, "layer": 0}

    # and the unit box picks one too
    field(page, "Unit").fill("15")
    field(page, "Unit").press("Enter")
    check_unit(page, result, t, 15)
