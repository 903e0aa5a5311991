"""The morning booking opens, Redis (the shared cache, the task broker) fails over or stops
answering. Through the real redis-py and Celery clients, against a port nobody listens on
and a listener that never answers:

- residents already inside keep booking, from the database, and a booking made is never
  answered with an error because what follows its commit (the availability cache, the
  confirmation's task) could not be done at once;
- a login, which cannot be counted by the throttle, is refused with a page that says to try
  again shortly (503), and nobody is logged in uncounted;
- the waiting room keeps newcomers waiting rather than letting everyone in;
- a Redis that hangs costs a page the configured timeout, not the worker.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.db import connections
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from booking.models import Booking, ContactPreference, Notification
from booking.notifications.delivery import SWEEP_GRACE, notifications_due
from booking.resident.waiting_room import ADMITTED_COOKIE, TICKET_COOKIE
from sesshu import outages
from tenants.models import Municipality
from tests.booking.resident.conftest import (
    JAPAN,
    Resident,
    World,
    logged_in,
    login_dob,
    set_mode,
)
from tests.conftest import host_of
from tests.redis_outage import broker_out_of_reach, closed_port, redis_at


class _Silent:
    """A listener that accepts connections (the kernel completes the handshake) and never
    answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = int(self.socket.getsockname()[1])
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._hold, daemon=True)
        self.thread.start()

    def _hold(self) -> None:
        while True:
            try:
                connection, _address = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def redis_down(settings: Any) -> None:
    redis_at(settings, closed_port())


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sesshu.cache"]


def test_a_resident_inside_books_from_the_database_while_redis_is_unreachable(
    settings: Any,
    client_a: Client,
    world_a: World,
    resident_a: Resident,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)
    day = slot.starts_at.astimezone(JAPAN).date().isoformat()
    redis_at(settings, closed_port())
    caplog.set_level(logging.ERROR, logger="sesshu.cache")

    assert client_a.get("/mypage/").status_code == 200
    assert client_a.get("/book/").status_code == 200
    day_page = client_a.get(f"/book/{day}/")
    assert day_page.status_code == 200
    assert f"/book/slot/{slot.pk}/" in day_page.content.decode()
    with django_capture_on_commit_callbacks() as after_commit:
        booked = client_a.post(f"/book/slot/{slot.pk}/")
    assert booked.status_code == 302, booked.content.decode()[:2000]
    assert booked["Location"].endswith("/done/")
    # What follows the commit (the availability cache's generation, here) runs, and raises
    # nothing although Redis is gone: the booking stands and the resident is told so.
    assert after_commit
    for callback in after_commit:
        callback()
    assert client_a.get(booked["Location"]).status_code == 200
    with tenant_context(world_a.municipality):
        assert Booking.objects.filter(voucher_id=resident_a.pk, slot=slot).count() == 1

    lines = _outage_lines(caplog)
    # Once a minute per kind, not once per page: four pages read availability above.
    assert lines == [
        "the shared cache (Redis) cannot be reached: availability (ConnectionError: "
        + lines[0].split("(ConnectionError: ", 1)[1]
    ]


def _browser(municipality: Municipality) -> Client:
    """A browser's view of the site: the error page, not the exception behind it."""
    return Client(HTTP_HOST=host_of(municipality), raise_request_exception=False)


def test_a_login_that_cannot_be_counted_is_refused_with_a_page_saying_to_try_again(
    redis_down: None, resident_a: Resident, caplog: pytest.LogCaptureFixture
) -> None:
    client_a = _browser(resident_a.municipality)
    set_mode(resident_a.municipality, Municipality.LoginMode.VOUCHER_DOB)
    caplog.set_level(logging.INFO)
    form = client_a.get("/login/")
    assert form.status_code == 200  # the form is shown: a page is no attempt
    assert 'name="voucher_number"' in form.content.decode()

    refused = login_dob(client_a, resident_a)
    assert refused.status_code == 503
    assert refused["Retry-After"] == "30"
    text = refused.content.decode()
    assert "一時的に処理できない状態のため" in text
    assert "しばらくしてから、もう一度お試しください" in text
    assert "コールセンター" in text  # a resident page: the call centre is named
    # Nobody was let in uncounted.
    assert client_a.get("/mypage/").status_code == 302
    # Logged once as the outage it is, not as a server error per attempt.
    assert not [r for r in caplog.records if r.name == "django.request"]
    assert any("answered 503" in line for line in _outage_lines(caplog))


def test_english_visitors_get_the_page_in_english(redis_down: None, resident_a: Resident) -> None:
    client_a = _browser(resident_a.municipality)
    set_mode(resident_a.municipality, Municipality.LoginMode.VOUCHER_DOB)
    client_a.cookies["django_language"] = "en"
    refused = login_dob(client_a, resident_a)
    assert refused.status_code == 503
    assert "briefly unable to handle it" in refused.content.decode()


