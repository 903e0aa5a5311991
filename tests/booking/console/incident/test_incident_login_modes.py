"""Incident mode in the login modes with residents' own credentials: the one-time-code mode
(and the bulk re-issue of spent codes) and the account mode."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import time_machine
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from booking.models import RegistryImport, ResidentCredential, Voucher
from booking.resident.services import (
    LoginRefused,
    SiteClosed,
    resident_account_create,
    resident_login_account,
    resident_login_code,
    resident_login_password,
    resident_password_set,
    resident_registration_check,
)
from booking.services.registry_import import activation_code_hash
from tenants.crypto import cipher_for
from tenants.models import Municipality
from tests.booking.booking.conftest import years_ago
from tests.booking.console.callcentre.cast import Town, set_login_mode, signed_in, signed_in_as_role
from tests.booking.console.conftest import StaffAccount, events
from tests.booking.console.incident.conftest import SECURITY, signed_in_in_mode, start

PASSWORD = "kodaira-hanako-password-2026"
LETTER_CODE = "ABCD2345"
IP = "192.0.2.1"


@pytest.fixture(autouse=True)
def _storage(settings, tmp_path) -> None:  # noqa: ANN001
    settings.MEDIA_ROOT = tmp_path


def as_resident(tenant: Municipality) -> Any:
    """The municipality as a resident request sees it now (its status may have changed)."""
    return tenant_context(Municipality.objects.get(pk=tenant.pk))


def start_incident(client: Client) -> None:
    response = start(client)
    assert response.status_code == 302


def end_incident(client: Client) -> None:
    assert client.post(SECURITY + "incident/end/", {"confirm": "on"}).status_code == 302


def mail_letter_codes(tenant: Municipality, town: Town) -> None:
    """Hanako and her namesake got letters with codes; only Hanako has used hers."""
    with schema_context(tenant.schema_name):
        cipher = cipher_for(tenant)
        for voucher in (town.hanako, town.namesake):
            Voucher.objects.filter(pk=voucher.pk).update(
                activation_code_hash=activation_code_hash(cipher, LETTER_CODE)
            )
    with as_resident(tenant):
        result = resident_login_code(voucher_number="2000000001", code=LETTER_CODE, ip=IP)
        resident_password_set(voucher=result.voucher, password=PASSWORD, ip=IP)
        resident_login_password(voucher_number="2000000001", password=PASSWORD, ip=IP)


def refusal(call: Any, **kwargs: Any) -> str:
    with pytest.raises(LoginRefused) as refused:
        call(**kwargs)
    return refused.value.reason


def test_in_voucher_code_mode_spent_codes_are_reissued_in_one_file_after_an_incident(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    set_login_mode(tenant_a, Municipality.LoginMode.VOUCHER_CODE)
    mail_letter_codes(tenant_a, town)
    signed_in(client_a, admin_a, clock)
    assert "使用済みの認証コードを再発行する" not in client_a.get(SECURITY).content.decode()
    start_incident(client_a)
    with as_resident(tenant_a), pytest.raises(SiteClosed):
        resident_login_password(voucher_number="2000000001", password=PASSWORD, ip=IP)
    end_incident(client_a)

    # Hanako's password is gone and her letter's code is spent: she cannot get back in.
    with as_resident(tenant_a):
        reason = refusal(
            resident_login_password, voucher_number="2000000001", password=PASSWORD, ip=IP
        )
        assert reason == "no_password"
        assert (
            refusal(resident_login_code, voucher_number="2000000001", code=LETTER_CODE, ip=IP)
            == "code_used"
        )

    page = client_a.get(SECURITY).content.decode()
    assert "使用済みの認証コードを再発行する" in page
    response = client_a.post(SECURITY + "incident/codes/")
    assert response.status_code == 302
    detail = client_a.get(response["Location"]).content.decode()
    assert "認証コードを" in detail and 'id="codes-download"' in detail
    with schema_context(tenant_a.schema_name):
        reissue = RegistryImport.objects.get()
        issued = reissue.counts["codes_issued"]
        assert reissue.counts["codes_replaced"] == 1
    reissued = events(tenant_a, "incident.codes_reissued")[-1]
    assert reissued.actor_id == str(admin_a.user_id)
    assert reissued.details == {"codes_issued": issued, "codes_replaced": 1}

    download = client_a.post(response["Location"] + "codes/")
    assert download.status_code == 200
    lines = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    codes = dict(lines[1:])
    assert lines[0] == ["接種券番号", "認証コード"] and len(codes) == issued
    assert "2000000001" in codes
    assert "2000000002" not in codes  # the namesake's letter code is unused: it still works
    downloaded = events(tenant_a, "registry_import.codes_downloaded")[-1]
    assert downloaded.details["residents"] == issued

    # Nothing left to re-issue: refused, in Japanese, and no empty file is made.
    nothing = client_a.post(SECURITY + "incident/codes/", follow=True).content.decode()
    assert "再発行の対象となる接種券はありません。" in nothing
    with schema_context(tenant_a.schema_name):
        assert RegistryImport.objects.count() == 1

    with as_resident(tenant_a):
        again = resident_login_code(voucher_number="2000000001", code=codes["2000000001"], ip=IP)
        assert again.password_required and again.voucher.pk == town.hanako.pk
        namesake = resident_login_code(voucher_number="2000000002", code=LETTER_CODE, ip=IP)
        assert namesake.voucher.pk == town.namesake.pk


def test_codes_are_reissued_only_in_voucher_code_mode_and_after_an_incident(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in_in_mode(tenant_a, Municipality.LoginMode.VOUCHER_CODE, client_a, admin_a, clock)
    before = client_a.post(SECURITY + "incident/codes/", follow=True).content.decode()
    assert "インシデントモードを開始した後に再発行できます。" in before

    set_login_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB_THEN_PASSWORD)
    start_incident(client_a)
    other_mode = client_a.post(SECURITY + "incident/codes/", follow=True).content.decode()
    assert "ログイン方式が認証コード方式の場合だけです" in other_mode
    assert "使用済みの認証コードを再発行する" not in client_a.get(SECURITY).content.decode()
    assert events(tenant_a, "incident.codes_reissued") == []
    with schema_context(tenant_a.schema_name):
        assert not RegistryImport.objects.exists()


@pytest.mark.parametrize("role_fixture", ["operator_a", "venue_a", "auditor_a"])
def test_only_an_admin_reissues_codes(
    request: pytest.FixtureRequest,
    tenant_a: Municipality,
    client_a: Client,
    town: Town,
    clock: time_machine.Coordinates,
    role_fixture: str,
) -> None:
    set_login_mode(tenant_a, Municipality.LoginMode.VOUCHER_CODE)
    signed_in_as_role(request, role_fixture, client_a, clock)
    assert client_a.post(SECURITY + "incident/codes/").status_code == 403
    assert events(tenant_a, "incident.codes_reissued") == []
    refused = events(tenant_a, "console.access_refused")[-1]
    assert refused.details["path"] == SECURITY + "incident/codes/"


def test_in_account_mode_an_incident_removes_accounts_and_residents_register_again(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    set_login_mode(tenant_a, Municipality.LoginMode.ACCOUNT)
    born = years_ago(70)
    with as_resident(tenant_a):
        voucher = resident_registration_check(voucher_number="2000000001", birth_date=born, ip=IP)
        resident_account_create(
            voucher=voucher, email="hanako@example.jp", password=PASSWORD, ip=IP
        )
        resident_login_account(email="hanako@example.jp", password=PASSWORD, ip=IP)

    signed_in(client_a, admin_a, clock)
    page = client_a.get(SECURITY).content.decode()
    assert "アカウント方式のため、住民のアカウントは削除され" in page
    start_incident(client_a)
    with schema_context(tenant_a.schema_name):
        assert not ResidentCredential.objects.exists()
    assert events(tenant_a, "incident.started")[-1].details["login_mode"] == "account"
    with as_resident(tenant_a), pytest.raises(SiteClosed):
        resident_registration_check(voucher_number="2000000001", birth_date=born, ip=IP)
    end_incident(client_a)

    with as_resident(tenant_a):
        assert (
            refusal(resident_login_account, email="hanako@example.jp", password=PASSWORD, ip=IP)
            == "unknown_account"
        )
        voucher = resident_registration_check(voucher_number="2000000001", birth_date=born, ip=IP)
        new_password = "a-brand-new-password-2026"
        resident_account_create(
            voucher=voucher, email="hanako@example.jp", password=new_password, ip=IP
        )
        result = resident_login_account(email="hanako@example.jp", password=new_password, ip=IP)
        assert result.voucher.pk == town.hanako.pk


@pytest.mark.parametrize(
    ("mode", "while_closed", "once_reopened"),
    [
        ("voucher_dob", None, None),
        (
            "voucher_dob_then_password",
            "再開後は、接種券番号と生年月日でログインし、新しいパスワードを設定してください。",
            "ログインの際は、接種券番号と生年月日でログインし、新しいパスワードを設定してください。",
        ),
        (
            "account",
            "再開後は、接種券番号と生年月日で、アカウントの登録をもう一度お願いします。",
            "ログインするには、接種券番号と生年月日で、アカウントの登録をもう一度お願いします。",
        ),
        ("voucher_code", "新しい認証コードが必要です", "コールセンターにお電話ください"),
    ],
)
def test_the_notices_say_how_to_log_in_again_in_the_municipality_s_login_mode(
    tenant_a: Municipality, mode: str, while_closed: str | None, once_reopened: str | None
) -> None:
    """A one-time-code resident cannot reset a password themself (the code on their letter
    is spent): the notices never tell them to."""
    from booking.services.incident import default_notice, default_reopening_notice

    set_login_mode(tenant_a, mode)
    municipality = Municipality.objects.get(pk=tenant_a.pk)
    closed, reopened = default_notice(municipality), default_reopening_notice(municipality)
    assert "パスワードの再設定をお願いします" not in closed + reopened
    if while_closed is None:
        assert "再開後" not in closed and "ログイン" not in reopened
    else:
        assert while_closed in closed and once_reopened in reopened
