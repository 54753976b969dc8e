"""The guided tour: every stop's link opens the view it names with its numbers drawn and no
error; the banner leads from stop to stop; the tour can be skipped, and stays skipped."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.helpers.browser import open_page, shot, wait_ready

# what each stop's section shows once it has drawn: a body dataset flag, or a plot with data
READY = {
    "race": "document.body.dataset.race === 'ready'",
    "interventions": "document.body.dataset.interventions === 'ready'",
    "connectivity": "document.body.dataset.connectivity === 'ready'",
    "formula": "!!document.body.dataset.matrices",
    "tbptt": "true",  # its two stops wait for their own signs below
    "value-maps": "document.querySelectorAll('#value-maps .map').length > 0",
    "saturation": "document.querySelectorAll('#saturation-plots .satplot').length > 0",
    "find-units": "document.querySelectorAll('#fu-list li').length > 0",
}


def stops(page: Page) -> list[tuple[str, str]]:
    return page.locator("#tour-stops a").evaluate_all(
        "as => as.map(a => [a.textContent, a.getAttribute('href')])")


def test_every_stop_of_the_tour_opens_its_view(pages, server):
    first = pages.new()
    open_page(first, server)
    links = stops(first)
    assert len(links) == 10 and all(href for _, href in links)  # the last opens a preset
    expect(first.locator("#tour")).to_have_attribute("open", "")
    expect(first.locator("#tour-banner")).to_be_hidden()
    for n, (title, href) in enumerate(links, start=1):
        section = href.split("#")[1]
        page = pages.new()
        page.goto(f"{server}/{href}")
        wait_ready(page, 60_000)
        page.wait_for_function(READY[section], timeout=60_000)
        expect(page.locator("#tour-banner")).to_contain_text(f"Tour {n}/10: {title}")
        expect(page.locator(f"#tour-stops li:nth-child({n})")).to_have_attribute(
            "aria-current", "step")
        assert page.locator(f"#{section}").is_visible()
        top = page.evaluate(f"document.getElementById('{section}').getBoundingClientRect().top")
        assert -50 < top < 900, f"stop {n}: #{section} is not in view (top {top})"
        if n < 10:
            assert page.locator(".tour-next").get_attribute("href") == links[n][1]
        if n == 2:  # the explosion stop: the RNN's line says it explodes
            expect(page.locator("#race-horizons li[data-cell=rnn_tanh]")).to_contain_text(
                "explodes")
        if section == "find-units":  # the trained bracket counter: its depth unit leads
            card = page.evaluate("window.gatescope.state.models.find(m => m.model_id === "
                                 "window.gatescope.state.request.weights.model_id).card")
            depth_unit = next(u["unit"] for u in card["units"] if u["property"] == "depth")
            expect(page.locator("#fu-list li").first).to_contain_text(f"unit {depth_unit}:")
            expect(page.locator("#predictions")).to_be_visible()
        if section == "tbptt" and "k=" in href:  # the truncation stop: compared with full BPTT
            page.wait_for_function("document.body.dataset.tbptt === '10'", timeout=60_000)
        if "clip=" in href:  # the clipping stop: the norms before and after are stated
            expect(page.locator("#clip-summary")).to_have_attribute("data-clipped", re.compile("."))
            expect(page.locator("#clip-summary")).to_contain_text("‖∇θ‖")
        shot(page, f"tour-{n}")
        page.close()


def test_the_tour_ends_and_skips(page, server):
    open_page(page, server, "?cell=gru&H=16&tour=8")
    expect(page.locator("#tour-banner")).to_be_visible()
    page.get_by_role("button", name="End tour").click()
    expect(page.locator("#tour-banner")).to_be_hidden()
    expect(page).not_to_have_url(re.compile("tour="))
    page.get_by_role("button", name="Skip the tour").click()
    expect(page.locator("#tour")).not_to_have_attribute("open", "")
    try:
        page.reload()
        wait_ready(page)
        expect(page.locator("#tour")).not_to_have_attribute("open", "")  # remembered
        page.locator("#tour summary").click()  # and still there to open
        expect(page.locator("#tour-stops a")).to_have_count(10)
    finally:
        page.evaluate("localStorage.clear()")  # the session's other tests see a first visit
