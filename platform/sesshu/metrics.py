"""Prometheus metrics, served on their own port (9100) and never by Django.

The web pods run gunicorn with several worker processes, so the metrics live in
prometheus-client's multiprocess mode: each process writes its values to files under
``PROMETHEUS_MULTIPROC_DIR`` and the metrics server, in gunicorn's master (gunicorn.conf.py)
or the Celery worker's main process, adds them up when Prometheus scrapes. Without that
variable (tests, ``runserver``) the values stay in this process.

Labels are kinds, never identities: method, status class, host kind (resident, console,
platform), channel, login kind, task name and the tenant code (at most ~1,741 values). No
path, no voucher, no user.

Call sites (they count; this module never raises into them):

- ``booking_created(channel)``, ``booking_changed(channel)``, ``booking_cancelled(channel)``
  inside the booking transaction, in the municipality's context: counted when it commits;
- ``login_failed(kind)`` wherever a login attempt is refused: ``resident``, ``console``,
  ``controlplane``.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from celery.signals import task_postrun, worker_init, worker_process_shutdown
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PORT_ENV = "SESSHU_METRICS_PORT"
DEFAULT_PORT = 9100


def _ensure_multiproc_dir() -> None:
    # In multiprocess mode each process writes a file there for every labelled value; a
    # one-off process (the migration Job, manage.py) must not fail because nobody made it.
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)


_ensure_multiproc_dir()

CHANNELS = frozenset({"web", "line", "call_centre"})
LOGIN_KINDS = frozenset({"resident", "console", "controlplane"})
HOST_KINDS = frozenset({"resident", "console", "platform", "unknown"})

REQUESTS = Counter(
    "sesshu_http_requests",
    "HTTP requests answered (probes excluded).",
    ["method", "status_class", "host_kind", "tenant"],
)
REQUEST_SECONDS = Histogram(
    "sesshu_http_request_duration_seconds",
    "Time from the request entering the application to its response.",
    ["host_kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BOOKINGS_CREATED = Counter(
    "sesshu_bookings_created", "Bookings created (committed).", ["channel", "tenant"]
)
BOOKINGS_CHANGED = Counter(
    "sesshu_bookings_changed", "Bookings moved to another slot (committed).", ["channel", "tenant"]
)
BOOKINGS_CANCELLED = Counter(
    "sesshu_bookings_cancelled", "Bookings cancelled (committed).", ["channel", "tenant"]
)
LOGIN_FAILURES = Counter(
    "sesshu_login_failures", "Refused login attempts, throttled ones included.", ["kind", "tenant"]
)
TASKS = Counter("sesshu_celery_tasks", "Celery tasks run, by final state.", ["task", "state"])


def _tenant() -> str:
    from sesshu.logs import connection_tenant_code

    return connection_tenant_code() or ""


def _one_of(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


_failed_once = False


def _quietly(count: Callable[[], None]) -> None:
    """Run ``count``; a metric that cannot be written (the multiprocess folder gone, say)
    is reported once per process and never fails the request, booking or task counted."""
    global _failed_once
    try:
        count()
    except Exception:
        if not _failed_once:
            _failed_once = True
            logger.exception("a metric could not be recorded; later failures are not logged")


# --- What the application counts --------------------------------------------------------


def request_observed(
    *, method: str, status: int, host_kind: str, tenant: str, seconds: float
) -> None:
    kind = _one_of(host_kind, HOST_KINDS)

    def count() -> None:
        REQUESTS.labels(method, f"{status // 100}xx", kind, tenant).inc()
        REQUEST_SECONDS.labels(kind).observe(seconds)

    _quietly(count)


def _on_commit(counter: Counter, channel: str, count: int) -> None:
    from django.db import transaction

    labels = (_one_of(channel, CHANNELS), "")

    def tenant_now() -> None:
        nonlocal labels
        labels = (labels[0], _tenant())

    # The tenant is read now: the commit may come after the caller left the municipality.
    _quietly(tenant_now)
    # A booking rolled back was never made; outside a transaction this counts at once.
    transaction.on_commit(lambda: _quietly(lambda: counter.labels(*labels).inc(count)))


def booking_created(channel: str, count: int = 1) -> None:
    """Count ``count`` bookings made through ``channel`` when the transaction commits."""
    _on_commit(BOOKINGS_CREATED, channel, count)


def booking_changed(channel: str, count: int = 1) -> None:
    _on_commit(BOOKINGS_CHANGED, channel, count)


def booking_cancelled(channel: str, count: int = 1) -> None:
    _on_commit(BOOKINGS_CANCELLED, channel, count)


def login_failed(kind: str) -> None:
    """Count a refused login at once: the attempt happened even if its transaction is undone."""
    _quietly(lambda: LOGIN_FAILURES.labels(_one_of(kind, LOGIN_KINDS), _tenant()).inc())


@task_postrun.connect(dispatch_uid="sesshu.metrics.task_finished")
def _task_finished(task: Any = None, state: str | None = None, **kwargs: Any) -> None:
    name = str(getattr(task, "name", "") or "unknown")
    _quietly(lambda: TASKS.labels(name, state or "UNKNOWN").inc())


# --- Celery queue length ----------------------------------------------------------------

# kombu's Redis transport keeps a list per queue and priority: the queue's own name for the
# default priority, "<queue>\x06\x16<priority>" for the others.
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


class QueueLengthCollector(Collector):
    """Messages waiting in each Celery queue, asked of Redis at scrape time (LLEN).

    Says nothing when the broker is not Redis (no broker: tasks run in-process), and
    nothing rather than an error when Redis does not answer.
    """

    def __init__(self, broker_url: str | None, queues: Iterable[str], *, timeout: float = 1.0):
        scheme = urlsplit(broker_url).scheme if broker_url else ""
        self.broker_url = broker_url if scheme in ("redis", "rediss") else None
        self.queues = list(dict.fromkeys(queues))
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not call Redis

    def _redis(self, url: str) -> Any:
        with self._lock:
            if self._client is None:
                import redis

                self._client = redis.Redis.from_url(
                    url,
                    socket_timeout=self.timeout,
                    socket_connect_timeout=self.timeout,
                )
            return self._client

    def collect(self) -> Iterator[Metric]:
        if self.broker_url is None or not self.queues:
            return
        import redis

        try:
            pipeline = self._redis(self.broker_url).pipeline(transaction=False)
            for queue in self.queues:
                pipeline.llen(queue)
                for priority in _PRIORITY_STEPS:
                    pipeline.llen(f"{queue}{_PRIORITY_SEPARATOR}{priority}")
            lengths = pipeline.execute()
        except (redis.RedisError, OSError) as exc:
            logger.warning("celery queue length unavailable: %s", type(exc).__name__)
            return
        family = GaugeMetricFamily(
            "sesshu_celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        per_queue = 1 + len(_PRIORITY_STEPS)
        for index, queue in enumerate(self.queues):
            family.add_metric([queue], sum(lengths[index * per_queue : (index + 1) * per_queue]))
        yield family


def queue_length_collector() -> QueueLengthCollector:
    """From the environment (the same variables settings reads), so gunicorn's master needs
    no Django: CELERY_BROKER_URL (or _FILE), CELERY_TASK_DEFAULT_QUEUE, SESSHU_METRICS_QUEUES."""
    from sesshu.env import env_list, env_optional, env_str

    queues = [env_str("CELERY_TASK_DEFAULT_QUEUE", "celery"), *env_list("SESSHU_METRICS_QUEUES")]
    return QueueLengthCollector(env_optional("CELERY_BROKER_URL"), queues)


# --- Exposition --------------------------------------------------------------------------


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class _ThisProcess(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def exposition_registry(*, queue_lengths: Collector | None = None) -> CollectorRegistry:
    """What the metrics server serves: every process's values in multiprocess mode, this
    process's otherwise, and the queue lengths if given."""
    registry = CollectorRegistry()
    if multiprocess_mode():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    if queue_lengths is not None:
        registry.register(queue_lengths)
    return registry


