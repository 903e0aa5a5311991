"""Re-grant a schema to its role each time its migrations have changed something."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models.signals import post_migrate
from django.dispatch import receiver
from django_tenants.signals import schema_migrated

from tenants.db import current_schema
from tenants.db.roles import grant_schema_to_role, schema_granted

# Schemas whose migrate run applied at least one migration, in this process.
_changed: set[str] = set()


@receiver(post_migrate)
def remember_applied_migrations(sender: Any, plan: Any = None, **kwargs: Any) -> None:
    if plan:
        _changed.add(current_schema())


@receiver(schema_migrated)
def grant_after_migration(sender: Any, schema_name: str, **kwargs: Any) -> None:
    # A no-op migrate over hundreds of schemas must not rewrite hundreds of grants: the
    # catalog scans behind GRANT … IN SCHEMA grow with every municipality.
    if schema_name not in _changed and schema_granted(connection, schema_name):
        return
    _changed.discard(schema_name)
    grant_schema_to_role(connection, schema_name)
