"""The control plane's own writes: operators' logins and accounts, and stats refresh requests.

Municipalities themselves are written only by ``tenants.services``; the views call those
directly. Everything here is recorded in the platform audit trail, with ids only: never the
typed username, password or token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp import devices_for_user, verify_token
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit import record
from audit.chain import Actor
from controlplane.throttle import LoginThrottle
from sesshu import metrics
from tenants.tasks import municipality_stats_refresh_all


class LoginRefused(Exception):
    """Any failed login. Deliberately carries nothing the page could tell apart."""


class OperatorError(Exception):
    """An operator account request the platform refuses, with a message for the caller."""


@dataclass(frozen=True)
class VerifiedOperator:
    user: Any
    device: Device


def _account_id(username: str) -> str | None:
    user_model = get_user_model()
    pk = (
        user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username})
        .values_list("pk", flat=True)
        .first()
    )
    return None if pk is None else str(pk)


def _login_failed(*, reason: str, username: str, ip: str | None) -> LoginRefused:
    account = _account_id(username)
    record(
        action="controlplane.login_failed",
        actor=Actor.anonymous(),
        target=("auth.user", account) if account else None,
        ip=ip,
        details={"reason": reason},
    )
    metrics.login_failed("controlplane")
    return LoginRefused()


def login_attempt_incomplete(*, ip: str | None) -> LoginRefused:
    """Audit a login form sent with a field missing; return the exception to raise."""
    record(
        action="controlplane.login_failed",
        actor=Actor.anonymous(),
        ip=ip,
        details={"reason": "incomplete"},
    )
    metrics.login_failed("controlplane")
    return LoginRefused()


def _verified_device(user: Any, token: str) -> Device | None:
    token = "".join(token.split())
    for device in devices_for_user(user, confirmed=True):
        verified = verify_token(user, device.persistent_id, token)
        if verified is not None:
            return verified
    return None


def login_attempt_verify(
    *,
    username: str,
    password: str,
    token: str,
    ip: str | None,
    request: Any = None,
    browser: str | None = None,
) -> VerifiedOperator:
    """Check a vendor operator's password and TOTP token; audit the attempt either way.

    Raises :class:`LoginRefused` for every kind of failure alike. The caller logs the user in
    (``django.contrib.auth.login`` then ``django_otp.login``) with what is returned.
    ``browser``: the token of a browser that has signed in to this username before
    (``sesshu.devices``), whose attempts count against it, not the username.
    """
    throttle = LoginThrottle(username=username, ip=ip, browser=browser)
    if throttle.blocked():
        # Refused before the password is hashed; not counted again, so the window ends.
        raise _login_failed(reason="throttled", username=username, ip=ip)
    user = authenticate(request, username=username, password=password)
    reason = ""
    device = None
    if user is None:
        reason = "credentials"
    elif not (user.is_staff and user.is_active):
        reason = "not_operator"
    else:
        device = _verified_device(user, token)
        if device is None:
            has_device = any(True for _ in devices_for_user(user, confirmed=True))
            reason = "otp" if has_device else "no_device"
    if reason or device is None:
        throttle.failed()
        raise _login_failed(reason=reason, username=username, ip=ip)
    throttle.succeeded()
    record(
        action="controlplane.login_succeeded",
        actor=Actor.vendor(user),
        target=user,
        ip=ip,
        details={"method": "password+totp"},
    )
    return VerifiedOperator(user=user, device=device)


def logout_record(*, user: Any, ip: str | None) -> None:
    record(action="controlplane.logged_out", actor=Actor.vendor(user), target=user, ip=ip)


def access_refusal_record(*, actor: Actor, reason: str, path: str, ip: str | None) -> None:
    record(
        action="controlplane.access_refused",
        actor=actor,
        ip=ip,
        details={"reason": reason, "path": path[:200]},
    )


def stats_refresh_request(*, actor: Actor, ip: str | None) -> None:
    """Ask for fresh counts of every municipality, once the caller's transaction commits."""
    record(action="controlplane.stats_refresh_requested", actor=actor, ip=ip)
    transaction.on_commit(lambda: municipality_stats_refresh_all.delay())


def platform_trail_read(*, actor: Actor, ip: str | None, municipality_code: str, rows: int) -> None:
    """A read of the platform's trail, in the trail: who, of which municipality (or all),
    how many records."""
    record(
        action="controlplane.trail_viewed",
        actor=actor,
        ip=ip,
        details={"municipality": municipality_code, "rows": rows},
    )


@dataclass(frozen=True)
class CreatedOperator:
    user: Any
    device: TOTPDevice
    password: str


def operator_create(
    *, username: str, actor: Actor, email: str = "", password: str | None = None
) -> CreatedOperator:
    """Create a vendor operator (staff, not superuser) with a confirmed TOTP device.

    Without ``password`` a random one is generated; either way it is returned once and
    stored only as a hash.
    """
    user_model = get_user_model()
    username = username.strip()
    if not username:
        raise OperatorError("A username is required.")
    if user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
        raise OperatorError(f"An operator named {username!r} already exists.")
    password = password if password is not None else secrets.token_urlsafe(18)
    candidate = user_model(**{user_model.USERNAME_FIELD: username, "email": email.strip()})
    try:
        validate_password(password, candidate)
    except ValidationError as exc:
        raise OperatorError(" ".join(str(m) for m in exc.messages)) from exc
    with transaction.atomic():
        user = user_model._default_manager.create_user(
            username, email=email.strip(), password=password, is_staff=True
        )
        device = TOTPDevice.objects.create(user=user, name="default", confirmed=True)
        record(
            action="controlplane.operator_created",
            actor=actor,
            target=user,
            details={"totp_device": device.persistent_id},
        )
    return CreatedOperator(user=user, device=device, password=password)
