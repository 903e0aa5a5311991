"""Prometheus metrics: counters move, labels are kinds (never a path or a person), and the
exposition is served on its own port by gunicorn's master, never by Django."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import transaction
from django.test import Client
from django_tenants.utils import tenant_context
from prometheus_client import REGISTRY

from sesshu import metrics
from tenants.models import Municipality
from tests.conftest import host_of

ROOT = Path(__file__).resolve().parents[2]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests_counted(**labels: str) -> float:
    return sample("sesshu_http_requests_total", **labels)


def test_a_request_is_counted_by_method_status_class_host_kind_and_tenant(
    tenant_a: Municipality,
) -> None:
    labels = {"method": "GET", "host_kind": "resident", "tenant": "132110"}
    response = Client(HTTP_HOST=host_of(tenant_a)).get("/")
    status_class = f"{response.status_code // 100}xx"
    before = requests_counted(**labels, status_class=status_class)
    latency_before = sample("sesshu_http_request_duration_seconds_count", host_kind="resident")
    Client(HTTP_HOST=host_of(tenant_a)).get("/")
    assert requests_counted(**labels, status_class=status_class) == before + 1
    assert (
        sample("sesshu_http_request_duration_seconds_count", host_kind="resident")
        == latency_before + 1
    )


@pytest.mark.parametrize(
    ("host", "path", "labels"),
    [
        ("kodaira.localhost", "/console/login/", {"host_kind": "console", "tenant": "132110"}),
        ("platform.localhost", "/login/", {"host_kind": "platform", "tenant": "platform"}),
        ("nowhere.localhost", "/", {"host_kind": "unknown", "tenant": ""}),
    ],
)
def test_each_kind_of_host_is_counted_as_such(
    db: None, host: str, path: str, labels: dict[str, str]
) -> None:
    response = Client(HTTP_HOST=host).get(path)
    full = {**labels, "method": "GET", "status_class": f"{response.status_code // 100}xx"}
    before = requests_counted(**full)
    Client(HTTP_HOST=host).get(path)
    assert requests_counted(**full) == before + 1


def test_a_made_up_method_is_counted_as_other(db: None) -> None:
    before = requests_counted(method="OTHER", status_class="4xx", host_kind="unknown", tenant="")
    Client(HTTP_HOST="nowhere.localhost").generic("PROPFIND09012345678", "/")
    after = requests_counted(method="OTHER", status_class="4xx", host_kind="unknown", tenant="")
    assert after == before + 1


def all_requests_counted() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "sesshu_http_requests"
        for sample in metric.samples
        if sample.name == "sesshu_http_requests_total"
    )


def test_probes_are_not_counted(db: None) -> None:
    before = all_requests_counted()
    Client(HTTP_HOST="10.0.0.12").get("/healthz")
    Client(HTTP_HOST="10.0.0.12").get("/readyz")
    assert all_requests_counted() == before


@pytest.mark.parametrize("host", ["kodaira.localhost", "platform.localhost"])
def test_metrics_are_not_served_on_the_public_hosts(db: None, host: str) -> None:
    Client(HTTP_HOST=host).get("/")  # there is something to expose
    response = Client(HTTP_HOST=host).get("/metrics")
    assert response.status_code == 404
    assert b"sesshu_http_requests" not in response.content


def test_the_exposition_holds_no_path_and_nothing_personal(tenant_a: Municipality) -> None:
    client = Client(HTTP_HOST=host_of(tenant_a))
    client.get("/bookings/4000000017/", {"phone": "09031415926", "name": "青木"})
    client.post("/nothing/", {"voucher_number": "4000000017", "birth_date": "1948-04-01"})
    with tenant_context(tenant_a):
        metrics.login_failed("resident")
    text = metrics.exposition().decode()
    assert 'tenant="132110"' in text
    for value in ("4000000017", "09031415926", "青木", "1948-04-01", "/bookings", "/nothing"):
        assert value not in text
    assert "path=" not in text and "voucher" not in text


def test_a_metric_that_cannot_be_written_never_fails_the_request(
    tenant_a: Municipality, monkeypatch, caplog, django_capture_on_commit_callbacks
) -> None:
    def broken(*labels: str) -> None:
        raise FileNotFoundError("counter_1.db")

    monkeypatch.setattr(metrics, "_failed_once", False)
    for counter in (metrics.REQUESTS, metrics.BOOKINGS_CREATED, metrics.LOGIN_FAILURES):
        monkeypatch.setattr(counter, "labels", broken)
    client = Client(HTTP_HOST=host_of(tenant_a))
    assert client.get("/").status_code == client.get("/").status_code < 500
    with django_capture_on_commit_callbacks(execute=True), tenant_context(tenant_a):
        metrics.booking_created("web")
        metrics.login_failed("resident")
    errors = [r for r in caplog.records if r.name == "sesshu.metrics"]
    assert [r.levelname for r in errors] == ["ERROR"]  # once, not per request


# --- What the services count -----------------------------------------------------------


def booked(channel: str, tenant: str = "132110") -> float:
    return sample("sesshu_bookings_created_total", channel=channel, tenant=tenant)


def test_a_booking_is_counted_when_its_transaction_commits(
    tenant_a: Municipality, django_capture_on_commit_callbacks
) -> None:
    before = booked("call_centre")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with tenant_context(tenant_a):
            metrics.booking_created("call_centre")
        assert booked("call_centre") == before  # not yet: the booking may still roll back
    assert len(callbacks) == 1
    assert booked("call_centre") == before + 1


def test_a_booking_rolled_back_is_not_counted(
    tenant_a: Municipality, django_capture_on_commit_callbacks
) -> None:
    before = booked("web")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with tenant_context(tenant_a), pytest.raises(RuntimeError):
            with transaction.atomic():
                metrics.booking_created("web")
                raise RuntimeError("refused after the claim")
    assert callbacks == []
    assert booked("web") == before


def test_changes_and_cancellations_are_counted_by_channel(
    tenant_b: Municipality, django_capture_on_commit_callbacks
) -> None:
    def value(name: str) -> float:
        return sample(name, channel="line", tenant="131016")

    changed, cancelled = (
        value("sesshu_bookings_changed_total"),
        value("sesshu_bookings_cancelled_total"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        with tenant_context(tenant_b):
            metrics.booking_changed("line")
            metrics.booking_cancelled("line", count=2)  # a cascade
    assert value("sesshu_bookings_changed_total") == changed + 1
    assert value("sesshu_bookings_cancelled_total") == cancelled + 2


def test_an_unknown_channel_is_counted_as_other_not_refused(
    tenant_a: Municipality, django_capture_on_commit_callbacks
) -> None:
    before = booked("other")
    with django_capture_on_commit_callbacks(execute=True), tenant_context(tenant_a):
        metrics.booking_created("fax")
    assert booked("other") == before + 1


@pytest.mark.parametrize(
    ("kind", "tenant"),
    [("resident", "132110"), ("console", "132110"), ("controlplane", "platform")],
)
def test_login_failures_are_counted_by_kind_at_once(
    tenant_a: Municipality, kind: str, tenant: str
) -> None:
    before = sample("sesshu_login_failures_total", kind=kind, tenant=tenant)
    with pytest.raises(RuntimeError):
        with transaction.atomic():  # the attempt happened even if its transaction is undone
            if kind == "controlplane":
                metrics.login_failed(kind)
            else:
                with tenant_context(tenant_a):
                    metrics.login_failed(kind)
            raise RuntimeError
    assert sample("sesshu_login_failures_total", kind=kind, tenant=tenant) == before + 1


def test_tasks_are_counted_by_name_and_state(tenant_a: Municipality) -> None:
    from tests.sesshu.test_logs import log_probe

    labels = {"task": "tests.sesshu.log_probe", "state": "SUCCESS"}
    before = sample("sesshu_celery_tasks_total", **labels)
    with tenant_context(tenant_a):
        log_probe.delay()
    assert sample("sesshu_celery_tasks_total", **labels) == before + 1


# --- Queue length ------------------------------------------------------------------------


def _redis_url() -> str:
    return os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/15")


@pytest.fixture
def queue() -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis.from_url(_redis_url())
    name = f"sesshu-test-{uuid.uuid4().hex}"
    yield client, name
    client.delete(name, *(f"{name}\x06\x16{p}" for p in (3, 6, 9)))


def test_the_queue_length_is_asked_of_redis(queue: tuple[redis.Redis, str]) -> None:
    client, name = queue
    client.rpush(name, "a", "b", "c")
    client.rpush(f"{name}\x06\x169", "urgent")  # kombu's list for priority 9
    collector = metrics.QueueLengthCollector(_redis_url(), [name, f"{name}-empty"])
    (family,) = list(collector.collect())
    assert family.name == "sesshu_celery_queue_length"
    assert {s.labels["queue"]: s.value for s in family.samples} == {
        name: 4,
        f"{name}-empty": 0,
    }
    text = metrics.exposition(queue_lengths=collector).decode()
    assert f'sesshu_celery_queue_length{{queue="{name}"}} 4.0' in text


@pytest.mark.parametrize("broker", [None, "amqp://guest@127.0.0.1//", "memory://"])
def test_without_a_redis_broker_there_is_no_queue_length(broker: str | None) -> None:
    assert list(metrics.QueueLengthCollector(broker, ["celery"]).collect()) == []


def test_an_unreachable_redis_gives_no_queue_length_and_no_error() -> None:
    collector = metrics.QueueLengthCollector("redis://127.0.0.1:1/0", ["celery"], timeout=0.2)
    assert list(collector.collect()) == []
    assert b"sesshu_http_requests" in metrics.exposition(queue_lengths=collector)


# --- gunicorn: several workers, one exposition on its own port ----------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url() -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    if db["HOST"].startswith("/"):
        return f"postgresql://{db['USER']}{password}@/{db['NAME']}?host={db['HOST']}"
    return f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def _get(url: str, host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def gunicorn(django_db_setup: None, tmp_path: Path, queue: tuple[redis.Redis, str]):
    web_port, metrics_port = _free_port(), _free_port()
    client, queue_name = queue
    client.rpush(queue_name, "waiting")
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"left by an earlier run")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "SESSHU_TESTING": "1",
        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        "SESSHU_METRICS_PORT": str(metrics_port),
        "SESSHU_METRICS_ADDR": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
        "CELERY_BROKER_URL": _redis_url(),
        "SESSHU_METRICS_QUEUES": queue_name,
        "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(f"http://127.0.0.1:{web_port}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("gunicorn did not start")
        yield f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{metrics_port}", process, multiproc
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def test_gunicorn_serves_every_workers_counts_on_the_metrics_port_only(
    gunicorn, queue: tuple[redis.Redis, str]
) -> None:
    web, metrics_url, process, multiproc = gunicorn
    for _ in range(12):
        status, _body = _get(f"{web}/", host="kodaira.localhost")
        assert status == 200
    status, body = _get(f"{metrics_url}/metrics")
    assert status == 200
    counted = [
        line
        for line in body.splitlines()
        if line.startswith("sesshu_http_requests_total{") and 'tenant="132110"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in counted) == 12
    assert f'sesshu_celery_queue_length{{queue="{queue[1]}"}} 1.0' in body
    # The file of an earlier run was cleared before the workers started.
    assert not (multiproc / "counter_999999.db").exists()
    assert {path.name.split("_")[0] for path in multiproc.iterdir()} == {"counter", "histogram"}
    # Not on the public port, on any host.
    assert _get(f"{web}/metrics", host="kodaira.localhost")[0] == 404
    assert _get(f"{web}/metrics", host="platform.localhost")[0] == 404

    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    lines = [line for line in out.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # gunicorn's own lines are JSON too
    access = [line for line in parsed if line["log_type"] == "access"]
    assert len(access) == 14  # our access lines; gunicorn writes none of its own
    assert {line["tenant"] for line in access} == {"132110", "platform"}
    assert any(line["logger"] == "gunicorn.error" for line in parsed)


# --- A real Celery worker: JSON lines with the task and tenant, metrics on its own port -------


@pytest.fixture
def celery_worker(django_db_setup: None, tmp_path: Path):
    from celery.backends.redis import RedisBackend

    from sesshu.celery import app

    queue_name = f"sesshu-test-metrics-{uuid.uuid4().hex}"
    metrics_port = _free_port()
    multiproc = tmp_path / "prometheus"
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": _redis_url(),
        "CELERY_RESULT_BACKEND": _redis_url(),
        "SESSHU_TESTING": "1",
        "SESSHU_METRICS_PORT": str(metrics_port),
        "SESSHU_METRICS_QUEUES": queue_name,
        "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
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
            "--pool=prefork",
            "--concurrency=2",
            "-Q",
            queue_name,
            "--include",
            "tests.tenants.celery_probe",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        # To files, not pipes: a pipe nobody reads until the end fills up, and the worker
        # then blocks on its next log line, with the task it was running.
        stdout=(tmp_path / "worker.out").open("w"),
        stderr=(tmp_path / "worker.err").open("w"),
        text=True,
    )

    def run(**kwargs: object) -> str:
        from celery.result import AsyncResult

        from tests.tenants.celery_probe import probe_connection

        with app.connection_for_write(_redis_url()) as broker:
            sent = probe_connection.apply_async(kwargs=kwargs, queue=queue_name, connection=broker)
        result = AsyncResult(sent.id, backend=RedisBackend(app=app, url=_redis_url()), app=app)
        result.get(timeout=60)
        return str(sent.id)

    previous = {key: app.conf.get(key) for key in ("broker_url", "result_backend")}
    previous["task_always_eager"] = app.conf.task_always_eager
    app.conf.update(broker_url=_redis_url(), result_backend=_redis_url(), task_always_eager=False)
    try:
        yield run, f"http://127.0.0.1:{metrics_port}", worker, tmp_path / "worker.out"
    finally:
        app.conf.update(**previous)
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
        redis.Redis.from_url(_redis_url()).delete(queue_name)


@pytest.mark.celery_worker
def test_a_celery_worker_logs_json_and_serves_its_metrics(
    celery_worker, tenant_a: Municipality
) -> None:
    from django_tenants.utils import schema_context

    from sesshu import logs

    run, metrics_url, worker, worker_out = celery_worker
    request_id = "c0ffee00c0ffee00c0ffee00c0ffee00"
    token = logs._request_id.set(request_id)  # as if queued while serving a request
    try:
        with schema_context(tenant_a.schema_name):
            task_id = run()
    finally:
        logs._request_id.reset(token)
    status, body = _get(f"{metrics_url}/metrics")
    assert status == 200
    assert 'sesshu_celery_tasks_total{state="SUCCESS",task="tests.probe_connection"} 1.0' in body
    assert "sesshu_celery_queue_length{" in body

    worker.terminate()
    worker.wait(timeout=30)
    out = worker_out.read_text()
    parsed = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert parsed, out
    (succeeded,) = [
        line for line in parsed if line.get("task_id") == task_id and "succeeded" in line["message"]
    ]
    assert succeeded["tenant"] == "132110"
    assert succeeded["task_name"] == "tests.probe_connection"
    assert succeeded["request_id"] == request_id
    assert succeeded["message"].endswith(": [Filtered]")  # not the task's return value
