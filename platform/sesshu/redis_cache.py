"""Django's Redis cache, with one Redis client per connection pool instead of one per call.

``django.core.cache.backends.redis.RedisCacheClient.get_client`` builds a new ``redis.Redis``
for every cache operation — and with it redis-py's table of response callbacks, some two
hundred entries: about 60 µs of CPU each time, as much as the round trip itself. A resident's
login makes about fifteen (the throttle's counters). A ``redis.Redis`` is safe to share
between threads (every command takes a connection from the pool and gives it back), so one
per pool is kept. A process forked afterwards is safe too: the pool notices the new pid and
opens its own connections.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # _get_connection_pool and _client are Django's (the stubs leave them out).
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            # Two threads may both build one here; either is fine, the pools are the same.
            made = self._client(connection_pool=pool)  # type: ignore[attr-defined]
            client = self._clients.setdefault(id(pool), made)
        return client


class SharedClientRedisCache(RedisCache):
    """``RedisCache`` with :class:`SharedClientRedisCacheClient` (settings.CACHES)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
