"""The explorer page in a real browser: one `gatescope serve` process (fresh data folder,
one compute process) and one headless Chromium (Debian's /usr/bin/chromium, never
`playwright install`) with one context for the whole session; each test opens new tabs.

Every page records each request URL (none may leave the server's origin) and every console
error and uncaught page error (there must be none); both are asserted when the test ends.
Screenshots go to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.helpers.browser import CHROMIUM, DESKTOP, LAUNCH_ARGS
from tests.helpers.server import running_server

expect.set_options(timeout=15_000)


# ── the server ──────────────────────────────────────────────────────────────────────────
@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("browser-log") / "server.log"
    with running_server(tmp_path_factory.mktemp("browser-data"), log, compute_processes=1) as url:
        yield url


# ── the browser and its pages ───────────────────────────────────────────────────────────
@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():  # pragma: no cover - the CI image installs it
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@dataclass
class Watch:
    """What one page did: request URLs, console errors, page errors."""

    origin: str
    requests: list[str] = dc_field(default_factory=list)
    errors: list[str] = dc_field(default_factory=list)
    allowed_console: list[re.Pattern[str]] = dc_field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def _console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        if any(p.search(msg.text) for p in self.allowed_console):
            return
        self.errors.append(f"console.error: {msg.text} @ {msg.location}")

    def foreign(self) -> list[str]:
        ok = (f"{self.origin}/", f"blob:{self.origin}/", "data:")
        return [u for u in self.requests if not u.startswith(ok)]


@pytest.fixture(scope="session")
def context(browser) -> Iterator[BrowserContext]:
    """One context for the session: its HTTP and code caches make each page load of the
    4.8 MB plotly.js cheaper. Each test's pages are new tabs (each its own history)."""
    ctx = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


@dataclass
class Pages:
    """Opens the test's pages (tabs of the session's context) and watches each."""

    context: BrowserContext
    server: str
    opened: list[Page] = dc_field(default_factory=list)
    watch: Watch = dc_field(init=False)

    def __post_init__(self) -> None:
        self.watch = Watch(self.server)

    def new(self, viewport: dict[str, int] = DESKTOP) -> Page:
        page = self.context.new_page()
        if viewport != DESKTOP:
            page.set_viewport_size(viewport)
        self.opened.append(page)
        self.watch.attach(page)
        return page


@pytest.fixture
def pages(context, server) -> Iterator[Pages]:
    made = Pages(context, server)
    yield made
    for page in made.opened:
        page.close()
    assert made.watch.requests, "no request was recorded"
    assert made.watch.foreign() == [], "requests left the server's origin"
    assert made.watch.errors == [], "console or page errors"


@pytest.fixture
def page(pages) -> Page:
    return pages.new()
