"""The vendor operators' console. Each view: a form in, one service call, a response out."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login

from audit.chain import Actor
from booking.resident.waiting_room import per_minute as waiting_room_per_minute
from booking.resident.waiting_room import queue_now
from controlplane.access import (
    client_ip,
    operator_required,
    operator_session_valid,
    session_start,
)
from controlplane.forms import (
    AdminRecoverForm,
    AdminReinviteForm,
    ConfirmForm,
    DecommissionForm,
    LoginForm,
    ProvisionForm,
    SearchForm,
    SuspendForm,
    WaitingRoomForm,
)
from controlplane.selectors import (
    municipality_get,
    municipality_row,
    municipality_rows,
    platform_trail,
)
from controlplane.services import (
    LoginRefused,
    login_attempt_incomplete,
    login_attempt_verify,
    logout_record,
    platform_trail_read,
    stats_refresh_request,
)
from sesshu.devices import CONTROL_PLANE
from tenants.keys import KmsKeyProvider
from tenants.models import Municipality
from tenants.services import (
    ProvisioningError,
    decommission_unfinished,
    municipality_admin_recover,
    municipality_admin_reinvite,
    municipality_decommission,
    municipality_has_admin,
    municipality_provision,
    municipality_provision_preview,
    municipality_resume,
    municipality_suspend,
    municipality_waiting_room_set,
)


def _login_refused_message() -> str:
    # One message for every failure (wrong password, wrong code, throttled, not an operator),
    # so the page never tells an attacker which part was right.
    return _(
        "ログインできませんでした。ユーザー名・パスワード・確認コードを確かめてください。"
        "失敗が続くと、しばらくログインできなくなります。"
    )


def _requested_next(request: HttpRequest) -> str:
    return request.POST.get("next") or request.GET.get("next") or ""


def _next_url(request: HttpRequest) -> str:
    """Where to go after login: a path on this host, or the list."""
    target = _requested_next(request)
    if (
        target.startswith("/")
        and not target.startswith("//")
        and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return target
    return reverse("controlplane:municipality_list")


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET" and operator_session_valid(request):
        return redirect("controlplane:municipality_list")
    form = LoginForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        try:
            if not form.is_valid():
                raise login_attempt_incomplete(ip=client_ip(request))
            username = form.cleaned_data["username"]
            verified = login_attempt_verify(
                username=username,
                password=form.cleaned_data["password"],
                token=form.cleaned_data["token"],
                ip=client_ip(request),
                request=request,
                browser=CONTROL_PLANE.token(request, username),
            )
        except LoginRefused:
            form.add_error(None, _login_refused_message())
        else:
            auth_login(request, verified.user)  # a new session id (ASVS 7.2.4)
            otp_login(request, verified.device)
            session_start(request)
            response = redirect(_next_url(request))
            CONTROL_PLANE.remember(request, response, username)
            return response
    return render(
        request,
        "controlplane/login.html",
        {"form": form, "next": _requested_next(request)},
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        logout_record(user=request.user, ip=client_ip(request))
    auth_logout(request)
    messages.success(request, _("ログアウトしました。"))
    return redirect("controlplane:login")


@require_GET
@operator_required
def municipality_list(request: HttpRequest) -> HttpResponse:
    search = SearchForm(request.GET or None)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    return render(
        request,
        "controlplane/municipality_list.html",
        {"search": search, "query": query, "rows": municipality_rows(query=query)},
    )


@require_GET
@operator_required
def trail(request: HttpRequest) -> HttpResponse:
    """The platform's own trail (operators' logins, registrations, suspensions, key
    destruction), newest first, of one municipality (``?municipality=<code>``) or all."""
    code = request.GET.get("municipality", "")
    municipality = municipality_get(code=code) if code else None
    before_text = request.GET.get("before", "")
    before = int(before_text) if before_text.isdigit() else None
    rows, older = platform_trail(municipality=municipality, before=before)
    platform_trail_read(
        actor=Actor.vendor(request.user),
        ip=client_ip(request),
        municipality_code=code,
        rows=len(rows),
    )
    return render(
        request,
        "controlplane/trail.html",
        {"rows": rows, "older": older, "municipality": municipality},
    )


@require_POST
@operator_required
def stats_refresh(request: HttpRequest) -> HttpResponse:
    stats_refresh_request(actor=Actor.vendor(request.user), ip=client_ip(request))
    messages.success(
        request,
        _("件数の集計を始めました。しばらくしてからこのページを再読み込みしてください。"),
    )
    return redirect("controlplane:municipality_list")


@require_http_methods(["GET", "POST"])
@operator_required
def municipality_create(request: HttpRequest) -> HttpResponse:
    """The form, then what registering would create, read before it is confirmed (the
    subdomain and the login mode cannot be changed afterwards), then the registration."""
    form = ProvisionForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid() and "edit" not in request.POST:
        data = form.cleaned_data
        asked = {
            "code": data["code"],
            "subdomain": data["subdomain"],
            "admin_email": data["admin_email"],
            "name": data["name"] or None,
        }
        if request.POST.get("confirmed") != "1":
            try:
                preview = municipality_provision_preview(**asked)
            except ProvisioningError as exc:
                form.add_error(None, str(exc))
            else:
                return render(
                    request,
                    "controlplane/municipality_create_confirm.html",
                    {
                        "form": form,
                        "preview": preview,
                        "login_mode": Municipality.LoginMode(data["login_mode"]).label,
                    },
                )
            return render(request, "controlplane/municipality_create.html", {"form": form})
        try:
            provisioned = municipality_provision(
                **asked,
                login_mode=data["login_mode"],
                actor=Actor.vendor(request.user),
                ip=client_ip(request),
            )
        except ProvisioningError as exc:
            form.add_error(None, str(exc))
        else:
            return render(request, "controlplane/provisioned.html", {"result": provisioned})
    return render(request, "controlplane/municipality_create.html", {"form": form})


@require_GET
@operator_required
def municipality_detail(request: HttpRequest, code: str) -> HttpResponse:
    row = municipality_row(code=code)
    decommissioned = row.municipality.status == Municipality.Status.DECOMMISSIONED
    return render(
        request,
        "controlplane/municipality_detail.html",
        {
            "row": row,
            "waiting_room": queue_now(row.municipality),
            "has_admin": decommissioned or municipality_has_admin(row.municipality),
            "key_text": _key_text(row.municipality),
            "region": settings.AWS_REGION,
        },
    )


def _key_text(municipality: Municipality) -> str:
    """What protects the municipality's own data key, in the operator's words."""
    if municipality.key_destroyed_at:
        return _("破棄済み（この市区町村のデータは、もう誰も読めません）")
    if municipality.key_provider == KmsKeyProvider.name:
        return _(
            "この市区町村専用のデータ鍵を作成済み（AWS KMSの鍵で暗号化して保管。%(region)s）"
        ) % {"region": settings.AWS_REGION}
    return _(
        "この市区町村専用のデータ鍵を作成済み（開発用のローカルの鍵で暗号化。本番では使いません）"
    )


@require_http_methods(["GET", "POST"])
@operator_required
def municipality_waiting_room_view(request: HttpRequest, code: str) -> HttpResponse:
    municipality = municipality_get(code=code)
    form = WaitingRoomForm(
        request.POST if request.method == "POST" else None,
        initial={"per_minute": municipality.waiting_room_per_minute},
        platform_rate=waiting_room_per_minute(),
    )
    if request.method == "POST" and form.is_valid():
        try:
            municipality_waiting_room_set(
                municipality=municipality,
                per_minute=form.cleaned_data["per_minute"],
                actor=Actor.vendor(request.user),
                ip=client_ip(request),
            )
        except ProvisioningError as exc:
            form.add_error("per_minute", str(exc))
        else:
            messages.success(
                request,
                _("%(name)s の待合室の受け入れ数を変更しました。") % {"name": municipality.name},
            )
            return redirect("controlplane:municipality_detail", code=municipality.code)
    return render(
        request,
        "controlplane/municipality_waiting_room.html",
        {"municipality": municipality, "form": form, "waiting_room": queue_now(municipality)},
    )


@require_http_methods(["GET", "POST"])
@operator_required
def municipality_suspend_view(request: HttpRequest, code: str) -> HttpResponse:
    municipality = municipality_get(code=code)
    form = SuspendForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            municipality_suspend(
                municipality=municipality,
                reason=form.cleaned_data["reason"],
                actor=Actor.vendor(request.user),
                ip=client_ip(request),
            )
        except ProvisioningError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("%(name)s を停止しました。") % {"name": municipality.name})
        return redirect("controlplane:municipality_detail", code=municipality.code)
    return render(
        request,
        "controlplane/municipality_suspend.html",
        {"municipality": municipality, "form": form},
    )


@require_http_methods(["GET", "POST"])
@operator_required
def municipality_resume_view(request: HttpRequest, code: str) -> HttpResponse:
    municipality = municipality_get(code=code)
    form = ConfirmForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            resumed = municipality_resume(
                municipality=municipality,
                actor=Actor.vendor(request.user),
                ip=client_ip(request),
            )
        except ProvisioningError as exc:
            messages.error(request, str(exc))
        else:
            if resumed.status == Municipality.Status.INCIDENT:
                done = _(
                    "%(name)s を再開しました。インシデント対応中のため、住民の予約サイトの"
                    "ログインは停止したままです。"
                )
            else:
                done = _("%(name)s を再開しました。")
            messages.success(request, done % {"name": municipality.name})
        return redirect("controlplane:municipality_detail", code=municipality.code)
    return render(
        request,
        "controlplane/municipality_resume.html",
        {"municipality": municipality, "form": form},
    )


@require_http_methods(["GET", "POST"])
@operator_required
def municipality_admin_reinvite_view(request: HttpRequest, code: str) -> HttpResponse:
    """A new first-admin setup link, while the municipality has no admin who can sign in."""
    municipality = municipality_get(code=code)
    form = AdminReinviteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation = municipality_admin_reinvite(
                municipality=municipality,
                admin_email=form.cleaned_data["admin_email"],
                actor=Actor.vendor(request.user),
                ip=client_ip(request),
            )
        except ProvisioningError as exc:
            form.add_error(None, str(exc))
        else:
            return render(
                request,
                "controlplane/admin_invited.html",
                {"municipality": municipality, "invitation": invitation},
            )
    return _admin_access_page(request, municipality, form=form)


def _admin_access_page(
    request: HttpRequest,
    municipality: Municipality,
    *,
    form: AdminReinviteForm | None = None,
    recover_form: AdminRecoverForm | None = None,
    status: int = 200,
) -> HttpResponse:
    decommissioned = municipality.status == Municipality.Status.DECOMMISSIONED
    has_admin = not decommissioned and municipality_has_admin(municipality)
    return render(
        request,
        "controlplane/municipality_admin_reinvite.html",
        {
            "municipality": municipality,
            "form": form or AdminReinviteForm(),
            "recover_form": recover_form or AdminRecoverForm(),
            "has_admin": has_admin,
            "decommissioned": decommissioned,
        },
        status=status,
    )


@require_POST
@operator_required
def municipality_admin_recover_view(request: HttpRequest, code: str) -> HttpResponse:
    """A reset link e-mailed to a lone admin who can no longer sign in."""
    municipality = municipality_get(code=code)
    form = AdminRecoverForm(request.POST)
    if form.is_valid():
        try:
            sent = municipality_admin_recover(
                municipality=municipality,
                admin_email=form.cleaned_data["email"],
                actor=Actor.vendor(request.user),
                ip=client_ip(request),
            )
        except ProvisioningError as exc:
            form.add_error(None, str(exc))
        else:
            if sent:
                messages.success(
                    request,
                    _(
                        "%(email)s に再設定リンクを送りました（有効期限は1日です）。"
                        "届いたメールのリンクから、新しいパスワードと認証アプリを登録するよう"
                        "お伝えください。"
                    )
                    % {"email": form.cleaned_data["email"].lower()},
                )
                return redirect("controlplane:municipality_detail", code=municipality.code)
            form.add_error(
                None,
                _(
                    "再設定リンクのメールを送信できませんでした。時間をおいて、もう一度"
                    "お試しください（そのときは新しいリンクが送られます）。"
                ),
            )
    return _admin_access_page(request, municipality, recover_form=form, status=400)


@require_http_methods(["GET", "POST"])
@operator_required
def municipality_decommission_view(request: HttpRequest, code: str) -> HttpResponse:
    municipality = municipality_get(code=code)
    form = DecommissionForm(request.POST if request.method == "POST" else None)
    # In use (active, or in incident mode): suspended first, never destroyed from here.
    live = municipality.status in (Municipality.Status.ACTIVE, Municipality.Status.INCIDENT)
    if request.method == "POST" and live:
        return render(
            request,
            "controlplane/municipality_decommission.html",
            {"municipality": municipality, "live": True, "row": municipality_row(code=code)},
            status=409,
        )
    if request.method == "POST" and form.is_valid():
        try:
            municipality_decommission(
                municipality=municipality,
                confirmation=form.cleaned_data["confirmation"],
                actor=Actor.vendor(request.user),
                ip=client_ip(request),
            )
        except ProvisioningError as exc:
            form.add_error("confirmation", str(exc))
        else:
            messages.success(
                request,
                _("%(name)s を廃止しました。鍵は破棄され、データは削除されました。")
                % {"name": municipality.name},
            )
            return redirect("controlplane:municipality_detail", code=municipality.code)
        municipality.refresh_from_db()  # a run stopped half-way has destroyed the key
    return render(
        request,
        "controlplane/municipality_decommission.html",
        {
            "municipality": municipality,
            "form": form,
            "live": live,
            "unfinished": decommission_unfinished(municipality),
            # What is destroyed, in counts (the stats the list shows, never a resident).
            "row": municipality_row(code=code),
        },
    )
