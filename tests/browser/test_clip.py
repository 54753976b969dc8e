"""Gradient clipping from the form: the total norm before and after, as the API gives it."""

from __future__ import annotations

import math

from playwright.sync_api import expect

import gatescope
from tests.helpers.browser import click_run, field, open_page


def test_clipping_shows_the_norm_before_and_after(page, server):
    open_page(page, server, "?H=6&loss=all&seq=clip+me+please")
    expect(page.locator("#clip-summary")).to_contain_text("Clip gradients at")
    field(page, "Clip gradients at").fill("0.05")
    click_run(page)
    assert "clip=0.05" in page.url
    request = page.evaluate("window.gatescope.state.request")
    assert request["clip"] == {"max_norm": 0.05}
    result = gatescope.run(request)
    box = page.locator("#clip-summary")
    expect(box).to_contain_text("scaled by")
    assert math.isclose(float(box.get_attribute("data-total")), result.grad_norm["total"],
                        rel_tol=1e-12)
    assert math.isclose(float(box.get_attribute("data-clipped")), result.grad_norm["clipped"],
                        rel_tol=1e-12)
    field(page, "Clip gradients at").fill("1000")
    click_run(page)
    expect(box).to_contain_text("nothing is clipped")
