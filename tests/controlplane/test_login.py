"""Vendor operators log in with username, password and TOTP; every failure looks the same."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client
from django.test.client import Client as ClientType
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.platform.models import PlatformEvent
from controlplane import throttle
from controlplane.services import CreatedOperator
from sesshu.devices import CONTROL_PLANE
from sesshu.outages import ProcessCounters
from tests.controlplane.conftest import (
    OPERATOR_PASSWORD,
    OPERATOR_USERNAME,
    PLATFORM_HOST,
    error_summary,
    login,
    token_for,
    wrong_token_for,
)
from tests.redis_outage import closed_port, redis_at


def _events(action: str) -> list[PlatformEvent]:
    return list(PlatformEvent.objects.filter(action=action).order_by("seq"))


def test_an_operator_logs_in_with_password_and_totp(
    platform_client: ClientType, operator: CreatedOperator
) -> None:
    platform_client.get("/login/")
    before = platform_client.cookies.get(settings.SESSION_COOKIE_NAME)
    response = login(
        platform_client,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    page = platform_client.get("/")
    assert page.status_code == 200
    assert page.wsgi_request.user.pk == operator.user.pk
    assert page.wsgi_request.user.is_verified()
    session_key = platform_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert before is None or before.value != session_key  # a new session id at login
    assert Session.objects.filter(session_key=session_key).exists()
    (event,) = _events("controlplane.login_succeeded")
    assert (event.actor_kind, event.actor_id, event.ip) == (
        "vendor",
        str(operator.user.pk),
        "127.0.0.1",
    )


def test_the_session_id_changes_at_login(
    platform_client: ClientType, operator: CreatedOperator
) -> None:
    # An anonymous session exists before login (a failed attempt leaves a message in it).
    platform_client.get("/login/")
    platform_client.cookies[settings.SESSION_COOKIE_NAME] = "attacker-planted-session-id-0001"
    login(
        platform_client,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
    )
    assert (
        platform_client.cookies[settings.SESSION_COOKIE_NAME].value
        != "attacker-planted-session-id-0001"
    )


def test_a_wrong_totp_is_refused_with_the_same_message_as_a_wrong_password(
    operator: CreatedOperator,
) -> None:
    wrong_password = login(
        Client(HTTP_HOST=PLATFORM_HOST),
        username=OPERATOR_USERNAME,
        password="not the password",
        token=token_for(operator.device),
    )
    wrong_token = login(
        Client(HTTP_HOST=PLATFORM_HOST),
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=wrong_token_for(operator.device),
    )
    for response in (wrong_password, wrong_token):
        assert response.status_code == 200
        assert not response.wsgi_request.user.is_authenticated
    assert error_summary(wrong_password) == error_summary(wrong_token)
    assert "ログインできませんでした" in error_summary(wrong_token)
    reasons = [e.details["reason"] for e in _events("controlplane.login_failed")]
    assert reasons == ["credentials", "otp"]


def _user_with_device(username: str, *, is_staff: bool, confirmed: bool = True) -> User:
    user = User.objects.create_user(username, password=OPERATOR_PASSWORD, is_staff=is_staff)
    TOTPDevice.objects.create(user=user, name="default", confirmed=confirmed)
    return user


def test_every_kind_of_failure_shows_the_same_message(operator: CreatedOperator) -> None:
    not_staff = _user_with_device("municipal-looking-user", is_staff=False)
    unconfirmed = _user_with_device("half-enrolled-operator", is_staff=True, confirmed=False)
    no_device = User.objects.create_user(
        "operator-without-device", password=OPERATOR_PASSWORD, is_staff=True
    )
    inactive = _user_with_device("departed-operator", is_staff=True)
    inactive.is_active = False
    inactive.save()

    attempts = {
        "unknown user": ("nobody-by-this-name", OPERATOR_PASSWORD, token_for(operator.device)),
        "wrong password": (OPERATOR_USERNAME, "wrong-password-123", token_for(operator.device)),
        "wrong token": (OPERATOR_USERNAME, OPERATOR_PASSWORD, wrong_token_for(operator.device)),
        "not staff": (not_staff.username, OPERATOR_PASSWORD, "123456"),
        "unconfirmed device": (unconfirmed.username, OPERATOR_PASSWORD, "123456"),
        "no device": (no_device.username, OPERATOR_PASSWORD, "123456"),
        "inactive": (inactive.username, OPERATOR_PASSWORD, "123456"),
    }
    messages = {}
    for kind, (username, password, token) in attempts.items():
        client = Client(HTTP_HOST=PLATFORM_HOST)
        response = login(client, username=username, password=password, token=token)
        assert response.status_code == 200, kind
        assert not response.wsgi_request.user.is_authenticated, kind
        assert client.get("/").status_code == 302, kind
        messages[kind] = error_summary(response)
    assert len(set(messages.values())) == 1, messages
    assert not _events("controlplane.login_succeeded")
    assert len(_events("controlplane.login_failed")) == len(attempts)


def test_a_user_without_a_confirmed_device_cannot_log_in_even_with_a_valid_token(
    platform_client: ClientType,
) -> None:
    user = _user_with_device("not-yet-confirmed", is_staff=True, confirmed=False)
    device = TOTPDevice.objects.get(user=user)
    response = login(
        platform_client, username=user.username, password=OPERATOR_PASSWORD, token=token_for(device)
    )
    assert response.status_code == 200
    assert platform_client.get("/").status_code == 302
    (event,) = _events("controlplane.login_failed")
    assert event.details == {"reason": "no_device"}
    assert event.target_id == str(user.pk)


def test_failures_are_throttled_per_username(
    operator: CreatedOperator, settings: pytest.FixtureRequest
) -> None:
    settings.SESSHU_CONTROLPLANE_LOGIN_FAILURES_PER_USERNAME = 3  # type: ignore[attr-defined]
    for attempt in range(3):
        response = login(
            Client(HTTP_HOST=PLATFORM_HOST),
            username=OPERATOR_USERNAME,
            password=f"guess-{attempt}",
            token="000000",
            ip=f"10.0.0.{attempt + 1}",  # a different address each time: still counted
        )
        assert response.status_code == 200
    message = error_summary(response)

    client = Client(HTTP_HOST=PLATFORM_HOST)
    refused = login(
        client,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
        ip="10.0.0.99",
    )
    assert refused.status_code == 200
    assert error_summary(refused) == message  # throttled looks like any other failure
    assert client.get("/").status_code == 302
    assert _events("controlplane.login_failed")[-1].details == {"reason": "throttled"}
    # The username is counted case-insensitively, so "Vendor-Operator" does not get around it.
    again = login(
        Client(HTTP_HOST=PLATFORM_HOST),
        username=OPERATOR_USERNAME.upper(),
        password="guess",
        token="000000",
        ip="10.0.0.100",
    )
    assert error_summary(again) == message
    assert _events("controlplane.login_failed")[-1].details == {"reason": "throttled"}


def test_failures_are_throttled_per_address(
    operator: CreatedOperator, settings: pytest.FixtureRequest
) -> None:
    settings.SESSHU_CONTROLPLANE_LOGIN_FAILURES_PER_IP = 4  # type: ignore[attr-defined]
    for attempt in range(4):
        login(
            Client(HTTP_HOST=PLATFORM_HOST),
            username=f"sprayed-name-{attempt}",
            password="Password1!",
            token="000000",
            ip="203.0.113.7",
        )
    client = Client(HTTP_HOST=PLATFORM_HOST)
    refused = login(
        client,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
        ip="203.0.113.7",
    )
    assert "ログインできませんでした" in error_summary(refused)
    assert client.get("/", REMOTE_ADDR="203.0.113.7").status_code == 302
    # The operator is not locked out from another address.
    other = Client(HTTP_HOST=PLATFORM_HOST)
    response = login(
        other,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
        ip="198.51.100.20",
    )
    assert response.status_code == 302
    assert other.get("/", REMOTE_ADDR="198.51.100.20").status_code == 200


def test_the_trail_never_holds_what_was_typed(operator: CreatedOperator) -> None:
    typed_username = "someone-typed-this-name"
    typed_password = "someone-typed-this-password"
    login(
        Client(HTTP_HOST=PLATFORM_HOST),
        username=typed_username,
        password=typed_password,
        token="424242",
    )
    login(
        Client(HTTP_HOST=PLATFORM_HOST),
        username=OPERATOR_USERNAME,
        password=typed_password,
        token="424242",
    )
    dump = json.dumps(list(PlatformEvent.objects.values()), default=str, ensure_ascii=False)
    for typed in (typed_username, typed_password, OPERATOR_USERNAME, OPERATOR_PASSWORD, "424242"):
        assert typed not in dump
    first, second = _events("controlplane.login_failed")
    assert first.target_id == ""  # no such account
    assert second.target_id == str(operator.user.pk)  # which account was tried, by id only
    assert first.actor_kind == second.actor_kind == "anonymous"


def test_an_empty_form_is_a_failed_attempt_too(platform_client: ClientType) -> None:
    response = platform_client.post("/login/", {"username": "", "password": "", "token": ""})
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()
    assert _events("controlplane.login_failed")[-1].details == {"reason": "incomplete"}


def test_logout_is_a_post_and_ends_the_session(operator_client: ClientType) -> None:
    session_key = operator_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert operator_client.get("/logout/").status_code == 405
    assert operator_client.get("/").status_code == 200
    response = operator_client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert not Session.objects.filter(session_key=session_key).exists()
    assert operator_client.get("/").status_code == 302
    assert _events("controlplane.logged_out")


def test_every_form_needs_its_csrf_token(operator: CreatedOperator) -> None:
    client = Client(HTTP_HOST=PLATFORM_HOST, enforce_csrf_checks=True)
    response = client.post(
        "/login/",
        {
            "username": OPERATOR_USERNAME,
            "password": OPERATOR_PASSWORD,
            "token": token_for(operator.device),
        },
    )
    assert response.status_code == 403
    page = client.get("/login/").content.decode()
    assert 'name="csrfmiddlewaretoken"' in page


@pytest.mark.parametrize(
    ("asked", "landing"),
    [
        ("/municipalities/132110/", "/municipalities/132110/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("controlplane:logout", "/"),
    ],
)
def test_login_returns_only_to_a_page_of_this_site(
    platform_client: ClientType, operator: CreatedOperator, asked: str, landing: str
) -> None:
    platform_client.get("/login/", {"next": asked})
    response = platform_client.post(
        "/login/",
        {
            "username": OPERATOR_USERNAME,
            "password": OPERATOR_PASSWORD,
            "token": token_for(operator.device),
            "next": asked,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == landing


def test_the_page_asked_for_survives_a_failed_attempt(
    platform_client: ClientType, operator: CreatedOperator
) -> None:
    response = platform_client.post(
        "/login/",
        {"username": OPERATOR_USERNAME, "password": "wrong", "token": "000000", "next": "/x/"},
    )
    assert 'name="next" value="/x/"' in response.content.decode()


def test_with_redis_unreachable_an_operator_signs_in_counted_in_this_process(
    operator: CreatedOperator, settings: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator may have to stop a municipality's logins, or slow its waiting room, during
    a Redis outage: the control plane's login counts in the web process meanwhile."""
    monkeypatch.setattr(throttle, "_process_counters", ProcessCounters())
    settings.SESSHU_CONTROLPLANE_LOGIN_FAILURES_PER_USERNAME = 3  # type: ignore[attr-defined]
    redis_at(settings, closed_port())
    for attempt in range(3):
        guessed = login(
            Client(HTTP_HOST=PLATFORM_HOST, raise_request_exception=False),
            username=OPERATOR_USERNAME,
            password=f"guess-{attempt}",
            token="000000",
            ip=f"10.0.0.{attempt + 1}",
        )
        assert guessed.status_code == 200
    refused = login(
        Client(HTTP_HOST=PLATFORM_HOST, raise_request_exception=False),
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
        ip="10.0.0.99",
    )
    assert refused.status_code == 200
    assert _events("controlplane.login_failed")[-1].details == {"reason": "throttled"}
    # With the window over (fresh counters), the operator signs in, Redis still down.
    monkeypatch.setattr(throttle, "_process_counters", ProcessCounters())
    client = Client(HTTP_HOST=PLATFORM_HOST, raise_request_exception=False)
    signed_in = login(
        client,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
        ip="10.0.0.99",
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    assert client.get("/").status_code == 200


def test_guesses_elsewhere_do_not_lock_an_operator_out_of_a_browser_used_before(
    operator: CreatedOperator, settings: pytest.FixtureRequest
) -> None:
    """Whoever knows the username can spend its allowance; the browser the operator signed
    in from before keeps one of its own (and spends only that)."""
    settings.SESSHU_CONTROLPLANE_LOGIN_FAILURES_PER_USERNAME = 3  # type: ignore[attr-defined]
    desk = Client(HTTP_HOST=PLATFORM_HOST)
    signed_in = login(
        desk,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
    )
    assert signed_in.status_code == 302
    cookie = desk.cookies[CONTROL_PLANE.cookie]
    assert cookie["httponly"] and OPERATOR_USERNAME not in cookie.value
    desk.post("/logout/")
    TOTPDevice.objects.filter(pk=operator.device.pk).update(last_t=-1)  # the next window

    for attempt in range(3):
        login(
            Client(HTTP_HOST=PLATFORM_HOST),
            username=OPERATOR_USERNAME,
            password=f"guess-{attempt}",
            token="000000",
            ip=f"10.0.0.{attempt + 1}",
        )
    elsewhere = Client(HTTP_HOST=PLATFORM_HOST)
    refused = login(
        elsewhere,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
        ip="10.0.0.98",
    )
    assert refused.status_code == 200
    assert _events("controlplane.login_failed")[-1].details == {"reason": "throttled"}

    again = login(
        desk,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
        ip="10.0.0.99",
    )
    assert again.status_code == 302
    assert desk.get("/").status_code == 200

    # Its own allowance: three failures in it stop it, not the username elsewhere further.
    desk.post("/logout/")
    for attempt in range(3):
        login(desk, username=OPERATOR_USERNAME, password=f"bad-{attempt}", token="000000")
    TOTPDevice.objects.filter(pk=operator.device.pk).update(last_t=-1)
    stopped = login(
        desk,
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        token=token_for(operator.device),
    )
    assert stopped.status_code == 200
    assert _events("controlplane.login_failed")[-1].details == {"reason": "throttled"}