def test_the_waiting_room_keeps_newcomers_waiting_and_lets_those_inside_go_on(
    settings: Any, tenant_a: Municipality, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SESSHU_WAITING_ROOM_PER_MINUTE = 60
    inside = Client(HTTP_HOST=host_of(tenant_a), REMOTE_ADDR="10.9.0.1")
    assert inside.get("/").status_code == 200  # let in while Redis is up (memory cache)
    assert ADMITTED_COOKIE in inside.cookies
    redis_at(settings, closed_port())
    caplog.set_level(logging.ERROR, logger="sesshu.cache")

    newcomer = Client(HTTP_HOST=host_of(tenant_a), REMOTE_ADDR="10.9.0.2")
    waiting = newcomer.get("/")
    assert waiting.status_code == 503
    assert waiting["Refresh"] == "20"
    assert "順番の受付を一時的に停止しています" in waiting.content.decode()
    assert "あと約" not in waiting.content.decode()  # no place, so no estimate
    assert ADMITTED_COOKIE not in waiting.cookies and TICKET_COOKIE not in waiting.cookies
    by_hand = newcomer.get("/?waiting=by-hand")
    assert by_hand.status_code == 503 and "Refresh" not in by_hand
    assert "順番を確認する" in by_hand.content.decode()

    assert inside.get("/").status_code == 200  # an admission needs no Redis
    assert [line for line in _outage_lines(caplog) if "waiting room" in line]


def test_a_bookings_confirmation_left_unqueued_by_an_unreachable_broker_waits_for_the_sweeper(
    client_a: Client,
    world_a: World,
    resident_a: Resident,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with tenant_context(world_a.municipality):
        ContactPreference.objects.create(
            voucher_id=resident_a.pk, email=b"sealed", email_consented_at=timezone.now()
        )
    logged_in(client_a, resident_a)
    slot = world_a.slot(3, 10)
    with django_capture_on_commit_callbacks() as after_commit:
        booked = client_a.post(f"/book/slot/{slot.pk}/")
    assert booked.status_code == 302

    caplog.set_level(logging.ERROR, logger="sesshu.cache")
    with broker_out_of_reach():
        started = time.monotonic()
        for callback in after_commit:
            callback()  # raises nothing
        took = time.monotonic() - started
    with tenant_context(world_a.municipality):
        waiting = list(Notification.objects.filter(voucher_id=resident_a.pk))
        assert [row.status for row in waiting] == ["pending"]
        # The sweeper's next pass, past its grace, takes it up.
        later = timezone.now() + SWEEP_GRACE + timedelta(seconds=1)
        assert notifications_due(now=later) == [waiting[0].pk]
    assert [line for line in _outage_lines(caplog) if line.startswith("the task broker")]
    assert took < 5  # one retry, not Celery's default of three


def _within(seconds: float, work: Any) -> Any:
    """``work()``'s outcome (its value, or what it raised), failing instead of hanging if it
    takes longer than ``seconds``."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as error:
            outcome.append(error)
        finally:
            connections.close_all()  # this thread's own

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still waiting after {seconds} s"
    return outcome[0]


def test_a_redis_that_hangs_costs_one_page_the_timeout_then_is_left_alone_a_moment(
    settings: Any, resident_a: Resident, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that accepts connections and never answers: the first command gives up after
    the timeout; for ``PAUSE_SECONDS`` after that, nothing in this process waits for it (a
    page, a login refused); then it is asked again."""
    monkeypatch.setattr(outages, "PAUSE_SECONDS", 2.5)
    set_mode(resident_a.municipality, Municipality.LoginMode.VOUCHER_DOB)
    browser = _browser(resident_a.municipality)
    silent = _Silent()
    try:
        redis_at(settings, silent.port)
        timeout = settings.SESSHU_REDIS_TIMEOUT_SECONDS
        cache = caches["default"]
        outcome = _within(timeout + 1, lambda: cache.get("anything"))
        assert isinstance(outcome, redis.exceptions.TimeoutError)
        # Requests in this thread (the test's transaction holds the login mode): each is
        # bounded by the timeout, which the command above has just shown to hold.
        # The login page reads the throttle's counters, and shows the form without them.
        started = time.monotonic()
        assert browser.get("/login/").status_code == 200
        assert time.monotonic() - started >= timeout  # it asked, and waited once
        started = time.monotonic()
        assert browser.get("/login/").status_code == 200
        assert login_dob(browser, resident_a).status_code == 503
        assert time.monotonic() - started < timeout  # neither waited for Redis
        time.sleep(outages.PAUSE_SECONDS)
        started = time.monotonic()
        assert browser.get("/login/").status_code == 200
        assert time.monotonic() - started >= timeout  # asked again after the pause
    finally:
        silent.close()


def test_the_settings_give_the_cache_and_the_broker_their_timeouts() -> None:
    """What the tests above take from settings is what a deployment with Redis gets."""
    root = Path(__file__).resolve().parents[3]
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from django.conf import settings as s; print(json.dumps(["
            "s.CACHES['default'], s.CELERY_BROKER_TRANSPORT_OPTIONS,"
            " s.CELERY_TASK_PUBLISH_RETRY_POLICY['max_retries']]))",
        ],
        cwd=root,
        env={
            **os.environ,
            "PYTHONPATH": f"{root / 'platform'}{os.pathsep}{root}",
            "DJANGO_SETTINGS_MODULE": "sesshu.settings",
            "SESSHU_TESTING": "1",
            "REDIS_URL": "rediss://cache.internal:6379/0",
            "SESSHU_REDIS_TIMEOUT_MS": "750",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    cache, transport, retries = json.loads(shown.stdout.strip().splitlines()[-1])
    assert cache["LOCATION"] == "rediss://cache.internal:6379/0"
    assert cache["OPTIONS"] == {"socket_connect_timeout": 0.75, "socket_timeout": 0.75}
    assert transport["socket_timeout"] > 1  # longer than a worker's one-second BRPOP
    assert transport["socket_connect_timeout"] > 0
    assert retries == 1
