"""Every failed login looks the same from outside: the same page, the same status, the same
work (and so about the same time), whether or not the voucher exists (ASVS 6.3.8)."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.test import Client

from booking.models import Voucher
from tenants.crypto import TenantCipher
from tenants.models import Municipality
from tests.booking.resident.conftest import (
    PASSWORD,
    CountingArgon2Hasher,
    Resident,
    birth_fields,
    events,
    login_code,
    login_dob,
    login_password,
    make_resident,
    same_page,
    set_mode,
    set_password,
)

Mode = Municipality.LoginMode
WRONG_DATE = birth_fields(date(1950, 4, 2))


def _fresh() -> Client:
    return Client(HTTP_HOST="kodaira.localhost")


# The box that shows again who the visitor said they were (the secret is never shown again).
TYPED = re.compile(r'(<input [^>]*name="(?:voucher_number|email)"[^>]*?)(?: value="([^"]*)")?( |>)')

CHOSEN_BIRTH_DATE = re.compile(
    r'<select name="birth_date_[^>]*>(?:(?!</select>).)*<option value="[^"]+" selected',
    re.DOTALL,
)


def _assert_identical(responses: list[Any], typed: list[str]) -> None:
    """The same status and page for each, but for the voucher number (or e-mail address)
    typed, shown again in its box: ``typed``, in the order of ``responses``."""
    statuses = {response.status_code for response in responses}
    assert statuses == {400}
    shown = [match.group(2) for r in responses if (match := TYPED.search(r.content.decode()))]
    assert shown == typed
    pages = {TYPED.sub(r"\1\3", same_page(response.content)) for response in responses}
    assert len(pages) == 1
    for response in responses:  # nothing of the birth date is kept
        assert not CHOSEN_BIRTH_DATE.search(response.content.decode())


@pytest.fixture
def open_record_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts decryptions, passing every call through to the real cipher."""
    calls: list[str] = []
    real = TenantCipher.open_record

    def counted(self: TenantCipher, blob: bytes, *, table: str, row_id: str) -> Any:
        calls.append(table)
        return real(self, blob, table=table, row_id=row_id)

    monkeypatch.setattr(TenantCipher, "open_record", counted)
    return calls


def test_birth_date_failures_are_identical_and_cost_one_decryption(
    dob_mode: Municipality, resident_a: Resident, open_record_calls: list[str]
) -> None:
    withdrawn = make_resident(dob_mode, "1000000007", status=Voucher.Status.WITHDRAWN)
    disabled = make_resident(dob_mode, "1000000006", web_login_disabled=True)
    attempts: list[Callable[[], Any]] = [
        lambda: _fresh().post("/login/", {"voucher_number": "1999999999", **WRONG_DATE}),
        lambda: login_dob(_fresh(), resident_a, **WRONG_DATE),
        lambda: login_dob(_fresh(), withdrawn),
        lambda: login_dob(_fresh(), disabled),
    ]
    responses = []
    for attempt in attempts:
        before = len(open_record_calls)
        responses.append(attempt())
        assert len(open_record_calls) == before + 1  # a dummy one for the unknown voucher
    _assert_identical(
        responses, ["1999999999", resident_a.number, withdrawn.number, disabled.number]
    )
    reasons = [e.details["reason"] for e in events(dob_mode, "resident.login_failed")]
    assert reasons == [
        "unknown_voucher",
        "wrong_birth_date",
        "voucher_withdrawn",
        "web_login_disabled",
    ]


def test_birth_date_after_a_password_fails_like_any_other(
    tenant_a: Municipality, resident_a: Resident
) -> None:
    set_mode(tenant_a, Mode.VOUCHER_DOB_THEN_PASSWORD)
    client = _fresh()
    login_dob(client, resident_a)
    set_password(client)
    _assert_identical(
        [
            login_dob(_fresh(), resident_a),  # right birth date, but a password exists now
            _fresh().post("/login/", {"voucher_number": "1999999999", **WRONG_DATE}),
        ],
        [resident_a.number, "1999999999"],
    )


