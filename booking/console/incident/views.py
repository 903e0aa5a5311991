"""Incident mode and allowed networks: the municipality's admins only."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from audit.middleware import client_ip
from booking.console.access import staff_required
from booking.console.callcentre.pages import console_page
from booking.console.incident.forms import (
    IncidentEndForm,
    IncidentStartForm,
    LostLettersForm,
    NetworksForm,
)
from booking.models import BookingPolicy, ConsoleNetwork, Incident, StaffMember
from booking.services.incident import (
    IncidentRefused,
    console_networks_replace,
    default_notice,
    default_reopening_notice,
    incident_end,
    incident_start,
    network_list_parse,
    network_of,
    residents_have_passwords,
)
from booking.services.incident_codes import incident_codes_reissue
from booking.services.lost_letters import (
    LettersSecured,
    letters_stopped,
    lost_letters_release,
    lost_letters_secure,
)
from booking.services.notifications import notification_settings_get
from tenants.models import Municipality

admins = staff_required(StaffMember.Role.ADMIN)


def _index(
    request: HttpRequest,
    *,
    start_form: IncidentStartForm | None = None,
    end_form: IncidentEndForm | None = None,
    letters_form: LostLettersForm | None = None,
    status: int = 200,
) -> HttpResponse:
    municipality: Municipality = request.tenant  # type: ignore[attr-defined]
    context: dict[str, Any] = {
        "in_incident": municipality.status == Municipality.Status.INCIDENT,
        "open_incident": Incident.open(),
        "history": Incident.objects.select_related("started_by", "ended_by")[:20],
        "passwords": residents_have_passwords(municipality),
        "start_form": start_form
        or IncidentStartForm(
            initial={"notice": default_notice(municipality)},
            passwords=residents_have_passwords(municipality),
        ),
        "end_form": end_form
        or IncidentEndForm(initial={"notice": default_reopening_notice(municipality)}),
        "network_count": ConsoleNetwork.objects.count(),
        "letters_form": letters_form or LostLettersForm(prefix="letters", code=municipality.code),
        "letters_stopped": letters_stopped(),
        # Paused messages include the incident's own notice: the page says so.
        "notifications_paused": notification_settings_get().paused,
        # The notice sends residents to the call centre: without its number, nowhere.
        "no_call_centre_phone": not BookingPolicy.current().call_centre_phone,
    }
    return console_page(request, "booking/console/incident/index.html", context, status=status)


@require_http_methods(["GET"])
@admins
def index(request: HttpRequest) -> HttpResponse:
    return _index(request)


@require_POST
@admins
def start(request: HttpRequest) -> HttpResponse:
    passwords = residents_have_passwords(request.tenant)  # type: ignore[attr-defined]
    form = IncidentStartForm(request.POST, passwords=passwords)
    if not form.is_valid():
        return _index(request, start_form=form, status=400)
    try:
        incident = incident_start(
            staff=request.staff,  # type: ignore[attr-defined]
            notice=form.cleaned_data["notice"],
            ip=client_ip(request),
        )
    except ValidationError as invalid:
        form.add_error("notice", invalid)
        return _index(request, start_form=form, status=400)
    except IncidentRefused as refused:
        messages.error(request, refused.message)
        return redirect("console:incident:index")
    messages.success(
        request,
        (
            _(
                "インシデントモードを開始しました。住民のパスワード%(passwords)d件を無効にし、"
                "セッション%(sessions)d件を終了し、お知らせ%(notices)d件を送信待ちにしました。"
            )
            if passwords
            else _(
                "インシデントモードを開始しました。住民のセッション%(sessions)d件を終了し、"
                "お知らせ%(notices)d件を送信待ちにしました。"
            )
        )
        % {
            "passwords": incident.passwords_reset,
            "sessions": incident.sessions_ended,
            "notices": incident.notices_queued,
        },
    )
    return redirect("console:incident:index")


@require_POST
@admins
def end(request: HttpRequest) -> HttpResponse:
    form = IncidentEndForm(request.POST)
    if not form.is_valid():
        return _index(request, end_form=form, status=400)
    try:
        _incident, queued = incident_end(
            staff=request.staff,  # type: ignore[attr-defined]
            ip=client_ip(request),
            reopening_notice=form.cleaned_data["notice"],
        )
    except IncidentRefused as refused:
        messages.error(request, refused.message)
        return redirect("console:incident:index")
    if queued:
        messages.success(
            request,
            _(
                "インシデントモードを終了し、住民向けサイトを再開しました。"
                "再開のお知らせ%(notices)d件を送信待ちにしました。"
            )
            % {"notices": queued},
        )
    else:
        messages.success(request, _("インシデントモードを終了し、住民向けサイトを再開しました。"))
    return redirect("console:incident:index")


@require_POST
@admins
def codes_reissue(request: HttpRequest) -> HttpResponse:
    try:
        reissue = incident_codes_reissue(
            staff=request.staff,  # type: ignore[attr-defined]
            ip=client_ip(request),
        )
    except IncidentRefused as refused:
        messages.error(request, refused.message)
        return redirect("console:incident:index")
    messages.success(
        request,
        _(
            "認証コードを%(count)d件発行しました。印刷業者向けのファイルを"
            "ダウンロードしてください（1回限り）。"
        )
        % {"count": reissue.counts.get("codes_issued", 0)},
    )
    return redirect("console:imports:detail", pk=reissue.pk)


@require_POST
@admins
def letters(request: HttpRequest) -> HttpResponse:
    """Letters lost or stolen: close what the named vouchers' letters open (``secure``), or
    open web login again for them (``release``) once new letters are on their way."""
    # Prefixed: the page's other forms have a confirmation box of the same name.
    form = LostLettersForm(
        request.POST,
        prefix="letters",
        code=request.tenant.code,  # type: ignore[attr-defined]
    )
    release = request.POST.get("action") == "release"
    if not form.is_valid():
        return _index(request, letters_form=form, status=400)
    act = lost_letters_release if release else lost_letters_secure
    try:
        result = act(
            staff=request.staff,  # type: ignore[attr-defined]
            text=form.cleaned_data["numbers"],
            ip=client_ip(request),
        )
    except ValidationError as invalid:
        form.add_error("numbers", invalid)
        return _index(request, letters_form=form, status=400)
    except IncidentRefused as refused:
        messages.error(request, refused.message)
        return redirect("console:incident:index")
    _say_letters(request, result, release=release)
    if result.reissue is not None:
        return redirect("console:imports:detail", pk=result.reissue.pk)
    # The page's top, where the messages are.
    return redirect("console:incident:index")


def _say_letters(request: HttpRequest, result: LettersSecured, *, release: bool) -> None:
    if not result.stopped and not result.codes_replaced:
        messages.warning(
            request,
            _("ウェブでのログインを再開した接種券はありません。")
            if release
            else _("止めた接種券も、差し替えた認証コードもありません。"),
        )
    elif release:
        messages.success(
            request,
            _("%(count)s件の接種券で、ウェブでのログインを再開しました。")
            % {"count": result.stopped},
        )
    elif result.reissue is not None:
        messages.success(
            request,
            _(
                "%(count)s件の接種券で、未使用の認証コードを新しいものに差し替えました"
                "（郵送物のコードではログインできません）。印刷業者向けのファイルを"
                "ダウンロードしてください（1回限り）。"
            )
            % {"count": result.codes_replaced},
        )
    else:
        messages.success(
            request,
            _(
                "%(count)s件の接種券で、ウェブでのログインを止めました（ログイン中の"
                "セッション%(sessions)s件を終了）。"
            )
            % {"count": result.stopped, "sessions": result.sessions_ended},
        )
    if result.already:
        messages.info(
            request, _("%(count)s件は、すでに止めてありました。") % {"count": result.already}
        )
    if result.not_exposed and not release:
        messages.info(
            request,
            _(
                "%(count)s件は、パスワードの設定・利用登録・認証コードの使用が済んでいて、"
                "郵送物だけではログインできないため、そのままにしました。"
            )
            % {"count": result.not_exposed},
        )
    if result.not_found_count:
        messages.warning(
            request,
            _("%(count)s件は、有効な接種券にありません：%(numbers)s")
            % {
                "count": result.not_found_count,
                "numbers": "、".join(result.not_found)
                + ("…" if result.not_found_count > len(result.not_found) else ""),
            },
        )


def _networks_text() -> str:
    return "\n".join(f"{row.network} {row.label}".strip() for row in ConsoleNetwork.objects.all())


@require_http_methods(["GET", "POST"])
@admins
def networks(request: HttpRequest) -> HttpResponse:
    ip = client_ip(request)
    form = NetworksForm(request.POST or None, initial={"networks": _networks_text()})
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                entries = network_list_parse(form.cleaned_data["networks"])
                console_networks_replace(
                    staff=request.staff,  # type: ignore[attr-defined]
                    entries=entries,
                    current_ip=ip,
                    ip=ip,
                )
            except ValidationError as invalid:
                form.add_error("networks", invalid)
            else:
                messages.success(request, _("職員コンソールを使えるネットワークを保存しました。"))
                return redirect("console:incident:networks")
    return console_page(
        request,
        "booking/console/incident/networks.html",
        {
            "form": form,
            "current_ip": ip,
            "suggestion": network_of(ip),
            "saved": list(ConsoleNetwork.objects.all()),
        },
        status=status,
    )
