"""state.js's table of properties, end to end: every property set to a value other than its
default in a link reaches the page's state typed as the table says, and the URL the page
writes back holds it; a value that does not read as its type falls back to the default; the
form writes into the state as it is edited."""

from __future__ import annotations

import json
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from playwright.sync_api import Page, expect

from tests.helpers.browser import click_run, field, open_page, page_request, url_param

NUMBERS = "0.5, 1\n-1, 0.25\n1, 1\n0, -0.5"  # 4 steps of 2 numbers

# param → (value in the link, what the state must hold); every property but w and model,
# which need a stored model (see WITH_MODEL)
RANDOM_WEIGHTS: dict[str, tuple[str, Any]] = {
    "cell": ("gru", "gru"), "H": ("5", 5), "L": ("2", 2), "seed": ("3", 3),
    "fb": ("0.5", 0.5), "mode": ("numbers", "numbers"), "seq": (NUMBERS, NUMBERS),
    "loss": ("unit", "unit"), "ls": ("2", 2), "lu": ("1", 1), "k": ("3", 3),
    "clip": ("0.5", 0.5), "dtype": ("float32", "float32"),
    "t": ("2", 2), "u": ("1", 1), "layer": ("1", 1), "race": ("1", 1), "rs": ("1.5", 1.5),
    "rfb": ("2", 2), "iv": ("0:h:0-1:*:0", "0:h:0-1:*:0"), "conn": ("1", 1),
    "tour": ("2", 2), "gs": ("log", "log"),
}

STATE_JS = """() => { const s = window.gatescope.state;
  return {config: s.config, ranConfig: s.ranConfig, view: s.view}; }"""

TABLE_JS = """async () => (await import('/js/state.js')).PROPS
  .map(({key, param, part, default: d}) => ({key, param, part, default: d}))"""


def table(page: Page) -> list[dict[str, Any]]:
    return page.evaluate(TABLE_JS)


def state(page: Page) -> dict[str, Any]:
    return page.evaluate(STATE_JS)


def held(page: Page, props: list[dict[str, Any]]) -> dict[str, Any]:
    """param → the value the page's state holds for it."""
    s = state(page)
    return {p["param"]: s[p["part"]][p["key"]] for p in props}


def step_once(page: Page, t: int) -> dict[str, str]:
    """Step forward, so the page writes its URL from its state; that URL's parameters."""
    page.get_by_role("button", name="Next step").click()
    expect(page).to_have_url(url_param("t", t))
    return dict(parse_qsl(urlsplit(page.url).query, keep_blank_values=True))


def test_every_property_round_trips_typed_through_the_url(page, server):
    open_page(page, server, "?" + urlencode({p: v for p, (v, _) in RANDOM_WEIGHTS.items()}))
    page.wait_for_function("['race', 'connectivity', 'interventions'].every("
                           "(k) => document.body.dataset[k] === 'ready')", timeout=60_000)
    props = table(page)
    assert {p["param"] for p in props} == {*RANDOM_WEIGHTS, "w", "model"}, \
        "a property of state.js's table is not covered here"
    assert all(RANDOM_WEIGHTS[p["param"]][1] != p["default"] for p in props
               if p["param"] in RANDOM_WEIGHTS), "each value here must differ from the default"
    shown = held(page, props)
    want = {p: typed for p, (_, typed) in RANDOM_WEIGHTS.items()}
    assert {p: shown[p] for p in RANDOM_WEIGHTS} == want
    s = state(page)
    assert s["ranConfig"] == s["config"]  # the run was of exactly this state
    request = page_request(page)
    assert (request["cell"], request["hidden_size"], request["num_layers"], request["dtype"],
            request["truncate"], request["clip"], request["loss"]) == (
        "gru", 5, 2, "float32", 3, {"max_norm": 0.5}, {"type": "hidden_unit", "unit": 1, "step": 2})
    assert request["weights"] == {"init": "pytorch", "seed": 3}  # a forget-gate bias is LSTM's
    assert request["input"] == {"values": [[0.5, 1], [-1, 0.25], [1, 1], [0, -0.5]]}
    written = step_once(page, 3)
    assert written == {p: v for p, (v, _) in RANDOM_WEIGHTS.items()} | {"t": "3"}


def test_a_stored_model_round_trips_through_the_url(page, server):
    with urllib.request.urlopen(f"{server}/api/v1/models") as r:
        info = next(m for m in json.load(r)["data"] if m["preset"] and m["readout"] and m["task"])
    link = {"w": "model", "model": info["model_id"], "loss": "task", "seq": info["card"]["example"]}
    open_page(page, server, "?" + urlencode(link))
    props = table(page)
    assert {p: held(page, props)[p] for p in link} == link
    assert page_request(page)["weights"] == {"model_id": info["model_id"]}
    expect(field(page, "Stored model")).to_have_value(info["model_id"])
    assert step_once(page, 1) == link | {"t": "1"}


def test_values_that_are_not_of_their_type_fall_back_to_the_default(page, server):
    bad = {"H": "abc", "L": "", "seed": "x", "fb": "y", "ls": "1e999", "lu": "Infinity",
           "k": "abc", "clip": "NaN", "t": "foo", "u": "", "layer": "x", "race": "yes",
           "rs": "fast", "rfb": "q", "conn": "x", "tour": "x",
           # a choice not among the select's options
           "cell": "lstm2", "w": "pretrained", "mode": "audio", "loss": "mse", "dtype": "f16",
           "gs": "sqrt"}
    open_page(page, server, "?" + urlencode(bad))
    props = table(page)
    shown = held(page, props)
    defaults = {p["param"]: p["default"] for p in props}
    assert {p: shown[p] for p in bad} == {p: defaults[p] for p in bad}
    assert page_request(page)["hidden_size"] == 16
    assert step_once(page, 1) == {"t": "1"}  # nothing but the step differs from the defaults


def test_the_form_writes_typed_values_into_the_state_as_it_is_edited(page, server):
    open_page(page, server)
    config = "window.gatescope.state.config"
    field(page, "Hidden size").fill("7")
    field(page, "Truncation window").fill("4")
    field(page, "Cell").select_option("gru")
    assert page.evaluate(f"[{config}.hidden, {config}.truncate, {config}.cell]") == [7, 4, "gru"]
    field(page, "Truncation window").fill("")  # an empty optional field: not set
    assert page.evaluate(f"{config}.truncate") == ""
    click_run(page)
    request = page_request(page)
    assert (request["hidden_size"], request["cell"], "truncate" in request) == (7, "gru", False)
    field(page, "Hidden size").fill("")  # an empty field: its default, as the run takes it
    assert page.evaluate(f"{config}.hidden") == 16
