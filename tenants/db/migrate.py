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

from typing import Any

from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

# Options under which Django's command does more than apply the plan.
_FULL_RUN_OPTIONS = ("app_label", "migration_name", "fake", "fake_initial", "plan", "prune")


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
        executor = MigrationExecutor(connections[options.get("database", DEFAULT_DB_ALIAS)])
        # Conflicts (two leaves in an app) are Django's to report: take the full path.
        if executor.loader.detect_conflicts():
            return False
        return not executor.migration_plan(executor.loader.graph.leaf_nodes())
