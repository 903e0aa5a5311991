"""Counts per municipality: counted inside each schema, stored on the public row, isolated."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.client import Client as ClientType
from django_tenants.utils import schema_context

from audit import record
from audit.chain import Actor
from audit.platform.models import PlatformEvent
from controlplane.services import CreatedOperator
from tenants.models import Municipality
from tenants.services import municipality_suspend
from tenants.tasks import (
    STAT_COUNTERS,
    municipality_stats_refresh,
    municipality_stats_refresh_all,
    stat_counter,
)


def _add_staff(municipality: Municipality, count: int) -> None:
    with schema_context(municipality.schema_name):
        for number in range(count):
            User.objects.create_user(f"staff-{number}", password="irrelevant-password-1")


def _audit_events_in(municipality: Municipality) -> int:
    from audit.models import Event

    with schema_context(municipality.schema_name):
        return Event.objects.count()


def test_it_counts_each_municipality_inside_its_own_schema(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    _add_staff(tenant_a, 3)
    _add_staff(tenant_b, 1)
    with schema_context(tenant_b.schema_name):
        record(action="test.counted", actor=Actor.system("tests"))
    events_a, events_b = _audit_events_in(tenant_a), _audit_events_in(tenant_b)
    assert events_b == events_a + 1

    stats_a = municipality_stats_refresh(tenant_a.pk)
    stats_b = municipality_stats_refresh(tenant_b.pk)

    assert stats_a == {
        "staff_accounts": 3,
        "audit_events": events_a,
        "vouchers_active": 0,
        "bookings_live": 0,
        "imports_attention": 0,
        "admins_ready": 0,
    }
    assert stats_b == {
        "staff_accounts": 1,
        "audit_events": events_b,
        "vouchers_active": 0,
        "bookings_live": 0,
        "imports_attention": 0,
        "admins_ready": 0,
    }
    tenant_a.refresh_from_db()
    tenant_b.refresh_from_db()
    assert tenant_a.stats == stats_a and tenant_b.stats == stats_b
    assert tenant_a.stats_refreshed_at is not None
    assert connection.schema_name == "public"


def test_it_is_idempotent(tenant_a: Municipality) -> None:
    first = municipality_stats_refresh(tenant_a.pk)
    assert municipality_stats_refresh(tenant_a.pk) == first


def test_it_works_when_enqueued_from_inside_a_municipality(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    _add_staff(tenant_b, 2)
    # A task enqueued inside A runs in A's schema and role, which cannot write public rows;
    # the task must count in B and write in public regardless.
    with schema_context(tenant_a.schema_name):
        result = municipality_stats_refresh.delay(tenant_b.pk).get()
    assert result["staff_accounts"] == 2
    tenant_b.refresh_from_db()
    assert tenant_b.stats["staff_accounts"] == 2


def test_refresh_all_enqueues_one_per_municipality_with_a_schema(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    municipality_suspend(municipality=tenant_b, actor=Actor.system("tests"), reason="test")
    assert municipality_stats_refresh_all() == 2  # a suspended municipality is still counted
    for member in (tenant_a, tenant_b):
        member.refresh_from_db()
        assert member.stats_refreshed_at is not None


def test_a_decommissioned_municipality_is_not_counted(tenant_a: Municipality) -> None:
    Municipality.objects.filter(pk=tenant_a.pk).update(status=Municipality.Status.DECOMMISSIONED)
    assert municipality_stats_refresh(tenant_a.pk) is None
    tenant_a.refresh_from_db()
    assert tenant_a.stats_refreshed_at is None


def test_another_app_adds_a_count_with_one_decorator(
    tenant_a: Municipality, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tenants.tasks.STAT_COUNTERS", dict(STAT_COUNTERS))
    from tenants import tasks

    @stat_counter("invitations", "招待")
    def count_invitations() -> int:
        from booking.models import StaffInvitation

        return StaffInvitation.objects.count()

    assert "invitations" in tasks.STAT_COUNTERS
    assert "invitations" not in STAT_COUNTERS
    stats = municipality_stats_refresh(tenant_a.pk)
    assert stats is not None and stats["invitations"] == 1  # the first admin's invitation
    with pytest.raises(ValueError, match="already registered"):
        stat_counter("invitations", "招待")(lambda: 0)


def test_the_list_page_button_refreshes_every_municipality(
    operator_client: ClientType,
    operator: CreatedOperator,
    tenant_a: Municipality,
    tenant_b: Municipality,
    django_capture_on_commit_callbacks: pytest.FixtureRequest,
) -> None:
    _add_staff(tenant_a, 2)
    page = operator_client.get("/").content.decode()
    assert 'action="/stats/refresh/"' in page
    assert operator_client.get("/stats/refresh/").status_code == 405

    with django_capture_on_commit_callbacks(execute=True) as callbacks:  # type: ignore[operator]
        response = operator_client.post("/stats/refresh/")
    assert response.status_code == 302
    # Enqueued only once the request's work is committed (the audit trail's sealing aside).
    queued = [c for c in callbacks if "_seal_after_commit" not in getattr(c, "__qualname__", "")]
    assert len(queued) == 1
    tenant_a.refresh_from_db()
    tenant_b.refresh_from_db()
    assert tenant_a.stats["staff_accounts"] == 2
    assert tenant_b.stats["staff_accounts"] == 0
    assert "<dt>職員アカウント</dt><dd>2</dd>" in operator_client.get("/").content.decode()
    assert PlatformEvent.objects.filter(
        action="controlplane.stats_refresh_requested",
        actor_kind="vendor",
        actor_id=str(operator.user.pk),
    ).exists()


def test_a_count_is_shown_with_thousands_separators() -> None:
    from controlplane.selectors import StatLine

    assert StatLine("有効な接種券", 200000).text == "200,000"
    assert StatLine("有効な接種券", None).text == "—"


def test_what_needs_the_vendors_attention_is_counted_and_marked(
    operator_client: ClientType, tenant_a: Municipality
) -> None:
    """A failed or stalled import, and a municipality with no admin who can sign in, are
    counted with the rest (hourly, by the beat) and marked on the list."""
    from datetime import timedelta

    from django.utils import timezone

    from booking.models import RegistryImport

    with schema_context(tenant_a.schema_name):
        common = {"file_name": "meibo.csv", "size": 10, "actor_kind": "system", "actor_id": "tests"}
        RegistryImport.objects.create(status=RegistryImport.Status.FAILED, **common)
        stalled = RegistryImport.objects.create(status=RegistryImport.Status.PARSING, **common)
        RegistryImport.objects.filter(pk=stalled.pk).update(
            heartbeat_at=timezone.now() - timedelta(hours=1)
        )
        RegistryImport.objects.create(status=RegistryImport.Status.DONE, **common)
    stats = municipality_stats_refresh(tenant_a.pk)
    assert stats is not None
    assert stats["imports_attention"] == 2 and stats["admins_ready"] == 0
    page = operator_client.get("/").content.decode()
    row = page.split(tenant_a.name)[1].split("</tr>")[0]
    assert row.count("（要確認）") == 2
    from django.conf import settings

    assert any(
        entry["task"] == "tenants.tasks.municipality_stats_refresh_all"
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
    )
