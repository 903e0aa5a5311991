"""Resident login throttling: the limits, and what they leave an attacker.

Every way a resident proves who they are — birth date, the one-time code from the letter, a
password, the identity check of the ``account`` mode's registration — passes
:func:`attempt_begin` before anything is decrypted or hashed, and reports how it ended.
Counters live in the Django cache (Redis in production, shared by every web pod);
django-tenants prefixes every key with the schema, so every limit is per municipality.

Limits
------
Per voucher (in the ``account`` mode's login: per typed e-mail address)
    5 failed attempts, then the voucher is locked until 15 minutes after the first of them.
    Short on purpose: an attacker keeps a resident out only by spending 5 attempts on them
    every 15 minutes, and the call centre (which does not log in here) books for them
    meanwhile.
Per client address (an IPv4 address; an IPv6 /64)
    20 failed attempts per hour.
Per municipality
    "Under attack" while failed attempts reach 60 in the last 10 minutes or 1,000 in the last
    24 hours. Under attack, for everyone:

    - the per-voucher allowance halves (5 → 2), and so does the per-address one (20 → 10);
    - the birth-date paths (``voucher_dob`` login, ``voucher_dob_then_password`` first login,
      ``account`` registration) take an extra step: the name in katakana as the registry holds
      it, checked together with the birth date. Someone walking voucher numbers knows
      neither; the resident knows both, so nobody is locked out by the attack itself.

An attempt is counted when it begins, so parallel requests cannot slip past a limit; a
success gives its attempt back (and clears its voucher's count), so the counters hold
failures. Only attempts that were checked count towards the municipality's rate: attempts
refused by a limit guess nothing.

What that leaves an attacker
----------------------------
SECURITY.md's method: accounts taken ≈ secrets tried ÷ the size of the secret's space
(a birth date in a 35-year cohort: 12,784 values; a one-time code: 2**40), for an attacker
walking 50,000 sequential voucher numbers for a day (``test_throttle.py`` computes these from
the constants below and asserts them; it also replays such an attacker against this module):

- from one address: 20 × 24 = 480 birth dates a day → 0.038 accounts a day (one in 27 days);
- from any number of addresses: birth dates alone only while not under attack, at most
  1,000 a day → 0.078 accounts a day (one in 13 days). Under attack each guess must also
  name the resident in katakana; counting a name guess right one time in 1,000 (generous:
  the commonest surname alone is ~1.5% of Japan, a full name far rarer), 10,000 addresses
  at 10 an hour add 0.19 a day;
- ``voucher_code``: 5 codes per voucher per 15 minutes over 50,000 vouchers, whatever the
  number of addresses: 24,000,000 a day → 0.000022 accounts a day (one in 125 years).

Passwords (set after the first login) are the resident's choice, checked by Django's
validators (10 characters or more, not common, not all digits) and throttled the same way.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field

from django.core.cache import cache
from django.utils.crypto import salted_hmac

from sesshu.outages import CACHE_DOWN, cache_down

# --- The limits (the docstring above states them; keep both in step) -------------------------
SUBJECT_LIMIT = 5
SUBJECT_WINDOW_SECONDS = 15 * 60
IP_LIMIT = 20
IP_WINDOW_SECONDS = 60 * 60
ATTACK_SHORT_WINDOW_MINUTES = 10
ATTACK_SHORT_THRESHOLD = 60
ATTACK_LONG_WINDOW_HOURS = 24
ATTACK_LONG_THRESHOLD = 1_000
UNDER_ATTACK_DIVISOR = 2  # per-voucher and per-address allowances while under attack

_PREFIX = "resident-login"


class Throttled(Exception):
    """A limit is reached; nothing was checked. ``scope`` is for the audit trail only."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


class ExtraStepRequired(Exception):
    """Under attack, this birth-date path needs the katakana name too; nothing was counted."""


@dataclass
class Attempt:
    """One counted attempt: what to give back if it succeeds."""

    under_attack: bool
    taken: list[str] = field(default_factory=list)


def subject_for_voucher(voucher_number: str) -> str:
    return "v:" + digest(voucher_number)


def subject_for_email(email: str) -> str:
    return "e:" + digest(email)


def digest(value: str) -> str:
    # Keyed, so the cache (Redis) holds nothing a person typed, not even a voucher number
    # that could be recovered by hashing all 10**10 of them.
    return salted_hmac("sesshu.resident.throttle", value).hexdigest()[:32]


