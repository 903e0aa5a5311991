"""The migrate command django-tenants runs in each schema (``TENANT_BASE_MIGRATE_COMMAND``).

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

from functools import cache
from typing import Any

from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.loader import MigrationLoader

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
