"""Per-provider send budgets, shared by every worker through the cache (Redis in production).

A token bucket refilled once a second: each second holds ``rate`` tokens, taken with one
atomic INCR on a key named after the second; an empty bucket says how long until the next
refill. The SES and SNS budgets belong to the AWS account, so all municipalities share
them; LINE's belongs to each municipality's channel, so each municipality has its own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

from django.conf import settings
from django.core.cache import cache
from django_tenants.utils import get_public_schema_name, schema_context

# Sends per second. SES and SNS: the account's quotas in ap-northeast-1 (raise them here when
# AWS raises them); LINE: well under the push endpoint's 2,000 requests per second.
DEFAULT_RATES: Mapping[str, int] = {"ses": 14, "sns": 20, "line": 500, "console": 1000}
SHARED_PROVIDERS = frozenset({"ses", "sns"})


def rate_for(provider: str) -> int:
    configured = getattr(settings, "SESSHU_NOTIFICATION_RATES", None) or {}
    return int(configured.get(provider, DEFAULT_RATES.get(provider, 10)))


def _take(provider: str, rate: int, now: float) -> float:
    second = int(now)
    key = f"notifications:rate:{provider}:{second}"
    # add() is a no-op when the key exists; incr() is atomic in Redis (and under the
    # local-memory cache's lock), so two workers never take the same token.
    cache.add(key, 0, timeout=5)
    try:
        taken = cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=5)
        taken = 1
    if taken <= rate:
        return 0.0
    # Spread the waiters over the next second instead of waking them all at once.
    return (second + 1 - now) + random.uniform(0, 1)  # noqa: S311 - jitter, not security


def rate_limit_take(provider: str, *, now: float | None = None) -> float:
    """Take one send from ``provider``'s budget: 0.0 if taken, else seconds to wait."""
    rate = rate_for(provider)
    current = time.time() if now is None else now
    if provider in SHARED_PROVIDERS:
        # django-tenants prefixes cache keys with the schema: the shared budget lives under
        # the public schema's prefix. No query runs inside this block.
        with schema_context(get_public_schema_name()):
            return _take(provider, rate, current)
    return _take(provider, rate, current)
