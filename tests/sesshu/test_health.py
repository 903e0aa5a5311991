"""/healthz says the process answers; /readyz asks the database, Redis and the key provider,
without a municipality and without calling KMS on every probe."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connection, connections
from django.test import Client

from sesshu import aws, health

PROBE_HOST = "10.0.0.12"  # the kubelet and the ALB ask with the pod's address


def _redis_url() -> str:
    return os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/15")


@pytest.fixture(autouse=True)
def _fresh_key_provider_check() -> Iterator[None]:
    """Each test starts as a new pod: nothing asked, the key provider never reached."""
    health.key_provider_check.reset()
    health._key_provider_answered.clear()
    yield
    health.key_provider_check.reset()
    health._key_provider_answered.clear()


def readyz() -> tuple[int, dict[str, object]]:
    response = Client(HTTP_HOST=PROBE_HOST).get("/readyz")
    assert response["Cache-Control"] == "no-store"
    return response.status_code, response.json()


def test_healthz_answers_without_asking_anything(db: None, monkeypatch) -> None:
    def unreachable() -> str:
        raise AssertionError("liveness must not depend on a dependency")

    for name in list(health.CHECKS):
        monkeypatch.setitem(health.CHECKS, name, unreachable)
    response = Client(HTTP_HOST=PROBE_HOST).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_readyz_reports_each_check(db: None, settings) -> None:
    settings.REDIS_URL = _redis_url()
    status, body = readyz()
    assert status == 200
    assert body == {
        "ready": True,
        "checks": {"database": "ok", "redis": "ok", "key_provider": "ok"},
    }


def test_without_redis_configured_readyz_says_so_and_stays_ready(db: None, settings) -> None:
    settings.REDIS_URL = None
    status, body = readyz()
    assert status == 200
    assert body["checks"]["redis"] == "not_configured"  # type: ignore[index]


def test_readyz_is_503_when_the_database_is_down(db: None, monkeypatch) -> None:
    # A connection like the application's, to a port where no PostgreSQL listens.
    broken_settings = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": "1"}
    broken = type(connections["default"])(broken_settings, "default")
    monkeypatch.setattr(health, "connection", broken)
    try:
        status, body = readyz()
    finally:
        broken.close()
    assert status == 503
    assert body == {
        "ready": False,
        "checks": {"database": "unavailable", "redis": "not_configured", "key_provider": "ok"},
    }


def test_readyz_reports_redis_unreachable_and_stays_ready(db: None, settings) -> None:
    """The pages carry on without Redis (tests/booking/resident/test_outages.py): every pod
    taken out of the load balancer for it would leave residents and the call centre no
    site at all."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    status, body = readyz()
    assert status == 200
    assert body == {
        "ready": True,
        "checks": {"database": "ok", "redis": "unavailable", "key_provider": "ok"},
    }


def test_readyz_needs_no_municipality_and_leaves_the_connection_public(db: None) -> None:
    for host in (PROBE_HOST, "nowhere.localhost", "kodaira.localhost"):
        response = Client(HTTP_HOST=host).get("/readyz")
        assert response.status_code == 200
        assert set(response.json()) == {"ready", "checks"}
    assert connection.schema_name == "public"


def test_a_failed_check_logs_one_warning_naming_its_kind_only(
    db: None, monkeypatch, caplog
) -> None:
    def failing() -> str:
        raise ConnectionError("password=secret host=db.internal")

    monkeypatch.setitem(health.CHECKS, "key_provider", failing)
    assert readyz()[0] == 503
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "readiness check key_provider failed: ConnectionError")
    ]  # and no error line (nor Sentry event) per probe from Django's request logging
    assert "secret" not in caplog.text


# --- The key provider: cached, bounded, and really asked ----------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_check(result: str = "ok") -> tuple[list[int], health.CachedCheck, Clock]:
    calls: list[int] = []
    clock = Clock()

    def check() -> str:
        calls.append(1)
        if result == "fail":
            raise RuntimeError("down")
        return result

    cached = health.CachedCheck(check, ttl=30, failure_ttl=5, deadline=2, clock=clock)
    return calls, cached, clock


def test_the_key_provider_is_asked_at_most_every_30_seconds() -> None:
    calls, cached, clock = counting_check()
    for _ in range(6):  # a probe every 5 s
        assert cached() == "ok"
        clock.now += 5
    assert len(calls) == 1
    clock.now += 1  # 31 s after the first
    assert cached() == "ok"
    assert len(calls) == 2


