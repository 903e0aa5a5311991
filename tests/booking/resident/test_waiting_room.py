"""The waiting room lets residents into a municipality's pages at the configured rate, in the
order they came, and never holds back the console (the call centre) or another municipality."""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import time_machine
from django.core.cache import cache, caches
from django.test import Client
from django_tenants.utils import schema_context

from booking.models import BookingPolicy
from booking.resident import waiting_room
from booking.resident.waiting_room import (
    ADMITTED_COOKIE,
    GRACE_SECONDS,
    TICKET_COOKIE,
    queue_join,
)
from tenants.models import Municipality
from tests.conftest import host_of

T0 = 1_900_000_000.0  # a fixed clock: every moment below is counted from it


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    now = [T0]
    monkeypatch.setattr(waiting_room, "_now", lambda: now[0])
    yield now


@pytest.fixture
def sixty_a_minute(settings, tenant_a: Municipality, tenant_b: Municipality) -> None:
    """One newcomer a second: with five seconds of grace, the sixth of a burst waits."""
    settings.SESSHU_WAITING_ROOM_PER_MINUTE = 60
    settings.SESSHU_WAITING_ROOM_MAX_WAIT_MINUTES = 2
    cache.clear()  # no schedule left by another test
    with schema_context(tenant_a.schema_name):
        policy = BookingPolicy.current()
        policy.call_centre_phone = "0120-000-111"
        policy.save()


_addresses = itertools.count(1)


def _visitor(municipality: Municipality, address: str | None = None) -> Client:
    """A resident's browser, from an address of its own unless ``address`` is given."""
    number = next(_addresses)
    return Client(
        HTTP_HOST=host_of(municipality),
        REMOTE_ADDR=address or f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}",
    )


def _minutes(page: str) -> int:
    found = re.search(r"あと約(\d+)分", page)
    assert found is not None, page
    return int(found.group(1))


def test_off_by_default_nobody_waits_and_no_cookie_is_set(tenant_a: Municipality) -> None:
    response = _visitor(tenant_a).get("/")
    assert response.status_code == 200
    assert ADMITTED_COOKIE not in response.cookies


def test_a_burst_comes_in_then_newcomers_wait_in_order_and_come_in_at_their_moment(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    first = [_visitor(tenant_a) for _ in range(GRACE_SECONDS + 1)]
    for visitor in first:  # moments T0 .. T0+5: within the grace, in at once
        response = visitor.get("/login/")
        assert response.status_code == 200
        assert ADMITTED_COOKIE in response.cookies
    waiting = [_visitor(tenant_a) for _ in range(3)]
    pages = [visitor.get("/login/") for visitor in waiting]
    for page in pages:
        assert page.status_code == 503
        assert page["Cache-Control"] == "no-store"
        assert "Content-Security-Policy" in page  # the security headers go on it too
        assert int(page["Refresh"]) >= 1 and page["Retry-After"] == page["Refresh"]
        text = page.content.decode()
        assert "来られた順にご案内しています" in text
        # Booking by phone meanwhile: the number, to be tapped.
        assert 'コールセンター <a class="tel" href="tel:0120000111">0120-000-111</a>' in text
        assert TICKET_COOKIE in page.cookies and ADMITTED_COOKIE not in page.cookies
    # Reloading keeps the place: no new ticket, the same moment.
    again = waiting[0].get("/login/")
    assert again.status_code == 503 and TICKET_COOKIE not in again.cookies
    # Moments T0+6, T0+7, T0+8: each comes in once its moment is within the grace.
    clock[0] = T0 + 1.5
    assert waiting[0].get("/login/").status_code == 200
    assert waiting[1].get("/login/").status_code == 503  # T0+7 is still 5.5 s away
    clock[0] = T0 + 3
    for visitor in waiting[1:]:
        response = visitor.get("/login/")
        assert response.status_code == 200
        assert response.cookies[TICKET_COOKIE].value == ""  # the ticket is spent
    # Once in, pages keep coming while the admission lasts, whatever the queue; the
    # admission is renewed by a page seen a while after the last renewal, not by every page.
    clock[0] = T0 + 60
    kept = first[0].get("/")
    assert kept.status_code == 200 and ADMITTED_COOKIE not in kept.cookies
    clock[0] = T0 + waiting_room.RENEW_AFTER_MINUTES * 60 + 1
    renewed = first[0].get("/")
    assert renewed.status_code == 200 and ADMITTED_COOKIE in renewed.cookies
    # Past the first admission's end, with a queue again: the renewed one lets them in.
    clock[0] = T0 + waiting_room.ADMISSION_MINUTES * 60 + 120
    with schema_context(tenant_a.schema_name):
        for _ in range(GRACE_SECONDS + 10):
            queue_join(tenant_a.schema_name, now=clock[0], per_second=1.0, horizon=600)
    assert _visitor(tenant_a).get("/").status_code == 503  # a newcomer would wait
    assert first[0].get("/").status_code == 200


def test_a_waiting_page_is_no_error_in_the_log(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float], caplog
) -> None:
    """Django logs every 5xx answer as an error, which Sentry takes up: a rush would raise
    one per reload. Waiting is the room working; the access log still has each page."""
    for _ in range(GRACE_SECONDS + 1):
        _visitor(tenant_a).get("/")
    with caplog.at_level(logging.INFO):
        waiting = _visitor(tenant_a).get("/login/")
        refused = [_visitor(tenant_a).get("/") for _ in range(2 * 60)][-1]
    assert waiting.status_code == 503 and "いまは順番をお取りできません" in refused.content.decode()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    waited = [r for r in caplog.records if r.name == "sesshu.access" and " 503" in r.getMessage()]
    assert len(waited) == 1 + 2 * 60


