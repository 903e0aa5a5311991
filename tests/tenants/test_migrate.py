"""migrate_schemas passes over a schema whose migrations are all applied, and only that."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context

from tenants.db.migrate import Command
from tenants.db.roles import owner_mode
from tenants.models import Municipality


def _migrate(schema: str, capsys: pytest.CaptureFixture[str], **options: object) -> str:
    # django-tenants writes each schema's lines to sys.stdout, prefixed with the schema.
    capsys.readouterr()
    with owner_mode():
        call_command("migrate_schemas", schema_name=schema, interactive=False, **options)
    return capsys.readouterr().out


def test_an_up_to_date_schema_is_passed_over(
    tenant_a: Municipality, capsys: pytest.CaptureFixture[str]
) -> None:
    output = _migrate(tenant_a.schema_name, capsys)
    assert f":{tenant_a.schema_name}]   No migrations to apply (up to date)." in output
    assert "Running migrations" not in output


def test_a_schema_missing_a_migration_takes_djangos_full_path(tenant_a: Municipality) -> None:
    options = {"database": "default", "verbosity": 1}
    with schema_context(tenant_a.schema_name):
        assert Command._up_to_date(options)
        with owner_mode(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM django_migrations WHERE id = "
                "(SELECT max(id) FROM django_migrations WHERE app = 'booking')"
            )
        assert not Command._up_to_date(options)


def test_options_that_ask_for_more_than_the_plan_take_the_full_path(
    tenant_a: Municipality, capsys: pytest.CaptureFixture[str]
) -> None:
    with schema_context(tenant_a.schema_name):
        for extra in ({"plan": True}, {"fake": True}, {"prune": True}, {"app_label": "booking"}):
            assert not Command._up_to_date({"database": "default", **extra}), extra
    output = _migrate(tenant_a.schema_name, capsys, plan=True)
    assert "Planned operations" in output and "up to date" not in output


def test_every_municipality_migrates_past_a_decommissioned_one_and_a_missing_schema(
    tenant_a: Municipality, capsys: pytest.CaptureFixture[str]
) -> None:
    """A decommissioned municipality's schema was dropped; a provisioning killed half-way
    left a municipality without one. Neither stops the others' migration. (The standard
    executor: the multiprocessing one, the same subclass, opens connections of its own,
    which the test's transaction does not allow.)"""
    from audit.chain import Actor
    from tenants import services

    actor = Actor.system("tests")
    gone = services.municipality_provision(
        code="271004", subdomain="osaka", admin_email="a@osaka.example.jp", actor=actor
    ).municipality
    services.municipality_decommission(municipality=gone, confirmation="271004", actor=actor)
    died = services.municipality_provision(
        code="011002", subdomain="sapporo", admin_email="a@sapporo.example.jp", actor=actor
    ).municipality
    services._drop_schema(died.schema_name)
    capsys.readouterr()
    with owner_mode():
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=1)
    captured = capsys.readouterr()
    assert f":{tenant_a.schema_name}]   No migrations to apply (up to date)." in captured.out
    assert "m271004" not in captured.out + captured.err
    assert "Schema m011002 does not exist but its municipality is not decommissioned" in (
        captured.err
    )
