"""Isolation by database role: PostgreSQL itself refuses a cross-tenant read."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError, ProgrammingError
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from tenants.db.backend.base import DatabaseWrapper
from tenants.db.roles import owner_mode, role_for_schema
from tenants.models import Municipality


def _whoami() -> tuple[str, list[str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schemas(false)")
        user, schemas = cursor.fetchone()
    return user, list(schemas)


def _role(schema: str) -> str:
    return role_for_schema(connection.settings_dict["NAME"], schema)


def test_raw_sql_from_b_against_a_is_refused_by_postgresql(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    with schema_context(tenant_b.schema_name):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM booking_staffinvitation")
            assert cursor.fetchone()[0] == 1  # B reads its own table
        with pytest.raises(
            ProgrammingError, match=f"permission denied for schema {tenant_a.schema_name}"
        ):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f'SELECT * FROM "{tenant_a.schema_name}".booking_staffinvitation')


def test_a_stale_search_path_cannot_reach_another_tenant(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    with schema_context(tenant_b.schema_name):
        # PostgreSQL drops a schema the role may not use from the search path, so A's
        # tables are simply not there for B.
        with pytest.raises(ProgrammingError, match='relation "audit_event" does not exist'):
            with transaction.atomic(), connection.cursor() as cursor:
                # What a bug that left A's search path in place would do, under B's role.
                cursor.execute(f'SET LOCAL search_path = "{tenant_a.schema_name}"')
                cursor.execute("SELECT * FROM audit_event")


def test_the_public_context_cannot_read_any_tenant(tenant_a: Municipality) -> None:
    assert connection.schema_name == "public"
    with pytest.raises(ProgrammingError, match="permission denied"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f'SELECT * FROM "{tenant_a.schema_name}".auth_user')


def test_the_role_follows_the_schema(tenant_a: Municipality, tenant_b: Municipality) -> None:
    with schema_context(tenant_a.schema_name):
        assert _whoami() == (_role(tenant_a.schema_name), [tenant_a.schema_name, "public"])
        with schema_context(tenant_b.schema_name):
            assert _whoami()[0] == _role(tenant_b.schema_name)
        assert _whoami()[0] == _role(tenant_a.schema_name)
    assert _whoami() == (_role("public"), ["public"])


def _switches(queries: CaptureQueriesContext) -> int:
    return sum(query["sql"].startswith("SET search_path") for query in queries.captured_queries)


def test_selecting_the_same_tenant_again_issues_no_switch(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    with CaptureQueriesContext(connection) as queries:
        with schema_context(tenant_a.schema_name):
            _whoami()
            with schema_context(tenant_a.schema_name):
                _whoami()
            _whoami()
    assert _switches(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert _whoami()[0] == _role("public")
        with schema_context(tenant_a.schema_name):
            _whoami()
            with schema_context(tenant_b.schema_name):
                assert _whoami()[0] == _role(tenant_b.schema_name)
            assert _whoami()[0] == _role(tenant_a.schema_name)
    assert _switches(queries) == 4  # to public, to A, to B, back to A


def test_a_savepoint_rollback_does_not_leave_the_outer_tenants_role(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    connection.set_tenant(tenant_a)
    assert _whoami()[0] == _role(tenant_a.schema_name)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            connection.set_tenant(tenant_b)
            assert _whoami()[0] == _role(tenant_b.schema_name)
            raise RuntimeError("rolled back to the savepoint")
    # PostgreSQL reverted the SET issued inside the savepoint to A's role, while the
    # application still has B selected: the switch must be issued again, not assumed.
    assert connection.schema_name == tenant_b.schema_name
    assert _whoami()[0] == _role(tenant_b.schema_name)


def _whoami_on(wrapper: DatabaseWrapper) -> str:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


def test_a_rollback_keeps_a_switch_made_before_its_transaction_and_redoes_one_made_in_it(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    """A request switches in autocommit, then the booking service's transaction rolls back
    (a full slot): the switch stands, and is not issued again. A switch made inside the
    transaction is reverted by PostgreSQL, and must be issued again."""
    own = DatabaseWrapper({**connection.settings_dict}, alias="rollback_probe")
    try:
        own.set_tenant(tenant_a)
        assert _whoami_on(own) == _role(tenant_a.schema_name)  # switched, in autocommit
        with CaptureQueriesContext(own) as queries:
            own.set_autocommit(False)
            assert _whoami_on(own) == _role(tenant_a.schema_name)
            own.rollback()
            own.set_autocommit(True)
            assert _whoami_on(own) == _role(tenant_a.schema_name)
        assert _switches(queries) == 0

        with CaptureQueriesContext(own) as queries:
            own.set_autocommit(False)
            own.set_tenant(tenant_b)
            assert _whoami_on(own) == _role(tenant_b.schema_name)  # switched in the transaction
            own.rollback()  # PostgreSQL is back to A's role
            own.set_autocommit(True)
            assert _whoami_on(own) == _role(tenant_b.schema_name)
        assert _switches(queries) == 2
    finally:
        own.close()


def test_a_missing_tenant_role_raises_instead_of_falling_back(db: None) -> None:
    connection.set_schema("m999999")
    with pytest.raises(DatabaseError, match=f'role "{_role("m999999")}" does not exist'):
        with transaction.atomic():
            _whoami()


def test_owner_mode_is_needed_for_ddl(tenant_a: Municipality) -> None:
    with schema_context(tenant_a.schema_name):
        with pytest.raises(ProgrammingError, match="permission denied"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("CREATE TABLE sneaky (id int)")
        with owner_mode(), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE allowed_in_owner_mode (id int)")
            assert _whoami()[0] == connection.settings_dict["USER"]


@pytest.mark.django_db
def test_a_pooled_connection_reused_carries_no_tenant_into_the_next_unit(
    tenant_a: Municipality,
) -> None:
    settings_dict = {
        **connection.settings_dict,
        "OPTIONS": {
            **connection.settings_dict["OPTIONS"],
            "pool": {"min_size": 1, "max_size": 1, "timeout": 5},
        },
        "CONN_MAX_AGE": 0,
    }
    pooled = DatabaseWrapper(settings_dict, alias="pool_probe")
    try:
        pooled.set_tenant(tenant_a)
        with pooled.cursor() as cursor:
            cursor.execute("SELECT current_user, pg_backend_pid()")
            user_a, pid_a = cursor.fetchone()
        pooled.commit() if not pooled.get_autocommit() else None
        pooled.close()  # back to the pool, still SET ROLE to A on the server side

        pooled.set_schema_to_public()
        with pooled.cursor() as cursor:
            cursor.execute("SELECT current_user, pg_backend_pid(), current_schemas(false)")
            user_next, pid_next, schemas = cursor.fetchone()
        assert pid_next == pid_a  # the very same server session was handed out again
        assert user_a == _role(tenant_a.schema_name)
        assert (user_next, list(schemas)) == (_role("public"), ["public"])
    finally:
        pooled.close()
        pooled.close_pool()


def test_a_failed_switch_raises_and_nothing_runs_under_the_previous_role(
    tenant_a: Municipality,
) -> None:
    connection.set_tenant(tenant_a)
    with pytest.raises(DatabaseError, match="does not exist"):
        with transaction.atomic():
            assert _whoami()[0] == _role(tenant_a.schema_name)
            connection.set_schema("m000001")  # a tenant whose role is missing
            _whoami()  # must fail, never answer as A
    # The enclosing transaction is unusable until rolled back: fail closed.
    assert connection.needs_rollback


def test_a_no_op_migrate_leaves_the_grants_alone_but_a_missing_grant_is_restored(
    tenant_a: Municipality,
) -> None:
    from tenants.db.roles import schema_granted
    from tenants.signals import grant_after_migration

    schema = tenant_a.schema_name
    assert schema_granted(connection, schema)
    with owner_mode(), connection.cursor() as cursor:
        cursor.execute(f'REVOKE USAGE ON SCHEMA "{schema}" FROM "{_role(schema)}"')
    assert not schema_granted(connection, schema)
    grant_after_migration(sender=None, schema_name=schema)
    assert schema_granted(connection, schema)
    assert not schema_granted(connection, "m000001")  # no such role: not granted, no error
