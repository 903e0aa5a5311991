"""Console session rules: a new session at login, idle and absolute timeouts (ASVS 7.2.4,
7.3.1, 7.3.2).

The session keeps two timestamps of its own, checked on every console request by
:func:`booking.console.access.staff_required`, which logs the person out with a message
saying why. As a backstop, the session row and cookie get a fixed expiry a minute after the
absolute limit (a fixed date, not Django's sliding age), so no console session outlives it
even if a check were missed; the minute lets the check run first and explain.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest
from django.utils import timezone
from django_otp import login as otp_login

from booking.services.staff import staff_session_forget, staff_session_register

LOGIN_AT = "console_login_at"
SEEN_AT = "console_seen_at"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
BACKSTOP_GRACE = timedelta(minutes=1)


def _now() -> int:
    return int(timezone.now().timestamp())


def console_login(request: HttpRequest, *, user: Any, device: Any) -> None:
    """Log ``user`` in with a new session id, mark the session as OTP-verified by
    ``device``, start both clocks and register the session as this staff member's."""
    # Whatever console session this browser had before (another account's) is over.
    staff_session_forget(session_key=request.session.session_key)
    auth_login(request, user, backend=MODEL_BACKEND)  # cycles the session key
    otp_login(request, device)
    now = _now()
    request.session[LOGIN_AT] = now
    request.session[SEEN_AT] = now
    request.session.set_expiry(
        timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE) + BACKSTOP_GRACE
    )
    request.session.save()
    assert request.session.session_key is not None
    staff_session_register(user=user, session_key=request.session.session_key)


def console_session_expiry(request: HttpRequest) -> str:
    """``"idle"`` or ``"absolute"`` if the console session has run out, ``"unstamped"`` if
    the console's login never stamped it; otherwise ``""`` after marking it as seen now."""
    session = request.session
    login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
    if not isinstance(login_at, int) or not isinstance(seen_at, int):
        return "unstamped"
    now = _now()
    if now - login_at >= settings.SESSION_COOKIE_AGE:
        return "absolute"
    if now - seen_at >= settings.SESSHU_SESSION_IDLE_SECONDS:
        return "idle"
    session[SEEN_AT] = now
    return ""


def console_logout(request: HttpRequest) -> None:
    """End the session: its registration, its row, its cookie."""
    staff_session_forget(session_key=request.session.session_key)
    auth_logout(request)
