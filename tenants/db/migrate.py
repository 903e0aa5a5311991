"""The migrate command django-tenants runs in each schema (``TENANT_BASE_MIGRATE_COMMAND``),
and the executor that chooses the schemas (``executor_for``).

Django's migrate does a lot even when nothing is to be applied: it runs the system checks,
replays every applied migration into a project state, renders all models twice and emits
pre/post_migrate (which look up content types and permissions). A deployment with no
migration for the tenants ran that in every municipality's schema, a few tenths of a second
each: minutes at 1,741 municipalities, before the new version could start.

Here a schema whose migration records already hold every migration on disk is passed over
after one query; anything else — a migration to apply, a target, ``--fake``, ``--plan``,
``--prune``, ``--run-syncdb`` — goes through Django's command unchanged. (``migrate_schemas``
itself has run the system checks once, before visiting the schemas.)
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.migrations.loader import MigrationLoader
from django_tenants.migration_executors import get_executor
from django_tenants.migration_executors.base import MigrationExecutor

from tenants.models import Municipality

# Options under which Django's command does more than apply the plan.
_FULL_RUN_OPTIONS = ("app_label", "migration_name", "fake", "fake_initial", "plan", "prune")


@cache
def migrations_on_disk() -> frozenset[tuple[str, str]] | None:
    """Every migration of the project, read once per process; None when the graph has
    squashed migrations or conflicts (two leaves in an app): those take Django's full path,
    which knows how to apply and report them."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    if loader.replacements or loader.detect_conflicts():
        return None
    return frozenset(loader.graph.nodes)


def applied_in(connection: Any, schema: str) -> set[tuple[str, str]]:
    """The schema's migration records, read from that schema by name: a schema without its
    own table has applied nothing, whatever the public schema's table holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f'"{schema}".django_migrations'])
        if cursor.fetchone()[0] is None:
            return set()
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations')  # noqa: S608
        return set(cursor.fetchall())


class Command(MigrateCommand):
    def execute(self, *args: Any, **options: Any) -> str | None:
        if self._up_to_date(options):
            if options.get("verbosity", 1) >= 1:
                self.stdout.write("  No migrations to apply (up to date).")
            return None
        return super().execute(*args, **options)

    @staticmethod
    def _up_to_date(options: dict[str, Any]) -> bool:
        if options.get("run_syncdb") or any(options.get(name) for name in _FULL_RUN_OPTIONS):
            return False
        on_disk = migrations_on_disk()
        if on_disk is None:
            return False
        connection = connections[options.get("database", DEFAULT_DB_ALIAS)]
        # Django records every migration in every schema (the router only skips the
        # operations of apps that live elsewhere), so up to date means: all of them recorded.
        return on_disk <= applied_in(connection, connection.schema_name)  # type: ignore[attr-defined]


def executor_for(codename: str | None = None) -> type[MigrationExecutor]:
    """django-tenants' executor (``GET_EXECUTOR_FUNCTION``), visiting only schemas that exist.

    django-tenants visits every municipality's schema, decommissioned ones too, whose schema
    was dropped with their data: Django then fails to create its migration table there, and
    the deployment stops for every municipality after it. A missing schema of a municipality
    that is not decommissioned (a provisioning that died half-way, docs/operations.md 1.8)
    is passed over with a warning rather than stopping everyone else's migration."""
    base = get_executor(codename)

    class ExistingSchemas(base):  # type: ignore[misc,valid-type]
        def run_migrations(self, tenants: Any = None) -> None:
            schemas = list(tenants or [])
            with connection.cursor() as cursor:
                cursor.execute("SELECT nspname FROM pg_namespace")
                existing = {row[0] for row in cursor.fetchall()}
            missing = [schema for schema in schemas if schema not in existing]
            if missing:
                decommissioned = set(
                    Municipality.objects.filter(
                        schema_name__in=missing, status=Municipality.Status.DECOMMISSIONED
                    ).values_list("schema_name", flat=True)
                )
                for schema in missing:
                    if schema not in decommissioned:
                        sys.stderr.write(
                            f"Schema {schema} does not exist but its municipality is not "
                            "decommissioned (a provisioning that died half-way?): passed "
                            "over. See docs/operations.md 1.8.\n"
                        )
            super().run_migrations(tenants=[s for s in schemas if s in existing])

    return ExistingSchemas
