"""A real Celery worker on Redis: each task runs in its tenant's schema and role, and none
carries them into the next task on the same worker connection."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.backends.redis import RedisBackend
from celery.result import AsyncResult
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

from sesshu.celery import app
from tenants.db.roles import role_for_schema
from tenants.models import Municipality
from tests.tenants.celery_probe import probe_connection

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.celery_worker


def _redis_url() -> str:
    return os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/15")


def _database_url() -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    if db["HOST"].startswith("/"):
        return f"postgresql://{db['USER']}{password}@/{db['NAME']}?host={db['HOST']}"
    return f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def worker_queue(django_db_setup: None) -> Iterator[str]:
    queue = f"sesshu-test-{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": _redis_url(),
        "CELERY_RESULT_BACKEND": _redis_url(),
        "SESSHU_TESTING": "1",
        # Celery closes Django's connection around every task; with Django's pool, "closing"
        # returns the very same server session to the pool for the next task to reuse.
        "DATABASE_POOL": "1",
        "DATABASE_POOL_MIN": "1",
        "DATABASE_POOL_MAX": "1",
        "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sesshu.celery",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "-Q",
            queue,
            "--include",
            "tests.tenants.celery_probe",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    previous = dict(app.conf)
    app.conf.update(broker_url=_redis_url(), result_backend=_redis_url(), task_always_eager=False)
    try:
        yield queue
    finally:
        worker.terminate()
        try:
            output, _ = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
        app.conf.update(
            broker_url=previous.get("broker_url"),
            result_backend=previous.get("result_backend"),
            task_always_eager=previous.get("task_always_eager"),
        )
        if "Traceback" in (output or ""):
            print(output)


def _run(queue: str, **kwargs: object) -> dict[str, object]:
    # The first task also waits for the worker to come up. Broker connection and result
    # backend are built here: the app may have cached others while earlier tests ran eagerly.
    deadline = time.monotonic() + 60
    with app.connection_for_write(_redis_url()) as broker:
        sent = probe_connection.apply_async(kwargs=kwargs, queue=queue, connection=broker)
    result = AsyncResult(sent.id, backend=RedisBackend(app=app, url=_redis_url()), app=app)
    return result.get(timeout=max(1.0, deadline - time.monotonic()))


def _role(schema: str) -> str:
    return role_for_schema(connection.settings_dict["NAME"], schema)


def test_each_task_runs_as_its_tenant_and_leaves_nothing_behind(
    worker_queue: str, tenant_a: Municipality, tenant_b: Municipality
) -> None:
    seen = []
    for schema in [tenant_a.schema_name, tenant_b.schema_name, "public", tenant_a.schema_name]:
        with schema_context(schema):
            seen.append(_run(worker_queue))
    expected = [
        (tenant_a.schema_name, _role(tenant_a.schema_name), [tenant_a.schema_name, "public"]),
        (tenant_b.schema_name, _role(tenant_b.schema_name), [tenant_b.schema_name, "public"]),
        ("public", _role("public"), ["public"]),
        (tenant_a.schema_name, _role(tenant_a.schema_name), [tenant_a.schema_name, "public"]),
    ]
    assert [(r["schema"], r["user"], r["search_path"]) for r in seen] == expected
    # One pooled server session served every task: isolation holds on a reused connection.
    assert len({r["backend_pid"] for r in seen}) == 1


def test_a_task_of_b_cannot_read_a(
    worker_queue: str, tenant_a: Municipality, tenant_b: Municipality
) -> None:
    with schema_context(tenant_b.schema_name):
        report = _run(worker_queue, other_schema=tenant_a.schema_name)
    assert report["user"] == _role(tenant_b.schema_name)
    assert report["other"] == f"permission denied for schema {tenant_a.schema_name}"
