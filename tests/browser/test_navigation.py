"""Moving through time: keys, the stepper's buttons, a click on a heatmap column and the
slider all set the step; the URL, the slider, the readout and every map's cursor follow."""

from __future__ import annotations

import itertools
import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.helpers.browser import click_cell, dataset_step, field, open_page, url_param

T = 11  # "hello world"


def cursors(page: Page) -> list[dict[str, Any]]:
    """Per heatmap: the cursor's box and where the current column is on screen."""
    return page.evaluate("""() => {
      const t = window.gatescope.state.view.step;
      return [...document.querySelectorAll('#value-maps .map, #grad-maps .map')].map((map) => {
        const plot = map.querySelector('.plot');
        const xa = plot._fullLayout.xaxis;
        const box = map.querySelector('.cursor').getBoundingClientRect();
        const origin = plot.getBoundingClientRect().left + xa._offset;
        return {hidden: map.querySelector('.cursor').hidden, left: box.left, right: box.right,
                colLeft: origin + xa.l2p(t - 0.5), colRight: origin + xa.l2p(t + 0.5)};
      });
    }""")


class Track:
    """Checks one position of the view and remembers where the first map's cursor was."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.lefts: dict[int, float] = {}

    def at(self, t: int, unit: int | None = None) -> None:
        page = self.page
        page.wait_for_function("(t) => document.body.dataset.step === String(t)", arg=t)
        assert page.evaluate("window.gatescope.state.view.step") == t
        expect(field(page, "Step")).to_have_value(str(t))
        expect(page.locator("#step-readout")).to_contain_text(f"t = {t} / {T - 1}")
        if t == 0:  # the default is left out of the URL
            expect(page).not_to_have_url(re.compile(r"[?&]t="))
        else:
            expect(page).to_have_url(url_param("t", t))
        if unit is not None:
            expect(page).to_have_url(url_param("u", unit))
            expect(field(page, "Unit")).to_have_value(str(unit))
        boxes = cursors(page)
        assert len(boxes) == 12
        for b in boxes:  # every cursor frames the current column (its borders are 2 px)
            assert not b["hidden"]
            assert abs(b["left"] - b["colLeft"]) <= 3, b
            assert abs(b["right"] - b["colRight"]) <= 3, b
        self.lefts[t] = boxes[0]["left"]
        ordered = [self.lefts[k] for k in sorted(self.lefts)]
        assert all(a < b for a, b in itertools.pairwise(ordered)), self.lefts


def test_keys_buttons_heatmap_click_and_slider_move_the_step_space_plays(page, server):
    open_page(page, server)
    track = Track(page)
    track.at(0)
    page.locator("body").click(position={"x": 5, "y": 5})  # focus outside any field

    for t in (1, 2, 3):
        page.keyboard.press("ArrowRight")
        track.at(t)
    page.keyboard.press("ArrowLeft")
    track.at(2)
    page.keyboard.press("End")
    track.at(T - 1)
    page.keyboard.press("ArrowRight")  # clamped at the end
    track.at(T - 1)
    page.keyboard.press("Home")
    track.at(0)
    page.keyboard.press("ArrowLeft")  # clamped at the start
    track.at(0)

    # a key typed into a text field edits the field, not the step
    field(page, "Sequence").press("End")
    field(page, "Sequence").press("ArrowLeft")
    track.at(0)

    next_button = page.get_by_role("button", name="Next step")
    next_button.click()
    track.at(1)
    next_button.click()
    track.at(2)
    page.get_by_role("button", name="Previous step").click()
    track.at(1)
    page.get_by_role("button", name="Last step").click()
    track.at(T - 1)
    page.get_by_role("button", name="First step").click()
    track.at(0)

    click_cell(page, 7, 4)
    track.at(7, unit=4)
    click_cell(page, 5, 9, which=1)
    track.at(5, unit=9)

    slider = field(page, "Step")
    slider.focus()
    page.keyboard.press("ArrowRight")  # the slider moves itself: one step, not two
    track.at(6, unit=9)
    page.keyboard.press("ArrowLeft")
    track.at(5, unit=9)
    box = slider.bounding_box()
    assert box is not None
    slider.click(position={"x": box["width"] - 2, "y": box["height"] / 2})
    track.at(T - 1, unit=9)
    slider.click(position={"x": 2, "y": box["height"] / 2})
    track.at(0, unit=9)

    # Space plays (10 steps/s) and pauses; playback's timer runs on a clock the test moves
    page.clock.install()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press(" ")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    page.clock.run_for(350)  # three ticks of 100 ms
    assert dataset_step(page) == "3"
    page.keyboard.press(" ")
    expect(page.get_by_role("button", name="Play")).to_be_visible()
    page.clock.run_for(1000)  # paused: ten more ticks would have passed
    assert dataset_step(page) == "3"
    expect(page).to_have_url(url_param("t", 3))
