"""The production cache: Django's Redis cache with one Redis client per connection pool."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCacheClient

from sesshu.redis_cache import SharedClientRedisCache

LOCATION = os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/15")


@pytest.fixture
def shared(settings: object) -> Iterator[SharedClientRedisCache]:
    settings.CACHES = {  # type: ignore[attr-defined]
        "default": {
            "BACKEND": "sesshu.redis_cache.SharedClientRedisCache",
            "LOCATION": LOCATION,
            "KEY_PREFIX": f"redis-cache-test-{os.getpid()}",
        }
    }
    cache = caches["default"]
    assert isinstance(cache, SharedClientRedisCache)
    cache.clear()
    yield cache
    cache.clear()


def test_one_client_serves_every_operation(shared: SharedClientRedisCache) -> None:
    client = shared._cache.get_client()
    assert isinstance(client, redis.Redis)
    assert shared._cache.get_client(write=True) is client
    assert shared._cache.get_client("some key") is client
    # Django's own client builds a new one every time: what this backend is for.
    django_client = RedisCacheClient([LOCATION])
    assert django_client.get_client() is not django_client.get_client()


def test_the_shared_client_does_what_the_cache_does(shared: SharedClientRedisCache) -> None:
    assert shared.add("counter", 1, timeout=60)
    assert not shared.add("counter", 5, timeout=60)
    assert shared.incr("counter") == 2
    shared.set_many({"a": "一", "b": {"nested": [1, 2]}}, timeout=60)
    assert shared.get_many(["a", "b", "missing"]) == {"a": "一", "b": {"nested": [1, 2]}}
    assert shared.decr("counter") == 1
    shared.delete("counter")
    assert shared.get("counter") is None


def test_threads_share_the_client_and_every_increment_counts(
    shared: SharedClientRedisCache,
) -> None:
    shared.set("hits", 0, timeout=60)
    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(lambda _n: shared._cache.get_client(), range(16)))
        list(pool.map(lambda _n: shared.incr("hits"), range(400)))
    assert len({id(client) for client in clients}) == 1
    assert shared.get("hits") == 400


def _ttl(shared: SharedClientRedisCache, key: str) -> int:
    return int(shared._cache.get_client().ttl(shared.make_and_validate_key(key)))


def test_counters_start_a_window_once_and_count_in_it(shared: SharedClientRedisCache) -> None:
    assert shared.counters_take([("a", 60), ("b", 600)]) == [1, 1]
    assert 0 < _ttl(shared, "a") <= 60 and 60 < _ttl(shared, "b") <= 600
    shared._cache.get_client().expire(shared.make_and_validate_key("a"), 30)
    assert shared.counters_take([("a", 60)]) == [2]
    assert _ttl(shared, "a") <= 30  # the window is not pushed back by later counts
    assert shared.get("a") == 2  # what the cache itself reads, under its own key
    shared.delete("a")
    assert shared.counters_take([("a", 60)]) == [1]  # a window that ended starts again


def test_counters_give_back_only_to_windows_still_open(shared: SharedClientRedisCache) -> None:
    shared.counters_take([("open", 60), ("open", 60)])
    shared.counters_give_back(["open", "ended"])
    assert shared.get("open") == 1
    assert shared.get("ended") is None  # not made -1, and not made at all
    assert not shared._cache.get_client().exists(shared.make_and_validate_key("ended"))
    shared.counters_give_back([])