def exposition(*, queue_lengths: Collector | None = None) -> bytes:
    return generate_latest(exposition_registry(queue_lengths=queue_lengths))


def metrics_port() -> int:
    from sesshu.env import env_int

    return env_int(METRICS_PORT_ENV, DEFAULT_PORT, minimum=1)


def start_metrics_server(*, port: int | None = None, addr: str = "0.0.0.0") -> Any:  # noqa: S104
    """Serve the exposition on ``port`` in a thread of this process; return the server.

    Not on the public port and not through Django: only Prometheus reaches it (the
    NetworkPolicy allows the monitoring namespace only).
    """
    registry = exposition_registry(queue_lengths=queue_length_collector())
    server, _thread = start_http_server(port or metrics_port(), addr=addr, registry=registry)
    return server


def reset_multiproc_dir() -> None:
    """Empty the multiprocess folder before the first worker starts: files left by an
    earlier run of the container (an emptyDir outlives a restart) would add old counts."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return
    path = Path(folder)
    if path.is_dir():
        for entry in path.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)


def process_exited(pid: int) -> None:
    """A worker process is gone: drop its live gauges (its counters stay counted)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)


# --- The Celery worker's metrics server ---------------------------------------------------


@worker_init.connect(dispatch_uid="sesshu.metrics.worker_server")
def _worker_metrics_server(**kwargs: Any) -> None:
    # Only where the deployment asks for it (k8s sets PROMETHEUS_MULTIPROC_DIR): a worker
    # started by a developer or a test does not grab port 9100.
    if not (multiprocess_mode() or os.environ.get(METRICS_PORT_ENV)):
        return
    reset_multiproc_dir()
    try:
        start_metrics_server()
    except OSError as exc:
        logger.error("metrics server not started: %s", exc)


@worker_process_shutdown.connect(dispatch_uid="sesshu.metrics.worker_child_exit")
def _worker_child_exit(pid: int | None = None, **kwargs: Any) -> None:
    process_exited(pid or os.getpid())
