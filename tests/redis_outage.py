"""Redis out of reach, for tests: the real client against a port nobody listens on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def closed_port() -> int:
    """A port on loopback that nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_at(settings: Any, port: int) -> None:
    """The default cache as production configures it (settings.SESSHU_REDIS_OPTIONS), on
    ``port`` of loopback."""
    settings.CACHES = {
        "default": {
            "BACKEND": "sesshu.redis_cache.SharedClientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": settings.SESSHU_REDIS_OPTIONS,
            "KEY_FUNCTION": "django_tenants.cache.make_key",
            "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        }
    }


@contextmanager
def broker_out_of_reach() -> Iterator[None]:
    """Celery publishing for real (not eagerly) to a Redis broker nobody answers for."""
    from sesshu.celery import app

    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=f"redis://127.0.0.1:{closed_port()}/0", task_always_eager=False)
    app._pool = None  # built afresh for the broker out of reach
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.update(previous)
        app._pool = None
        app.amqp._producer_pool = None
