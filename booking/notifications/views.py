"""Linking and unlinking a resident's LINE account from my page (LINE Login, OpenID Connect).

Three plain views behind the resident login; include ``booking.notifications.urls``. The
link starts with a POST (a button on the contact page, CSRF-protected), which keeps a fresh
``state`` and ``nonce`` in the session and sends the resident to LINE; LINE sends them back
to the callback with a code (the session cookie is SameSite=Lax, so it comes along on that
top-level GET). Nothing personal is in any URL; the code and state are LINE's.
"""

from __future__ import annotations

import hmac
import time

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from audit import record
from audit.chain import Actor
from audit.middleware import client_ip
from booking.notifications.line_channel import line_credentials
from booking.notifications.line_login import line_login_begin
from booking.resident.access import resident_required
from booking.services.notifications import (
    LineLinkRefused,
    line_account_link,
    line_account_unlink,
)

SESSION_KEY = "line_login"
ATTEMPT_SECONDS = 600  # how long a started link waits for LINE's answer
BACK = "resident:contact"


def _redirect_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("notifications:line_callback"))


@require_http_methods(["POST"])
@resident_required
def line_link(request: HttpRequest) -> HttpResponse:
    credentials = line_credentials()
    if credentials is None:
        messages.error(request, _("この市区町村では、LINEでのお知らせを行っていません。"))
        return redirect(BACK)
    redirect_uri = _redirect_uri(request)
    attempt = line_login_begin(channel_id=credentials.login_channel_id, redirect_uri=redirect_uri)
    request.session[SESSION_KEY] = {
        "state": attempt.state,
        "nonce": attempt.nonce,
        "redirect_uri": redirect_uri,
        "started": int(time.time()),
    }
    return redirect(attempt.url)


@require_http_methods(["GET"])
@resident_required
def line_callback(request: HttpRequest) -> HttpResponse:
    voucher = request.voucher  # type: ignore[attr-defined]
    attempt = request.session.pop(SESSION_KEY, None)
    state = request.GET.get("state", "")
    actor = Actor.resident(voucher.pk)
    ip = client_ip(request)
    reason = ""
    if not isinstance(attempt, dict) or not state:
        reason = "state_missing"
    elif not hmac.compare_digest(str(attempt.get("state", "")), state):
        reason = "state"
    elif int(time.time()) - int(attempt.get("started", 0)) > ATTEMPT_SECONDS:
        reason = "attempt_expired"
    elif request.GET.get("error"):
        # The resident cancelled at LINE (or LINE refused): nothing to link.
        messages.info(request, _("LINEとの連携を中止しました。"))
        return redirect(BACK)
    if reason:
        record(
            action="notification.line_link_refused",
            actor=actor,
            target=voucher,
            ip=ip,
            details={"reason": reason},
        )
        messages.error(request, _("LINEと連携できませんでした。もう一度お試しください。"))
        return redirect(BACK)
    assert isinstance(attempt, dict)
    try:
        line_account_link(
            voucher=voucher,
            code=request.GET.get("code", ""),
            redirect_uri=str(attempt["redirect_uri"]),
            nonce=str(attempt["nonce"]),
            actor=actor,
            ip=ip,
        )
    except LineLinkRefused:
        messages.error(request, _("LINEと連携できませんでした。もう一度お試しください。"))
        return redirect(BACK)
    messages.success(request, _("LINEと連携しました。お知らせをLINEでもお送りします。"))
    return redirect(BACK)


@require_http_methods(["POST"])
@resident_required
def line_unlink(request: HttpRequest) -> HttpResponse:
    voucher = request.voucher  # type: ignore[attr-defined]
    line_account_unlink(voucher=voucher, actor=Actor.resident(voucher.pk), ip=client_ip(request))
    messages.success(request, _("LINEとの連携を解除しました。"))
    return redirect(BACK)
