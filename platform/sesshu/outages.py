"""When the shared cache (Redis) or the task broker cannot be reached: what carries on without
them, and the log.

Redis holds what can be rebuilt or waited for: cached availability, the waiting room's queue,
the throttles' counters. A failover or a partition must not turn the morning booking opens
into error pages for residents already inside, nor a booking already committed into one:

- a cached read that fails is a miss (the database answers), a cached write that fails is
  skipped (:class:`CacheIfUp`);
- what must not go on without the cache decides for itself: the waiting room keeps
  newcomers waiting, the residents' login throttle refuses to guess
  (``booking.resident.throttle``), and the staff's and operators' logins, which also need a
  TOTP code, count in the process instead (:class:`ProcessCounters`).

A task published after a commit (a booking's confirmation, a registry import's next phase)
that the broker does not take is left to its sweep, which finds its row; the change stands
(:func:`broker_down`).

Every command gives up after ``SESSHU_REDIS_TIMEOUT_MS`` (settings.CACHES), so a Redis that
hangs costs a page that long, not the worker; and after a failure a process leaves the cache
alone for ``PAUSE_SECONDS`` (:func:`cache_paused`), so that while it hangs one page in that
time waits for it, not every page and every command of it. Each kind of failure is logged at
most once a minute per process: in an outage every request meets it, and one line says as
much.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import kombu.exceptions
import redis
from django.core.cache import cache

# What a cache command raises when Redis cannot be reached or does not answer in time.
CACHE_DOWN: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)

# What a publish raises when the broker (Redis) cannot be reached: kombu wraps the transport's
# errors, and the redis transport's own may come through.
NOT_PUBLISHED: tuple[type[Exception], ...] = (kombu.exceptions.OperationalError, *CACHE_DOWN)

logger = logging.getLogger("sesshu.cache")
LOG_EVERY_SECONDS = 60
PAUSE_SECONDS = 5.0
_logged: dict[str, float] = {}
_logged_lock = threading.Lock()
_paused_until = [0.0]  # time.monotonic(); one Redis for the whole process


class CachePaused(redis.exceptions.ConnectionError):
    """Raised instead of asking Redis, for ``PAUSE_SECONDS`` after it failed (one of
    :data:`CACHE_DOWN`)."""


def cache_paused() -> bool:
    """Whether this process leaves the cache alone for now, after a failure."""
    return time.monotonic() < _paused_until[0]


def check_cache_reachable() -> None:
    """Raise :class:`CachePaused` while the cache is left alone (the shared Redis client asks
    before every command, sesshu.redis_cache)."""
    if cache_paused():
        raise CachePaused("the shared cache failed a moment ago")


def cache_down(what: str, error: BaseException) -> None:
    """Log that the shared cache failed ``what`` (at most once a minute per process), and
    leave it alone for ``PAUSE_SECONDS``."""
    if not isinstance(error, CachePaused):
        _paused_until[0] = time.monotonic() + PAUSE_SECONDS
    _log_once("the shared cache (Redis)", what, error)


def broker_down(what: str, error: BaseException) -> None:
    """Log that the task broker did not take ``what`` (at most once a minute per process)."""
    _log_once("the task broker", what, error)


def _log_once(service: str, what: str, error: BaseException) -> None:
    now = time.monotonic()
    with _logged_lock:
        last = _logged.get(what)
        if last is not None and now - last < LOG_EVERY_SECONDS:
            return
        _logged[what] = now
    logger.error("%s cannot be reached: %s (%s: %s)", service, what, type(error).__name__, error)


class CacheIfUp:
    """The default cache, for what can do without it: a read that fails is a miss, a write
    that fails is skipped, and both are logged as ``what``."""

    def __init__(self, what: str) -> None:
        self.what = what

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return cache.get(key, default)
        except CACHE_DOWN as error:
            cache_down(self.what, error)
            return default

    def set(self, key: str, value: Any, timeout: float) -> None:
        try:
            cache.set(key, value, timeout)
        except CACHE_DOWN as error:
            cache_down(self.what, error)

    def set_many(self, values: Mapping[str, Any], timeout: float) -> None:
        try:
            cache.set_many(dict(values), timeout)
        except CACHE_DOWN as error:
            cache_down(self.what, error)


class ProcessCounters:
    """Counters in fixed windows, held by this process: where a login throttle counts while
    the shared counters (Redis) cannot be reached, in the same windows and to the same limits.
    An attacker who spreads attempts over the web processes gets that many times the
    allowance for as long as Redis is down; used only for logins that also need the TOTP code
    of the account's device (the console's staff, the control plane's operators), who must be
    able to sign in during an outage: the call centre books by phone when the resident site is
    in trouble, and an operator may have to stop logins or slow the waiting room.

    A key is held as the cache would hold it (its ``KEY_FUNCTION`` names the connection's
    schema), so each municipality counts apart here as it does in Redis."""

    _KEPT = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[float, int]] = {}  # key -> (window's end, count)

    def get(self, key: str) -> int:
        key = cache.make_key(key)
        with self._lock:
            ends, count = self._counts.get(key, (0.0, 0))
            return count if ends > time.monotonic() else 0

    def incr(self, key: str, *, window: float) -> int:
        """One more under ``key``, starting a window of ``window`` seconds if none runs."""
        key = cache.make_key(key)
        now = time.monotonic()
        with self._lock:
            if len(self._counts) >= self._KEPT:
                self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
            ends, count = self._counts.get(key, (0.0, 0))
            if ends <= now:
                ends, count = now + window, 0
            self._counts[key] = (ends, count + 1)
            return count + 1

    def decr(self, key: str) -> None:
        key = cache.make_key(key)
        with self._lock:
            ends, count = self._counts.get(key, (0.0, 0))
            if ends > time.monotonic() and count > 0:
                self._counts[key] = (ends, count - 1)

    def delete(self, key: str) -> None:
        key = cache.make_key(key)
        with self._lock:
            self._counts.pop(key, None)