def test_a_failure_is_asked_again_sooner() -> None:
    calls, cached, clock = counting_check("fail")
    with pytest.raises(health.CheckFailed, match="RuntimeError"):
        cached()
    clock.now += 4
    with pytest.raises(health.CheckFailed):
        cached()
    assert len(calls) == 1
    clock.now += 2
    with pytest.raises(health.CheckFailed):
        cached()
    assert len(calls) == 2


def test_a_hung_key_provider_does_not_hold_the_probe() -> None:
    release = threading.Event()
    calls: list[int] = []

    def hung() -> str:
        calls.append(1)
        release.wait(10)
        return "ok"

    cached = health.CachedCheck(hung, ttl=30, failure_ttl=5, deadline=0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        cached()
    with pytest.raises(TimeoutError):  # the same call is still running: not a second one
        cached()
    assert time.monotonic() - started < 2
    assert len(calls) == 1
    release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            assert cached() == "ok"
            break
        except TimeoutError:
            continue
    assert len(calls) == 1


def test_readyz_asks_the_key_provider_once_for_many_probes(db: None, monkeypatch) -> None:
    calls: list[int] = []

    def provider() -> str:
        calls.append(1)
        return "ok"

    monkeypatch.setattr(health.key_provider_check, "check", provider)
    for _ in range(5):
        assert readyz()[0] == 200
    assert len(calls) == 1


def test_a_misconfigured_key_provider_is_unavailable(db: None, settings) -> None:
    settings.SESSHU_KEY_PROVIDER = "aws-kms"
    settings.SESSHU_KMS_KEY_ID = None
    status, body = readyz()
    assert status == 503
    assert body["checks"]["key_provider"] == "unavailable"  # type: ignore[index]


@pytest.fixture
def kms_key_id(local_aws: str, settings) -> str:
    key_id = aws.client("kms").create_key(Description="sesshu readyz")["KeyMetadata"]["KeyId"]
    settings.SESSHU_KEY_PROVIDER = "aws-kms"
    settings.SESSHU_KMS_KEY_ID = key_id
    return key_id


def test_readyz_asks_kms_for_the_key_without_any_tenant(db: None, kms_key_id: str) -> None:
    status, body = readyz()
    assert (status, body["checks"]["key_provider"]) == (200, "ok")  # type: ignore[index]


def test_a_disabled_kms_key_makes_the_pod_unready(db: None, kms_key_id: str) -> None:
    aws.client("kms").disable_key(KeyId=kms_key_id)
    status, body = readyz()
    assert (status, body["checks"]["key_provider"]) == (503, "unavailable")  # type: ignore[index]


def _readyz_with_kms_out_of_reach(settings) -> tuple[int, object]:
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:1"
    aws.clear_clients()
    try:
        status, body = readyz()
    finally:
        aws.clear_clients()
    return status, body["checks"]["key_provider"]  # type: ignore[index]


def test_an_unreachable_kms_makes_the_pod_unready(db: None, kms_key_id: str, settings) -> None:
    assert _readyz_with_kms_out_of_reach(settings) == (503, "unavailable")


def test_kms_out_of_reach_after_it_answered_is_reported_and_the_pod_stays_ready(
    db: None, kms_key_id: str, settings
) -> None:
    """KMS throttled or out of reach on the morning booking opens: a pod that has reached it
    serves the keys it holds (tenants.keys), so it stays in service; taking every pod out
    would leave no site at all. A new pod that never reached it stays out (above)."""
    assert readyz()[0] == 200
    health.key_provider_check.reset()  # the next probe asks again
    assert _readyz_with_kms_out_of_reach(settings) == (200, "unreachable")


@pytest.mark.parametrize(
    ("answered_before", "expected"), [(True, (200, "unreachable")), (False, (503, "unavailable"))]
)
def test_a_hung_kms_leaves_in_service_only_a_pod_that_reached_it_before(
    db: None, monkeypatch, answered_before: bool, expected: tuple[int, str]
) -> None:
    if answered_before:
        health._key_provider_answered.set()
    release = threading.Event()

    def hung() -> str:
        release.wait(10)
        return "ok"

    check = health.CachedCheck(hung, ttl=30, failure_ttl=5, deadline=0.2)
    monkeypatch.setitem(health.CHECKS, "key_provider", check)
    try:
        status, body = readyz()
    finally:
        release.set()
    assert (status, body["checks"]["key_provider"]) == expected  # type: ignore[index]
