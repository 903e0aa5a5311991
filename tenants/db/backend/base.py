"""django-tenants' PostgreSQL backend, switching the database role with the schema.

Upstream sets ``search_path`` whenever the tenant changes and swallows errors from it. Here
the same statement also sets the tenant's role, and errors propagate: a failed switch must
never leave the previous tenant's role in force. Upstream clears its cache after
``set_tenant``, ``close``, ``rollback`` and ``savepoint_rollback``, so the role is re-issued
exactly when the path is; except that here ``set_tenant`` keeps what the connection has set,
since the cache holds the whole state (path and role) and a switch is issued whenever the
wanted state differs from it: going back to the same municipality (the end of a
``schema_context``) costs no statement.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper
from django_tenants.utils import quote_schema_name

from tenants.db.roles import connection_role, owner_mode_active

NO_DB_ALIAS = "__no_db__"


class DatabaseWrapper(TenantDatabaseWrapper):
    search_path_set_schemas: Any
    _setting_search_path: bool

    def set_tenant(self, tenant: Any, include_public: bool = True) -> None:
        in_force = self.search_path_set_schemas
        super().set_tenant(tenant, include_public)
        self.search_path_set_schemas = in_force

    def _handle_search_path(self, cursor: Any = None) -> None:
        if self._setting_search_path:
            return
        search_paths = self._get_cursor_search_paths()
        if owner_mode_active() or self.alias == NO_DB_ALIAS:
            role_statement = "RESET ROLE"
        else:
            role = connection_role(self, self.schema_name)
            role_statement = f"SET ROLE {quote_schema_name(role)}"
        state = (tuple(search_paths), role_statement)
        if self.search_path_set_schemas == state:
            return
        # Inside a failed transaction every statement but ROLLBACK fails; the rollback that
        # must come next clears the cache, so the switch is issued right after it.
        if self.connection.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            self.search_path_set_schemas = None
            return
        statement = "SET search_path = {}; {}".format(
            ",".join(quote_schema_name(s) for s in search_paths), role_statement
        )
        self._setting_search_path = True
        target = self.connection.cursor() if cursor is None else cursor
        try:
            self.search_path_set_schemas = None
            target.execute(statement)
            self.search_path_set_schemas = state
        finally:
            self._setting_search_path = False
            if cursor is None:
                target.close()
