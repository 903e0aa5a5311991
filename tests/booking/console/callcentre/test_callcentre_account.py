"""Password reset, web login on and off, lifting a login lock — after the identity check."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from booking.models import ResidentCredential, ResidentSession, Voucher
from booking.resident import throttle
from booking.services.registry_import import activation_code_hash
from tenants.crypto import cipher_for
from tenants.models import Municipality
from tests.booking.booking.conftest import years_ago
from tests.booking.console.callcentre.cast import (
    CALL_CENTRE_HOME,
    Town,
    confirm_identity,
    give_password,
    resident_session,
    set_login_mode,
    signed_in,
)
from tests.booking.console.conftest import StaffAccount, events

CODE = re.compile(r"\b([2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4})\b")


def resident_url(town: Town) -> str:
    return f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/"


def ready(client: Client, account: StaffAccount, town: Town, clock) -> Client:  # noqa: ANN001
    signed_in(client, account, clock)
    confirm_identity(client, town.hanako)
    return client


def test_a_reset_in_voucher_code_mode_issues_a_new_one_time_code_shown_once(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    set_login_mode(tenant_a, Municipality.LoginMode.VOUCHER_CODE)
    give_password(tenant_a, town.hanako)
    session_key = resident_session(tenant_a, town.hanako)
    ready(client_a, operator_a, town, clock)

    page = client_a.post(resident_url(town) + "password-reset/").content.decode()
    [code] = set(CODE.findall(page))
    with schema_context(tenant_a.schema_name):
        credential = ResidentCredential.objects.get(voucher=town.hanako)
        assert credential.password == "" and credential.password_set_at is None
        voucher = Voucher.objects.get(pk=town.hanako.pk)
        assert voucher.activation_code_used_at is None
        assert bytes(voucher.activation_code_hash) == activation_code_hash(
            cipher_for(tenant_a), code
        )
        assert not Session.objects.filter(session_key=session_key).exists()
        assert not ResidentSession.objects.filter(voucher=town.hanako).exists()
    reset = events(tenant_a, "callcentre.password_reset")[-1]
    assert reset.details == {
        "mode": "voucher_code",
        "had_password": True,
        "code_issued": True,
        "asked_by": "resident",
    }
    assert code.replace("-", "") not in str(reset.details)
    assert events(tenant_a, "resident.sessions_ended")[-1].details["sessions"] == 1


def test_a_reset_in_birth_date_then_password_mode_lets_the_birth_date_log_in_once_more(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    from booking.resident.services import resident_login_birth_date

    set_login_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB_THEN_PASSWORD)
    give_password(tenant_a, town.hanako)
    ready(client_a, operator_a, town, clock)
    page = client_a.post(resident_url(town) + "password-reset/").content.decode()
    assert CODE.findall(page) == []
    assert "生年月日でログインし" in page
    with tenant_context(Municipality.objects.get(pk=tenant_a.pk)):
        result = resident_login_birth_date(
            voucher_number="2000000001", birth_date=years_ago(70), ip="192.0.2.1"
        )
    assert result.password_required and result.voucher.pk == town.hanako.pk


def test_a_reset_in_account_mode_removes_the_account_for_registering_again(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    set_login_mode(tenant_a, Municipality.LoginMode.ACCOUNT)
    give_password(tenant_a, town.hanako)
    ready(client_a, operator_a, town, clock)
    page = client_a.post(resident_url(town) + "password-reset/").content.decode()
    assert "もう一度利用登録" in page
    with schema_context(tenant_a.schema_name):
        assert not ResidentCredential.objects.filter(voucher=town.hanako).exists()


def test_no_reset_where_the_login_mode_has_no_passwords(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    set_login_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB)
    ready(client_a, operator_a, town, clock)
    assert "パスワードを再設定する" not in client_a.get(resident_url(town)).content.decode()
    response = client_a.post(resident_url(town) + "password-reset/")
    assert response.status_code == 302
    assert events(tenant_a, "callcentre.password_reset") == []


def test_disabling_web_login_ends_the_residents_sessions_and_enabling_restores_it(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    session_key = resident_session(tenant_a, town.hanako)
    assert (
        "ウェブでのログインを停止する"
        not in signed_in(client_a, operator_a, clock).get(resident_url(town)).content.decode()
    )  # before the identity check: nothing to press
    confirm_identity(client_a, town.hanako)
    page = client_a.get(resident_url(town)).content.decode()
    assert "ウェブでのログインを停止する" in page and 'name="confirm"' in page
    unconfirmed = client_a.post(resident_url(town) + "web-login/", {"disabled": "1"}, follow=True)
    assert "確認のチェックを入れてください" in unconfirmed.content.decode()
    with schema_context(tenant_a.schema_name):
        assert not Voucher.objects.get(pk=town.hanako.pk).web_login_disabled
    stop = {"disabled": "1", "confirm": "1"}
    assert client_a.post(resident_url(town) + "web-login/", stop).status_code == 302
    with schema_context(tenant_a.schema_name):
        assert Voucher.objects.get(pk=town.hanako.pk).web_login_disabled
        assert not Session.objects.filter(session_key=session_key).exists()
    disabled = events(tenant_a, "resident.web_login_disabled")[-1]
    assert disabled.actor_id == str(operator_a.user_id)
    assert "停止中" in client_a.get(resident_url(town)).content.decode()

    client_a.post(resident_url(town) + "web-login/", {"disabled": "0"})
    with schema_context(tenant_a.schema_name):
        assert not Voucher.objects.get(pk=town.hanako.pk).web_login_disabled
    assert events(tenant_a, "resident.web_login_enabled")


def test_lifting_the_lock_lets_the_resident_try_again(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    subject = throttle.subject_for_voucher("2000000001")
    with schema_context(tenant_a.schema_name):
        for _attempt in range(throttle.SUBJECT_LIMIT):
            throttle.attempt_begin(subject=subject, ip=None)
        with pytest.raises(throttle.Throttled):
            throttle.attempt_begin(subject=subject, ip=None)
    ready(client_a, operator_a, town, clock)
    # The operator sees the lock (it read 利用できます while the resident was refused).
    page = client_a.get(resident_url(town)).content.decode()
    assert 'id="login-locked"' in page and "一時的にログインできません" in page
    assert client_a.post(resident_url(town) + "lock-lift/").status_code == 302
    assert 'id="login-locked"' not in client_a.get(resident_url(town)).content.decode()
    with schema_context(tenant_a.schema_name):
        throttle.attempt_begin(subject=subject, ip=None)  # no longer locked
    lifted = events(tenant_a, "callcentre.login_lock_lifted")[-1]
    assert lifted.target_id == str(town.hanako.pk)


def test_a_withdrawn_voucher_is_said_not_to_log_in(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """A resident who moved away (withdrawn by a full list) cannot log in: the operator is
    told so, not 「利用できます」 beside 「対象外」."""
    signed_in(client_a, operator_a, clock)
    before = client_a.get(resident_url(town)).content.decode()
    assert 'id="web-login-withdrawn"' not in before and "利用できます" in before
    with schema_context(tenant_a.schema_name):
        Voucher.objects.filter(pk=town.hanako.pk).update(status=Voucher.Status.WITHDRAWN)
    page = client_a.get(resident_url(town)).content.decode()
    login = page.split("ウェブでのログイン")[1].split("</dd>")[0]
    assert 'id="web-login-withdrawn"' in login and "利用できます" not in login


def test_venue_staff_cannot_reset_or_disable(
    tenant_a: Municipality,
    client_a: Client,
    venue_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    give_password(tenant_a, town.hanako)
    signed_in(client_a, venue_a, clock)
    for path, data in (("password-reset/", {}), ("web-login/", {"disabled": "1", "confirm": "1"})):
        assert client_a.post(resident_url(town) + path, data).status_code == 403
    with schema_context(tenant_a.schema_name):
        assert ResidentCredential.objects.get(voucher=town.hanako).password != ""
        assert not Voucher.objects.get(pk=town.hanako.pk).web_login_disabled
