"""Per-tenant PostgreSQL roles: names, owner mode, grants.

Each tenant schema is reachable only through its own NOLOGIN role; the connection switches
role in the same statement that sets the search path (see ``tenants.db.backend``). Work that
must create or alter objects — migrations, provisioning, decommissioning, test flushes — runs
in *owner mode*, which resets the role to the login role that owns everything. Owner mode is
off unless asked for, so a migration started without it fails with "permission denied"
instead of running as the wrong role.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from tenants.db.bootstrap import ADMIN_SCHEMA, role_prefix

OWNER_MODE_ENV = "SESSHU_DB_OWNER_MODE"
_owner_mode: ContextVar[bool] = ContextVar("sesshu_db_owner_mode", default=False)
MAX_IDENTIFIER = 63


def owner_mode_active() -> bool:
    return _owner_mode.get() or os.environ.get(OWNER_MODE_ENV) == "1"


def _forget_search_paths() -> None:
    for conn in connections.all(initialized_only=True):
        if hasattr(conn, "search_path_set_schemas"):
            conn.search_path_set_schemas = None


@contextmanager
def owner_mode() -> Iterator[None]:
    """Run the enclosed database work as the owning login role (migrations, DDL)."""
    token = _owner_mode.set(True)
    _forget_search_paths()
    try:
        yield
    finally:
        _owner_mode.reset(token)
        _forget_search_paths()


def role_for_schema(database: str, schema_name: str) -> str:
    role = f"{role_prefix(database)}{schema_name}"
    # PostgreSQL silently truncates longer identifiers, which could give two tenants one role.
    if len(role.encode()) > MAX_IDENTIFIER:
        raise ImproperlyConfigured(
            f"Role name {role!r} is longer than {MAX_IDENTIFIER} bytes; use shorter names."
        )
    return role


def connection_role(connection: BaseDatabaseWrapper, schema_name: str) -> str:
    return role_for_schema(connection.settings_dict["NAME"], schema_name)


def append_only_tables(schema_is_public: bool) -> list[str]:
    """Tables whose rows no application role may change or delete (the audit trail)."""
    from django.apps import apps
    from django_tenants.routers import TenantSyncRouter  # noqa: F401
    from django_tenants.utils import get_public_schema_name  # noqa: F401  (app registry)

    tables = []
    for model in apps.get_models():
        if getattr(model, "append_only", False):
            shared = _is_shared(model._meta.app_config.name)
            if shared == schema_is_public:
                tables.append(model._meta.db_table)
    return tables


def unlogged_tables(schema_is_public: bool) -> list[str]:
    """Scratch tables whose rows can be rebuilt (import staging): no WAL for them."""
    from django.apps import apps

    return [
        model._meta.db_table
        for model in apps.get_models()
        if getattr(model, "unlogged", False)
        and _is_shared(model._meta.app_config.name) == schema_is_public
    ]


def _is_shared(app_name: str) -> bool:
    from django.conf import settings

    return app_name in settings.SHARED_APPS


def grant_schema_to_role(connection: BaseDatabaseWrapper, schema_name: str) -> str:
    """Create the schema's role if needed and give it exactly what the application needs.

    Called after every migration of the schema (``schema_migrated``): default privileges
    cover only tables the owner creates later, and append-only tables lose UPDATE/DELETE
    again each time.
    """
    from django_tenants.utils import get_public_schema_name

    role = connection_role(connection, schema_name)
    ident_role = sql.Identifier(role)
    ident_schema = sql.Identifier(schema_name)
    is_public = schema_name == get_public_schema_name()
    statements = [
        sql.SQL("SELECT {}.ensure_tenant_role({})").format(
            sql.Identifier(ADMIN_SCHEMA), sql.Literal(role)
        ),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident_schema, ident_role),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
            ident_schema, ident_role
        ),
        sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
            ident_schema, ident_role
        ),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {} "
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(ident_schema, ident_role),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {}"
        ).format(ident_schema, ident_role),
    ]
    if not is_public:
        # Tenant roles resolve unqualified names through "<schema>, public"; a schema the role
        # cannot use silently drops out of the search path.
        statements.append(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident_role))
    for table in unlogged_tables(is_public):
        statements.append(
            sql.SQL("ALTER TABLE {}.{} SET UNLOGGED").format(ident_schema, sql.Identifier(table))
        )
        # Scratch rows are cleared by TRUNCATE when nothing else is in the table: it gives a
        # million rows' disk back at once, where a DELETE leaves them dead until a vacuum.
        statements.append(
            sql.SQL("GRANT TRUNCATE ON {}.{} TO {}").format(
                ident_schema, sql.Identifier(table), ident_role
            )
        )
    for table in append_only_tables(is_public):
        statements.append(
            sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {}.{} FROM {}").format(
                ident_schema, sql.Identifier(table), ident_role
            )
        )
    with owner_mode(), transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        # Granting on schema public rewrites that schema's one catalog row: two sessions doing
        # it at once (parallel migrations, two provisionings) fail with "tuple concurrently
        # updated". One grant at a time across the database.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('sesshu.grants'))")
        for statement in statements:
            cursor.execute(statement)
    return role


def schema_granted(connection: BaseDatabaseWrapper, schema_name: str) -> bool:
    """Whether the schema's role exists and may already use the schema."""
    role = connection_role(connection, schema_name)
    with owner_mode(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)"
            " THEN has_schema_privilege(%s, %s, 'USAGE') ELSE false END",
            [role, role, schema_name],
        )
        return bool(cursor.fetchone()[0])


def schema_role_exists(connection: BaseDatabaseWrapper, schema_name: str) -> bool:
    """Whether the schema's database role exists (it outlives the schema until dropped)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = %s", [connection_role(connection, schema_name)]
        )
        return cursor.fetchone() is not None


def drop_schema_role(connection: BaseDatabaseWrapper, schema_name: str) -> None:
    """Revoke what the role still holds outside its (already dropped) schema, then drop it."""
    if not schema_role_exists(connection, schema_name):
        return
    role = connection_role(connection, schema_name)
    ident_role = sql.Identifier(role)
    with owner_mode(), connection.cursor() as cursor:
        cursor.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(ident_role))
        cursor.execute(
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(ident_role)
        )
        cursor.execute(
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(ident_role)
        )
        cursor.execute(
            sql.SQL("SELECT {}.drop_tenant_role({})").format(
                sql.Identifier(ADMIN_SCHEMA), sql.Literal(role)
            )
        )
