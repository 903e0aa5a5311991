"""Redis out of reach, for tests: the real client against a port nobody listens on."""

from __future__ import annotations

import socket
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