def test_password_failures_are_identical_and_cost_one_hash_each(
    tenant_a: Municipality,
    resident_a: Resident,
    neighbour_a: Resident,
    counting_hasher: type[CountingArgon2Hasher],
) -> None:
    set_mode(tenant_a, Mode.VOUCHER_DOB_THEN_PASSWORD)
    client = _fresh()
    login_dob(client, resident_a)
    set_password(client)
    disabled = make_resident(tenant_a, "1000000006", web_login_disabled=True)
    unknown = Resident(tenant_a, resident_a.voucher, "1999999999", resident_a.born, "", None)
    responses = []
    for resident, password in [
        (unknown, PASSWORD),  # no such voucher
        (neighbour_a, PASSWORD),  # a voucher without a password yet
        (resident_a, "not-the-password-9"),  # a wrong password
        (disabled, PASSWORD),  # web login disabled
    ]:
        before = counting_hasher.verified
        responses.append(login_password(_fresh(), resident, password))
        assert counting_hasher.verified == before + 1
    _assert_identical(
        responses, ["1999999999", neighbour_a.number, resident_a.number, disabled.number]
    )


def test_code_failures_are_identical(
    tenant_a: Municipality, resident_a: Resident, neighbour_a: Resident
) -> None:
    login_code(_fresh(), neighbour_a)  # spends the neighbour's code
    withdrawn = make_resident(
        tenant_a, "1000000007", code="QRST-UVWX", status=Voucher.Status.WITHDRAWN
    )
    _assert_identical(
        [
            _fresh().post("/login/", {"voucher_number": "1999999999", "code": "AB3D-EF7H"}),
            login_code(_fresh(), resident_a, code="ZZZZ-ZZZZ"),
            login_code(_fresh(), neighbour_a),
            login_code(_fresh(), withdrawn),
        ],
        ["1999999999", resident_a.number, neighbour_a.number, withdrawn.number],
    )
    reasons = [e.details["reason"] for e in events(tenant_a, "resident.login_failed")]
    assert reasons == ["unknown_voucher", "wrong_code", "code_used", "voucher_withdrawn"]


def test_account_failures_are_identical_and_cost_one_hash_each(
    tenant_a: Municipality, resident_a: Resident, counting_hasher: type[CountingArgon2Hasher]
) -> None:
    set_mode(tenant_a, Mode.ACCOUNT)
    client = _fresh()
    client.post(
        "/register/", {"voucher_number": resident_a.number, **birth_fields(resident_a.born)}
    )
    client.post(
        "/register/account/",
        {"email": "hanako@example.jp", "password1": PASSWORD, "password2": PASSWORD},
    )
    responses = []
    for email, password in [
        ("nobody@example.jp", PASSWORD),
        ("hanako@example.jp", "not-the-password-9"),
        ("not an address", PASSWORD),
    ]:
        before = counting_hasher.verified
        responses.append(_fresh().post("/login/", {"email": email, "password": password}))
        assert counting_hasher.verified == before + 1
    _assert_identical(responses, ["nobody@example.jp", "hanako@example.jp", "not an address"])


def _median_ratio(first: Callable[[], Any], second: Callable[[], Any], runs: int = 9) -> float:
    """Median time of ``first`` over median time of ``second``, run alternately so that
    whatever else the machine does falls on both alike."""
    timings: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for attempt, bucket in ((first, timings[0]), (second, timings[1])):
            started = time.perf_counter()
            attempt()
            bucket.append(time.perf_counter() - started)
    return statistics.median(timings[0]) / statistics.median(timings[1])


def test_an_unknown_voucher_takes_about_as_long_as_a_wrong_password(
    tenant_a: Municipality, resident_a: Resident
) -> None:
    set_mode(tenant_a, Mode.VOUCHER_DOB_THEN_PASSWORD)
    client = _fresh()
    login_dob(client, resident_a)
    set_password(client)
    # Each attempt from its own address and voucher count, so no limit is reached.
    counter = iter(range(1000))

    def unknown() -> Any:
        n = next(counter)
        return Client(HTTP_HOST="kodaira.localhost", REMOTE_ADDR=f"192.0.2.{n}").post(
            "/login/password/", {"voucher_number": f"19999999{n:02d}", "password": PASSWORD}
        )

    def wrong() -> Any:
        from django.core.cache import cache

        cache.clear()  # the resident's own voucher would lock after five
        n = next(counter)
        return Client(HTTP_HOST="kodaira.localhost", REMOTE_ADDR=f"192.0.2.{n}").post(
            "/login/password/", {"voucher_number": resident_a.number, "password": "wrong-pass-1"}
        )

    ratio = _median_ratio(unknown, wrong)
    print(f"unknown voucher / wrong password: {ratio:.2f}")
    # An argon2id check dominates both; without the dummy hash the ratio would be ~0.2.
    assert 0.5 < ratio < 2.0
