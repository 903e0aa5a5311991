"""Resident sessions: a new session at login, tied to one voucher; idle and absolute timeouts
(ASVS 7.2.4, 7.3.1, 7.3.2); ended by staff through ``resident_sessions_end``.

A resident is no Django user: the session holds the voucher id and two timestamps, and a
:class:`~booking.models.ResidentSession` row says that the resident login created it. Every
resident page checks all of it (:func:`resident_of`). As a backstop the session row and
cookie expire a minute after the absolute limit, so no resident session outlives it even if a
check were missed.

The session also carries, outside the login, whether the site was opened from LINE (the
rich menu's ``/line/`` entry), which survives the login's new session.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import rotate_token
from django.utils import timezone

from audit.middleware import client_ip, site_path
from booking.models import Channel, Voucher
from booking.resident.services import (
    resident_logout_record,
    resident_session_forget,
    resident_session_register,
    resident_session_voucher,
)
from tenants.models import Municipality

VOUCHER = "resident_voucher_id"
LOGIN_AT = "resident_login_at"
SEEN_AT = "resident_seen_at"
PASSWORD_REQUIRED = "resident_password_required"  # noqa: S105 (a session key name)
REGISTRATION = "resident_registration"  # (voucher id, checked at) between registration steps
FROM_LINE = "resident_from_line"
BACKSTOP_GRACE = timedelta(minutes=1)
REGISTRATION_SECONDS = 15 * 60
LINE_USER_AGENT_MARK = " Line/"


def _now() -> int:
    return int(timezone.now().timestamp())


def _fresh_session(request: HttpRequest) -> None:
    """Drop the browser's session (whatever it held, a console login included) and start an
    empty one under a new key, keeping only where the site was opened from and the page
    asked for before logging in."""
    from_line = bool(request.session.get(FROM_LINE))
    wanted = request.session.get(NEXT)
    resident_session_forget(session_key=request.session.session_key)
    request.session.flush()
    if from_line:
        request.session[FROM_LINE] = True
    if isinstance(wanted, str):
        request.session[NEXT] = wanted


# The page a resident asked for without being logged in (a printed link, a bookmark, a
# reminder's link): logging in goes on to it instead of my page.
NEXT = "resident_next"


def remember_next(request: HttpRequest, *, after_post: bool = False) -> None:
    """Remember the page asked for, its query (the day's filters) included. A POST only
    with ``after_post``, from a view whose page is the same address (the confirmation the
    resident pressed 予約する on): logging in again goes back to it, nothing done."""
    wanted = request.get_full_path()
    if request.method != "GET" and not after_post:
        return
    if wanted.startswith("/") and len(wanted) < 300:
        request.session[NEXT] = wanted


def next_after_login(request: HttpRequest) -> str | None:
    """The page remembered before the login (a path of this site), once."""
    wanted = request.session.pop(NEXT, None)
    if isinstance(wanted, str) and site_path(wanted):
        return wanted
    return None


def resident_login(request: HttpRequest, *, voucher: Voucher, password_required: bool) -> None:
    """Log the resident in under a new session id and register the session as theirs."""
    _fresh_session(request)
    now = _now()
    session = request.session
    session[VOUCHER] = voucher.pk
    session[LOGIN_AT] = now
    session[SEEN_AT] = now
    if password_required:
        session[PASSWORD_REQUIRED] = True
    session.set_expiry(
        timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE) + BACKSTOP_GRACE
    )
    session.save()
    rotate_token(request)
    assert session.session_key is not None
    resident_session_register(voucher=voucher, session_key=session.session_key)


def resident_password_done(request: HttpRequest) -> None:
    request.session.pop(PASSWORD_REQUIRED, None)


def password_pending(request: HttpRequest) -> bool:
    return bool(request.session.get(PASSWORD_REQUIRED))


def resident_logout(request: HttpRequest, *, reason: str) -> None:
    """End the resident's session: its registration, its row, its cookie."""
    voucher_id = request.session.get(VOUCHER)
    if isinstance(voucher_id, int):
        resident_logout_record(voucher_id=voucher_id, reason=reason, ip=client_ip(request))
    _fresh_session(request)


def resident_of(request: HttpRequest) -> tuple[Voucher | None, str]:
    """The voucher behind this request's resident session, or None and why not.

    Checked on every resident page: a session the resident login created in this
    municipality, within both timeouts, still registered (staff may have ended it), for a
    voucher that is active and may log in, while the site is open. Marks the session seen
    (once a minute at most).
    """
    session = request.session
    voucher_id = session.get(VOUCHER)
    if not isinstance(voucher_id, int):
        return None, "anonymous"
    login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
    if not isinstance(login_at, int) or not isinstance(seen_at, int):
        return None, "unstamped"
    now = _now()
    if now - login_at >= settings.SESSION_COOKIE_AGE:
        return None, "absolute"
    if now - seen_at >= settings.SESSHU_SESSION_IDLE_SECONDS:
        return None, "idle"
    municipality: Municipality = request.tenant  # type: ignore[attr-defined]
    if municipality.status != Municipality.Status.ACTIVE:
        return None, "site_closed"
    voucher = resident_session_voucher(voucher_id=voucher_id, session_key=session.session_key)
    if voucher is None:
        return None, "ended"
    if voucher.status != Voucher.Status.ACTIVE or voucher.web_login_disabled:
        return None, "voucher_unusable"
    if now - seen_at >= _seen_refresh_seconds():
        session[SEEN_AT] = now
    return voucher, ""


def resident_session_left(request: HttpRequest) -> int | None:
    """Seconds until this resident session ends if nothing more is done in it (the idle or
    the absolute timeout, whichever comes first); None when it has ended or is no resident
    session. Asking does not count as being at work: the idle timer is not touched (another
    tab's pages may have moved it on)."""
    session = request.session
    voucher_id = session.get(VOUCHER)
    login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
    if not (isinstance(voucher_id, int) and isinstance(login_at, int) and isinstance(seen_at, int)):
        return None
    now = _now()
    left = min(
        settings.SESSHU_SESSION_IDLE_SECONDS - (now - seen_at),
        settings.SESSION_COOKIE_AGE - (now - login_at),
    )
    if left <= 0:
        return None
    if resident_session_voucher(voucher_id=voucher_id, session_key=session.session_key) is None:
        return None
    return left


def resident_seen(request: HttpRequest) -> None:
    """The resident is at work now (the idle warning's 続ける): the idle timer starts again."""
    request.session[SEEN_AT] = _now()


def _seen_refresh_seconds() -> int:
    """How stale the idle timer may get before a page refreshes it: rewriting the session row
    on every page is a database write per click, during a rush too. At most a tenth of the
    idle timeout (a minute of the usual thirty) is cut from a resident's idle time."""
    return min(60, settings.SESSHU_SESSION_IDLE_SECONDS // 10)


def channel_for(request: HttpRequest) -> str:
    """``line`` in LINE's in-app browser or after the rich menu's entry; otherwise ``web``."""
    agent = request.META.get("HTTP_USER_AGENT", "")
    if LINE_USER_AGENT_MARK in agent or request.session.get(FROM_LINE):
        return Channel.LINE.value
    return Channel.WEB.value


def mark_from_line(request: HttpRequest) -> None:
    request.session[FROM_LINE] = True


# --- Between the two steps of registration (``account`` mode) --------------------------------


def registration_remember(request: HttpRequest, *, voucher: Voucher) -> None:
    _fresh_session(request)
    request.session[REGISTRATION] = [voucher.pk, _now()]
    request.session.set_expiry(REGISTRATION_SECONDS + 60)


def registration_voucher(request: HttpRequest) -> Voucher | None:
    """The voucher whose identity step one confirmed in this session, for 15 minutes."""
    value = request.session.get(REGISTRATION)
    if not (isinstance(value, list) and len(value) == 2):
        return None
    voucher_id, checked_at = value
    if not isinstance(voucher_id, int) or not isinstance(checked_at, int):
        return None
    if _now() - checked_at >= REGISTRATION_SECONDS:
        request.session.pop(REGISTRATION, None)
        return None
    return Voucher.objects.filter(
        pk=voucher_id, status=Voucher.Status.ACTIVE, web_login_disabled=False
    ).first()


def registration_forget(request: HttpRequest) -> None:
    request.session.pop(REGISTRATION, None)
