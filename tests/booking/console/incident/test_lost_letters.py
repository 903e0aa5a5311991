"""Letters lost or stolen: the admin names the vouchers (numbers and ranges) and what their
letters open is closed at once — web login where the letter logs in, the unused code where
it is a code — without waiting for each resident to call; opened again once new letters are
sent. Residents whose letter no longer logs in (a password set) are left alone."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import time_machine
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from audit.chain import Actor
from booking.models import Voucher
from booking.resident.services import (
    LoginRefused,
    resident_login_birth_date,
    resident_login_code,
    resident_login_password,
    resident_web_login_set,
)
from booking.services.lost_letters import letters_stopped, voucher_numbers_parse
from tenants.models import Municipality
from tests.booking.booking.conftest import years_ago
from tests.booking.console.callcentre.cast import (
    CALL_CENTRE_HOME,
    Town,
    give_password,
    make_resident,
    resident_session,
    set_login_mode,
    signed_in,
)
from tests.booking.console.conftest import StaffAccount, events
from tests.booking.console.incident.conftest import SECURITY
from tests.booking.console.incident.test_incident_login_modes import (
    IP,
    LETTER_CODE,
    PASSWORD,
    as_resident,
    mail_letter_codes,
)

LETTERS = SECURITY + "letters/"


@pytest.fixture(autouse=True)
def _storage(settings, tmp_path) -> None:  # noqa: ANN001
    settings.MEDIA_ROOT = tmp_path


def letters(client: Client, numbers: str, action: str = "secure") -> Any:
    return client.post(
        LETTERS, {"letters-numbers": numbers, "letters-confirm": "on", "action": action}
    )


def birth_date_login(tenant: Municipality, number: str, years: int) -> str:
    """ "" when the voucher logs in with its birth date, else why not."""
    with as_resident(tenant):
        try:
            resident_login_birth_date(voucher_number=number, birth_date=years_ago(years), ip=IP)
        except LoginRefused as refused:
            return refused.reason
    return ""


def test_voucher_numbers_and_ranges_are_read_once_each_in_any_width() -> None:
    assert voucher_numbers_parse("１３９９９８０００１\n1399980003 - 1399980004、1399980001") == [
        "1399980001",
        "1399980003",
        "1399980004",
    ]
    for text, message in [
        ("", "接種券番号を入力してください。"),
        ("12345", "「12345」は接種券番号（10桁）でも"),
        ("1399980009-1399980001", "始めの番号が終わりの番号より大きく"),
        ("1000000000-1999999999", "一度に扱える接種券は10,000件まで"),
    ]:
        with pytest.raises(Exception, match=message):
            voucher_numbers_parse(text)


def test_stolen_letters_with_birth_dates_stop_web_login_until_new_ones_are_sent(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    set_login_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB)
    resident_session(tenant_a, town.hanako)  # whoever holds the letter may be logged in
    signed_in(client_a, admin_a, clock)
    page = client_a.get(SECURITY).content.decode()
    assert 'id="letters-heading"' in page
    # The example looks like this municipality's numbers, not another's.
    assert f"例：{tenant_a.code}0001、または {tenant_a.code}0001-{tenant_a.code}0050" in page
    assert "1399980001" not in page
    # Its confirmation box is its own (the incident's form has one too).
    assert page.count('id="id_confirm"') == 1 and 'id="id_letters-confirm"' in page
    refused = client_a.post(LETTERS, {"letters-numbers": "12345", "letters-confirm": "on"})
    assert refused.status_code == 400 and "接種券番号（10桁）" in refused.content.decode()

    done = letters(client_a, "2000000001\n2000000009-2000000010")
    page = client_a.get(done["Location"]).content.decode()
    assert (
        "1件の接種券で、ウェブでのログインを止めました（ログイン中のセッション1件を終了）" in page
    )
    assert "2件は、有効な接種券にありません：2000000009、2000000010" in page
    assert birth_date_login(tenant_a, "2000000001", 70) == "web_login_disabled"
    assert birth_date_login(tenant_a, "2000000002", 80) == ""  # not named: untouched
    # The page lists what is stopped for its letters, for opening it again later.
    listed = client_a.get(SECURITY).content.decode().split('id="letters-stopped"')[1]
    assert "止めている接種券：1件" in listed and "<li>2000000001</li>" in listed
    secured = events(tenant_a, "incident.letters_secured")[0]
    assert secured.details["stopped"] == 1 and secured.details["not_found"] == 2
    assert secured.details["voucher_ranges"] == [[town.hanako.pk, town.hanako.pk]]
    assert secured.actor_id == str(admin_a.user_id)
    # Each voucher's own trail says so: what an auditor finds after a resident complains.
    (stopped,) = events(tenant_a, "resident.web_login_disabled")
    assert stopped.target_id == str(town.hanako.pk) and stopped.details == {"stop": "letters"}

    # The call centre is told not to take the letter's details as proof.
    resident = client_a.get(f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/").content.decode()
    assert 'id="letters-stopped"' in resident and "ご本人とは限りません" in resident

    # Stopped by staff for a reason of their own, then named with the letters: kept so.
    with tenant_context(tenant_a):
        resident_web_login_set(voucher=town.namesake, disabled=True, actor=Actor.system("t"))
    again = client_a.get(letters(client_a, "2000000002")["Location"]).content.decode()
    assert "1件は、すでに止めてありました。" in again
    # New letters sent: web login opens again for those stopped for their letter only.
    letters(client_a, "2000000001 2000000002", action="release")
    assert birth_date_login(tenant_a, "2000000001", 70) == ""
    assert birth_date_login(tenant_a, "2000000002", 80) == "web_login_disabled"
    (released,) = events(tenant_a, "incident.letters_released")
    assert released.details["released"] == 1
    assert 'id="letters-stopped"' not in client_a.get(SECURITY).content.decode()
    with schema_context(tenant_a.schema_name):
        assert Voucher.objects.get(pk=town.hanako.pk).web_login_stop == ""
        assert Voucher.objects.get(pk=town.namesake.pk).web_login_stop == "staff"


def test_a_resident_with_a_password_is_left_alone(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    set_login_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB_THEN_PASSWORD)
    give_password(tenant_a, town.hanako)  # her letter's birth date no longer logs in
    signed_in(client_a, admin_a, clock)
    page = client_a.get(letters(client_a, "2000000001\n2000000002")["Location"]).content
    assert "1件は、パスワードの設定・利用登録・認証コードの使用が済んでいて" in page.decode()
    with schema_context(tenant_a.schema_name):
        assert not Voucher.objects.get(pk=town.hanako.pk).web_login_disabled
        assert Voucher.objects.get(pk=town.namesake.pk).web_login_disabled


def test_stolen_letters_with_codes_get_new_codes_and_the_old_ones_no_longer_log_in(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    set_login_mode(tenant_a, Municipality.LoginMode.VOUCHER_CODE)
    mail_letter_codes(tenant_a, town)  # Hanako has used hers (and has a password)
    signed_in(client_a, admin_a, clock)
    done = letters(client_a, "2000000001\n2000000002")
    detail = client_a.get(done["Location"]).content.decode()
    assert "1件の接種券で、未使用の認証コードを新しいものに差し替えました" in detail
    assert 'id="codes-download"' in detail
    download = client_a.post(done["Location"] + "codes/")
    lines = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    codes = dict(lines[1:])
    assert "2000000002" in codes and "2000000001" not in codes
    with as_resident(tenant_a):
        with pytest.raises(LoginRefused):
            resident_login_code(voucher_number="2000000002", code=LETTER_CODE, ip=IP)
        assert resident_login_code(voucher_number="2000000002", code=codes["2000000002"], ip=IP)
        # Hanako's password, which no letter holds, still logs her in.
        resident_login_password(voucher_number="2000000001", password=PASSWORD, ip=IP)
    (secured,) = events(tenant_a, "incident.letters_secured")
    assert secured.details["codes_voided"] == 1 and secured.details["not_exposed"] == 1
    (replaced,) = events(tenant_a, "resident.activation_code_replaced")
    assert replaced.target_id == str(town.namesake.pk)


def test_the_vouchers_stopped_for_their_letters_are_listed_as_runs_of_numbers(
    tenant_a: Municipality, town: Town
) -> None:
    numbers = ("1399980001", "1399980002", "1399980003", "1399980007", "0000000009")
    with tenant_context(tenant_a):
        for number in (*numbers, "1399980004"):
            make_resident(
                tenant_a,
                number,
                name="試験 太郎",
                kana="シケン タロウ",
                phone="",
                born=years_ago(70),
            )
        Voucher.objects.filter(voucher_number__in=numbers).update(
            web_login_disabled=True, web_login_stop="letters"
        )
        Voucher.objects.filter(voucher_number="1399980004").update(
            web_login_disabled=True, web_login_stop="staff"
        )
        stopped = letters_stopped(shown=2)
    assert stopped.count == 5
    assert stopped.runs == [("0000000009", "0000000009"), ("1399980001", "1399980003")]
    assert stopped.more_runs == 1  # 1399980007, past what is shown
