"""Database plumbing for tenants: the backend, roles, bootstrap."""

from __future__ import annotations

from typing import Any, cast

from django.db import connection


def tenant_connection() -> Any:
    """The default connection, typed as what it is: django-tenants' wrapper with
    ``schema_name``, ``set_tenant`` and ``set_schema_to_public`` (django-tenants has no types)."""
    return cast(Any, connection)


def current_schema() -> str:
    return str(tenant_connection().schema_name)


def current_municipality() -> Any:
    """The municipality the connection is switched to (its row was loaded before the switch:
    a tenant role cannot read the public tables)."""
    from tenants.models import Municipality

    tenant = tenant_connection().tenant
    if not isinstance(tenant, Municipality):
        raise RuntimeError(
            "not in a municipality's context (use tenant_context, not a bare schema)"
        )
    return tenant
