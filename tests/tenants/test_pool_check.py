"""The pool's check: no round trip for a connection handed out a moment ago, the full check
for one idle longer, and a connection whose server session has ended is never handed out."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection
from psycopg_pool import ConnectionPool

from tenants.db import pool_check
from tenants.db.backend.base import DatabaseWrapper

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def full_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The backend pid of every connection given the full check (the empty query)."""
    checked: list[int] = []
    full = ConnectionPool.check_connection

    def counted(conn: psycopg.Connection) -> None:
        checked.append(conn.info.backend_pid)
        full(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    return checked


@pytest.fixture
def pooled(db: None) -> Iterator[DatabaseWrapper]:
    """A connection of the test database through a one-connection pool, as production
    configures it (sesshu.settings with DATABASE_POOL)."""
    settings_dict = {
        **connection.settings_dict,
        "OPTIONS": {
            **connection.settings_dict["OPTIONS"],
            "pool": {
                "min_size": 1,
                "max_size": 1,
                "timeout": 5,
            },
        },
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
    }
    wrapper = DatabaseWrapper(settings_dict, alias="pool_check_probe")
    try:
        yield wrapper
    finally:
        wrapper.close()
        wrapper.close_pool()


def _backend_pid(wrapper: DatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    wrapper.close()  # the end of the request: back to the pool
    return int(pid)


def test_a_connection_handed_out_again_at_once_is_not_sent_a_query_first(
    pooled: DatabaseWrapper, full_checks: list[int]
) -> None:
    first = _backend_pid(pooled)
    assert full_checks == [first]  # a new connection: checked in full
    assert _backend_pid(pooled) == first
    assert _backend_pid(pooled) == first
    assert full_checks == [first]  # the same session, twice more, without the empty query


def test_a_connection_idle_longer_is_checked_in_full(
    pooled: DatabaseWrapper, full_checks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _backend_pid(pooled)
    later = time.monotonic() + pool_check.RECENTLY_SECONDS + 1
    monkeypatch.setattr(pool_check, "_now", lambda: later)
    assert _backend_pid(pooled) == first
    assert full_checks == [first, first]


def test_a_session_the_server_ended_between_requests_is_replaced_not_handed_out(
    pooled: DatabaseWrapper, full_checks: list[int]
) -> None:
    first = _backend_pid(pooled)
    (idle,) = pooled.pool._pool  # the pool's idle connection, as the next request gets it
    with psycopg.connect(django_settings.DATABASE_ADMIN_URL, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [first]).fetchone() == (True,)
    # The server says goodbye on the socket; wait until it has arrived.
    assert select.select([idle.fileno()], [], [], 5)[0]

    second = _backend_pid(pooled)  # the request works, on a new session
    assert second != first
    assert full_checks[:2] == [first, first]  # the dead one was checked in full, and dropped


PROBE = """
import json
import django
django.setup()
from django.db import connection
from psycopg_pool import ConnectionPool
checked = []
full = ConnectionPool.check_connection
def counted(conn):
    checked.append(conn.info.backend_pid)
    full(conn)
ConnectionPool.check_connection = staticmethod(counted)
pids = []
for _request in range(3):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pids.append(cursor.fetchone()[0])
    connection.close()
print(json.dumps({"pids": pids, "checked": checked}))
connection.close_pool()
"""


def _url_of(database: dict[str, Any]) -> str:
    """The test database's URL; a Unix socket folder (the embedded PostgreSQL of ``make
    test`` without DATABASE_URL) goes in ``?host=``."""
    user = quote(database["USER"]) + (
        f":{quote(database['PASSWORD'])}" if database["PASSWORD"] else ""
    )
    host, name = database["HOST"], quote(database["NAME"])
    if host.startswith("/"):
        return f"postgresql://{user}@/{name}?host={quote(host)}"
    return f"postgresql://{user}@{host}:{database['PORT']}/{name}"


def test_production_settings_use_this_check_for_the_pool(db: None) -> None:
    database = connection.settings_dict
    environment = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "sesshu.settings",
        "SESSHU_TESTING": "1",
        "DATABASE_URL": _url_of(database),
        "DATABASE_POOL": "1",
        "DATABASE_POOL_MIN": "1",
        "DATABASE_POOL_MAX": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    pid = seen["pids"][0]
    assert seen["pids"] == [pid, pid, pid]
    assert seen["checked"] == [pid]
