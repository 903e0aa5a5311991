from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.db.utils import DatabaseError
from django_tenants.utils import schema_context

from audit import record
from audit import services as audit_services
from audit.chain import Actor
from audit.models import Event, EventSeal
from audit.platform.models import PlatformEvent, PlatformEventSeal
from audit.services import audit_seal_pending, audit_verify
from tenants.db.roles import owner_mode
from tenants.models import Municipality


def _tamper(table: str, seq: int, **changes: str) -> None:
    """What only someone bypassing the application (a DBA) could do: disable the guard."""
    assignments = ", ".join(f"{column} = %s" for column in changes)
    with owner_mode(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE needs none pending
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_update_delete")
        cursor.execute(f"UPDATE {table} SET {assignments} WHERE seq = %s", [*changes.values(), seq])
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_no_update_delete")


def test_events_are_sealed_into_one_chain_per_tenant(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    with schema_context(tenant_a.schema_name):
        first = record(action="test.one", actor=Actor.system("tests"), target=("voucher", "1"))
        second = record(action="test.two", actor=Actor.staff(type("U", (), {"pk": 7})()))
        assert second.seq > first.seq
        assert audit_verify().pending >= 2  # committed events wait for the sealer
        assert audit_seal_pending() >= 2
        first_seal, second_seal = (
            EventSeal.objects.get(event=first),
            EventSeal.objects.get(event=second),
        )
        assert second_seal.chain_seq == first_seal.chain_seq + 1
        assert second_seal.prev_hash == first_seal.hash
        report = audit_verify()
        assert report.ok and report.pending == 0
        assert audit_seal_pending() == 0  # nothing sealed twice
    with schema_context(tenant_b.schema_name):
        assert not Event.objects.filter(action="test.one").exists()
        assert audit_verify().ok


def test_a_busy_sealer_makes_another_return_at_once(tenant_a: Municipality) -> None:
    with schema_context(tenant_a.schema_name):
        record(action="test.one", actor=Actor.system("tests"))
        other = connections.create_connection("default")
        try:
            other.set_schema(tenant_a.schema_name)
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    [f"sesshu.audit-seal:{tenant_a.schema_name}"],
                )
                assert audit_seal_pending(wait=False) == 0
                cursor.execute("ROLLBACK")
        finally:
            other.close()
        assert audit_seal_pending(wait=False) >= 1


def test_the_platform_chain_is_in_the_public_schema(db: None) -> None:
    event = record(action="test.platform", actor=Actor.system("tests"))
    assert isinstance(event, PlatformEvent)
    assert audit_verify().chain == "platform"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET action = 'x'",
        "DELETE FROM audit_event",
        "TRUNCATE audit_event, audit_event_seal",
        "UPDATE audit_event_seal SET hash = 'x'",
        "DELETE FROM audit_event_seal",
    ],
)
def test_postgresql_refuses_changes_even_to_the_owner(
    tenant_a: Municipality, statement: str
) -> None:
    with schema_context(tenant_a.schema_name):
        record(action="test.kept", actor=Actor.system("tests"))
        audit_seal_pending()
        with pytest.raises(DatabaseError, match="append-only"):
            with owner_mode(), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # checks pending in the test
                cursor.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_platform_event SET action = 'x'",
        "DELETE FROM audit_platform_event",
        "TRUNCATE audit_platform_event CASCADE",
        "TRUNCATE audit_platform_event, audit_platform_event_seal",
        "UPDATE audit_platform_event_seal SET hash = 'x'",
        "DELETE FROM audit_platform_event_seal",
        "TRUNCATE audit_platform_event_seal",
    ],
)
@pytest.mark.parametrize("as_owner", [True, False], ids=["owner", "application-role"])
def test_postgresql_refuses_changes_to_the_platform_trail(
    db: None, statement: str, as_owner: bool
) -> None:
    """The control plane's role lacks the privilege; the owner, who has it, meets the
    triggers of audit/platform/migrations/0002_append_only.py."""
    event = record(action="test.platform-kept", actor=Actor.system("tests"))
    audit_seal_pending()
    role = owner_mode() if as_owner else nullcontext()
    refusal = "append-only" if as_owner else "permission denied"
    with pytest.raises(DatabaseError, match=refusal):
        with role, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # checks pending in the test
            cursor.execute(statement)
    kept = PlatformEvent.objects.get(seq=event.seq)
    assert kept.action == "test.platform-kept"
    assert PlatformEventSeal.objects.filter(event=kept).exists()
    assert audit_verify().ok


