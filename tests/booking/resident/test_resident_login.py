"""Resident login in each of the four modes, and the rules every mode shares."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from django.test import Client
from django_tenants.utils import tenant_context
from prometheus_client import REGISTRY

from booking.models import ResidentCredential, Voucher
from tenants.models import Municipality
from tests.booking.resident.conftest import (
    PASSWORD,
    Resident,
    birth_fields,
    events,
    login_code,
    login_dob,
    login_password,
    make_resident,
    set_mode,
    set_password,
    set_status,
)

Mode = Municipality.LoginMode


# --- voucher_dob ----------------------------------------------------------------------------


def test_voucher_and_birth_date_log_in(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    response = login_dob(client_a, resident_a)
    assert response.status_code == 302 and response["Location"] == "/mypage/"
    page = client_a.get("/mypage/")
    assert page.status_code == 200
    assert resident_a.number in page.content.decode()
    (event,) = events(dob_mode, "resident.login_succeeded")
    assert event.target_id == str(resident_a.pk)
    assert event.actor_kind == "resident" and event.details == {"method": "birth_date"}


def test_a_wrong_birth_date_does_not_log_in(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    labels = {"kind": "resident", "tenant": dob_mode.code}
    failures = REGISTRY.get_sample_value("sesshu_login_failures_total", labels) or 0.0
    response = login_dob(client_a, resident_a, **birth_fields(date(1950, 4, 2)))
    assert response.status_code == 400
    assert REGISTRY.get_sample_value("sesshu_login_failures_total", labels) == failures + 1
    text = response.content.decode()
    assert "接種券番号または生年月日が正しくありません" in text
    # The message is announced, and the first field (focused again) is described by it.
    assert 'role="alert" id="login-error"' in text
    assert 'aria-describedby="login-error id_voucher_number_helptext"' in text
    # The voucher number typed stays in its box (only the birth date is chosen again).
    assert "autofocus" in text and f'value="{resident_a.number}"' in text
    assert client_a.get("/mypage/").status_code == 302
    (event,) = events(dob_mode, "resident.login_failed")
    assert event.details["reason"] == "wrong_birth_date"
    assert event.target_id == str(resident_a.pk)


def test_full_width_voucher_digits_are_accepted(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    full_width = resident_a.number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert login_dob(client_a, resident_a, voucher_number=full_width).status_code == 302


@pytest.mark.parametrize("gap", [" ", "\u3000", "-", "－", "ー"])
def test_a_voucher_number_typed_in_groups_is_accepted(
    client_a: Client, dob_mode: Municipality, resident_a: Resident, gap: str
) -> None:
    number = resident_a.number
    grouped = gap.join((number[:4], number[4:7], number[7:]))
    assert login_dob(client_a, resident_a, voucher_number=grouped).status_code == 302


@pytest.mark.parametrize(
    "variant",
    [
        {"status": Voucher.Status.WITHDRAWN},
        {"web_login_disabled": True},
    ],
    ids=["withdrawn", "web-login-disabled"],
)
def test_a_voucher_that_may_not_log_in_is_refused_like_a_wrong_one(
    client_a: Client, dob_mode: Municipality, variant: dict[str, object]
) -> None:
    resident = make_resident(dob_mode, "1000000009", **variant)  # type: ignore[arg-type]
    response = login_dob(client_a, resident)
    assert response.status_code == 400
    assert "接種券番号または生年月日が正しくありません" in response.content.decode()
    (event,) = events(dob_mode, "resident.login_failed")
    expected = "voucher_withdrawn" if "status" in variant else "web_login_disabled"
    assert event.details["reason"] == expected


def test_a_made_up_voucher_never_logs_in(client_a: Client, dob_mode: Municipality) -> None:
    # The 2021 mass-vaccination centre booked voucher 0000000000: only the registry counts.
    response = client_a.post(
        "/login/", {"voucher_number": "0000000000", **birth_fields(date(1950, 4, 1))}
    )
    assert response.status_code == 400
    (event,) = events(dob_mode, "resident.login_failed")
    assert event.details["reason"] == "unknown_voucher" and event.target_id == ""


def test_a_malformed_voucher_number_is_a_field_error_and_audited(
    client_a: Client, dob_mode: Municipality
) -> None:
    response = client_a.post(
        "/login/", {"voucher_number": "12345", **birth_fields(date(1950, 4, 1))}
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert 'id="id_voucher_number_error"' in text and 'aria-invalid="true"' in text
    (event,) = events(dob_mode, "resident.login_failed")
    assert event.details == {
        "reason": "malformed",
        "method": "birth_date",
        "fields": ["voucher_number"],
    }


def test_an_impossible_birth_date_is_a_field_error(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    response = login_dob(
        client_a, resident_a, birth_date_year="1950", birth_date_month="2", birth_date_day="30"
    )
    assert response.status_code == 400
    assert "存在しない日付" in response.content.decode()


# --- voucher_dob_then_password ------------------------------------------------------------


@pytest.fixture
def then_password(tenant_a: Municipality) -> Municipality:
    set_mode(tenant_a, Mode.VOUCHER_DOB_THEN_PASSWORD)
    return tenant_a


def test_the_first_login_must_set_a_password_before_anything_else(
    client_a: Client, then_password: Municipality, resident_a: Resident
) -> None:
    response = login_dob(client_a, resident_a)
    assert response.status_code == 302 and response["Location"] == "/password/"
    # Nothing else opens until the password is set.
    assert client_a.get("/mypage/")["Location"] == "/password/"
    assert client_a.get("/book/")["Location"] == "/password/"
    assert client_a.get("/password/").status_code == 200
    response = set_password(client_a)
    assert response.status_code == 302 and response["Location"] == "/mypage/"
    assert client_a.get("/mypage/").status_code == 200
    with tenant_context(then_password):
        credential = ResidentCredential.objects.get(voucher_id=resident_a.pk)
        assert credential.password.startswith("argon2$argon2id$")
        assert "m=19456,t=2,p=1" in credential.password
    assert events(then_password, "resident.password_set")


def test_once_a_password_is_set_the_birth_date_no_longer_logs_in(
    client_a: Client, then_password: Municipality, resident_a: Resident
) -> None:
    login_dob(client_a, resident_a)
    set_password(client_a)
    client_a.post("/logout/")
    response = login_dob(client_a, resident_a)
    assert response.status_code == 400
    assert events(then_password, "resident.login_failed")[-1].details["reason"] == "password_set"
    response = login_password(client_a, resident_a)
    assert response.status_code == 302 and response["Location"] == "/mypage/"


def test_a_weak_password_is_refused_with_reasons_tied_to_the_field(
    client_a: Client, then_password: Municipality, resident_a: Resident
) -> None:
    login_dob(client_a, resident_a)
    for weak in ("1234567890123", "password123", resident_a.number + "x"):
        response = set_password(client_a, weak)
        assert response.status_code == 400
        assert 'id="id_password1_error"' in response.content.decode()
    mismatch = client_a.post("/password/", {"password1": PASSWORD, "password2": PASSWORD + "x"})
    assert mismatch.status_code == 400 and "一致しません" in mismatch.content.decode()


def test_a_wrong_password_does_not_log_in(
    client_a: Client, then_password: Municipality, resident_a: Resident
) -> None:
    login_dob(client_a, resident_a)
    set_password(client_a)
    client_a.post("/logout/")
    response = login_password(client_a, resident_a, "not-the-password-1")
    assert response.status_code == 400
    assert "接種券番号またはパスワードが正しくありません" in response.content.decode()
    assert events(then_password, "resident.login_failed")[-1].details["reason"] == "wrong_password"


def test_a_password_login_before_any_password_exists_fails(
    client_a: Client, then_password: Municipality, resident_a: Resident
) -> None:
    response = login_password(client_a, resident_a, "anything-at-all-1")
    assert response.status_code == 400
    assert events(then_password, "resident.login_failed")[-1].details["reason"] == "no_password"


def test_a_second_session_of_the_first_login_cannot_overwrite_the_password(
    tenant_a: Municipality, then_password: Municipality, resident_a: Resident
) -> None:
    first, second = (Client(HTTP_HOST="kodaira.localhost") for _ in range(2))
    login_dob(first, resident_a)
    login_dob(second, resident_a)
    assert set_password(first).status_code == 302
    response = set_password(second, "another-password-77")
    assert response.status_code == 302 and response["Location"] == "/login/password/"
    assert login_password(Client(HTTP_HOST="kodaira.localhost"), resident_a).status_code == 302


# --- voucher_code ---------------------------------------------------------------------------


def test_the_code_logs_in_once_then_a_password_is_required(
    client_a: Client, tenant_a: Municipality, resident_a: Resident
) -> None:
    assert tenant_a.login_mode == Mode.VOUCHER_CODE  # the cast's default
    response = login_code(client_a, resident_a, code="ab3d-ef7h")  # as printed, any case
    assert response.status_code == 302 and response["Location"] == "/password/"
    assert set_password(client_a).status_code == 302
    with tenant_context(tenant_a):
        assert Voucher.objects.get(pk=resident_a.pk).activation_code_used_at is not None
    client_a.post("/logout/")
    # Single use: the same code never logs in again; the password does, as the page says
    # (to everyone alike: a wrong code reads the same).
    response = login_code(client_a, resident_a)
    assert response.status_code == 400
    assert "パスワードを設定した方は「パスワードでログイン」から" in response.content.decode()
    assert events(tenant_a, "resident.login_failed")[-1].details["reason"] == "code_used"
    assert login_password(client_a, resident_a).status_code == 302


def test_a_code_spent_by_one_session_does_not_log_in_another(
    tenant_a: Municipality, resident_a: Resident
) -> None:
    first, second = (Client(HTTP_HOST="kodaira.localhost") for _ in range(2))
    assert login_code(first, resident_a).status_code == 302
    assert login_code(second, resident_a).status_code == 400


def test_a_wrong_code_does_not_log_in(
    client_a: Client, tenant_a: Municipality, resident_a: Resident
) -> None:
    response = login_code(client_a, resident_a, code="ZZZZ-ZZZZ")
    assert response.status_code == 400
    assert "接種券番号または認証コードが正しくありません" in response.content.decode()
    assert events(tenant_a, "resident.login_failed")[-1].details["reason"] == "wrong_code"
    with tenant_context(tenant_a):
        assert Voucher.objects.get(pk=resident_a.pk).activation_code_used_at is None


def test_the_birth_date_does_not_log_in_in_the_code_mode(
    client_a: Client, tenant_a: Municipality, resident_a: Resident
) -> None:
    # The code mode's form has no birth date; posting one is a malformed code login.
    response = login_dob(client_a, resident_a)
    assert response.status_code == 400
    assert client_a.get("/mypage/").status_code == 302


# --- account --------------------------------------------------------------------------------


@pytest.fixture
def account_mode(tenant_a: Municipality) -> Municipality:
    set_mode(tenant_a, Mode.ACCOUNT)
    return tenant_a


def register(client: Client, resident: Resident, email: str = "hanako@example.jp") -> None:
    step_one = client.post(
        "/register/", {"voucher_number": resident.number, **birth_fields(resident.born)}
    )
    assert step_one.status_code == 302 and step_one["Location"] == "/register/account/"
    step_two = client.post(
        "/register/account/", {"email": email, "password1": PASSWORD, "password2": PASSWORD}
    )
    assert step_two.status_code == 302 and step_two["Location"] == "/mypage/"


def test_an_account_is_registered_with_a_voucher_and_birth_date_and_logs_in(
    client_a: Client, account_mode: Municipality, resident_a: Resident
) -> None:
    register(client_a, resident_a, email="Hanako@Example.jp")
    assert client_a.get("/mypage/").status_code == 200
    client_a.post("/logout/")
    # Full-width and upper-case input find the same account.
    response = client_a.post(
        "/login/", {"email": "ｈａｎａｋｏ＠ｅｘａｍｐｌｅ．ｊｐ", "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/mypage/"
    with tenant_context(account_mode):
        credential = ResidentCredential.objects.get(voucher_id=resident_a.pk)
        # The address is stored sealed, never in clear.
        assert b"hanako" not in bytes(credential.email).lower()
    assert events(account_mode, "resident.registered")


def test_registration_needs_an_existing_active_voucher_and_its_birth_date(
    client_a: Client, account_mode: Municipality, resident_a: Resident
) -> None:
    withdrawn = make_resident(account_mode, "1000000008", status=Voucher.Status.WITHDRAWN)
    for number, born in [
        ("1234567890", resident_a.born),
        (resident_a.number, date(1951, 4, 1)),
        (withdrawn.number, withdrawn.born),
    ]:
        response = client_a.post("/register/", {"voucher_number": number, **birth_fields(born)})
        assert response.status_code == 400
        assert "接種券番号または生年月日が正しくありません" in response.content.decode()
    reasons = [e.details["reason"] for e in events(account_mode, "resident.registration_failed")]
    assert reasons == ["unknown_voucher", "wrong_birth_date", "voucher_withdrawn"]
    # Step two is not reachable without step one.
    assert client_a.get("/register/account/")["Location"] == "/register/"


def test_a_voucher_registers_one_account_only(
    client_a: Client, account_mode: Municipality, resident_a: Resident
) -> None:
    register(client_a, resident_a)
    client_a.post("/logout/")
    response = client_a.post(
        "/register/", {"voucher_number": resident_a.number, **birth_fields(resident_a.born)}
    )
    assert response.status_code == 409
    assert "すでに登録されています" in response.content.decode()


def test_an_address_in_use_cannot_register_again(
    account_mode: Municipality, resident_a: Resident, neighbour_a: Resident
) -> None:
    register(Client(HTTP_HOST="kodaira.localhost"), resident_a)
    other = Client(HTTP_HOST="kodaira.localhost")
    other.post(
        "/register/", {"voucher_number": neighbour_a.number, **birth_fields(neighbour_a.born)}
    )
    response = other.post(
        "/register/account/",
        {"email": "hanako@example.jp", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 400
    assert 'id="id_email_error"' in response.content.decode()


def test_a_wrong_account_password_and_an_unknown_address_fail_alike(
    client_a: Client, account_mode: Municipality, resident_a: Resident
) -> None:
    register(Client(HTTP_HOST="kodaira.localhost"), resident_a)
    wrong = client_a.post("/login/", {"email": "hanako@example.jp", "password": "wrong-one-123"})
    unknown = client_a.post("/login/", {"email": "nobody@example.jp", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 400
    for response in (wrong, unknown):
        assert "メールアドレスまたはパスワードが正しくありません" in response.content.decode()
    reasons = [e.details["reason"] for e in events(account_mode, "resident.login_failed")]
    assert reasons == ["wrong_password", "unknown_account"]


def test_other_modes_pages_do_not_exist_in_a_mode(client_a: Client, dob_mode: Municipality) -> None:
    assert client_a.get("/register/").status_code == 404
    assert client_a.get("/login/password/").status_code == 404


# --- Every mode -----------------------------------------------------------------------------


def test_no_attempt_records_what_was_typed(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    login_dob(client_a, resident_a, **birth_fields(date(1950, 4, 2)))
    login_dob(client_a, resident_a)
    with tenant_context(dob_mode):
        from audit.models import Event

        stored = " ".join(
            str(values) for values in Event.objects.values_list("details", "target_id", "ip")
        )
    assert resident_a.number not in stored
    assert "1950" not in stored and "コダイラ" not in stored


@pytest.mark.parametrize("mode", [m.value for m in Mode])
def test_incident_mode_shows_a_notice_and_takes_no_login_or_registration(
    client_a: Client,
    tenant_a: Municipality,
    resident_a: Resident,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_mode(tenant_a, mode)
    set_status(tenant_a, Municipality.Status.INCIDENT)
    caplog.set_level(logging.INFO)
    top = client_a.get("/")
    text = top.content.decode()
    assert top.status_code == 200
    assert 'id="incident-notice"' in text and "停止しています" in text
    assert '<form method="post" action="/login/"' not in text and "/register/" not in text
    assert client_a.get("/login/").status_code == 503
    response = login_dob(client_a, resident_a)
    assert response.status_code in (400, 503)
    assert client_a.get("/mypage/").status_code == 302
    if mode == Mode.ACCOUNT:
        assert client_a.get("/register/").status_code == 503
    # Logins stopped on purpose are no error in the log (nor a Sentry event per attempt).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_incident_mode_shows_the_municipalitys_own_notice(
    client_a: Client, tenant_a: Municipality
) -> None:
    from django.utils import timezone

    from booking.models import Incident

    with tenant_context(tenant_a):
        Incident.objects.create(
            notice="不正アクセスの疑いがあるため停止しています。\n詳しくは市のホームページへ。",
            started_at=timezone.now(),
        )
    set_status(tenant_a, Municipality.Status.INCIDENT)
    text = client_a.get("/").content.decode()
    assert "不正アクセスの疑いがあるため停止しています。<br>詳しくは市のホームページへ。" in text
    assert "システムの点検のため" not in text


def test_incident_mode_ends_sessions_that_were_open(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    from django.utils import timezone

    from booking.models import AgePhase

    with tenant_context(dob_mode):
        AgePhase.objects.create(name="一般", minimum_age=12, opens_at=timezone.now())
    login_dob(client_a, resident_a)
    assert "から受付中" in client_a.get("/").content.decode()
    set_status(dob_mode, Municipality.Status.INCIDENT)
    response = client_a.get("/mypage/")
    assert response.status_code == 302 and response["Location"] == "/"
    # The top page says the site takes no logins now (it has no login form), and that the
    # age groups may book by phone, not that booking is open here.
    top = client_a.get("/").content.decode()
    assert "受付を停止しています。コールセンターにお問い合わせください" in top
    assert "もう一度ログインしてください" not in top and "このページを見るには" not in top
    assert "いまはお電話でのみ受け付けています" in top and "から受付中" not in top
    set_status(dob_mode, Municipality.Status.ACTIVE)
    assert client_a.get("/mypage/").status_code == 302  # the session was ended, not paused


def test_a_press_after_the_session_ran_out_says_nothing_was_done(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    login_dob(client_a, resident_a)
    client_a.cookies.clear()  # the session gone, as after a timeout
    response = client_a.post("/bookings/ABCDE12345/cancel/", follow=True)
    text = response.content.decode()
    # A button was pressed, not a page asked for: said so.
    assert "ログインしていません（別の画面でログアウトしたときなど）" in text
    assert "このページを見るには" not in text
    assert "いまの操作（予約・変更・取消など）は行われていません" in text
    assert "行われていません" not in client_a.get("/mypage/", follow=True).content.decode()


def test_a_voucher_of_another_municipality_does_not_log_in_here(
    client_a: Client, dob_mode: Municipality, resident_b: Resident
) -> None:
    # B's resident has the same voucher number as nobody in A; their birth date is B's.
    response = login_dob(client_a, resident_b)
    assert response.status_code == 400


def test_each_municipality_s_login_pages_show_only_its_own_name(
    client_a: Client, client_b: Client, tenant_a: Municipality, tenant_b: Municipality
) -> None:
    """The empty login form is made once per process and shared by every municipality
    (views/entry.py): what one municipality's page shows never reaches another's."""
    set_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB)
    set_mode(tenant_b, Municipality.LoginMode.VOUCHER_DOB)
    for path in ("/login/", "/"):
        seen_in_b = client_b.get(path).content.decode()
        seen_in_a = client_a.get(path).content.decode()
        assert tenant_b.name in seen_in_b and tenant_a.name not in seen_in_b
        assert tenant_a.name in seen_in_a and tenant_b.name not in seen_in_a


def test_a_form_sent_with_boxes_wrong_is_announced_and_focused_on_the_first(
    client_a: Client, dob_mode: Municipality
) -> None:
    empty = client_a.post("/login/", {"voucher_number": "", "birth_date_year": "1948"})
    text = empty.content.decode()
    assert empty.status_code == 400
    summary = text.split('id="login-error"')[1].split("</p>")[0]
    assert "入力していない項目や、形の正しくない項目があります" in summary
    assert '<p class="error" role="alert" id="login-error">' in text
    voucher_box = text.split('name="voucher_number"')[1].split(">")[0]
    assert "autofocus" in voucher_box and 'aria-invalid="true"' in voucher_box
    # Only the birth date wrong: focus goes there, not to the voucher number.
    short = client_a.post("/login/", {"voucher_number": "1234567890", "birth_date_year": ""})
    text = short.content.decode()
    assert "autofocus" not in text.split('name="voucher_number"')[1].split(">")[0]
    assert "autofocus" in text.split('name="birth_date_year"')[1].split(">")[0]


def test_a_refused_login_says_where_to_go_when_the_details_are_right(
    client_a: Client, dob_mode: Municipality, resident_a: Resident
) -> None:
    refused = login_dob(client_a, resident_a, **birth_fields(date(1950, 1, 2)))
    assert refused.status_code == 400
    assert "接種券が使えなくなっている場合があります。コールセンターにお電話ください" in (
        refused.content.decode()
    )
