"""Bad requests show an alert beside the control they concern and never blank the page;
a long run shows progress and disables Run until it is drawn."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.helpers.browser import all_maps, click_run, field, open_page, revision, shot, wait_ready

LOSS = re.compile(r"^Loss(?! step| unit)")  # not "Loss step" nor "Loss unit"
SLOTS = ("input", "weights", "loss", "run")
REFUSED = re.compile(r"Failed to load resource: the server responded with a status of 422")


def submit_expecting(page: Page, slot: str, *needles: str) -> None:
    """Click Run; the alert `slot` appears with each needle, every other alert is hidden,
    and the page is back to "ready" with no new result."""
    before = revision(page)
    page.get_by_role("button", name="Run", exact=True).click()
    alert = page.locator(f"#error-{slot}")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    for needle in needles:
        expect(alert).to_contain_text(needle)
    for other in SLOTS:
        if other != slot:
            expect(page.locator(f"#error-{other}")).to_be_hidden()
    page.wait_for_function("document.body.dataset.state === 'ready'")
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_enabled()
    expect(page.locator("#progress")).to_be_hidden()
    assert revision(page) == before


def alert_near(page: Page, slot: str, control: str) -> None:
    """The alert sits in the same fieldset as the control it concerns."""
    assert page.evaluate("""([slot, id]) => document.getElementById('error-' + slot)
        .closest('fieldset') === document.getElementById(id).closest('fieldset')""",
                         [slot, control])


def test_invalid_requests_show_an_alert_beside_their_control(pages, server):
    pages.watch.allowed_console.append(REFUSED)  # the refused runs' 422s, logged by Chromium
    page = pages.new()
    open_page(page, server)
    shown = all_maps(page)
    title = page.locator("#values-title").text_content()

    field(page, "Hidden size").fill("5000")
    submit_expecting(page, "weights", "hidden_size", "1024")
    alert_near(page, "weights", "hidden")
    shot(page, "desktop-error-hidden-size")
    assert all_maps(page) == shown
    field(page, "Hidden size").fill("16")

    field(page, "Input mode").select_option("numbers")
    field(page, "Sequence").fill("0.5, 1\n2")  # ragged: step 1 has one number, step 0 two
    submit_expecting(page, "input", "Step 1")
    alert_near(page, "input", "sequence")
    field(page, "Sequence").fill("0.5, 1\n2, x")
    submit_expecting(page, "input", '"x" is not a number')
    assert all_maps(page) == shown

    field(page, "Input mode").select_option("text")
    field(page, "Sequence").fill("hello world")
    field(page, LOSS).select_option("unit")
    expect(field(page, "Loss step")).to_be_visible()
    field(page, "Loss step").fill("99")
    submit_expecting(page, "loss", "99", "past the last step")
    alert_near(page, "loss", "lossStep")
    shot(page, "desktop-error-loss-step")

    # the page never went blank: the first run's maps, title and step panel are all there
    assert all_maps(page) == shown
    expect(page.locator("#values-title")).to_have_text(title)
    expect(page.locator("#value-maps .map")).to_have_count(6)
    expect(page.locator("#equations")).to_contain_text("h_t = o·tanh(c_t)")

    field(page, "Loss step").fill("3")
    click_run(page)  # a valid request clears the alerts
    for slot in SLOTS:
        expect(page.locator(f"#error-{slot}")).to_be_hidden()


def test_a_failing_first_run_leaves_state_error_and_an_alert(pages, server):
    pages.watch.allowed_console.append(REFUSED)
    page = pages.new()
    page.goto(f"{server}/?H=5000")
    page.wait_for_function("document.body.dataset.state === 'error'")
    expect(page.locator("#error-weights")).to_contain_text("1024")
    expect(page.locator("#value-maps .map")).to_have_count(0)
    field(page, "Hidden size").fill("8")
    click_run(page)
    expect(page.locator("#error-weights")).to_be_hidden()
    expect(page.locator("#value-maps .map")).to_have_count(6)
    expect(page.locator("#values-title")).to_contain_text("H=8")


def test_a_long_run_shows_progress_and_disables_run(page, server):
    open_page(page, server)
    field(page, "Sequence").fill("abcdefgh" * 512)  # T = 4096
    field(page, "Hidden size").fill("256")
    field(page, "Precision").select_option("float32")
    run = page.get_by_role("button", name="Run", exact=True)
    before = revision(page)
    run.click()
    # all at once, while the request is in flight
    page.wait_for_function("""() => document.body.dataset.state === 'running'
        && document.getElementById('run').disabled
        && !document.getElementById('progress').hidden
        && document.getElementById('progress').getClientRects().length > 0""")
    expect(run).to_be_disabled()
    expect(page.locator("#progress")).to_be_visible()
    expect(page.locator("#progress")).to_contain_text("Running")
    expect(page.locator("#controls")).to_have_attribute("aria-busy", "true")
    shot(page, "desktop-running")
    assert page.evaluate("document.body.dataset.state") == "running", "the run ended too soon"
    page.wait_for_function("(rev) => window.gatescope.state.revision > rev", arg=before,
                           timeout=120_000)
    wait_ready(page)
    expect(run).to_be_enabled()
    expect(page.locator("#progress")).to_be_hidden()
    expect(page.locator("#status")).to_contain_text("4096 steps × 256 units")
    assert page.evaluate("window.gatescope.state.result.steps") == 4096
    shot(page, "desktop-lstm-4096x256")
