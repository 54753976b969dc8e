"""The URL holds the state: a copied link reproduces the configuration, the view and the
numbers; back and forward restore earlier runs."""

from __future__ import annotations

from playwright.sync_api import Page, Route, expect

import gatescope
from tests.helpers.browser import (
    all_maps,
    assert_maps_match,
    click_run,
    field,
    open_page,
    page_request,
    revision,
    short,
    url_param,
    wait_new_result,
    wait_ready,
)


def view(page: Page) -> dict:
    return page.evaluate("""() => ({step: window.gatescope.state.view.step,
      unit: window.gatescope.state.view.unit, layer: window.gatescope.state.view.layer,
                                     step_attr: document.body.dataset.step})""")


def test_a_copied_url_restores_configuration_view_and_numbers(pages, server):
    page = pages.new()
    open_page(page, server)
    field(page, "Cell").select_option("gru")
    field(page, "Layers").fill("2")
    field(page, "Truncation window").fill("4")
    click_run(page)
    field(page, "Layer").select_option("1")
    page.wait_for_function("window.gatescope.state.view.layer === 1"
                           " && document.body.dataset.state === 'ready'")
    expect(page.locator("#values-title")).to_contain_text("layer 1")
    for _ in range(5):
        page.get_by_role("button", name="Next step").click()
    unit = field(page, "Unit")
    unit.fill("3")
    unit.press("Tab")
    for name, value in [("cell", "gru"), ("L", 2), ("k", 4), ("layer", 1), ("t", 5),
                        ("u", 3)]:
        expect(page).to_have_url(url_param(name, value))
    assert view(page) == {"step": 5, "unit": 3, "layer": 1, "step_attr": "5"}
    link = page.url
    before = all_maps(page)
    request = page_request(page)
    assert (request["cell"], request["num_layers"], request["truncate"]) == ("gru", 2, 4)

    copy = pages.new()
    copy.goto(link)
    wait_ready(copy)
    assert view(copy) == {"step": 5, "unit": 3, "layer": 1, "step_attr": "5"}
    expect(field(copy, "Cell")).to_have_value("gru")
    expect(field(copy, "Layers")).to_have_value("2")
    expect(field(copy, "Truncation window")).to_have_value("4")
    expect(field(copy, "Layer")).to_have_value("1")
    expect(field(copy, "Unit")).to_have_value("3")
    expect(field(copy, "Step")).to_have_value("5")
    expect(copy.locator("#panel-title")).to_contain_text("t = 5")
    expect(copy.locator("#panel-title")).to_contain_text("layer 1 · unit 3")
    expect(copy.locator("#values-title")).to_contain_text("layer 1 · GRU")
    assert page_request(copy) == request
    after = all_maps(copy)
    assert [short(m["title"]) for m in after] == ["r", "z", "n", "h", "∂L/∂h", "∂L/∂a_r",
                                                  "∂L/∂a_z", "∂L/∂a_n"]
    assert after == before
    assert_maps_match(after, gatescope.run(request), layer=1)


def test_back_and_forward_restore_earlier_runs(page, server):
    open_page(page, server)
    field(page, "Sequence").fill("first run")
    field(page, "Hidden size").fill("5")
    click_run(page)
    first = all_maps(page)
    first_request = page_request(page)

    field(page, "Cell").select_option("rnn_tanh")
    field(page, "Sequence").fill("the second")
    before = revision(page)
    field(page, "Sequence").press("Control+Enter")  # the form's shortcut runs it
    wait_new_result(page, before)
    second = all_maps(page)
    second_request = page_request(page)
    assert second_request["cell"] == "rnn_tanh" and second != first
    expect(page).to_have_url(url_param("cell", "rnn_tanh"))

    before = revision(page)
    page.go_back()
    wait_new_result(page, before)
    expect(page).to_have_url(url_param("seq", "first+run"))
    expect(field(page, "Cell")).to_have_value("lstm")
    expect(field(page, "Sequence")).to_have_value("first run")
    expect(field(page, "Hidden size")).to_have_value("5")
    assert page_request(page) == first_request
    assert all_maps(page) == first

    before = revision(page)
    page.go_forward()
    wait_new_result(page, before)
    expect(field(page, "Cell")).to_have_value("rnn_tanh")
    expect(field(page, "Sequence")).to_have_value("the second")
    assert page_request(page) == second_request
    assert all_maps(page) == second


def test_back_while_a_run_is_in_flight_keeps_form_and_result_together(page, server):
    open_page(page, server, "?seq=one")
    field(page, "Sequence").fill("second")
    click_run(page)
    held: list[Route] = []  # the third run's response waits until the test lets it go
    page.route("**/api/v1/run?encoding=binary", lambda route: held.append(route))
    field(page, "Sequence").fill("the third one")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function("document.body.dataset.state === 'running'")
    assert len(held) == 1
    page.go_back()  # from "second" to "one", while the third run is in flight
    expect(field(page, "Sequence")).to_have_value("one")  # what back restored
    held[0].continue_()
    page.unroute("**/api/v1/run?encoding=binary")
    page.wait_for_function("document.body.dataset.state === 'ready'"
                           " && !window.gatescope.state.running")
    # settled: back wins over the run that was in flight, and the maps, the URL and the form
    # agree on it
    ran = page.evaluate("window.gatescope.state.ranConfig.sequence")
    assert ran == "one"
    assert page.evaluate("document.getElementById('sequence').value") == ran
    assert url_param("seq", ran.replace(" ", "+")).search(page.url)
