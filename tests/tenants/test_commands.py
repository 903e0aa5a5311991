"""The control plane's operations as commands (tenant_provision is in test_provisioning.py):
tenant_suspend, tenant_resume, tenant_waiting_room and tenant_decommission, as automation runs
them."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.platform.models import PlatformEvent
from tenants.models import Municipality


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _actions(municipality: Municipality) -> list[str]:
    return list(
        PlatformEvent.objects.filter(target_id=str(municipality.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_suspend_and_resume_by_command(tenant_a: Municipality) -> None:
    out = _run("tenant_suspend", "--code", tenant_a.code, "--reason", "maintenance")
    tenant_a.refresh_from_db()
    assert tenant_a.status == Municipality.Status.SUSPENDED
    assert "停止中" in out
    suspended = PlatformEvent.objects.filter(
        action="municipality.suspended", target_id=str(tenant_a.pk)
    ).get()
    assert suspended.actor_id.startswith("manage.py tenant_suspend (")
    assert suspended.details["reason"] == "maintenance"

    with pytest.raises(CommandError, match="この操作はできません"):
        call_command("tenant_suspend", "--code", tenant_a.code)

    out = _run("tenant_resume", "--code", f" {tenant_a.code} ")  # pasted with spaces
    tenant_a.refresh_from_db()
    assert tenant_a.status == Municipality.Status.ACTIVE
    assert _actions(tenant_a)[-2:] == ["municipality.suspended", "municipality.resumed"]

    with pytest.raises(CommandError, match="この操作はできません"):
        call_command("tenant_resume", "--code", tenant_a.code)  # not suspended


def test_the_waiting_room_rate_by_command(tenant_a: Municipality) -> None:
    out = _run("tenant_waiting_room", "--code", tenant_a.code, "--per-minute", "300")
    tenant_a.refresh_from_db()
    assert tenant_a.waiting_room_per_minute == 300 and "300 a minute" in out
    changed = PlatformEvent.objects.filter(
        action="municipality.waiting_room_changed", target_id=str(tenant_a.pk)
    ).get()
    assert changed.actor_id.startswith("manage.py tenant_waiting_room (")
    assert changed.details == {"from": None, "to": 300}
    # The same rate again changes nothing and records nothing.
    _run("tenant_waiting_room", "--code", tenant_a.code, "--per-minute", "300")
    assert _actions(tenant_a).count("municipality.waiting_room_changed") == 1

    with pytest.raises(CommandError, match="0から100,000までの整数"):
        call_command("tenant_waiting_room", "--code", tenant_a.code, "--per-minute", "-1")
    tenant_a.refresh_from_db()
    assert tenant_a.waiting_room_per_minute == 300  # a refused rate leaves the last one

    out = _run("tenant_waiting_room", "--code", tenant_a.code, "--platform-default")
    tenant_a.refresh_from_db()
    assert tenant_a.waiting_room_per_minute is None and "follows the platform" in out


@pytest.mark.parametrize(
    "command", ["tenant_suspend", "tenant_resume", "tenant_waiting_room", "tenant_decommission"]
)
def test_an_unknown_code_is_refused(db: None, command: str) -> None:
    extra = {
        "tenant_decommission": ["--confirm", "011002"],
        "tenant_waiting_room": ["--per-minute", "60"],
    }.get(command, [])
    with pytest.raises(CommandError, match="No municipality with code 011002"):
        call_command(command, "--code", "011002", *extra)


@pytest.fixture
def osaka(db: None) -> Municipality:
    call_command(
        "tenant_provision",
        "--code",
        "271004",
        "--subdomain",
        "osaka",
        "--admin-email",
        "admin@osaka.example.jp",
        stdout=io.StringIO(),
    )
    return Municipality.objects.get(code="271004")


def _schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def test_a_wrong_confirmation_is_refused_and_changes_nothing(osaka: Municipality) -> None:
    with pytest.raises(CommandError, match=r"確認のため市区町村コード（271004）を正しく入力"):
        call_command("tenant_decommission", "--code", "271004", "--confirm", "271005")
    osaka.refresh_from_db()
    assert osaka.status == Municipality.Status.ACTIVE
    assert bytes(osaka.wrapped_data_key)
    assert _schema_exists(osaka.schema_name)
    assert "tenant_key.destroyed" not in _actions(osaka)


def test_without_confirm_and_without_a_terminal_it_asks_for_confirm(
    osaka: Municipality, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("271004\n"))  # piped, not a terminal
    with pytest.raises(CommandError, match="Pass --confirm CODE"):
        call_command("tenant_decommission", "--code", "271004")
    osaka.refresh_from_db()
    assert osaka.status == Municipality.Status.ACTIVE


def test_a_wrong_code_typed_at_the_prompt_is_refused(
    osaka: Municipality, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    prompts: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "132110")
    with pytest.raises(CommandError, match="確認のため"):
        call_command("tenant_decommission", "--code", "271004")
    assert "271004" in prompts[0] and "Type its code to confirm" in prompts[0]
    osaka.refresh_from_db()
    assert osaka.status == Municipality.Status.ACTIVE


def test_decommission_with_confirm_runs_without_a_prompt(
    osaka: Municipality, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_prompt(prompt: str) -> str:
        raise AssertionError("--confirm must not prompt")

    monkeypatch.setattr("builtins.input", no_prompt)
    out = _run("tenant_decommission", "--code", "271004", "--confirm", "271004")
    assert "decommissioned; key destroyed, schema dropped" in out
    osaka.refresh_from_db()
    assert osaka.status == Municipality.Status.DECOMMISSIONED
    assert bytes(osaka.wrapped_data_key) == b""
    assert not _schema_exists(osaka.schema_name)
    decommissioned = PlatformEvent.objects.get(
        action="municipality.decommissioned", target_id=str(osaka.pk)
    )
    assert decommissioned.actor_id.startswith("manage.py tenant_decommission (")
    with pytest.raises(CommandError, match="既に廃止されています"):
        call_command("tenant_decommission", "--code", "271004", "--confirm", "271004")


def test_a_command_names_who_ran_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from sesshu.command_actor import command_actor

    monkeypatch.setenv("SESSHU_OPERATOR", "yamada")
    assert command_actor("tenant_suspend").id == "manage.py tenant_suspend (yamada)"
    monkeypatch.delenv("SESSHU_OPERATOR")
    assert "@" in command_actor("tenant_suspend").id  # the OS user and host
    assert len(command_actor("x" * 100).id) == 64  # as long as the trail keeps
