"""Ended sessions leave the database: expired session rows in every municipality and in the
platform's schema, and the rows that tied ended sessions to a resident or a staff member;
live sessions, and other municipalities', are left alone."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from booking.models import ResidentSession, StaffSession
from booking.services.session_upkeep import sessions_clear_ended
from booking.tasks import sessions_clear_all
from tenants.models import Municipality
from tests.booking.resident.conftest import Resident, login_dob, set_mode
from tests.conftest import host_of


def _key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _expire(municipality: Municipality, key: str) -> None:
    with tenant_context(municipality):
        Session.objects.filter(session_key=key).update(
            expire_date=timezone.now() - timedelta(minutes=1)
        )


def _keys(model: type, municipality: Municipality) -> set[str]:
    with tenant_context(municipality):
        return set(model.objects.values_list("session_key", flat=True))


def test_the_hourly_pass_clears_what_has_ended_everywhere_and_nothing_else(
    dob_mode: Municipality,
    tenant_a: Municipality,
    tenant_b: Municipality,
    resident_a: Resident,
    neighbour_a: Resident,
    resident_b: Resident,
) -> None:
    gone, kept = Client(HTTP_HOST=host_of(tenant_a)), Client(HTTP_HOST=host_of(tenant_a))
    other = Client(HTTP_HOST=host_of(tenant_b))
    set_mode(tenant_b, "voucher_dob")
    assert login_dob(gone, resident_a).status_code == 302
    assert login_dob(kept, neighbour_a).status_code == 302
    assert login_dob(other, resident_b).status_code == 302
    _expire(tenant_a, _key(gone))
    _expire(tenant_b, _key(other))
    # A console session that has ended (its session row deleted), and one that is live.
    with tenant_context(tenant_a):
        clerk = get_user_model().objects.create_user("clerk-a")
        StaffSession.objects.create(session_key="e" * 32, user=clerk)
        live = Session.objects.create(
            session_key="l" * 32, session_data="", expire_date=timezone.now() + timedelta(hours=1)
        )
        StaffSession.objects.create(session_key=live.session_key, user=clerk)
    # The control plane's: one expired, one live.
    with schema_context("public"):
        Session.objects.create(
            session_key="p" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1)
        )
        Session.objects.create(
            session_key="q" * 32, session_data="", expire_date=timezone.now() + timedelta(hours=1)
        )
    connection.set_schema_to_public()

    assert sessions_clear_all() >= 2  # tasks run in-process without a broker

    assert _keys(Session, tenant_a) == {_key(kept), "l" * 32}
    assert _keys(ResidentSession, tenant_a) == {_key(kept)}
    assert _keys(StaffSession, tenant_a) == {"l" * 32}
    assert _keys(Session, tenant_b) == set()
    assert _keys(ResidentSession, tenant_b) == set()
    with schema_context("public"):
        assert set(Session.objects.values_list("session_key", flat=True)) == {"q" * 32}
    # The resident still logged in carries on; the other logs in again.
    assert kept.get("/mypage/").status_code == 200
    assert gone.get("/mypage/")["Location"] == "/"  # the top page, with the login form
    entries = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "booking.sessions_clear_all" in entries


def test_a_large_backlog_goes_in_batches(tenant_a: Municipality) -> None:
    past = timezone.now() - timedelta(hours=1)
    with tenant_context(tenant_a):
        Session.objects.bulk_create(
            Session(session_key=f"{index:032d}", session_data="", expire_date=past)
            for index in range(7)
        )
        statements: list[str] = []

        def counted(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            if sql.startswith("DELETE"):
                statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counted):
            cleared = sessions_clear_ended(batch=3)
        assert cleared == {"sessions": 7, "resident_sessions": 0, "staff_sessions": 0}
        assert len([sql for sql in statements if "django_session" in sql.split("IN")[0]]) == 3
        assert not Session.objects.exists()