def test_the_wait_shown_is_the_time_to_the_turn_and_long_waits_reload_spread_out(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float], settings
) -> None:
    settings.SESSHU_WAITING_ROOM_PER_MINUTE = 6  # one every 10 s: the 2nd waits
    settings.SESSHU_WAITING_ROOM_MAX_WAIT_MINUTES = 10
    assert _visitor(tenant_a).get("/").status_code == 200
    queued = [_visitor(tenant_a).get("/") for _ in range(40)]
    # The 11th arrival's turn is 100 s away: about 2 minutes (rounded up); the 2nd's 10 s.
    assert _minutes(queued[9].content.decode()) == 2
    assert _minutes(queued[0].content.decode()) == 1
    assert queued[0]["Refresh"] == "5"  # reloads when its turn is within the grace
    # Those who came together do not all reload together: a long wait's reloads are spread
    # over the last third of the longest interval, place by place.
    longest = waiting_room.RELOAD_AT_MOST_SECONDS
    reloads = [int(page["Refresh"]) for page in queued[5:]]  # every wait here is over 55 s
    assert all(longest * 2 // 3 <= seconds <= longest for seconds in reloads)
    assert len(set(reloads)) == longest // 3 + 1


def test_a_resident_may_wait_on_a_page_that_does_not_reload_itself(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    """A page that reloads itself moves a screen reader back to its top each time: the
    waiting page offers one that does not, where the resident checks their turn by hand."""
    for _ in range(GRACE_SECONDS + 1):
        _visitor(tenant_a).get("/")
    resident = _visitor(tenant_a)
    reloading = resident.get("/login/")
    assert reloading.status_code == 503 and "Refresh" in reloading
    text = reloading.content.decode()
    assert '<a href="?waiting=by-hand">自動で再読み込みしないページにする' in text
    by_hand = resident.get("/login/?waiting=by-hand")
    assert by_hand.status_code == 503 and "Refresh" not in by_hand
    assert by_hand["Retry-After"] == reloading["Retry-After"]
    text = by_hand.content.decode()
    assert "このページは自動では進みません" in text and "ご案内まで、あと約1分です" in text
    assert '<a class="button" href="?waiting=by-hand">順番を確認する</a>' in text
    assert TICKET_COOKIE not in by_hand.cookies  # the same place as before
    clock[0] = T0 + 2  # place 7's turn is within the grace: checking lets them in
    assert resident.get("/login/?waiting=by-hand").status_code == 200


def test_the_waiting_room_speaks_the_residents_language(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    for _ in range(GRACE_SECONDS + 1):
        _visitor(tenant_a).get("/")
    english = Client(
        HTTP_HOST=host_of(tenant_a), HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="192.0.2.1"
    )
    page = english.get("/").content.decode()
    assert "in the order they came" in page and "About 1 minute until it is your turn." in page


def test_the_waiting_page_is_rendered_once_and_holds_nothing_of_one_request(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float], monkeypatch
) -> None:
    rendered: list[str] = []
    render = waiting_room.render_to_string

    def counted(template: str, context: dict[str, object]) -> str:
        rendered.append(template)
        return render(template, context)

    monkeypatch.setattr(waiting_room, "render_to_string", counted)
    monkeypatch.setattr(waiting_room, "_PAGES", {})
    for _ in range(GRACE_SECONDS + 1):
        _visitor(tenant_a).get("/")
    pages = [_visitor(tenant_a).get(f"/login/?from={index}") for index in range(5)]
    assert [page.status_code for page in pages] == [503] * 5
    assert len(rendered) == 1  # five residents, one minute left each: one rendering
    text = pages[-1].content.decode()
    assert "csrfmiddlewaretoken" not in text and "from=" not in text
    assert pages[0].content == pages[-1].content


def test_past_the_longest_wait_nobody_is_given_a_place(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    for _ in range(2 * 60 + 1):  # moments T0 .. T0+120: the two minutes allowed
        _visitor(tenant_a).get("/")
    late = _visitor(tenant_a).get("/")
    assert late.status_code == 503
    assert "いまは順番をお取りできません" in late.content.decode()
    assert TICKET_COOKIE not in late.cookies and "Refresh" not in late
    assert late["Retry-After"] == "600"


def test_while_residents_wait_one_network_takes_only_its_share_of_places(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    # A quiet site counts nobody: many residents behind one address come in at once.
    shared = "203.0.113.7"
    for _ in range(GRACE_SECONDS + 1):
        assert _visitor(tenant_a, shared).get("/").status_code == 200
    # Now they wait; one network gets PLACES_PER_NETWORK places, then none (nothing taken).
    for _ in range(waiting_room.PLACES_PER_NETWORK):
        page = _visitor(tenant_a, shared).get("/")
        assert page.status_code == 503 and TICKET_COOKIE in page.cookies
    refused = _visitor(tenant_a, shared).get("/")
    assert "いまは順番をお取りできません" in refused.content.decode()
    assert TICKET_COOKIE not in refused.cookies
    # Anyone else still queues, right behind (the refused took no place).
    other = _visitor(tenant_a).get("/")
    assert other.status_code == 503 and TICKET_COOKIE in other.cookies
    expected = GRACE_SECONDS + 1 + waiting_room.PLACES_PER_NETWORK
    assert _minutes(other.content.decode()) == math.ceil(expected / 60)
    # Later, with the queue gone by, the network's residents come in at once again.
    clock[0] = T0 + waiting_room.NETWORK_WINDOW_SECONDS + 1
    assert _visitor(tenant_a, shared).get("/").status_code == 200


def test_the_console_and_other_municipalities_are_never_held_back(
    sixty_a_minute: None, tenant_a: Municipality, tenant_b: Municipality, clock: list[float]
) -> None:
    for _ in range(GRACE_SECONDS + 1):
        _visitor(tenant_a).get("/")
    assert _visitor(tenant_a).get("/").status_code == 503
    # The call centre and the venues, on the same host: the console's own login page.
    console = _visitor(tenant_a).get("/console/login/")
    assert console.status_code == 200 and ADMITTED_COOKIE not in console.cookies
    # Another municipality keeps its own schedule.
    assert _visitor(tenant_b).get("/").status_code == 200


def test_in_incident_mode_nobody_waits_for_a_site_that_takes_no_login(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    for _ in range(GRACE_SECONDS + 1):
        _visitor(tenant_a).get("/")
    assert _visitor(tenant_a).get("/").status_code == 503  # a queue
    Municipality.objects.filter(pk=tenant_a.pk).update(status=Municipality.Status.INCIDENT)
    top = _visitor(tenant_a).get("/")
    assert top.status_code == 200 and 'id="incident-notice"' in top.content.decode()
    assert TICKET_COOKIE not in top.cookies


def test_an_admission_or_ticket_is_good_only_where_it_was_given_and_as_signed(
    sixty_a_minute: None, tenant_a: Municipality, tenant_b: Municipality, clock: list[float]
) -> None:
    admitted_in_b = _visitor(tenant_b).get("/").cookies[ADMITTED_COOKIE].value
    for _ in range(GRACE_SECONDS + 1):
        _visitor(tenant_a).get("/")
    borrowed = _visitor(tenant_a)
    borrowed.cookies[ADMITTED_COOKIE] = admitted_in_b
    assert borrowed.get("/").status_code == 503
    forged = _visitor(tenant_a)
    ticket = waiting_room._sign(tenant_a.schema_name, 1, salt=waiting_room._TICKET_SALT)
    forged.cookies[TICKET_COOKIE] = ticket[:-2] + "xx"
    forged_page = forged.get("/")
    assert forged_page.status_code == 503  # treated as a newcomer: a real ticket, later
    assert TICKET_COOKIE in forged_page.cookies
    # An admission expires: after it, the resident is a newcomer again.
    admitted = _visitor(tenant_b)
    admitted.get("/")
    clock[0] = T0 + waiting_room.ADMISSION_MINUTES * 60 + 1
    response = admitted.get("/")
    assert response.status_code == 200  # the schedule is free again by then: in at once
    assert ADMITTED_COOKIE in response.cookies


def _rate(municipality: Municipality, per_minute: int | None) -> None:
    Municipality.objects.filter(pk=municipality.pk).update(waiting_room_per_minute=per_minute)


def test_a_municipality_s_own_rate_comes_before_the_platform_s(
    settings, tenant_a: Municipality, tenant_b: Municipality, clock: list[float]
) -> None:
    settings.SESSHU_WAITING_ROOM_PER_MINUTE = 0  # the platform's: off
    cache.clear()
    _rate(tenant_a, 6)  # one every 10 s: the 2nd newcomer waits
    assert _visitor(tenant_a).get("/").status_code == 200
    assert _visitor(tenant_a).get("/").status_code == 503
    assert all(_visitor(tenant_b).get("/").status_code == 200 for _ in range(10))
    # With the platform's room on, a municipality's own 0 turns it off there.
    settings.SESSHU_WAITING_ROOM_PER_MINUTE = 6
    _rate(tenant_b, 0)
    assert all(_visitor(tenant_b).get("/").status_code == 200 for _ in range(10))
    _rate(tenant_b, None)  # back to the platform's
    assert _visitor(tenant_b).get("/").status_code == 200
    assert _visitor(tenant_b).get("/").status_code == 503


def test_a_change_of_rate_reaches_the_residents_already_waiting(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    for _ in range(GRACE_SECONDS + 1):  # places 1-6, in at once
        assert _visitor(tenant_a).get("/").status_code == 200
    waiting = [_visitor(tenant_a) for _ in range(30)]  # places 7-36: waits of 6-35 s
    assert [visitor.get("/").status_code for visitor in waiting] == [503] * 30
    # The site is struggling: the vendor lowers the rate to 6 a minute. Three seconds on,
    # place 8 would have come in at 60 a minute (its turn 4 s off); now it is 67 s off.
    _rate(tenant_a, 6)
    clock[0] = T0 + 3
    slowed = waiting[1].get("/")
    assert slowed.status_code == 503 and _minutes(slowed.content.decode()) == 2
    # Pods are added and the rate raised to 600 a minute: ten places a second.
    _rate(tenant_a, 600)
    clock[0] = T0 + 6
    assert waiting[-1].get("/").status_code == 200  # place 36, served by now
    assert waiting[1].get("/").status_code == 200


def test_tickets_whose_queue_is_lost_come_in_as_they_were_due_not_all_at_once(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    for _ in range(GRACE_SECONDS + 1):
        _visitor(tenant_a).get("/")
    waiting = [_visitor(tenant_a) for _ in range(60)]  # places 7-66: due 6-65 s from now
    assert all(visitor.get("/").status_code == 503 for visitor in waiting)
    cache.clear()  # the cache restarted: the queue is gone, and newcomers start it anew
    assert all(_visitor(tenant_a).get("/").status_code == 200 for _ in range(3))
    # Their places were never given by this queue: each comes in when it was due, not all
    # at once (nor sent to the back).
    clock[0] = T0 + 20
    came_in = [visitor.get("/").status_code == 200 for visitor in waiting]
    assert came_in == [True] * 20 + [False] * 40  # due by T0+25 (grace included)
    late = waiting[-1].get("/")
    assert late.status_code == 503 and _minutes(late.content.decode()) == 1  # 45 s to go
    clock[0] = T0 + 61
    assert all(visitor.get("/").status_code == 200 for visitor in waiting[20:])


def test_a_ticket_signed_before_tickets_said_when_they_were_due_still_counts(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    for _ in range(GRACE_SECONDS + 10):
        _visitor(tenant_a).get("/")  # places 1-15: place 12 is due 11 s from now
    older = _visitor(tenant_a)
    older.cookies[TICKET_COOKIE] = waiting_room._sign(
        tenant_a.schema_name, 12, salt=waiting_room._TICKET_SALT
    )
    page = older.get("/")
    assert page.status_code == 503 and TICKET_COOKIE not in page.cookies  # its place kept
    clock[0] = T0 + 6
    assert older.get("/").status_code == 200
    cache.clear()  # with the queue lost, such a ticket comes in at once, as it used to
    kept = _visitor(tenant_a)
    kept.cookies[TICKET_COOKIE] = waiting_room._sign(
        tenant_a.schema_name, 40, salt=waiting_room._TICKET_SALT
    )
    assert kept.get("/").status_code == 200


def test_a_ticket_lets_in_its_holder_once_and_a_copy_of_it_queues_like_anyone(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    for _ in range(GRACE_SECONDS + 1):
        _visitor(tenant_a).get("/")
    holder = _visitor(tenant_a)
    assert holder.get("/").status_code == 503  # place 7, its turn 6 s off
    ticket = holder.cookies[TICKET_COOKIE].value
    clock[0] = T0 + 1.5
    assert holder.get("/").status_code == 200  # in, the ticket spent
    # The same browser, its page reloaded before the admission cookie arrived, still comes in.
    reloaded = _visitor(tenant_a)
    reloaded.cookies[TICKET_COOKIE] = ticket
    assert reloaded.get("/").status_code == 200
    # A copy of the ticket passed around later, with residents waiting again, queues at the
    # back with a ticket of its own.
    clock[0] = T0 + 1.5 + waiting_room.SPENT_AGAIN_SECONDS + 1
    for _ in range(GRACE_SECONDS + 10):
        queue_join(tenant_a.schema_name, now=clock[0], per_second=1.0, horizon=600)
    copy = _visitor(tenant_a)
    copy.cookies[TICKET_COOKIE] = ticket
    page = copy.get("/")
    assert page.status_code == 503
    assert page.cookies[TICKET_COOKIE].value not in ("", ticket)
    assert ADMITTED_COOKIE not in page.cookies
    assert copy.get("/").status_code == 503  # and waits its turn with its own ticket


def test_a_ticket_kept_past_its_validity_is_no_ticket(
    sixty_a_minute: None, tenant_a: Municipality, clock: list[float]
) -> None:
    for _ in range(GRACE_SECONDS + 1):
        _visitor(tenant_a).get("/")
    kept = _visitor(tenant_a)
    assert kept.get("/").status_code == 503
    ticket = kept.cookies[TICKET_COOKIE].value
    # Days later the queue is long again; the old ticket (its place long served) is shown.
    later = T0 + 3 * 86400
    clock[0] = later
    for _ in range(GRACE_SECONDS + 10):
        queue_join(tenant_a.schema_name, now=later, per_second=1.0, horizon=600)
    with time_machine.travel(time.time() + waiting_room.ticket_seconds() + 1):
        replayed = _visitor(tenant_a)
        replayed.cookies[TICKET_COOKIE] = ticket
        page = replayed.get("/")
    assert page.status_code == 503  # a newcomer: it waits
    assert page.cookies[TICKET_COOKIE].value != ticket


@pytest.fixture
def redis_cache(settings) -> Iterator[None]:
    settings.CACHES = {
        "default": {
            "BACKEND": "sesshu.redis_cache.SharedClientRedisCache",
            "LOCATION": os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/15"),
            "KEY_PREFIX": f"waiting-room-test-{os.getpid()}",
        }
    }
    caches["default"].clear()
    yield
    caches["default"].clear()


def test_on_redis_concurrent_newcomers_each_take_their_own_place(redis_cache: None) -> None:
    """Production's cache: 200 newcomers at once from 8 threads take distinct places, in
    order, each waiting one spacing more than the last, and nobody is given a place whose
    wait is past the horizon."""
    per_second, horizon = 4.0, 40.0

    def join(_index: int) -> tuple[int, float] | str:
        return queue_join("m999999", now=T0, per_second=per_second, horizon=horizon)

    with ThreadPoolExecutor(max_workers=8) as pool:
        joined = list(pool.map(join, range(200)))
    given = sorted(place for place in joined if isinstance(place, tuple))
    assert len(given) == int(horizon * per_second) + 1  # waits 0 .. 40 s, a quarter apart
    assert [place for place, _wait in given] == list(range(1, len(given) + 1))
    assert [wait for _place, wait in given] == [
        pytest.approx(index / per_second, abs=1e-5) for index in range(len(given))
    ]
    assert joined.count("full") == 200 - len(given)
    # The turns come at the rate: ten seconds on, place 41 is next (40 places served).
    assert waiting_room.queue_wait("m999999", 41, now=T0 + 10, per_second=per_second) == 0
    assert waiting_room.queue_wait(
        "m999999", 161, now=T0 + 10, per_second=per_second
    ) == pytest.approx(30, abs=1e-5)
    # At a rate raised tenfold, 80 places are served in two seconds, not 8: the last place's
    # turn is two seconds off, not 38.
    assert waiting_room.queue_wait(
        "m999999", 161, now=T0 + 2, per_second=10 * per_second
    ) == pytest.approx(2, abs=1e-5)
    # Later, the queue starts from the clock again: a quiet hour banks nothing.
    later = queue_join("m999999", now=T0 + 3600, per_second=per_second, horizon=horizon)
    assert isinstance(later, tuple) and later[1] == 0
    after = queue_join("m999999", now=T0 + 3600, per_second=per_second, horizon=horizon)
    assert isinstance(after, tuple) and after[1] == pytest.approx(1 / per_second, abs=1e-5)


def test_on_redis_a_ticket_is_spent_once(redis_cache: None) -> None:
    assert waiting_room.ticket_spend("m999997", 12, now=T0)
    assert waiting_room.ticket_spend("m999997", 12, now=T0 + waiting_room.SPENT_AGAIN_SECONDS)
    assert not waiting_room.ticket_spend(
        "m999997", 12, now=T0 + waiting_room.SPENT_AGAIN_SECONDS + 1
    )
    assert waiting_room.ticket_spend("m999997", 13, now=T0 + 600)  # another place
    assert waiting_room.ticket_spend("m999996", 12, now=T0 + 600)  # another municipality


def test_on_redis_one_network_takes_only_its_share_while_residents_wait(
    redis_cache: None,
) -> None:
    def join(network: str) -> tuple[int, float] | str:
        return queue_join("m999998", now=T0, per_second=1.0, horizon=600, network=network)

    immediate = [join("203.0.113.7") for _ in range(GRACE_SECONDS + 1)]
    assert immediate == [(index + 1, pytest.approx(index)) for index in range(GRACE_SECONDS + 1)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        queued = list(pool.map(join, ["203.0.113.7"] * (waiting_room.PLACES_PER_NETWORK + 10)))
    assert queued.count("limited") == 10
    assert sorted(wait for place in queued if isinstance(place, tuple) for wait in place[1:]) == [
        pytest.approx(GRACE_SECONDS + 1 + index) for index in range(waiting_room.PLACES_PER_NETWORK)
    ]
    # Another network is not limited by it, and queues right after.
    other = join("198.51.100.1")
    assert isinstance(other, tuple)
    assert other[1] == pytest.approx(GRACE_SECONDS + 1 + waiting_room.PLACES_PER_NETWORK)
