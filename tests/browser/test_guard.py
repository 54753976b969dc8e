"""The guard in a browser (api/guard.py): a server with GATESCOPE_TOKEN works when the page
is opened as /?token=…, and the token is then nowhere the page can leak it (its address,
its URL state, Referer headers, document.cookie); without it the page says what it needs.
Swagger UI's "Try it out" works same-origin, with a token too."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.helpers.browser import DESKTOP, click_run, field, open_page
from tests.helpers.server import running_server

TOKEN = "browser-Token_7"
RUN = {"cell": "gru", "hidden_size": 3, "input": {"text": "abcab"}}


@pytest.fixture(scope="module")
def token_server(tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("token-browser-log") / "server.log"
    with running_server(tmp_path_factory.mktemp("token-browser"), log, compute_processes=1,
                        token=TOKEN) as url:
        yield url


@pytest.fixture
def fresh(browser: Browser) -> Iterator[BrowserContext]:
    """A context of its own: no cookie from another test."""
    ctx = browser.new_context(viewport=DESKTOP)
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


def record(page: Page) -> list[dict[str, str]]:
    """Every request the page makes: url, referer, and the status it got."""
    seen: list[dict[str, str]] = []
    page.on("request", lambda r: seen.append(
        {"url": r.url, "referer": r.headers.get("referer", "")}))
    return seen


def statuses(page: Page) -> dict[str, int]:
    got: dict[str, int] = {}
    page.on("response", lambda r: got.__setitem__(r.url, r.status))
    return got


def test_the_page_opened_with_the_token_runs_and_forgets_it(fresh, token_server):
    page = fresh.new_page()
    seen, got = record(page), statuses(page)
    open_page(page, token_server, f"?token={TOKEN}&cell=gru")
    assert TOKEN not in page.url and "token" not in page.url
    assert "cell=gru" in page.url  # the rest of the address is kept
    field(page, "Sequence").fill("hello there")
    click_run(page)  # the page writes its URL state again: still no token
    assert "token=" not in page.url and "hello" in page.url
    assert TOKEN not in page.evaluate("document.cookie")  # HttpOnly
    cookies = fresh.cookies()
    assert [(c["httpOnly"], c["sameSite"]) for c in cookies] == [(True, "Strict")]
    api = {url: status for url, status in got.items() if "/api/v1/" in url}
    assert "/api/v1/models" in " ".join(api) and "/api/v1/run" in " ".join(api)
    assert set(api.values()) == {200}, api
    first, *rest = seen
    assert TOKEN in first["url"]  # the address typed, answered with a redirect
    for request in rest:
        assert TOKEN not in request["url"] and TOKEN not in request["referer"], request


def test_without_the_token_the_page_says_what_it_needs(fresh, token_server):
    page = fresh.new_page()
    page.goto(f"{token_server}/")
    page.wait_for_function("document.body.dataset.state === 'error'")
    expect(page.locator("#error-run")).to_contain_text("token")


def try_it_out(page: Page, operation: str, body: dict) -> str:
    """Swagger UI: open the operation, Try it out, put `body` in, Execute; the status
    code it shows."""
    op = page.locator(f"#operations-{operation}")
    op.locator(".opblock-summary").click()
    op.get_by_role("button", name="Try it out").click()
    op.locator("textarea.body-param__text").fill(json.dumps(body))
    op.get_by_role("button", name="Execute").click()
    status = op.locator(".live-responses-table .response .response-col_status")
    expect(status).to_be_visible()
    return status.inner_text().strip()


def test_swagger_try_it_out_works_same_origin(fresh, server):
    page = fresh.new_page()
    page.goto(f"{server}/docs")
    assert try_it_out(page, "run-run_api_v1_run_post", RUN) == "200"


def test_swagger_try_it_out_works_with_a_token(fresh, token_server):
    page = fresh.new_page()
    page.goto(f"{token_server}/docs?token={TOKEN}")
    assert page.url == f"{token_server}/docs"
    assert try_it_out(page, "run-run_api_v1_run_post", RUN) == "200"
