"""Django's Redis cache, with one Redis client per connection pool instead of one per call.

``django.core.cache.backends.redis.RedisCacheClient.get_client`` builds a new ``redis.Redis``
for every cache operation — and with it redis-py's table of response callbacks, some two
hundred entries: about 60 µs of CPU each time, as much as the round trip itself. A resident's
login makes about fifteen (the throttle's counters). A ``redis.Redis`` is safe to share
between threads (every command takes a connection from the pool and gives it back), so one
per pool is kept. A process forked afterwards is safe too: the pool notices the new pid and
opens its own connections.

It also counts in windows in one round trip (:meth:`SharedClientRedisCache.counters_take` and
``counters_give_back``), where Django's ``incr`` and ``decr`` take two each (EXISTS, then
INCRBY): a resident's login counted some fifteen round trips that way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from sesshu.outages import check_cache_reachable

# Take one back from each key that still exists; a key whose window ended stays gone (a DECR
# of a missing key would make it -1, with no expiry).
_GIVE_BACK = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end
end
return 0
"""


# The waiting room's queue (booking.resident.waiting_room), a hash: the last place given
# ("issued"), and how many places had come in ("served", at most "issued") at the time "at".
# Places come in at ARGV[2] a second from then on, so a change of the rate reaches everyone
# already waiting. A newcomer waits (issued - served) / rate seconds for place issued + 1; it
# is "full", taking nothing, past ARGV[3] seconds. With a second key, a newcomer who would
# wait more than ARGV[5] seconds is counted under it (a window of ARGV[7] seconds), and
# refused, taking nothing, past ARGV[6]. Numbers travel as strings that give back the same
# double (repr, %.17g): a Lua number returned to Redis would lose its fraction, and a rounded
# one would make the script's arithmetic differ from the Python fallback's, which is the same.
_QUEUE_JOIN = """
local now, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'issued', 'served', 'at')
local issued = tonumber(state[1] or '0') or 0
local served = tonumber(state[2] or '0') or 0
local at = tonumber(state[3] or ARGV[1]) or now
if now > at then
  served = served + (now - at) * rate
  at = now
end
if served > issued then served = issued end
local wait = (issued - served) / rate
if wait > tonumber(ARGV[3]) then return 'full' end
if #KEYS > 1 and wait > tonumber(ARGV[5]) then
  local counted = redis.call('INCR', KEYS[2])
  if counted == 1 then redis.call('EXPIRE', KEYS[2], ARGV[7]) end
  if counted > tonumber(ARGV[6]) then return 'limited' end
end
issued = issued + 1
redis.call('HSET', KEYS[1], 'issued', string.format('%d', issued),
           'served', string.format('%.17g', served), 'at', string.format('%.17g', at))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {string.format('%d', issued), string.format('%.17g', wait)}
"""


class SharedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # A moment after a failure every command is refused here, without asking Redis: one
        # place for every user of the cache (sesshu.outages).
        check_cache_reachable()
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

    def counters_take(self, counters: Sequence[tuple[str, int]]) -> list[int]:
        """Count one more under each ``(key, seconds)`` and return the new counts; a key
        that has no window yet (or whose window ended) starts one of ``seconds``. One round
        trip: INCR, then EXPIRE … NX (Redis 7), which sets an expiry only where none is."""
        client = self._cache.get_client(None, write=True)  # type: ignore[attr-defined]
        pipeline = client.pipeline(transaction=False)
        for key, seconds in counters:
            made = self.make_and_validate_key(key)
            pipeline.incr(made)
            pipeline.expire(made, seconds, nx=True)
        answers = pipeline.execute()
        return [int(count) for count in answers[::2]]

    def counters_give_back(self, keys: Sequence[str]) -> None:
        """Take one back from each key whose window has not ended. One round trip."""
        if not keys:
            return
        client = self._cache.get_client(None, write=True)  # type: ignore[attr-defined]
        made = [self.make_and_validate_key(key) for key in keys]
        client.eval(_GIVE_BACK, len(made), *made)

    def queue_join(
        self,
        key: str,
        *,
        now: float,
        per_second: float,
        horizon: float,
        keep_seconds: int,
        limit_key: str | None = None,
        limit: int = 0,
        limit_after: float = 0.0,
        limit_seconds: int = 0,
    ) -> tuple[int, float] | str:
        """The next place in the queue under ``key``, taken, and the seconds it waits; "full",
        taking nothing, when that is more than ``horizon``. With ``limit_key``, a place that
        waits more than ``limit_after`` seconds counts one under it (a window of
        ``limit_seconds``), and the ``limit`` + 1st is "limited", taking nothing. One atomic
        round trip."""
        client = self._cache.get_client(None, write=True)  # type: ignore[attr-defined]
        keys = [self.make_and_validate_key(key)]
        if limit_key is not None:
            keys.append(self.make_and_validate_key(limit_key))
        answer = client.eval(
            _QUEUE_JOIN,
            len(keys),
            *keys,
            repr(now),
            repr(per_second),
            repr(horizon),
            keep_seconds,
            repr(float(limit_after)),
            limit,
            limit_seconds,
        )
        if isinstance(answer, list):
            place, wait = answer
            return int(place), float(wait)
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    def queue_state(self, key: str) -> tuple[int, float, float] | None:
        """The queue under ``key`` as (issued, served, at), or None where there is none."""
        client = self._cache.get_client(None, write=False)  # type: ignore[attr-defined]
        issued, served, at = client.hmget(self.make_and_validate_key(key), "issued", "served", "at")
        if issued is None or served is None or at is None:
            return None
        return int(issued), float(served), float(at)
