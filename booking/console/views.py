"""Console entrance: login, logout, home (with staff accounts and invitations for admins)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from audit.chain import Actor
from audit.middleware import client_ip
from booking.console.access import console_staff, forbidden, staff_required
from booking.console.callcentre.pages import console_page
from booking.console.forms import InviteForm, LoginForm, RoleForm
from booking.console.networks import console_network_allowed
from booking.console.sessions import console_login, console_logout
from booking.models import StaffInvitation, StaffMember
from booking.selectors.readiness import booking_readiness
from booking.services.planning import cancelled_slots_to_phone
from booking.services.staff import (
    LOGIN_WINDOW_SECONDS,
    LoginRefused,
    StaffRefused,
    staff_authenticate,
    staff_deactivate,
    staff_invitation_email,
    staff_invitation_withdraw,
    staff_invite,
    staff_logout_record,
    staff_reset_issue,
    staff_role_change,
    staff_sessions_end,
)
from sesshu.devices import CONSOLE

Admin = StaffMember.Role.ADMIN


def _municipality_name(request: HttpRequest) -> str:
    return request.tenant.name  # type: ignore[attr-defined]


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    home = reverse("console:home")
    if (
        target.startswith("/console/")
        and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
        and not target.startswith(reverse("console:login"))
    ):
        return target
    return home


# Where each role works: signing in to the console's home takes them there.
_WORK_PAGES: dict[str, str] = {
    StaffMember.Role.CALL_CENTRE: "console:callcentre:search",
    StaffMember.Role.VENUE: "console:reception:lookup",
}


def _landing(target: str, user: Any) -> str:
    """The page after signing in: the one asked for, else the role's own work page (an
    operator starts at the search, venue staff at reception), else the home."""
    staff = StaffMember.objects.filter(user=user).only("role").first()
    if target == reverse("console:home") and staff is not None and staff.role in _WORK_PAGES:
        return reverse(_WORK_PAGES[staff.role])
    return target


@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    ip = client_ip(request)
    if not console_network_allowed(municipality=request.tenant, ip=ip):  # type: ignore[attr-defined]
        return forbidden(request, message=_("このネットワークからは利用できません。"))
    if request.method == "GET" and console_staff(request)[0] is not None:
        return redirect(_next_url(request))
    form = LoginForm(request.POST or None)
    error, status = "", 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            email = form.cleaned_data["email"]
            try:
                user, device = staff_authenticate(
                    email=email,
                    password=form.cleaned_data["password"],
                    code=form.cleaned_data["code"],
                    ip=ip,
                    browser=CONSOLE.token(request, email),
                )
            except LoginRefused as refused:
                # Nothing typed is echoed back, so every failure renders the same page.
                form = LoginForm()
                if refused.throttled:
                    status = 429
                    error = _throttled_message(refused.scope)
                else:
                    error = _(
                        "メールアドレス、パスワード、認証コードのいずれかが正しくありません。"
                    )
            else:
                console_login(request, user=user, device=device)
                response = redirect(_landing(_next_url(request), user))
                CONSOLE.remember(request, response, email)
                return response
    return render(
        request,
        "booking/console/login.html",
        {
            "site_name": _municipality_name(request),
            "form": form,
            "login_error": error,
            "next": _next_url(request),
        },
        status=status,
    )


def _throttled_message(scope: str) -> str:
    minutes = {"minutes": LOGIN_WINDOW_SECONDS // 60}
    if scope == "account":
        # Failures on an address stop it only where it has not signed in before.
        return (
            _(
                "このメールアドレスでのログインの試行が多すぎるため、%(minutes)d分ほど止めています。"
                "以前にこのアカウントでログインしたことのある端末（ブラウザ）からは、"
                "続けてログインできます。"
            )
            % minutes
        )
    return (
        _("ログインの試行が多すぎます。%(minutes)d分ほど時間をおいてから、もう一度お試しください。")
        % minutes
    )


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_authenticated:
        staff_logout_record(user=user, ip=client_ip(request))
    console_logout(request)
    messages.success(request, _("ログアウトしました。"))
    return redirect("console:login")


_ISSUED = "console_invitation_issued"
_RESET_ISSUED = "console_reset_issued"


def _home(
    request: HttpRequest,
    *,
    invite_form: InviteForm | None = None,
    status: int = 200,
) -> HttpResponse:
    staff: StaffMember = request.staff  # type: ignore[attr-defined]
    context: dict[str, Any] = {
        "site_name": _municipality_name(request),
        "municipality": request.tenant,  # type: ignore[attr-defined]
        "staff": staff,
        "is_admin": staff.role == Admin,
    }
    if staff.role == Admin:
        context["members"] = StaffMember.objects.select_related("user").order_by("user__username")
        context["lone_admin"] = (
            not StaffMember.objects.filter(role=Admin, user__is_active=True)
            .exclude(pk=staff.pk)
            .exists()
        )
        context["pending_invitations"] = StaffInvitation.objects.filter(
            accepted_at__isnull=True, expires_at__gt=timezone.now()
        ).order_by("expires_at")
        context["invite_form"] = invite_form or InviteForm()
        context["readiness"] = booking_readiness()
        context["to_phone"] = cancelled_slots_to_phone()
        shown = request.session.pop(_ISSUED, None)
        invitation = (
            StaffInvitation.objects.filter(pk=shown["invitation"]).first() if shown else None
        )
        if shown and invitation is not None:
            context["issued"] = {"invitation": invitation}
            context["issued_url"] = shown["url"]
            context["emailed"] = shown["emailed"]
    return render(request, "booking/console/home.html", context, status=status)


@require_http_methods(["GET"])
@staff_required()
def home(request: HttpRequest) -> HttpResponse:
    return _home(request)


@require_POST
@staff_required(Admin)
def invite(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _home(request, invite_form=form, status=400)
    issued = staff_invite(
        email=form.cleaned_data["email"],
        role=form.cleaned_data["role"],
        invited_by=request.user,
        actor=Actor.staff(request.user),
        ip=client_ip(request),
    )
    link = request.build_absolute_uri(reverse("console:setup", args=[issued.token]))
    emailed = staff_invitation_email(
        issued=issued,
        link=link,
        municipality_name=_municipality_name(request),
        ip=client_ip(request),
    )
    # The link is shown once (in case the mail does not arrive), on the page this redirects
    # to: kept in the server-side session until then, so that reloading that page neither
    # posts the form again (a second invitation) nor shows the link again.
    request.session[_ISSUED] = {"invitation": issued.invitation.pk, "url": link, "emailed": emailed}
    return redirect(reverse("console:home") + "#invite-heading")


@require_POST
@staff_required(Admin)
def withdraw_invitation(request: HttpRequest, invitation_id: int) -> HttpResponse:
    invitation = get_object_or_404(StaffInvitation, pk=invitation_id)
    try:
        staff_invitation_withdraw(
            invitation=invitation,
            by=request.staff,  # type: ignore[attr-defined]
            ip=client_ip(request),
        )
    except StaffRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(
            request,
            (
                _("%(email)s さんの再設定リンクを取り消しました。")
                if invitation.resets_id
                else _("%(email)s さんへの招待を取り消しました。")
            )
            % {"email": invitation.email},
        )
    return redirect("console:home")


@require_http_methods(["GET", "POST"])
@staff_required(Admin)
def deactivate(request: HttpRequest, staff_id: int) -> HttpResponse:
    """Asked first (GET), then done (POST with the confirmation): the account stops signing
    in at once; a reset link (``reset``) enables it again."""
    member = get_object_or_404(StaffMember.objects.select_related("user"), pk=staff_id)
    if request.method != "POST" or not request.POST.get("confirm"):
        return console_page(
            request,
            "booking/console/staff_action.html",
            {"member": member, "action": "deactivate", "unconfirmed": request.method == "POST"},
            status=400 if request.method == "POST" else 200,
        )
    try:
        staff_deactivate(
            staff=member,
            by=request.staff,  # type: ignore[attr-defined]
            ip=client_ip(request),
        )
    except StaffRefused as refused:
        messages.error(request, refused.message)
        return redirect("console:home")
    messages.success(
        request,
        _(
            "%(email)s のアカウントを無効にしました。"
            "ログインできなくなり、セッションも終了しました。"
        )
        % {"email": member.user.email},
    )
    return redirect("console:home")


@require_http_methods(["GET", "POST"])
@staff_required(Admin)
def reset(request: HttpRequest, staff_id: int) -> HttpResponse:
    """A colleague's password and authenticator set up again (forgotten, lost phone, or an
    account disabled before): asked first, then the single-use link, shown once."""
    member = get_object_or_404(StaffMember.objects.select_related("user"), pk=staff_id)
    context: dict[str, Any] = {"member": member, "action": "reset"}
    if request.method != "POST":
        shown = request.session.pop(_RESET_ISSUED, None)
        if shown and shown["staff"] == member.pk:
            invitation = StaffInvitation.objects.filter(pk=shown["invitation"]).first()
            if invitation is not None:
                context["issued"] = {"invitation": invitation}
                context["issued_url"] = shown["url"]
        return console_page(request, "booking/console/staff_action.html", context)
    try:
        issued = staff_reset_issue(
            staff=member,
            by=request.staff,  # type: ignore[attr-defined]
            ip=client_ip(request),
        )
    except StaffRefused as refused:
        messages.error(request, refused.message)
        return redirect("console:home")
    # Shown once, on the page this redirects to (as an invitation's link): reloading it
    # neither issues another link, which would withdraw the one just handed over, nor shows
    # this one again.
    request.session[_RESET_ISSUED] = {
        "staff": member.pk,
        "invitation": issued.invitation.pk,
        "url": request.build_absolute_uri(reverse("console:setup", args=[issued.token])),
    }
    return redirect("console:staff_reset", staff_id=member.pk)


@require_http_methods(["GET", "POST"])
@staff_required(Admin)
def role(request: HttpRequest, staff_id: int) -> HttpResponse:
    """A colleague's role changed: chosen on its page, then saved."""
    member = get_object_or_404(StaffMember.objects.select_related("user"), pk=staff_id)
    form = RoleForm(request.POST or None, initial={"role": member.role})
    if request.method == "POST" and form.is_valid():
        try:
            staff_role_change(
                staff=member,
                role=form.cleaned_data["role"],
                by=request.staff,  # type: ignore[attr-defined]
                ip=client_ip(request),
            )
        except StaffRefused as refused:
            messages.error(request, refused.message)
        else:
            member.refresh_from_db()
            messages.success(
                request,
                _("%(email)s の役割を「%(role)s」にしました。")
                % {"email": member.user.email, "role": member.get_role_display()},
            )
        return redirect("console:home")
    return console_page(
        request,
        "booking/console/staff_action.html",
        {"member": member, "action": "role", "form": form},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@staff_required(Admin)
def end_sessions(request: HttpRequest, staff_id: int) -> HttpResponse:
    member = get_object_or_404(StaffMember.objects.select_related("user"), pk=staff_id)
    ended = staff_sessions_end(staff=member, actor=Actor.staff(request.user), ip=client_ip(request))
    messages.success(
        request,
        _("%(email)s のセッションを %(count)d 件終了しました。")
        % {"email": member.user.email, "count": ended},
    )
    return redirect("console:home")
