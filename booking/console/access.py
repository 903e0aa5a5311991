"""Who may open a console page: :func:`staff_required`, used by every staff-only view."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

import audit
from audit.chain import Actor
from audit.middleware import client_ip
from booking.console.networks import console_network_allowed
from booking.console.sessions import console_logout, console_session_expiry
from booking.models import StaffMember
from booking.services.staff import staff_session_is_registered

View = Callable[..., HttpResponseBase]

# Reasons a logged-in person is sent back to the login page (their session is ended).
_TIMEOUT_MESSAGES = {
    "idle": gettext_lazy(
        "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください。"
    ),
    "absolute": gettext_lazy(
        "ログインしてから時間が経ったため、ログアウトしました。もう一度ログインしてください。"
    ),
    # The browser sent a session that no longer exists: ended by an admin (the account
    # disabled or set up again, its sessions ended) or cleared after it ran out.
    "ended": gettext_lazy(
        "このログインは終了しています（管理者による終了や、時間切れなど）。"
        "もう一度ログインしてください。ログインできないときは、管理者にお問い合わせください。"
    ),
}


def console_staff(request: HttpRequest) -> tuple[StaffMember | None, str]:
    """The staff member behind this request's console session, or None and why not.

    A console session is one the console's own login created (TOTP-verified, registered,
    stamped) in this municipality's schema, within its timeouts. A session of another
    municipality, of the platform, or of a future resident login is none of these.
    """
    user = request.user
    if not user.is_authenticated:
        sent = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        return None, "ended" if sent and request.session.session_key is None else "anonymous"
    expiry = console_session_expiry(request)
    if expiry:
        return None, expiry
    # is_verified() comes from django-otp's OTPMiddleware: the session passed a TOTP check.
    if not user.is_verified():  # type: ignore[union-attr,attr-defined]
        return None, "not_verified"
    if not staff_session_is_registered(user=user, session_key=request.session.session_key):
        return None, "unregistered_session"
    staff = StaffMember.objects.filter(user=user).select_related("user").first()
    if staff is None or not user.is_active:
        return None, "not_staff"
    return staff, ""


def _refuse(request: HttpRequest, *, reason: str, actor: Actor, roles: tuple[str, ...]) -> None:
    audit.record(
        action="console.access_refused",
        actor=actor,
        ip=client_ip(request),
        details={"path": request.path, "reason": reason, "required_roles": list(roles)},
    )


def forbidden(request: HttpRequest, *, message: str | None = None) -> HttpResponse:
    return render(
        request,
        "booking/console/forbidden.html",
        {"site_name": request.tenant.name, "message": message},  # type: ignore[attr-defined]
        status=403,
    )


def staff_required(*roles: str) -> Callable[[View], View]:
    """Open the view only to staff with one of ``roles`` (any staff role if none given).

    Anonymous visitors, expired or foreign sessions go to the login page; staff with
    another role get a 403 page. Every refusal is audited. The view finds the staff member
    in ``request.staff``.
    """
    unknown = set(roles) - set(StaffMember.Role.values)
    if unknown:
        raise ValueError(f"unknown staff roles {sorted(unknown)}")

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            municipality = getattr(request, "tenant", None)
            if municipality is None:
                raise Http404("the console belongs to a municipality")
            if not console_network_allowed(municipality=municipality, ip=client_ip(request)):
                _refuse(request, reason="network", actor=Actor.anonymous(), roles=roles)
                return forbidden(request, message=_("このネットワークからは利用できません。"))
            staff, reason = console_staff(request)
            if staff is None:
                user = request.user
                actor = Actor.staff(user) if user.is_authenticated else Actor.anonymous()
                _refuse(request, reason=reason, actor=actor, roles=roles)
                if user.is_authenticated and reason != "unstamped":
                    # A console session that ran out or lost its standing ends here; a
                    # session the console did not create (none exists yet) is left alone.
                    console_logout(request)
                if reason in _TIMEOUT_MESSAGES:
                    messages.warning(request, _TIMEOUT_MESSAGES[reason])
                return redirect_to_login(request.get_full_path(), reverse("console:login"))
            if roles and staff.role not in roles:
                _refuse(request, reason="role", actor=Actor.staff(staff.user), roles=roles)
                return forbidden(request)
            request.staff = staff  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
