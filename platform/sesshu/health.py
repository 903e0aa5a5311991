"""Liveness and readiness, answered before host validation and tenant resolution.

Probes come from the kubelet and the ALB with the pod's IP as host; they must not need a
municipality, must not touch personal data, and must not be slowed by anything after them.
They are neither logged nor counted (RequestContextMiddleware comes after this one).

``/healthz`` says the process answers, nothing more: a database outage must not make the
kubelet restart every pod. ``/readyz`` asks what a request needs: the database and the key
provider; and reports Redis without failing on it: the pages carry on without Redis
(``sesshu.outages``), and taking every pod out of the load balancer for it would turn a
degraded site into none, the call centre's console with it. Likewise KMS out of reach
("unreachable": no answer, throttling) once this process has reached it: it serves the data
keys it holds for a while (``tenants.keys``); a pod that never reached it is not ready.

The key provider is asked at most every ``KEY_PROVIDER_TTL`` seconds per process (KMS is
billed per call and rate-limited, and the probe runs every 5 s in every pod), and never for
longer than ``CHECK_DEADLINE`` seconds: a hung dependency must not hold the probe past its
3 s timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"
UNREACHABLE = "unreachable"  # for now; not a reason to leave service (see readiness)
NOT_CONFIGURED = "not_configured"
KEY_PROVIDER_TTL = 30.0
KEY_PROVIDER_FAILURE_TTL = 5.0
CHECK_DEADLINE = 2.0
REDIS_TIMEOUT = 1.0


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return OK


_redis_clients: dict[str, Any] = {}
_redis_lock = threading.Lock()


def _redis() -> str:
    url = getattr(settings, "REDIS_URL", None)
    if not url:
        return NOT_CONFIGURED
    import redis

    # One client (and connection pool) per URL: a new TLS connection to ElastiCache every
    # 5 s per pod would cost more than the check.
    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = redis.Redis.from_url(
                url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
            )
            _redis_clients[url] = client
    client.ping()
    return OK


def _key_provider_reachable() -> str:
    """The provider can serve a data key now: the local master key decodes, or the KMS key
    exists and is enabled. No tenant's key is touched. ``UNREACHABLE``: KMS did not answer,
    or said "not now" (tenants.keys: served from memory meanwhile)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from tenants.keys import KmsKeyProvider, is_transient, key_provider

    provider = key_provider()  # a bad configuration raises here
    check = getattr(provider, "check", None)
    if callable(check):
        check()
    elif isinstance(provider, KmsKeyProvider):
        from sesshu import aws

        region = getattr(settings, "SESSHU_KMS_REGION", None) or getattr(
            settings, "AWS_REGION", None
        )
        try:
            metadata = aws.client("kms", region=region).describe_key(KeyId=provider.key_id)
        except (BotoCoreError, ClientError) as exc:
            if is_transient(exc):
                return UNREACHABLE
            raise
        state = metadata["KeyMetadata"].get("KeyState")
        if state != "Enabled":
            raise RuntimeError(f"the KMS key is {state}")
    _key_provider_answered.set()
    return OK


# Set once the key provider has answered this process: from then on, KMS out of reach for a
# while does not take the pod out of service (it serves the keys it holds, tenants.keys), while
# a pod that never reached it (a new deployment that cannot, by its network or its role) stays
# out: its rollout stops there.
_key_provider_answered = threading.Event()


class CheckFailed(Exception):
    """A cached failure; ``reason`` names the original exception's type."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CachedCheck:
    """A check whose result is kept for ``ttl`` seconds (``failure_ttl`` after a failure),
    run by one thread at a time, and waited for at most ``deadline`` seconds.

    A check still running at the deadline reports unavailable to that probe; its result is
    kept for the next one when it finishes.
    """

    def __init__(
        self,
        check: Callable[[], str],
        *,
        ttl: float,
        failure_ttl: float,
        deadline: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.check = check
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.deadline = deadline
        self.clock = clock
        self._lock = threading.Lock()
        self._result: str | None = None
        self._error: str = ""
        self._expires_at = 0.0
        self._running: threading.Event | None = None

    def reset(self) -> None:
        with self._lock:
            self._result, self._expires_at = None, 0.0

    def _run(self, done: threading.Event) -> None:
        try:
            result, error = self.check(), ""
        except Exception as exc:  # reported, not raised: the probe says unavailable
            result, error = UNAVAILABLE, type(exc).__name__
        with self._lock:
            self._result, self._error = result, error
            ttl = self.failure_ttl if result == UNAVAILABLE else self.ttl
            self._expires_at = self.clock() + ttl
            self._running = None
        done.set()

    def __call__(self) -> str:
        with self._lock:
            if self._result is not None and self.clock() < self._expires_at:
                return self._cached()
            running = self._running
            if running is None:
                running = self._running = threading.Event()
                threading.Thread(
                    target=self._run, args=(running,), name="sesshu-readyz", daemon=True
                ).start()
        if not running.wait(self.deadline):
            raise TimeoutError("the check did not answer in time")
        with self._lock:
            return self._cached()

    def _cached(self) -> str:
        if self._result == UNAVAILABLE:
            raise CheckFailed(self._error or "unavailable")
        return self._result or UNAVAILABLE


key_provider_check = CachedCheck(
    _key_provider_reachable,
    ttl=KEY_PROVIDER_TTL,
    failure_ttl=KEY_PROVIDER_FAILURE_TTL,
    deadline=CHECK_DEADLINE,
)

CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "redis": _redis,
    "key_provider": key_provider_check,
}


# Reported by /readyz, but not a reason to take the pod out of service.
REPORTED_ONLY = frozenset({"redis"})


def readiness() -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check() or OK
        except TimeoutError:
            # A check still running at its deadline (CachedCheck): a provider that hangs.
            logger.warning("readiness check %s failed: TimeoutError", name)
            results[name] = UNREACHABLE
        except Exception as exc:  # a probe reports, it does not crash
            # The exception's type only: messages of drivers may quote connection strings.
            reason = exc.reason if isinstance(exc, CheckFailed) else type(exc).__name__
            logger.warning("readiness check %s failed: %s", name, reason)
            results[name] = UNAVAILABLE
    if results.get("key_provider") == UNREACHABLE and not _key_provider_answered.is_set():
        results["key_provider"] = UNAVAILABLE  # never reached: nothing to serve from memory
    ready = all(
        value != UNAVAILABLE for name, value in results.items() if name not in REPORTED_ONLY
    )
    return ready, results


class HealthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return _no_store(JsonResponse({"status": "ok"}))
        if request.path == "/readyz":
            ready, results = readiness()
            response = JsonResponse(
                {"ready": ready, "checks": results}, status=200 if ready else 503
            )
            # The failed check was logged once above, as a warning; Django would add an error
            # (and a Sentry event) per probe, every 5 s in every pod, during an outage.
            response._has_been_logged = True  # type: ignore[attr-defined]
            return _no_store(response)
        return self.get_response(request)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response
