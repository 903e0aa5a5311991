"""Failed-login throttling for vendor operators, in the shared cache (Redis in production).

Counted per typed username and per client address, in fixed windows. Checked *before* the
password is hashed, so a flood of guesses costs the attacker more than it costs us. The
username is hashed in the key: the cache never holds what was typed. While Redis cannot be
reached the counting goes on in the web process (``sesshu.outages.ProcessCounters``): an
operator may have to stop a municipality's logins, or slow its waiting room, during the outage.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

from sesshu.outages import CACHE_DOWN, ProcessCounters, cache_down

DEFAULT_FAILURES_PER_USERNAME = 5
DEFAULT_FAILURES_PER_IP = 20
DEFAULT_WINDOW_SECONDS = 15 * 60


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


# The counters while Redis cannot be reached.
_process_counters = ProcessCounters()
_OUTAGE = "the control plane login's counters (counted in this process)"


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()
    return f"controlplane:login-failures:{kind}:{digest}"


class LoginThrottle:
    """The counters of one attempt: the username's, or, from a browser that has signed in to
    that username before (``browser``, its token: sesshu.devices), that browser's own, so
    guesses elsewhere do not lock the operator out of it; and the client address's."""

    def __init__(self, *, username: str, ip: str | None, browser: str | None = None) -> None:
        self.window = _limit("SESSHU_CONTROLPLANE_LOGIN_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS)
        account = (
            _key("device", browser) if browser else _key("username", username.strip().casefold())
        )
        self.limits = {
            account: _limit(
                "SESSHU_CONTROLPLANE_LOGIN_FAILURES_PER_USERNAME", DEFAULT_FAILURES_PER_USERNAME
            ),
            _key("ip", ip or "unknown"): _limit(
                "SESSHU_CONTROLPLANE_LOGIN_FAILURES_PER_IP", DEFAULT_FAILURES_PER_IP
            ),
        }
        self.account_key = account

    def blocked(self) -> bool:
        try:
            counts = cache.get_many(list(self.limits))
        except CACHE_DOWN as error:
            cache_down(_OUTAGE, error)
            counts = {key: _process_counters.get(key) for key in self.limits}
        return any(counts.get(key, 0) >= limit for key, limit in self.limits.items())

    def failed(self) -> None:
        try:
            for key in self.limits:
                # add() starts the window only if none is running; incr() keeps its expiry.
                cache.add(key, 0, timeout=self.window)
                try:
                    cache.incr(key)
                except ValueError:  # expired between add() and incr()
                    cache.set(key, 1, timeout=self.window)
        except CACHE_DOWN as error:
            cache_down(_OUTAGE, error)
            for key in self.limits:
                _process_counters.incr(key, window=self.window)

    def succeeded(self) -> None:
        # The address keeps its count: one good account must not launder an address's
        # failures against the others.
        _process_counters.delete(self.account_key)
        try:
            cache.delete(self.account_key)
        except CACHE_DOWN as error:
            cache_down(_OUTAGE, error)
