"""django-tenants' PostgreSQL backend, switching the database role with the schema.

Upstream sets ``search_path`` whenever the tenant changes and swallows errors from it. Here
the same statement also sets the tenant's role, and errors propagate: a failed switch must
never leave the previous tenant's role in force. Upstream clears its cache after
``set_tenant``, ``close``, ``rollback`` and ``savepoint_rollback``, so the role is re-issued
exactly when the path is; except that here ``set_tenant`` keeps what the connection has set,
since the cache holds the whole state (path and role) and a switch is issued whenever the
wanted state differs from it: going back to the same municipality (the end of a
``schema_context``) costs no statement. And a rollback forgets the state only when the switch
was issued inside a transaction: PostgreSQL reverts a ``SET`` with the transaction (or the
savepoint) that issued it, never one issued before it began — as a request's switch is,
before the booking service's transaction that a full slot rolls back.

With Django's pool (``OPTIONS["pool"]``) and ``CONN_HEALTH_CHECKS``, connections are checked
by :mod:`tenants.db.pool_check`, which spares a connection handed out a moment ago the round
trip of psycopg_pool's own check.
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper
from django_tenants.utils import quote_schema_name
from psycopg_pool import ConnectionPool

from tenants.db.pool_check import check_connection
from tenants.db.roles import connection_role, owner_mode_active

NO_DB_ALIAS = "__no_db__"


class DatabaseWrapper(TenantDatabaseWrapper):
    search_path_set_schemas: Any
    _setting_search_path: bool
    # Whether the state in force was set outside any transaction (so no rollback reverts it).
    _search_path_set_outside: bool = False

    @property
    def pool(self) -> ConnectionPool | None:
        """Django's pool (``django.db.backends.postgresql.base``), made the same way but for
        its ``check``, which Django does not let the pool options set."""
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # Django sets it as it needs later on
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                check=check_connection if self.settings_dict["CONN_HEALTH_CHECKS"] else None,
                **({} if options is True else options),
            )
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]

    def rollback(self) -> None:
        kept = self.search_path_set_schemas if self._search_path_set_outside else None
        super().rollback()
        self.search_path_set_schemas = kept

    def savepoint_rollback(self, sid: Any) -> None:
        kept = self.search_path_set_schemas if self._search_path_set_outside else None
        try:
            super().savepoint_rollback(sid)
        finally:
            self.search_path_set_schemas = kept

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
        # In autocommit with no transaction open, the statement commits on its own.
        outside = (
            self.connection.autocommit
            and self.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )
        try:
            self.search_path_set_schemas = None
            target.execute(statement)
            self.search_path_set_schemas = state
            self._search_path_set_outside = outside
        finally:
            self._setting_search_path = False
            if cursor is None:
                target.close()
