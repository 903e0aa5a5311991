"""First login from an invitation: set a password, then register an authenticator app.

The state between the two steps (the password's hash and the new TOTP secret) stays in the
server-side session, keyed to the invitation's token hash; nothing the browser sends back
can change the role, the address or the secret.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.hashers import make_password
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.middleware import client_ip
from booking.console.forms import SetupDeviceForm, SetupPasswordForm
from booking.console.sessions import console_login
from booking.console.totp import (
    new_totp_key,
    qr_data_uri,
    totp_config_uri,
    totp_issuer,
    totp_secret_text,
)
from booking.models import StaffInvitation
from booking.services.staff import (
    InvitationRefused,
    staff_invitation_accept,
    staff_invitation_open,
)
from sesshu.devices import CONSOLE

SETUP = "console_setup"


def _refused(request: HttpRequest) -> HttpResponse:
    request.session.pop(SETUP, None)
    # One page and one status for unknown, expired and used links.
    return render(
        request,
        "booking/console/setup_refused.html",
        {"site_name": request.tenant.name},  # type: ignore[attr-defined]
        status=410,
    )


def _state(request: HttpRequest, invitation: StaffInvitation) -> dict[str, Any] | None:
    state = request.session.get(SETUP)
    if isinstance(state, dict) and state.get("token") == invitation.token_hash:
        return state
    return None


@sensitive_post_parameters("password1", "password2", "code")
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest, token: str) -> HttpResponse:
    ip = client_ip(request)
    try:
        invitation = staff_invitation_open(token=token, ip=ip)
    except InvitationRefused:
        return _refused(request)
    state = _state(request, invitation)
    if request.method == "POST" and request.POST.get("action") == "restart":
        request.session.pop(SETUP, None)
        return redirect(request.path)
    if state is None:
        return _password_step(request, invitation)
    return _device_step(request, invitation, state, token=token, ip=ip)


def _context(request: HttpRequest, invitation: StaffInvitation, **extra: Any) -> dict[str, Any]:
    return {
        "site_name": request.tenant.name,  # type: ignore[attr-defined]
        "invitation": invitation,
        **extra,
    }


def _password_step(request: HttpRequest, invitation: StaffInvitation) -> HttpResponse:
    form = SetupPasswordForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        request.session[SETUP] = {
            "token": invitation.token_hash,
            "password": make_password(form.cleaned_data["password1"]),
            "key": new_totp_key(),
        }
        return redirect(request.path)
    return render(
        request,
        "booking/console/setup_password.html",
        _context(request, invitation, form=form),
        status=400 if form.is_bound else 200,
    )


def _device_step(
    request: HttpRequest,
    invitation: StaffInvitation,
    state: dict[str, Any],
    *,
    token: str,
    ip: str | None,
) -> HttpResponse:
    key = state["key"]
    form = SetupDeviceForm(request.POST or None, key=key)
    if request.method == "POST" and form.is_valid():
        try:
            staff = staff_invitation_accept(
                token=token,
                password_hash=state["password"],
                totp_key=key,
                totp_last_t=form.matched_step if form.matched_step is not None else -1,
                ip=ip,
            )
        except InvitationRefused:
            return _refused(request)
        request.session.pop(SETUP, None)
        device = TOTPDevice.objects.get(user=staff.user, confirmed=True)
        console_login(request, user=staff.user, device=device)
        messages.success(request, _("登録が完了しました。ようこそ。"))
        response = redirect("console:home")
        CONSOLE.remember(request, response, staff.user.username)
        return response
    issuer = totp_issuer(request.tenant.name)  # type: ignore[attr-defined]
    uri = totp_config_uri(key=key, account=invitation.email, issuer=issuer)
    return render(
        request,
        "booking/console/setup_device.html",
        _context(
            request,
            invitation,
            form=form,
            secret=totp_secret_text(key),
            qr=qr_data_uri(uri),
            issuer=issuer,
        ),
        status=400 if form.is_bound else 200,
    )
