"""Who may open a control-plane page: a verified vendor operator, within the session limits.

Every page but the login form is wrapped in :func:`operator_required`. It refuses (and
audits) anonymous visitors, half-logged-in users (password without TOTP), users who are not
vendor operators, and sessions past the idle or the absolute timeout. The idle timeout lives
here rather than in a middleware because only the control plane has it this way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django_tenants.utils import get_public_schema_name

from audit.chain import Actor
from controlplane.services import access_refusal_record

SESSION_LOGIN_AT = "controlplane_login_at"
SESSION_LAST_SEEN = "controlplane_last_seen"

View = Callable[..., HttpResponse]


def client_ip(request: HttpRequest) -> str | None:
    """The address the audit trail and the throttle see (the one place that decides it)."""
    return request.META.get("REMOTE_ADDR") or None


def session_start(request: HttpRequest) -> None:
    now = int(time.time())
    request.session[SESSION_LOGIN_AT] = now
    request.session[SESSION_LAST_SEEN] = now


def _refusal(request: HttpRequest) -> str | None:
    schema_name = getattr(connection, "schema_name", None)
    if getattr(request, "tenant", None) is not None or schema_name != get_public_schema_name():
        return "not_platform_host"
    user = request.user
    if not user.is_authenticated:
        return "anonymous"
    if not (user.is_active and user.is_staff):
        return "not_operator"
    # django-otp's middleware adds is_verified() to request.user.
    if not user.is_verified():  # type: ignore[union-attr,attr-defined]
        return "not_verified"
    now = time.time()
    login_at = request.session.get(SESSION_LOGIN_AT)
    last_seen = request.session.get(SESSION_LAST_SEEN)
    if login_at is None or last_seen is None:
        return "not_verified"
    if now - login_at > settings.SESSION_COOKIE_AGE:
        return "absolute_timeout"
    if now - last_seen > settings.SESSHU_SESSION_IDLE_SECONDS:
        return "idle_timeout"
    return None


def operator_session_valid(request: HttpRequest) -> bool:
    return _refusal(request) is None


def operator_required(view: View) -> View:
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        reason = _refusal(request)
        if reason is None:
            request.session[SESSION_LAST_SEEN] = int(time.time())
            return view(request, *args, **kwargs)
        access_refusal_record(
            actor=Actor.from_user(request.user, public=True),
            reason=reason,
            path=request.path,
            ip=client_ip(request),
        )
        if reason == "not_platform_host":
            raise Http404("the control plane is served on the platform host only")
        if reason == "not_operator":
            logout(request)
            return render(request, "controlplane/refused.html", status=403)
        if reason in ("idle_timeout", "absolute_timeout"):
            logout(request)
            if reason == "idle_timeout":
                notice = _("一定時間操作がなかったため、ログアウトしました。")
            else:
                notice = _("ログインから時間が経ったため、ログアウトしました。")
            messages.info(request, notice)
        return redirect_to_login(request.get_full_path(), login_url=reverse("controlplane:login"))

    return guarded
