"""What axe-core does not measure, measured in Chromium: the focus indicator and the edges of
form controls against what they sit on (WCAG 1.4.11 and 2.4.13, 3:1), and where focus goes
after a birth date left half chosen.

Colours are read from the computed styles of the real pages, so a change of the stylesheet
that makes the ring or a box's edge faint again fails here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine

from tests.e2e.conftest import Site, watched_page

pytestmark = pytest.mark.browser

# The colours an element's focus ring and its box's edge are drawn in, and the background
# colour they are seen against (the nearest ancestor with one), as rgb() strings.
_COLOURS = """el => {
    const style = getComputedStyle(el);
    let node = el.parentElement, background = "rgb(255, 255, 255)";
    while (node) {
        const colour = getComputedStyle(node).backgroundColor;
        if (colour && colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") {
            background = colour; break;
        }
        node = node.parentElement;
    }
    const shadow = (style.boxShadow.match(/rgba?\\([^)]*\\)/) || [""])[0];
    return {outline: style.outlineColor, outlineWidth: style.outlineWidth,
            shadow: shadow, border: style.borderTopColor, background: background,
            fill: style.backgroundColor};
}"""


def _luminance(rgb: str) -> float:
    channels = [int(part) / 255 for part in rgb[rgb.index("(") + 1 : -1].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    light, dark = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    with watched_page(browser, site, width=1024, statuses=[400]) as page:
        yield page


def _focused_ring(page: Any, selector: str) -> dict[str, str]:
    element = page.locator(selector).first
    element.focus()
    return element.evaluate(_COLOURS)


def test_the_focus_ring_shows_on_the_page_and_in_the_blue_header(page: Any, site: Site) -> None:
    page.goto(site.url("/"))
    for selector in ("#id_voucher_number", ".site-header select", "button[type=submit]"):
        ring = _focused_ring(page, selector)
        assert ring["outlineWidth"] != "0px", selector
        # Either tone of the ring stands out from what surrounds the control.
        best = max(
            contrast(ring["outline"], ring["background"]),
            contrast(ring["shadow"], ring["background"]),
        )
        assert best >= 3, (selector, ring)


def test_boxes_have_edges_that_can_be_seen(page: Any, site: Site) -> None:
    page.goto(site.url("/"))
    for selector in ("#id_voucher_number", "#id_birth_date_year"):
        colours = page.locator(selector).evaluate(_COLOURS)
        assert contrast(colours["border"], colours["background"]) >= 3, (selector, colours)


def test_a_focused_day_is_filled_as_a_hovered_one_is(page: Any, site: Site) -> None:
    page.goto(site.url("/"))
    site.log_in(page)
    page.goto(site.url("/book/"))
    day = page.locator("a.day").first
    resting = day.evaluate(_COLOURS)["fill"]
    day.focus()
    focused = day.evaluate(_COLOURS)
    assert focused["fill"] != resting
    assert contrast(focused["outline"], focused["background"]) >= 3


def test_a_birth_date_left_half_chosen_puts_focus_on_the_first_part_left_and_reads_why(
    page: Any, site: Site
) -> None:
    page.goto(site.url("/"))
    page.get_by_label("接種券番号（10桁）").fill(site.voucher_number)
    page.select_option("#id_birth_date_year", str(site.born.year))
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_load_state()
    focused = page.evaluate("document.activeElement.id")
    assert focused == "id_birth_date_month"
    described = page.locator("#id_birth_date_month").get_attribute("aria-describedby") or ""
    assert "id_birth_date_error" in described.split()
    assert "月・日を選んでください" in page.locator("#id_birth_date_error").inner_text()
    # Only one control asks for the focus.
    assert page.locator("[autofocus]").count() == 1
    # The note is marked, not only coloured, as the line above the form says.
    summary = page.locator("#login-error, #form-errors, p.error").first.inner_text()
    assert "「！」" in summary
    mark = page.locator("#id_birth_date_error li").first.evaluate(
        "el => getComputedStyle(el, '::before').content"
    )
    assert "！" in mark


def test_the_language_switch_is_found_in_english_on_a_japanese_page(page: Any, site: Site) -> None:
    """A resident who reads no Japanese sees "Language" and "Switch" by the selector."""
    page.goto(site.url("/"))
    label = page.locator("label[for=lang-select]")
    assert label.is_visible() and "Language" in label.inner_text()
    box = label.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0
    switch = page.get_by_role("button", name="切替 / Switch")
    assert switch.is_visible()
    page.select_option("#lang-select", "en")
    switch.click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("button", name="Switch / 切替").is_visible()


def test_shortly_before_the_idle_timeout_a_notice_offers_to_continue(
    browser: Any, site: Site
) -> None:
    """WCAG 2.2.1: the session's time limit is said before it ends, and can be extended.
    The page's clock and the server's move on together (the page asks the server how long
    the session has left before it warns, or says it ended)."""
    from django.conf import settings

    idle = settings.SESSHU_SESSION_IDLE_SECONDS
    with (
        watched_page(browser, site, width=1024) as page,
        time_machine.travel(datetime.now(tz=UTC), tick=True) as server_clock,
    ):

        def forward(seconds: int) -> None:
            server_clock.shift(seconds)
            page.clock.fast_forward(seconds * 1000)

        page.clock.install()
        page.goto(site.url("/"))
        site.log_in(page)
        warning = page.locator("#idle-warning")
        assert warning.is_hidden()
        forward(idle - 200)
        assert warning.is_hidden()
        forward(30)
        warning.wait_for(state="visible")
        assert "まもなく自動的にログアウトします" in warning.inner_text()
        assert page.evaluate("document.activeElement.closest('#idle-warning') !== null")
        with page.expect_response(lambda answer: "/session/continue/" in answer.url) as sent:
            page.get_by_role("button", name="続ける").click()
        assert sent.value.status == 204
        warning.wait_for(state="hidden")
        # Armed again: the notice comes back after another stretch without anything done.
        forward(idle - 170)
        warning.wait_for(state="visible")
        # Left until the whole idle time is gone: it no longer offers to continue.
        forward(200)
        page.get_by_role("button", name="ログインし直す").wait_for()
        assert "ログアウトしました" in warning.inner_text()


def test_a_tab_left_open_does_not_say_logged_out_while_another_tab_works_on(
    browser: Any, site: Site
) -> None:
    """A page left open in one tab while the resident works in another: when its own clock
    says the idle time is nearly up, the server says the session was kept alive, and the
    page neither warns nor says it has logged out."""
    from django.conf import settings

    idle = settings.SESSHU_SESSION_IDLE_SECONDS
    with (
        watched_page(browser, site, width=1024) as page,
        time_machine.travel(datetime.now(tz=UTC), tick=True) as server_clock,
    ):
        page.clock.install()
        page.goto(site.url("/"))
        site.log_in(page)
        other = page.context.new_page()  # the same session, another tab
        warning = page.locator("#idle-warning")
        for _stretch in range(3):  # work in the other tab every ten minutes
            server_clock.shift(idle // 3)
            other.goto(site.url("/mypage/"))
            page.clock.fast_forward(idle // 3 * 1000)
        page.clock.fast_forward(5 * 1000)
        page.wait_for_timeout(500)
        assert warning.is_hidden()
        assert page.get_by_role("button", name="ログインし直す").count() == 0
        other.close()