def test_the_tenant_role_has_no_update_or_delete_privilege(tenant_a: Municipality) -> None:
    with schema_context(tenant_a.schema_name):
        record(action="test.kept", actor=Actor.system("tests"))
        with pytest.raises(DatabaseError, match="permission denied"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("UPDATE audit_event SET action = 'x'")


def test_verify_names_the_first_altered_event(tenant_a: Municipality) -> None:
    with schema_context(tenant_a.schema_name):
        events = [record(action=f"test.e{i}", actor=Actor.system("tests")) for i in range(4)]
        audit_seal_pending()
        _tamper("audit_event", events[2].seq, action="test.rewritten")
        report = audit_verify()
    assert not report.ok
    assert report.broken_seq == events[2].seq
    assert "altered" in report.problem


def test_verify_notices_a_removed_seal(tenant_a: Municipality) -> None:
    with schema_context(tenant_a.schema_name):
        events = [record(action=f"test.e{i}", actor=Actor.system("tests")) for i in range(3)]
        audit_seal_pending()
        table = "audit_event_seal"
        with owner_mode(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_update_delete")
            cursor.execute(f"DELETE FROM {table} WHERE event_id = %s", [events[1].seq])
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_no_update_delete")
        report = audit_verify()
    assert report.broken_seq == events[2].seq
    assert "missing" in report.problem


def test_the_command_seals_then_reports_ok_and_broken(tenant_a: Municipality, capsys) -> None:
    with schema_context(tenant_a.schema_name):
        events = [record(action=f"test.e{i}", actor=Actor.system("tests")) for i in range(2)]
    call_command("audit_verify", tenant=tenant_a.code)
    assert "OK" in capsys.readouterr().out
    with schema_context(tenant_a.schema_name):
        _tamper("audit_event", events[1].seq, actor_id="someone-else")
    with pytest.raises(CommandError, match=f"BROKEN at event #{events[1].seq}"):
        call_command("audit_verify", tenant=tenant_a.code)
    with pytest.raises(CommandError, match="No municipality"):
        call_command("audit_verify", tenant="011002")


def test_it_refuses_personal_values_in_details(tenant_a: Municipality) -> None:
    with schema_context(tenant_a.schema_name):
        with pytest.raises(ValueError, match="personal"):
            record(action="test.bad", actor=Actor.system("tests"), details={"phone": "0312345678"})
        with pytest.raises(ValueError, match="namespaced"):
            record(action="nonamespace", actor=Actor.system("tests"))


def test_sealing_after_commit_runs_once_a_second_per_process(
    tenant_a: Municipality,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [5000.0]
    monkeypatch.setattr(audit_services.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(audit_services, "_sealing_began", {})

    def committed(action: str) -> Event:
        with django_capture_on_commit_callbacks(execute=True):
            return record(action=action, actor=Actor.system("tests"))

    with schema_context(tenant_a.schema_name):
        first = committed("test.first")
        assert EventSeal.objects.filter(event=first).exists()
        second = committed("test.second")
        assert not EventSeal.objects.filter(event=second).exists()  # left to the next round
        now[0] += audit_services.SEAL_AFTER_COMMIT_EVERY
        third = committed("test.third")
        assert EventSeal.objects.filter(event__in=[second, third]).count() == 2
        assert audit_verify().ok and audit_verify().pending == 0