def client_network(ip: str | None) -> str | None:
    """The unit the per-address limit counts: the address, or its /64 for IPv6 (one home
    or phone gets a whole /64, so counting single IPv6 addresses would limit nothing)."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _now() -> float:
    return time.time()


def _rate_keys(now: float) -> tuple[list[str], list[str]]:
    """The current minute's and hour's buckets first, then enough earlier ones to cover at
    least the whole window (the current bucket is partly over): so every attempt sees every
    failure of the 10 minutes (24 hours) before it, and no rolling day holds more than the
    threshold's worth of birth-date-only guesses."""
    minute = int(now // 60)
    hour = int(now // 3600)
    minutes = [
        f"{_PREFIX}:failures:m:{minute - back}" for back in range(ATTACK_SHORT_WINDOW_MINUTES + 1)
    ]
    hours = [f"{_PREFIX}:failures:h:{hour - back}" for back in range(ATTACK_LONG_WINDOW_HOURS + 1)]
    return minutes, hours


def failure_counts() -> tuple[int, int]:
    """Failed attempts in the municipality: the last 10 minutes, the last 24 hours."""
    minutes, hours = _rate_keys(_now())
    values = cache.get_many(minutes + hours)
    short = sum(int(values.get(key, 0)) for key in minutes)
    long = sum(int(values.get(key, 0)) for key in hours)
    return short, long


def under_attack() -> bool:
    short, long = failure_counts()
    return short >= ATTACK_SHORT_THRESHOLD or long >= ATTACK_LONG_THRESHOLD


def under_attack_shown() -> bool:
    """Whether a login page asks for the name as well. A page shown is no attempt: with the
    counters unreachable it shows the usual form (logged, sesshu.outages), and the attempt,
    which cannot be counted, is refused (``attempt_begin`` raises; a 503 page)."""
    try:
        return under_attack()
    except CACHE_DOWN as error:
        cache_down("the login throttle's counters (logins refused)", error)
        return False


def subject_limit(attacked: bool) -> int:
    return SUBJECT_LIMIT // UNDER_ATTACK_DIVISOR if attacked else SUBJECT_LIMIT


def ip_limit(attacked: bool) -> int:
    return IP_LIMIT // UNDER_ATTACK_DIVISOR if attacked else IP_LIMIT


def _take(*counters: tuple[str, int]) -> list[int]:
    """Count one more under each ``(key, seconds)``, starting its window if it has none.

    Production's cache does it in one round trip for all of them
    (``sesshu.redis_cache.SharedClientRedisCache.counters_take``); any other cache through
    Django's ``incr`` and ``add``."""
    take = getattr(cache, "counters_take", None)
    if take is not None:
        return list(take(counters))
    return [_take_one(key, seconds) for key, seconds in counters]


def _take_one(key: str, timeout: int) -> int:
    try:
        return int(cache.incr(key))
    except ValueError:  # no window yet, or it just ended
        if cache.add(key, 1, timeout=timeout):
            return 1
        return int(cache.incr(key))  # another request started it meanwhile


def _give_back(keys: list[str]) -> None:
    """Take one back from each of ``keys`` whose window has not ended."""
    give_back = getattr(cache, "counters_give_back", None)
    if give_back is not None:
        give_back(keys)
        return
    for key in keys:
        try:
            cache.decr(key)
        except ValueError:  # the window ended meanwhile
            pass


def attempt_begin(
    *, subject: str, ip: str | None, birth_date_path: bool = False, name_given: bool = False
) -> Attempt:
    """Count one attempt for ``subject`` (see :func:`subject_for_voucher`) from ``ip``.

    Raises :class:`ExtraStepRequired` (nothing counted) when a birth-date path comes without
    the katakana name while the municipality is under attack, and :class:`Throttled` when a
    limit is reached (the attempt stays counted against the address, not against the
    municipality's rate; an attempt refused for its address is not counted
    against its voucher). With the counters unreachable (or left alone a moment after they
    failed, sesshu.outages) it raises one of ``CACHE_DOWN``: nothing is checked uncounted.
    """
    attacked = under_attack()
    if attacked and birth_date_path and not name_given:
        raise ExtraStepRequired
    attempt = Attempt(under_attack=attacked)
    # The address first: an address over its limit does not spend anyone's voucher
    # allowance; hammering a locked voucher does spend the address's.
    network = client_network(ip)
    if network is not None:
        ip_key = f"{_PREFIX}:ip:{network}"
        if _take((ip_key, IP_WINDOW_SECONDS))[0] > ip_limit(attacked):
            raise Throttled("ip")
        attempt.taken.append(ip_key)
    subject_key = f"{_PREFIX}:subject:{subject}"
    if _take((subject_key, SUBJECT_WINDOW_SECONDS))[0] > subject_limit(attacked):
        raise Throttled("voucher")
    attempt.taken.append(subject_key)
    minutes, hours = _rate_keys(_now())
    _take(
        (minutes[0], (ATTACK_SHORT_WINDOW_MINUTES + 2) * 60),
        (hours[0], (ATTACK_LONG_WINDOW_HOURS + 2) * 3600),
    )
    attempt.taken += [minutes[0], hours[0]]
    return attempt


def attempt_succeeded(attempt: Attempt) -> None:
    """Give the attempt back; the voucher's own failures are forgotten too (whoever got in
    knows its secret already). The address's earlier failures stay: an attacker who owns
    one voucher must not be able to wash their address clean by logging in with it."""
    subjects = [key for key in attempt.taken if key.startswith(f"{_PREFIX}:subject:")]
    cache.delete_many(subjects)
    _give_back([key for key in attempt.taken if key not in subjects])
    attempt.taken = []


def subject_locked(subject: str) -> bool | None:
    """Whether the next attempt for ``subject`` would be refused for its failures (the call
    centre shows it); None while the counters cannot be read."""
    try:
        count = cache.get(f"{_PREFIX}:subject:{subject}") or 0
        return int(count) >= subject_limit(under_attack())
    except CACHE_DOWN as error:
        cache_down("the login throttle's counters (a voucher's lock not shown)", error)
        return None


def throttle_forget_subject(subject: str) -> None:
    """Lift a voucher's lock (the call centre, after checking the resident's identity)."""
    cache.delete(f"{_PREFIX}:subject:{subject}")
