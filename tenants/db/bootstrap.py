"""What a PostgreSQL superuser sets up once per cluster and once per database.

The application logs in as an ordinary role that owns its database and every schema in it
(``SESSHU_DB_APP_ROLE``). It must not hold CREATEROLE: on PostgreSQL 15 that attribute lets a
role grant itself ``pg_read_all_data`` and ``pg_execute_server_program``. Tenant roles are
therefore created by two SECURITY DEFINER functions owned by a separate NOLOGIN role that has
CREATEROLE and nothing else; they only accept names of this database's tenant roles.

Run by ``manage.py db_bootstrap`` (production: once, by the operator, with the admin URL),
by ``make run`` for the embedded server and by the test suite for its test database.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

ADMIN_SCHEMA = "sesshu_admin"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _check_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{kind} {name!r} must be lower-case letters, digits and _ (≤63).")
    return name


def role_prefix(database: str) -> str:
    """Tenant roles are cluster-wide: the database name keeps two databases' roles apart."""
    return f"{database}_r_"


def role_admin_name(app_role: str) -> str:
    return _check_name("role", f"{app_role}_roleadmin")


def bootstrap_cluster(admin_dsn: str, *, app_role: str, app_password: str | None = None) -> None:
    """Create the application's login role and the role administrator (idempotent)."""
    _check_name("role", app_role)
    role_admin = role_admin_name(app_role)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role]).fetchone()
        if not exists:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE CREATEDB NOREPLICATION "
                    "NOBYPASSRLS"
                ).format(sql.Identifier(app_role))
            )
        if app_password:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(app_role), sql.Literal(app_password)
                )
            )
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role_admin]).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE ROLE {} NOLOGIN CREATEROLE NOINHERIT").format(
                    sql.Identifier(role_admin)
                )
            )


def create_database(admin_dsn: str, *, database: str, app_role: str, drop: bool = False) -> None:
    _check_name("database", database)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if drop:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(database), sql.Identifier(app_role)
                )
            )


def drop_database(admin_dsn: str, *, database: str) -> None:
    _check_name("database", database)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def drop_database_roles(admin_dsn: str, *, database: str) -> None:
    """Drop the tenant roles named after a database that no longer exists (test clean-up)."""
    _check_name("database", database)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
                [role_prefix(database).replace("_", r"\_") + "%"],
            )
        ]
        for name in names:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


_FUNCTIONS = """
CREATE OR REPLACE FUNCTION {schema}.ensure_tenant_role(role_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF role_name !~ ('^' || {prefix} || '[a-z0-9_]+$') OR length(role_name) > 63 THEN
        RAISE EXCEPTION 'not a tenant role of this database: %', role_name;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name AND (rolsuper OR rolcreaterole
               OR rolcreatedb OR rolcanlogin OR rolreplication OR rolbypassrls)) THEN
        RAISE EXCEPTION 'role % has attributes a tenant role never has', role_name;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', role_name);
    END IF;
    IF NOT pg_has_role({app_role}, role_name, 'MEMBER') THEN
        IF current_setting('server_version_num')::int >= 160000 THEN
            EXECUTE format('GRANT %I TO %I WITH INHERIT FALSE, SET TRUE', role_name, {app_role});
        ELSE
            EXECUTE format('GRANT %I TO %I', role_name, {app_role});
        END IF;
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION {schema}.drop_tenant_role(role_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF role_name !~ ('^' || {prefix} || '[a-z0-9_]+$') THEN
        RAISE EXCEPTION 'not a tenant role of this database: %', role_name;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name AND (rolsuper OR rolcreaterole
               OR rolcreatedb OR rolcanlogin OR rolreplication OR rolbypassrls)) THEN
        RAISE EXCEPTION 'role % has attributes a tenant role never has', role_name;
    END IF;
    EXECUTE format('DROP ROLE IF EXISTS %I', role_name);
END
$fn$;
"""


def bootstrap_database(admin_dsn: str, *, database: str, app_role: str) -> None:
    """Per-database set-up: ownership, a locked-down ``public``, the role functions."""
    _check_name("database", database)
    role_admin = role_admin_name(app_role)
    dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=database)
    with psycopg.connect(dsn, autocommit=True) as conn:
        app = sql.Identifier(app_role)
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), app))
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(app))
        conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        conn.execute(
            sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(database)
            )
        )
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ADMIN_SCHEMA)))
        conn.execute(
            sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(ADMIN_SCHEMA))
        )
        conn.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(ADMIN_SCHEMA), app)
        )
        conn.execute(
            sql.SQL(_FUNCTIONS).format(
                schema=sql.Identifier(ADMIN_SCHEMA),
                prefix=sql.Literal(role_prefix(database)),
                app_role=sql.Literal(app_role),
            )
        )
        for function in ("ensure_tenant_role", "drop_tenant_role"):
            name = sql.SQL("{}.{}(text)").format(
                sql.Identifier(ADMIN_SCHEMA), sql.Identifier(function)
            )
            conn.execute(
                sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(name, sql.Identifier(role_admin))
            )
            conn.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(name))
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(name, app))
        # The public schema's own role exists from the start: the control plane and the
        # host lookup run as it before the first migration has granted it anything.
        public_role = role_prefix(database) + "public"
        conn.execute(
            sql.SQL("SELECT {}.ensure_tenant_role({})").format(
                sql.Identifier(ADMIN_SCHEMA), sql.Literal(public_role)
            )
        )
        conn.execute(
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(public_role))
        )
