"""Resident sessions: a new id at login, tied to the voucher, idle and absolute timeouts,
ended by logout and by staff disabling the resident's web login."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import ResidentSession, Voucher
from booking.resident.services import resident_sessions_end, resident_web_login_set
from tenants.models import Municipality
from tests.booking.resident.conftest import Resident, events, login_dob

START = datetime(2026, 5, 11, 0, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_login_starts_a_new_session_and_drops_the_old_one(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    client_a.get("/line/")  # the browser has a session before logging in
    before = _session_key(client_a)
    login_dob(client_a, resident_a)
    after = _session_key(client_a)
    assert after != before
    with tenant_context(dob_mode):
        assert not Session.objects.filter(session_key=before).exists()
        registered = ResidentSession.objects.get(session_key=after)
        assert registered.voucher_id == resident_a.pk


def test_the_session_expires_at_the_absolute_limit_even_when_used(
    client_a: Client, dob_mode: Municipality, resident_a: Resident, clock: time_machine.Coordinates
) -> None:
    login_dob(client_a, resident_a)
    elapsed = 0
    idle_step = settings.SESSHU_SESSION_IDLE_SECONDS // 2
    while elapsed + idle_step < settings.SESSION_COOKIE_AGE:
        clock.shift(timedelta(seconds=idle_step))
        elapsed += idle_step
        assert client_a.get("/mypage/").status_code == 200
    clock.shift(timedelta(seconds=settings.SESSION_COOKIE_AGE - elapsed))
    response = client_a.get("/mypage/", follow=True)
    assert response.redirect_chain[0] == ("/", 302)
    assert "ログインしてから時間が経ったため" in response.content.decode()
    refused = events(dob_mode, "resident.access_refused")
    assert refused[-1].details["reason"] == "absolute"


def test_the_session_ends_after_being_idle(
    client_a: Client, dob_mode: Municipality, resident_a: Resident, clock: time_machine.Coordinates
) -> None:
    login_dob(client_a, resident_a)
    key = _session_key(client_a)
    clock.shift(timedelta(seconds=settings.SESSHU_SESSION_IDLE_SECONDS - 1))
    assert client_a.get("/mypage/").status_code == 200
    clock.shift(timedelta(seconds=settings.SESSHU_SESSION_IDLE_SECONDS))
    response = client_a.get("/mypage/", follow=True)
    assert "一定時間操作がなかったため" in response.content.decode()
    with tenant_context(dob_mode):
        assert not ResidentSession.objects.filter(session_key=key).exists()
        assert not Session.objects.filter(session_key=key).exists()
    # Logging in again works at once.
    assert login_dob(client_a, resident_a).status_code == 302


def test_logging_in_writes_the_new_session_once(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    with CaptureQueriesContext(connection) as queries:
        assert login_dob(client_a, resident_a).status_code == 302
    statements = [q["sql"] for q in queries.captured_queries]
    assert sum(sql.startswith('INSERT INTO "django_session"') for sql in statements) == 1
    assert not any(sql.startswith('UPDATE "django_session"') for sql in statements)
    assert not any('AS "a" FROM "django_session"' in sql for sql in statements)  # no "taken?"
    # And the session it wrote is the one the browser now holds, with the resident in it.
    assert client_a.get("/mypage/").status_code == 200


def test_pages_rewrite_the_session_once_a_minute_at_most(
    client_a: Client, dob_mode: Municipality, resident_a: Resident, clock: time_machine.Coordinates
) -> None:
    login_dob(client_a, resident_a)

    def session_writes() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client_a.get("/mypage/").status_code == 200
        return sum(
            query["sql"].startswith('UPDATE "django_session"') for query in queries.captured_queries
        )

    clock.shift(timedelta(seconds=30))
    assert session_writes() == 0
    clock.shift(timedelta(seconds=31))  # a minute after the login stamped it
    assert session_writes() == 1
    assert session_writes() == 0
    # The idle timer runs from that refresh: idle time minus a second later, still in.
    clock.shift(timedelta(seconds=settings.SESSHU_SESSION_IDLE_SECONDS - 1))
    assert client_a.get("/mypage/").status_code == 200


def test_a_page_asks_how_long_the_session_has_left_without_keeping_it_alive(
    client_a: Client, dob_mode: Municipality, resident_a: Resident, clock: time_machine.Coordinates
) -> None:
    """resident.js asks before it warns or says the session ended (another tab may have
    kept it alive); asking is not being at work."""
    idle = settings.SESSHU_SESSION_IDLE_SECONDS
    assert client_a.get("/session/left/").json() == {"seconds": 0}  # nobody logged in
    login_dob(client_a, resident_a)
    assert client_a.get("/session/left/").json() == {"seconds": idle}
    clock.shift(timedelta(seconds=idle - 100))
    with CaptureQueriesContext(connection) as queries:
        assert client_a.get("/session/left/").json() == {"seconds": 100}
    assert not any(q["sql"].startswith('UPDATE "django_session"') for q in queries)
    client_a.get("/mypage/")  # another tab's page: the idle timer starts again
    assert client_a.get("/session/left/").json() == {"seconds": idle}
    clock.shift(timedelta(seconds=idle))
    assert client_a.get("/session/left/").json() == {"seconds": 0}


def test_logout_ends_the_session(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    login_dob(client_a, resident_a)
    key = _session_key(client_a)
    assert client_a.post("/logout/").status_code == 302
    assert client_a.get("/mypage/").status_code == 302
    with tenant_context(dob_mode):
        assert not Session.objects.filter(session_key=key).exists()
    assert events(dob_mode, "resident.logout")[-1].details == {"reason": "logout"}


def test_logout_needs_a_post(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    login_dob(client_a, resident_a)
    assert client_a.get("/logout/").status_code == 405
    assert client_a.get("/mypage/").status_code == 200


def test_disabling_web_login_ends_every_session_of_that_resident(
    dob_mode: Municipality, resident_a: Resident, neighbour_a: Resident
) -> None:
    phone, computer, neighbour = (Client(HTTP_HOST="kodaira.localhost") for _ in range(3))
    login_dob(phone, resident_a)
    login_dob(computer, resident_a)
    login_dob(neighbour, neighbour_a)
    with tenant_context(dob_mode):
        voucher = Voucher.objects.get(pk=resident_a.pk)
        resident_web_login_set(voucher=voucher, disabled=True, actor=Actor(Actor.STAFF, "7"))
    assert phone.get("/mypage/").status_code == 302
    assert computer.get("/mypage/").status_code == 302
    assert neighbour.get("/mypage/").status_code == 200
    assert login_dob(phone, resident_a).status_code == 400
    (ended,) = events(dob_mode, "resident.sessions_ended")
    assert ended.details == {"sessions": 2} and ended.actor_kind == "staff"
    assert events(dob_mode, "resident.web_login_disabled")


def test_a_login_forgets_the_residents_ended_sessions_and_keeps_the_live_ones(
    dob_mode: Municipality, resident_a: Resident, neighbour_a: Resident
) -> None:
    phone, computer, tablet, neighbour = (Client(HTTP_HOST="kodaira.localhost") for _ in range(4))
    login_dob(phone, resident_a)
    login_dob(computer, resident_a)
    login_dob(neighbour, neighbour_a)
    with tenant_context(dob_mode):
        # The phone's session expired; its row is still registered to the resident.
        Session.objects.filter(session_key=_session_key(phone)).update(
            expire_date=datetime(2020, 1, 1, tzinfo=UTC)
        )
    login_dob(tablet, resident_a)
    with tenant_context(dob_mode):
        registered = set(ResidentSession.objects.values_list("session_key", flat=True))
    assert registered == {_session_key(c) for c in (computer, tablet, neighbour)}
    assert computer.get("/mypage/").status_code == 200


def test_resident_sessions_end_alone_logs_the_resident_out(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    login_dob(client_a, resident_a)
    with tenant_context(dob_mode):
        assert resident_sessions_end(Voucher.objects.get(pk=resident_a.pk)) == 1
    assert client_a.get("/mypage/").status_code == 302


def test_a_session_not_made_by_the_resident_login_is_no_resident_session(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    # A session that merely claims a voucher (as a bug elsewhere might write one) is refused:
    # only the login registers a resident session.
    from django.utils import timezone

    from sesshu.session_store import SessionStore

    with tenant_context(dob_mode):
        session = SessionStore()
        session["resident_voucher_id"] = resident_a.pk
        now = int(timezone.now().timestamp())
        session["resident_login_at"] = session["resident_seen_at"] = now
        session.save()
    client_a.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    response = client_a.get("/mypage/")
    assert response.status_code == 302
    assert events(dob_mode, "resident.access_refused")[-1].details["reason"] == "ended"


def test_a_session_of_municipality_b_means_nothing_in_a(
    client_a: Client, tenant_b: Municipality, resident_b: Resident, dob_mode: Municipality
) -> None:
    from tests.booking.resident.conftest import set_mode

    set_mode(tenant_b, Municipality.LoginMode.VOUCHER_DOB)
    client_b = Client(HTTP_HOST="chiyoda.localhost")
    assert login_dob(client_b, resident_b).status_code == 302
    client_a.cookies[settings.SESSION_COOKIE_NAME] = _session_key(client_b)
    assert client_a.get("/mypage/").status_code == 302
    assert client_b.get("/mypage/").status_code == 200


def test_the_session_cookie_is_http_only_and_lax(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    response = login_dob(client_a, resident_a)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_the_idle_warnings_continue_starts_the_idle_timer_again(
    client_a: Client, dob_mode: Municipality, resident_a: Resident, clock: time_machine.Coordinates
) -> None:
    """The notice shown shortly before the idle timeout (resident.js): its 続ける keeps the
    resident in, as opening a page would; a session already ended gets 401 and nothing
    else (no page remembered to open after the next login, no message)."""
    login_dob(client_a, resident_a)
    page = client_a.get("/mypage/").content.decode()
    warning = page.split('id="idle-warning"')[1].split("</div>")[0]
    assert f'data-idle-seconds="{settings.SESSHU_SESSION_IDLE_SECONDS}"' in warning
    assert 'data-continue="/session/continue/"' in warning and "hidden" in warning
    assert '<script src="/static/sesshu/resident.js" defer></script>' in page

    clock.shift(timedelta(seconds=settings.SESSHU_SESSION_IDLE_SECONDS - 120))
    assert client_a.get("/session/continue/").status_code == 405  # a POST, with its token
    assert client_a.post("/session/continue/").status_code == 204
    clock.shift(timedelta(seconds=settings.SESSHU_SESSION_IDLE_SECONDS - 30))
    assert client_a.get("/mypage/").status_code == 200  # kept in by the continue alone

    clock.shift(timedelta(seconds=settings.SESSHU_SESSION_IDLE_SECONDS + 1))
    refused = events(dob_mode, "resident.access_refused")
    assert client_a.post("/session/continue/").status_code == 401
    assert events(dob_mode, "resident.access_refused") == refused
    # The next page says the session ended, and the login goes on to my page, not here.
    response = client_a.get("/mypage/", follow=True)
    assert "一定時間操作がなかったため" in response.content.decode()
    assert login_dob(client_a, resident_a)["Location"] == "/mypage/"

    # Nobody logged in: no warning, no script.
    anonymous = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    top = anonymous.get("/").content.decode()
    assert 'id="idle-warning"' not in top and "resident.js" not in top
    assert anonymous.post("/session/continue/").status_code == 401
