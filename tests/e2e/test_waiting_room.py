"""The waiting room in headless Chromium: a resident who arrives in a rush waits, in Japanese,
on a page that moves on by itself when their turn comes, then logs in as usual."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django_tenants.utils import schema_context

from booking.resident.waiting_room import GRACE_SECONDS, queue_join
from tests.e2e.conftest import Shots, Site, watched_page

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    # The waiting room answers 503 (with Retry-After) until the resident's turn.
    with watched_page(browser, site, width=420, statuses=[503]) as page:
        yield page


def _nine_came_just_before(site: Site, django_db_blocker: Any) -> float:
    """Nine residents join an empty queue at one a second, now (returned): the next one's
    turn is about nine seconds away."""
    now = time.time()
    with django_db_blocker.unblock(), schema_context(site.municipality.schema_name):
        cache.clear()  # no queue left by another test
        for _ in range(GRACE_SECONDS + 4):
            queue_join(site.municipality.schema_name, now=now, per_second=1.0, horizon=600)
    return now


def test_a_resident_waits_for_their_turn_then_logs_in(
    page: Any, site: Site, settings: Any, django_db_blocker: Any
) -> None:
    settings.SESSHU_WAITING_ROOM_PER_MINUTE = 60  # one newcomer a second
    shots = Shots("waiting-room")
    # This one's turn is about nine seconds away.
    now = _nine_came_just_before(site, django_db_blocker)
    page.goto(site.url("/"))
    assert page.get_by_role("heading", name="ただいま混み合っています").is_visible()
    assert page.get_by_text("来られた順にご案内しています").is_visible()
    assert page.get_by_text("ご案内まで、あと約1分です。").is_visible()
    shots.take(page, "waiting")
    # No script: the page reloads itself (the Refresh header) and lets them in on time.
    page.get_by_label("接種券番号（10桁）").wait_for(timeout=20_000)
    assert time.time() - now >= 9 - GRACE_SECONDS
    shots.take(page, "their-turn")
    site.log_in(page)
    shots.take(page, "mypage")


def test_a_resident_may_wait_on_a_page_that_does_not_reload_and_check_by_hand(
    page: Any, site: Site, settings: Any, django_db_blocker: Any
) -> None:
    """For a screen reader, a page that reloads itself starts over each time: the resident
    follows the link to a page that stays still, and checks their turn with its button."""
    settings.SESSHU_WAITING_ROOM_PER_MINUTE = 60
    shots = Shots("waiting-room-by-hand")
    _nine_came_just_before(site, django_db_blocker)  # this one's turn: about 9 s away
    page.goto(site.url("/"))
    page.get_by_role("link", name="自動で再読み込みしないページにする").click()
    page.wait_for_url(site.url("/?waiting=by-hand"))
    assert page.get_by_text("このページは自動では進みません").is_visible()
    shots.take(page, "by-hand")
    check = page.get_by_role("link", name="順番を確認する")
    # It stays still: five seconds on, the same page (a reload would have come by now).
    page.wait_for_timeout(5_000)
    assert check.is_visible()
    check.click()  # its turn is within the grace by now: in
    page.wait_for_load_state()
    assert page.get_by_label("接種券番号（10桁）").is_visible()
    shots.take(page, "their-turn")
