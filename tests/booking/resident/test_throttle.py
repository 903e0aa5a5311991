"""Login throttling: per voucher, per address, per municipality; before any hashing; and what
the limits leave an attacker walking sequential voucher numbers (SECURITY.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import redis
import time_machine
from django.test import Client
from django_tenants.utils import tenant_context

from booking.resident import throttle
from booking.resident.throttle import (
    ATTACK_LONG_THRESHOLD,
    ATTACK_SHORT_THRESHOLD,
    ATTACK_SHORT_WINDOW_MINUTES,
    IP_LIMIT,
    IP_WINDOW_SECONDS,
    SUBJECT_LIMIT,
    SUBJECT_WINDOW_SECONDS,
    UNDER_ATTACK_DIVISOR,
)
from tenants.models import Municipality
from tests.booking.resident.conftest import (
    CountingArgon2Hasher,
    Resident,
    birth_fields,
    events,
    login_dob,
    login_password,
    set_mode,
    set_password,
)

START = datetime(2026, 5, 11, 0, 30, tzinfo=UTC)  # 09:30 in Tokyo
WRONG = birth_fields(date(1950, 4, 2))

# SECURITY.md's figures: a 35-year cohort of birth dates, 40-bit codes, 50,000 vouchers.
BIRTH_DATES = 12_784
CODES = 2**40
VOUCHERS = 50_000
# Generous odds that an attacker names a stranger in katakana from a voucher number alone.
NAME_GUESS_ODDS = 1 / 1_000


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _client(ip: str = "203.0.113.7") -> Client:
    return Client(HTTP_HOST="kodaira.localhost", REMOTE_ADDR=ip)


def _seed_failures(municipality: Municipality, count: int) -> None:
    """``count`` failed attempts in this municipality, each from its own voucher and address."""
    with tenant_context(municipality):
        for index in range(count):
            throttle.attempt_begin(
                subject=throttle.subject_for_voucher(f"9{index:09d}"),
                ip=f"198.51.{index // 250}.{index % 250}",
                name_given=True,
            )


# --- Per voucher ------------------------------------------------------------------------------


def test_five_failures_lock_a_voucher_for_fifteen_minutes(
    dob_mode: Municipality, resident_a: Resident, clock: time_machine.Coordinates
) -> None:
    for attempt in range(SUBJECT_LIMIT):
        # From different addresses: the lock is the voucher's, not the address's.
        assert login_dob(_client(f"203.0.113.{attempt}"), resident_a, **WRONG).status_code == 400
    locked = login_dob(_client("203.0.113.99"), resident_a)
    assert locked.status_code == 429
    assert "試行が多すぎます" in locked.content.decode()
    assert events(dob_mode, "resident.login_failed")[-1].details["reason"] == "throttled"
    clock.shift(timedelta(seconds=SUBJECT_WINDOW_SECONDS))
    assert login_dob(_client("203.0.113.99"), resident_a).status_code == 302


def test_a_success_clears_the_vouchers_failures_but_not_the_addresss(
    dob_mode: Municipality, resident_a: Resident, neighbour_a: Resident
) -> None:
    client = _client()
    for _ in range(SUBJECT_LIMIT - 1):
        login_dob(client, resident_a, **WRONG)
    assert login_dob(client, resident_a).status_code == 302
    client.post("/logout/")
    for _ in range(SUBJECT_LIMIT - 1):
        assert login_dob(client, resident_a, **WRONG).status_code == 400
    assert login_dob(client, resident_a).status_code == 302
    # The address has 8 failures now: a login of its own voucher does not wash them away.
    with tenant_context(dob_mode):
        from django.core.cache import cache

        assert cache.get("resident-login:ip:203.0.113.7") == 2 * (SUBJECT_LIMIT - 1)


def test_an_unknown_voucher_is_locked_exactly_like_a_real_one(
    dob_mode: Municipality,
) -> None:
    client = _client()
    unknown = {"voucher_number": "1999999999", **WRONG}
    statuses = [client.post("/login/", unknown).status_code for _ in range(SUBJECT_LIMIT + 1)]
    assert statuses == [400] * SUBJECT_LIMIT + [429]


def test_the_throttle_comes_before_the_password_hash(
    tenant_a: Municipality,
    resident_a: Resident,
    counting_hasher: type[CountingArgon2Hasher],
) -> None:
    set_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB_THEN_PASSWORD)
    client = _client()
    login_dob(client, resident_a)
    set_password(client)
    client.post("/logout/")
    counting_hasher.verified = 0
    for _ in range(SUBJECT_LIMIT):
        login_password(client, resident_a, "wrong-password-42")
    assert counting_hasher.verified == SUBJECT_LIMIT
    assert login_password(client, resident_a).status_code == 429
    assert counting_hasher.verified == SUBJECT_LIMIT  # refused without hashing


# --- Per address ------------------------------------------------------------------------------


def test_twenty_failures_an_hour_lock_an_address(
    dob_mode: Municipality, resident_a: Resident, clock: time_machine.Coordinates
) -> None:
    client = _client("203.0.113.50")
    for index in range(IP_LIMIT):
        wrong_voucher = {"voucher_number": f"20000000{index:02d}", **WRONG}
        assert client.post("/login/", wrong_voucher).status_code == 400
    # Even a correct login from that address waits; another address is not affected.
    assert login_dob(client, resident_a).status_code == 429
    assert login_dob(_client("203.0.113.51"), resident_a).status_code == 302
    assert events(dob_mode, "resident.login_failed")[-1].details["limit"] == "ip"
    clock.shift(timedelta(seconds=IP_WINDOW_SECONDS))
    assert login_dob(_client("203.0.113.50"), resident_a).status_code == 302


def test_an_ipv6_client_is_counted_by_its_64(dob_mode: Municipality) -> None:
    assert throttle.client_network("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert throttle.client_network("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert throttle.client_network("192.0.2.1") == "192.0.2.1"


# --- Per municipality -------------------------------------------------------------------------


def test_a_failure_spike_asks_everyone_for_the_name_too(
    client_a: Client, dob_mode: Municipality, resident_a: Resident, clock: time_machine.Coordinates
) -> None:
    assert 'name="name_kana"' not in client_a.get("/").content.decode()
    _seed_failures(dob_mode, ATTACK_SHORT_THRESHOLD)
    top = client_a.get("/").content.decode()
    assert 'name="name_kana"' in top
    # Without the name nothing is checked or counted: the form asks for it.
    response = login_dob(client_a, resident_a)
    assert response.status_code == 400
    assert "お名前（カタカナ）もあわせて入力" in response.content.decode()
    (asked,) = events(dob_mode, "resident.login_failed")
    assert asked.details["reason"] == "extra_step_required" and asked.target_id == ""
    with tenant_context(dob_mode):
        assert throttle.failure_counts()[0] == ATTACK_SHORT_THRESHOLD  # not counted
    # A wrong name fails like a wrong birth date; the right one (hiragana is fine) logs in.
    wrong = login_dob(client_a, resident_a, name_kana="ヤマダ タロウ")
    assert wrong.status_code == 400
    assert events(dob_mode, "resident.login_failed")[-1].details["reason"] == "wrong_name"
    assert login_dob(client_a, resident_a, name_kana="こだいら　はなこ").status_code == 302
    # The spike passes: after ten quiet minutes the name is no longer asked for.
    clock.shift(timedelta(minutes=ATTACK_SHORT_WINDOW_MINUTES + 1))
    with tenant_context(dob_mode):
        assert not throttle.under_attack()


def test_under_attack_the_voucher_and_address_allowances_halve(
    dob_mode: Municipality, resident_a: Resident, clock: time_machine.Coordinates
) -> None:
    _seed_failures(dob_mode, ATTACK_SHORT_THRESHOLD)
    halved = SUBJECT_LIMIT // UNDER_ATTACK_DIVISOR
    statuses = [
        login_dob(_client(f"203.0.113.{n}"), resident_a, name_kana="ヤマダ", **WRONG).status_code
        for n in range(halved + 1)
    ]
    assert statuses == [400] * halved + [429]
    with tenant_context(dob_mode):
        assert throttle.ip_limit(True) == IP_LIMIT // UNDER_ATTACK_DIVISOR


def test_a_day_of_failures_turns_the_extra_step_on(
    dob_mode: Municipality, clock: time_machine.Coordinates
) -> None:
    # Paced below the 10-minute threshold, the failures still add up over the day.
    per_step = ATTACK_SHORT_THRESHOLD - 1
    seeded = 0
    while seeded < ATTACK_LONG_THRESHOLD:
        batch = min(per_step, ATTACK_LONG_THRESHOLD - seeded)
        with tenant_context(dob_mode):
            assert not throttle.under_attack()
            for index in range(batch):
                throttle.attempt_begin(
                    subject=throttle.subject_for_voucher(f"8{seeded + index:09d}"),
                    ip=f"192.0.{(seeded + index) // 200}.{(seeded + index) % 200}",
                )
        seeded += batch
        clock.shift(timedelta(minutes=ATTACK_SHORT_WINDOW_MINUTES + 1))
    with tenant_context(dob_mode):
        assert throttle.under_attack()


# --- What the limits leave an attacker ------------------------------------------------------


def takeovers_per_day() -> dict[str, float]:
    """SECURITY.md's method at this module's limits: secrets tried per day ÷ the space."""
    per_address_per_day = IP_LIMIT * 24 * 3600 // IP_WINDOW_SECONDS
    attacked_per_address = per_address_per_day // UNDER_ATTACK_DIVISOR
    per_voucher_per_day = SUBJECT_LIMIT * 24 * 3600 // SUBJECT_WINDOW_SECONDS
    # Birth dates alone are tried only while not under attack: below both thresholds.
    unattacked_per_day = min(
        ATTACK_LONG_THRESHOLD, ATTACK_SHORT_THRESHOLD * 24 * 60 // ATTACK_SHORT_WINDOW_MINUTES
    )
    attacked_per_voucher = per_voucher_per_day // UNDER_ATTACK_DIVISOR
    return {
        "birth_date_one_address": min(per_address_per_day, unattacked_per_day) / BIRTH_DATES,
        "birth_date_any_addresses": unattacked_per_day / BIRTH_DATES,
        "birth_date_and_name_10000_addresses": min(
            10_000 * attacked_per_address, VOUCHERS * attacked_per_voucher
        )
        / BIRTH_DATES
        * NAME_GUESS_ODDS,
        "code_any_addresses": VOUCHERS * per_voucher_per_day / CODES,
    }


def test_the_limits_keep_takeovers_far_below_one_a_day() -> None:
    figures = takeovers_per_day()
    print("\naccounts an attacker could take over per day:")
    for name, value in figures.items():
        print(f"  {name}: {value:.6f} (one in {1 / value:,.0f} days)")
    # SECURITY.md: per-voucher lockout alone (5 tries over 50,000 vouchers) gives ~20 accounts.
    assert VOUCHERS * SUBJECT_LIMIT / BIRTH_DATES == pytest.approx(19.6, abs=0.1)
    assert figures["birth_date_one_address"] < 0.04
    assert figures["birth_date_any_addresses"] < 0.08
    assert figures["birth_date_and_name_10000_addresses"] < 0.2
    assert figures["code_any_addresses"] < 0.00003
    total_birth_date = (
        figures["birth_date_any_addresses"] + figures["birth_date_and_name_10000_addresses"]
    )
    assert total_birth_date < 0.3  # under one account in three days, from 10,000 addresses


def _walk(
    municipality: Municipality,
    clock: time_machine.Coordinates,
    *,
    addresses: int | None,
    per_minute: int,
) -> int:
    """An attacker walking voucher numbers for a day, birth dates only, as fast as the limits
    let them: returns how many guesses were actually checked."""
    checked = 0
    voucher = 0
    for minute in range(24 * 60):
        with tenant_context(municipality):
            for request in range(per_minute):
                ip = (
                    f"10.{minute // 250}.{minute % 250}.{request}"
                    if addresses is None
                    else f"203.0.113.{(minute * per_minute + request) % addresses}"
                )
                try:
                    throttle.attempt_begin(
                        subject=throttle.subject_for_voucher(f"3{voucher:09d}"),
                        ip=ip,
                        birth_date_path=True,
                    )
                except throttle.ExtraStepRequired:
                    break  # under attack: birth dates alone are not even checked
                except throttle.Throttled as limit:
                    if limit.scope == "voucher":
                        voucher += 1
                    continue
                checked += 1
                voucher += 1
        clock.shift(timedelta(minutes=1))
    return checked


def test_an_attacker_replayed_for_a_day_from_one_address_stays_within_the_figures(
    dob_mode: Municipality, clock: time_machine.Coordinates
) -> None:
    checked = _walk(dob_mode, clock, addresses=1, per_minute=5)
    assert checked == IP_LIMIT * 24
    assert checked / BIRTH_DATES <= takeovers_per_day()["birth_date_one_address"]


def test_an_attacker_replayed_for_a_day_from_endless_addresses_stays_within_the_figures(
    dob_mode: Municipality, clock: time_machine.Coordinates
) -> None:
    checked = _walk(dob_mode, clock, addresses=None, per_minute=40)
    assert checked <= ATTACK_LONG_THRESHOLD
    assert checked / BIRTH_DATES <= takeovers_per_day()["birth_date_any_addresses"]


def test_on_redis_parallel_attempts_are_each_counted_once(
    dob_mode: Municipality, settings: object
) -> None:
    """Production's cache: concurrent first attempts of one voucher from many requests start
    one window and count every attempt, and the limit holds exactly."""
    settings.CACHES = {  # type: ignore[attr-defined]
        "default": {
            "BACKEND": "sesshu.redis_cache.SharedClientRedisCache",
            "LOCATION": os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/15"),
            "KEY_PREFIX": f"throttle-test-{os.getpid()}",
        }
    }
    from django.core.cache import cache

    subject = throttle.subject_for_voucher("1234567890")
    key = f"resident-login:subject:{subject}"
    cache.delete(key)
    outcomes: list[str] = []

    def attempt(index: int) -> None:
        try:
            throttle.attempt_begin(subject=subject, ip=f"198.51.100.{index + 1}")
            outcomes.append("counted")
        except throttle.Throttled as refused:
            outcomes.append(refused.scope)

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(attempt, range(SUBJECT_LIMIT + 7)))
        assert outcomes.count("counted") == SUBJECT_LIMIT
        assert outcomes.count("voucher") == 7
        assert int(cache.get(key)) == SUBJECT_LIMIT + 7
        raw = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])  # type: ignore[attr-defined]
        try:
            assert 0 < raw.ttl(cache.make_key(key)) <= SUBJECT_WINDOW_SECONDS  # a window, once
        finally:
            raw.close()
    finally:
        cache.delete(key)
        cache.close()


def test_on_redis_a_success_gives_its_attempt_back(
    dob_mode: Municipality, settings: object
) -> None:
    settings.CACHES = {  # type: ignore[attr-defined]
        "default": {
            "BACKEND": "sesshu.redis_cache.SharedClientRedisCache",
            "LOCATION": os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/15"),
            "KEY_PREFIX": f"throttle-test-{os.getpid()}",
        }
    }
    from django.core.cache import cache

    cache.clear()
    try:
        subject = throttle.subject_for_voucher("1234567890")
        failed = throttle.attempt_begin(subject=subject, ip="198.51.100.1")
        assert len(failed.taken) == 4
        counted = dict(zip(failed.taken, [cache.get(key) for key in failed.taken], strict=True))
        assert set(counted.values()) == {1}
        throttle.attempt_succeeded(throttle.attempt_begin(subject=subject, ip="198.51.100.1"))
        after = {key: cache.get(key) for key in failed.taken}
        subject_key = f"resident-login:subject:{subject}"
        # The voucher's count is forgotten; the address and the municipality keep the failure.
        assert after.pop(subject_key) is None
        assert set(after.values()) == {1}
        assert throttle.failure_counts() == (1, 1)
    finally:
        cache.clear()
        cache.close()
