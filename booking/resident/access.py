"""Who may open a resident page: :func:`resident_required`, on every page behind the login."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy

import audit
from audit.chain import Actor
from audit.middleware import client_ip
from booking.resident.sessions import (
    password_pending,
    remember_next,
    resident_logout,
    resident_of,
)
from tenants.models import Municipality

View = Callable[..., HttpResponse]

_MESSAGES = {
    "idle": gettext_lazy(
        "一定時間操作がなかったため、ログアウトしました。もう一度ログインしてください。"
    ),
    "absolute": gettext_lazy(
        "ログインしてから時間が経ったため、ログアウトしました。もう一度ログインしてください。"
    ),
    "anonymous": gettext_lazy("このページを見るには、ログインしてください。"),
    # A button pressed without a login (logged out in another tab, say): not "to view".
    "anonymous_post": gettext_lazy(
        "ログインしていません（別の画面でログアウトしたときなど）。もう一度ログインしてください。"
    ),
    "ended": gettext_lazy("ログアウトしました。もう一度ログインしてください。"),
    "voucher_unusable": gettext_lazy(
        "このサイトではログインできません。コールセンターにお問い合わせください。"
    ),
    "site_closed": gettext_lazy(
        "現在、このサイトでの受付を停止しています。コールセンターにお問い合わせください。"
    ),
}


_NOT_DONE = gettext_lazy("いまの操作（予約・変更・取消など）は行われていません。")


def _refusal_messages(request: HttpRequest, reason: str) -> list[str]:
    """Why the resident is back on the top page. While the site takes no logins (incident,
    suspension), that, not "log in again": the page has no login form then. After a press
    of a button (a POST), also that what was pressed was not done."""
    tenant = getattr(request, "tenant", None)
    if reason in ("anonymous", "ended", "idle", "absolute") and (
        getattr(tenant, "status", Municipality.Status.ACTIVE) != Municipality.Status.ACTIVE
    ):
        reason = "site_closed"
    if reason not in _MESSAGES:
        return []
    if reason == "anonymous" and request.method == "POST":
        reason = "anonymous_post"
    said = [str(_MESSAGES[reason])]
    if request.method == "POST":
        said.append(str(_NOT_DONE))
    return said


def resident_required(
    view: View | None = None, *, allow_password_pending: bool = False, resume_post: bool = False
) -> Any:
    """Open the view only to a logged-in resident; it finds the voucher in
    ``request.voucher``. ``resume_post``: a view whose page is at the same address as its
    POST: a press on it with the session gone comes back to that page after the login.

    Anyone else goes to the top page (with a message saying why, for a session that ran
    out); a session that ran out or lost its standing is ended. Every refusal is audited.
    A resident who must still set a password goes to that page first.
    """

    def decorator(inner: View) -> View:
        @wraps(inner)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            voucher, reason = resident_of(request)
            if voucher is None:
                voucher_id = request.session.get("resident_voucher_id")
                audit.record(
                    action="resident.access_refused",
                    actor=Actor.resident(voucher_id)
                    if isinstance(voucher_id, int)
                    else Actor.anonymous(),
                    ip=client_ip(request),
                    details={"path": request.path[:200], "reason": reason},
                )
                if reason not in ("anonymous", "unstamped"):
                    resident_logout(request, reason=reason)
                remember_next(request, after_post=resume_post)
                for message in _refusal_messages(request, reason):
                    messages.warning(request, message)
                return redirect("resident:top")
            if password_pending(request) and not allow_password_pending:
                return redirect("resident:password_set")
            request.voucher = voucher  # type: ignore[attr-defined]
            return inner(request, *args, **kwargs)

        return wrapper

    if view is not None:
        return decorator(view)
    return decorator
