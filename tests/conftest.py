"""The test database, the cast, and the guards every test runs under.

The cast (STYLE.md): two municipalities A and B, created once per session with their own
schemas, roles and keys; a resident and an operator of each come with the features that
define them. Tests run inside a transaction that is rolled back, in the public context.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection, connections
from django.utils import translation
from django_tenants.utils import schema_context

from audit.chain import Actor
from booking.selectors import availability
from sesshu import outages
from tenants.db import bootstrap
from tenants.db.roles import owner_mode
from tenants.models import Municipality

pytest_plugins = ["tests.aws_fixtures"]

CAST = {
    "a": {"code": "132110", "subdomain": "kodaira", "name": "小平市"},
    "b": {"code": "131016", "subdomain": "chiyoda", "name": "千代田区"},
}


def _prepare_test_database() -> None:
    db = settings.DATABASES["default"]
    admin = settings.DATABASE_ADMIN_URL
    if not admin:
        raise RuntimeError("Tests need DATABASE_ADMIN_URL (a superuser) to create their database.")
    test_name = db["TEST"]["NAME"]
    app_role = db["USER"] or settings.SESSHU_DB_APP_ROLE
    _drop_abandoned_test_databases(admin, base=db["NAME"])
    bootstrap.bootstrap_cluster(admin, app_role=app_role, app_password=db["PASSWORD"] or None)
    bootstrap.create_database(admin, database=test_name, app_role=app_role, drop=True)
    # Roles are cluster-wide and outlive a dropped database: start from none.
    bootstrap.drop_database_roles(admin, database=test_name)
    bootstrap.bootstrap_database(admin, database=test_name, app_role=app_role)


def _drop_abandoned_test_databases(admin: str, *, base: str) -> None:
    """Databases of earlier test runs on this machine whose process is gone."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname ~ %s", [f"^test_{base}_[0-9]+$"]
            )
        ]
    for name in names:
        pid = int(name.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        bootstrap.drop_database(admin, database=name)
        bootstrap.drop_database_roles(admin, database=name)


def provision_cast_member(key: str) -> Municipality:
    from tenants.services import municipality_provision

    member = CAST[key]
    return municipality_provision(
        code=member["code"],
        subdomain=member["subdomain"],
        name=member["name"],
        admin_email=f"admin@{member['subdomain']}.example.jp",
        actor=Actor.system("tests"),
    ).municipality


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment: None, django_db_blocker: pytest.FixtureRequest):
    from django.test.utils import setup_databases

    with django_db_blocker.unblock():
        _prepare_test_database()
        with owner_mode():
            setup_databases(verbosity=0, interactive=False, keepdb=True, serialized_aliases=set())
        for key in CAST:
            provision_cast_member(key)
    yield
    with django_db_blocker.unblock():
        for conn in connections.all():
            conn.close()
        admin = settings.DATABASE_ADMIN_URL
        test_name = settings.DATABASES["default"]["NAME"]
        bootstrap.drop_database(admin, database=test_name)
        bootstrap.drop_database_roles(admin, database=test_name)


@pytest.fixture(autouse=True)
def _back_to_public() -> Iterator[None]:
    """No test inherits another's tenant, role or owner mode."""
    yield
    connection.set_schema_to_public()


@pytest.fixture(autouse=True)
def _no_outage_carried_over() -> Iterator[None]:
    """No test inherits another's Redis outage: the pause after a failure, the log's memory
    (sesshu.outages: once a minute per process)."""
    yield
    outages._paused_until[0] = 0.0
    outages._logged.clear()


@pytest.fixture(autouse=True)
def _no_availability_carried_over() -> Iterator[None]:
    """No test reads another's availability from this process's memory of recent answers
    (booking.selectors.availability): each test's municipality is made anew under the same
    schema name, and its cache starts empty, so its keys repeat an earlier test's."""
    availability._recent.clear()
    yield
    availability._recent.clear()


@pytest.fixture(autouse=True)
def _back_to_japanese() -> Iterator[None]:
    """No test inherits another's language: a request in English leaves English active in
    the thread (LocaleMiddleware activates, nothing deactivates), and messages a later test
    builds outside a request would come out in it."""
    yield
    translation.deactivate()


@pytest.fixture
def tenant_a(db: None) -> Municipality:
    return Municipality.objects.get(code=CAST["a"]["code"])


@pytest.fixture
def tenant_b(db: None) -> Municipality:
    return Municipality.objects.get(code=CAST["b"]["code"])


@pytest.fixture
def in_tenant():
    return schema_context


def host_of(municipality: Municipality) -> str:
    return municipality.get_primary_domain().domain
