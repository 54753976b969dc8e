"""What the browser tests share: opening the page and waiting for its runs, reading what
its heatmaps show, finding controls by label, clicking a heatmap cell, screenshots."""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import Locator, Page

import gatescope

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1400, "height": 900}
MOBILE = {"width": 390, "height": 844}
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def api_post(server: str, path: str, body: bytes, content_type: str = "application/json"
             ) -> tuple[int, bytes]:
    req = urllib.request.Request(f"{server}{path}", body, {"content-type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def open_page(page: Page, server: str, query: str = "", timeout: float = 30_000) -> None:
    """Load the page (with `query`, e.g. "?cell=gru") and wait for its first run."""
    page.goto(f"{server}/{query}")
    wait_ready(page, timeout)


def wait_ready(page: Page, timeout: float = 30_000) -> None:
    page.wait_for_function("document.body.dataset.state === 'ready'", timeout=timeout)


def revision(page: Page) -> int:
    return page.evaluate("window.gatescope.state.revision || 0")


def wait_new_result(page: Page, before: int, timeout: float = 30_000) -> None:
    """Wait until a run after revision `before` has drawn (state back to "ready")."""
    page.wait_for_function(
        "(rev) => (window.gatescope.state.revision || 0) > rev"
        " && document.body.dataset.state === 'ready'", arg=before, timeout=timeout)


def click_run(page: Page, timeout: float = 30_000) -> None:
    before = revision(page)
    page.get_by_role("button", name="Run", exact=True).click()
    wait_new_result(page, before, timeout)


def shot(page: Page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


MAPS_JS = """(sel) => [...document.querySelectorAll(sel)].map((map) => {
  const plot = map.querySelector('.plot');
  const v = plot.gsValues;
  return {title: map.querySelector('h3').textContent, shape: v.shape, kind: v.kind,
          zmin: v.zmin, zmax: v.zmax, typed: v.data.constructor.name,
          data: Array.from(v.data)};
})"""


def maps(page: Page, which: str = "value") -> list[dict[str, Any]]:
    """Every heatmap of #value-maps or #grad-maps: title, shape, kind, the numbers shown."""
    return page.evaluate(MAPS_JS, f"#{which}-maps .map")


def all_maps(page: Page) -> list[dict[str, Any]]:
    return maps(page, "value") + maps(page, "grad")


def png_sizes(page: Page) -> list[list[int]]:
    """[naturalWidth, naturalHeight] of every heatmap's image trace, decoded by the browser."""
    return page.evaluate("""async () => Promise.all(
      [...document.querySelectorAll('#value-maps .map .plot, #grad-maps .map .plot')]
        .map(async (plot) => {
          const img = new Image();
          img.src = plot.data[0].source;
          await img.decode();
          return [img.naturalWidth, img.naturalHeight];
        }))""")


def short(title: str) -> str:
    """ "i — input gate i" → "i"; "∂L/∂a_i" stays."""
    return title.split(" — ")[0]


def value_titles(cell: str) -> list[str]:
    return {"lstm": ["i", "f", "g", "o", "c", "h"], "gru": ["r", "z", "n", "h"],
            "rnn_tanh": ["h", "a"], "rnn_relu": ["h", "a"]}[cell]


def grad_titles(cell: str) -> list[str]:
    gates = {"lstm": ["i", "f", "g", "o"], "gru": ["r", "z", "n"]}.get(cell, ["a"])
    return ["∂L/∂h", *(["∂L/∂c"] if cell == "lstm" else []), *[f"∂L/∂a_{g}" for g in gates]]


def expected_array(layer: gatescope.LayerResult, title: str) -> np.ndarray:
    """The (T, H) array of a gatescope result that the map titled `title` must show."""
    name = short(title)
    if name.startswith("∂L/∂a_"):
        return layer.grads["gates"][name.removeprefix("∂L/∂a_")]
    if name == "∂L/∂h":
        return layer.grads["h"]
    if name == "∂L/∂c":
        return layer.grads["c"]
    if name == "h":
        return layer.h
    if name == "c":
        return layer.c
    if name == "a":
        return layer.pre["a"]
    return layer.gates[name]


def assert_maps_match(shown: list[dict[str, Any]], result: gatescope.RunResult, layer: int
                      ) -> None:
    """Every map holds the matching array of `result`: float64 to 1e-12, float32 to its
    own precision."""
    T, H = result.steps, result.hidden_size
    lay = result.layers[layer]
    for m in shown:
        want = np.asarray(expected_array(lay, m["title"]), dtype=np.float64)
        assert m["shape"] == [T, H], m["title"]
        got = np.asarray(m["data"], dtype=np.float64).reshape(T, H)
        if result.dtype == "float64":
            assert m["typed"] == "Float64Array", m["title"]
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=m["title"])
        else:
            assert m["typed"] == "Float32Array", m["title"]
            scale = max(float(np.abs(want).max()), 1e-30)
            np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6 * scale,
                                       err_msg=m["title"])


def page_request(page: Page) -> dict[str, Any]:
    return page.evaluate("window.gatescope.state.request")


def js_fmt(v: float, digits: int = 4) -> str:
    """config.js's fmt(): what the step panel prints for a number."""
    if v is None or math.isnan(v):
        return "null"
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        mantissa, exp = f"{v:.{digits - 1}e}".split("e")
        return f"{mantissa}e{int(exp):+d}"
    text = repr(float(f"{v:.{digits}g}"))
    return text.removesuffix(".0")


def field(page: Page, label: str | re.Pattern[str]) -> Locator:
    """The control whose visible label starts with the word(s) `label` (a select's label
    text also holds its options' text, so exact matching cannot be used)."""
    if isinstance(label, str):
        label = re.compile(rf"^{re.escape(label)}(\s|$)")
    return page.get_by_label(label)


def url_param(name: str, value: Any) -> re.Pattern[str]:
    return re.compile(rf"[?&]{re.escape(name)}={re.escape(str(value))}(&|$)")


def dataset_step(page: Page) -> str:
    return page.evaluate("document.body.dataset.step")


def click_cell(page: Page, x: float, y: float, which: int = 0, plots: str = "#value-maps .map .plot"
               ) -> None:
    """Click data point (x, y) of plot `which` among `plots` where Plotly's axes put it: on a
    heatmap x is the step and y the unit. Waits until the point stops moving (views below
    may still be drawing, and a late layout change would send the click elsewhere)."""
    locate = """([x, y, which, sel]) => {
      const plot = document.querySelectorAll(sel)[which];
      const xa = plot._fullLayout.xaxis, ya = plot._fullLayout.yaxis;
      const r = plot.getBoundingClientRect();
      return [r.left + xa._offset + xa.l2p(x), r.top + ya._offset + ya.l2p(y)];
    }"""
    page.evaluate("([which, sel]) => document.querySelectorAll(sel)[which]"
                  ".scrollIntoView({block: 'center'})", [which, plots])  # clear of the stepper
    where, settled = page.evaluate(locate, [x, y, which, plots]), False
    for _ in range(40):  # no event says "layout done": poll until two reads agree
        page.wait_for_timeout(50)
        now = page.evaluate(locate, [x, y, which, plots])
        settled, where = now == where, now
        if settled:
            break
    assert settled, f"point ({x}, {y}) of {plots}[{which}] kept moving for 2 s"
    px, py = where
    page.mouse.move(px - 3, py)  # Plotly reports a hover first, then the click
    page.mouse.move(px, py)
    page.mouse.click(px, py)
