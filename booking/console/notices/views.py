"""Notifications in the console: the municipality's admins only.

What is shown of a message is what the outbox holds: kind, channel, status, the reason (a
code, never an address), the booking number and times. Every change goes through an audited
service; the LINE token is write-only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from audit.chain import Actor
from audit.middleware import client_ip
from booking.console.access import staff_required
from booking.console.callcentre.pages import console_page
from booking.console.notices.forms import (
    LineChannelForm,
    PauseForm,
    SettingsForm,
    TemplateForm,
)
from booking.models import (
    Language,
    LineChannel,
    Notification,
    NotificationChannel,
    NotificationKind,
    NotificationTemplate,
    StaffMember,
)
from booking.models.bookings import booking_number_display
from booking.notifications.rendering import packaged_source, sms_parts
from booking.notifications.selectors import (
    failure_text,
    notification_counts,
    notifications_needing_attention,
    reminder_coverage,
)
from booking.registry.dates import today_in_japan
from booking.services.notification_settings import (
    PLACEHOLDER_LABELS,
    PLACEHOLDERS,
    notification_settings_update,
    notification_template_delete,
    notification_template_preview,
    notification_template_save,
    template_version,
)
from booking.services.notifications import (
    line_channel_configure,
    notification_resend,
    notification_settings_get,
    notifications_pause_set,
)
from booking.services.planning import cancelled_slots_to_phone
from tenants.db import current_municipality

admins = staff_required(StaffMember.Role.ADMIN)
ATTENTION_SHOWN = 200
RESENDABLE = ("failed", "unconfirmed")


def _actor(request: HttpRequest) -> Actor:
    return Actor.staff(request.user)


def _submit(
    request: HttpRequest, form: forms.Form, save: Callable[[], object], *, done: str, to: str
) -> HttpResponse | None:
    """A POSTed form through its service: the redirect after success, or None (the page is
    shown again with the form's errors, the service's refusal among them)."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        save()
    except ValidationError as invalid:
        form.add_error(None, invalid)
        return None
    messages.success(request, done)
    return redirect(to)


def _status(request: HttpRequest) -> int:
    # A form page shown again after a POST is shown because something in it was refused.
    return 400 if request.method == "POST" else 200


def _attention() -> list[dict[str, Any]]:
    return [
        {
            "id": row.id,
            "kind": NotificationKind(row.kind).label,
            "channel": NotificationChannel(row.channel).label,
            "status": row.status,
            "status_label": Notification.Status(row.status).label,
            "attempts": row.attempts,
            "reason": row.reason,
            "reason_text": failure_text(row.reason),
            "booking_number": booking_number_display(row.booking_number)
            if row.booking_number
            else "",
            "created_at": row.created_at,
            "next_try_at": row.next_try_at,
            "resendable": row.status in RESENDABLE,
        }
        for row in notifications_needing_attention(limit=ATTENTION_SHOWN)
    ]


@require_http_methods(["GET"])
@admins
def index(request: HttpRequest) -> HttpResponse:
    counts = notification_counts()
    line_channel = LineChannel.objects.filter(pk=LineChannel.SINGLETON_ID).first()
    context = {
        "counts": [
            {"status": value, "label": label, "count": counts[value]}
            for value, label in Notification.Status.choices
        ],
        "attention": _attention(),
        "attention_limit": ATTENTION_SHOWN,
        "settings": notification_settings_get(),
        "line_channel": line_channel,
        "custom_templates": NotificationTemplate.objects.count(),
        # Residents no message could reach (no contact): told by phone, listed elsewhere.
        "to_phone": sum(count for _slot, count in cancelled_slots_to_phone()),
        # Tomorrow's bookings that no reminder reaches (no contact consented to).
        "coverage": reminder_coverage(today_in_japan() + timedelta(days=1)),
    }
    return console_page(request, "booking/console/notices/index.html", context)


@require_POST
@admins
def resend(request: HttpRequest, notification_id: int) -> HttpResponse:
    try:
        notification_resend(
            notification_id=notification_id, actor=_actor(request), ip=client_ip(request)
        )
    except ValidationError:
        messages.error(
            request,
            _("このお知らせは再送できません。すでに送信済みか、送信待ちの可能性があります。"),
        )
    else:
        messages.success(request, _("お知らせを送信待ちに戻しました。まもなく送信されます。"))
    return redirect("console:notices:index")


@require_POST
@admins
def pause(request: HttpRequest) -> HttpResponse:
    form = PauseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("操作を受け付けられませんでした。もう一度お試しください。"))
        return redirect("console:notices:index")
    paused = form.cleaned_data["action"] == "pause"
    notifications_pause_set(paused=paused, actor=_actor(request), ip=client_ip(request))
    if paused:
        messages.success(
            request,
            _("送信を一時停止しました。お知らせは送信待ちのまま保たれ、再開すると送られます。"),
        )
    else:
        messages.success(request, _("送信を再開しました。待っていたお知らせを送ります。"))
    return redirect("console:notices:index")


@require_http_methods(["GET", "POST"])
@admins
def settings_edit(request: HttpRequest) -> HttpResponse:
    row = notification_settings_get()
    initial = {
        "reminder_time": row.reminder_time,
        "reminders_enabled": row.reminders_enabled,
        "email_from": row.email_from,
        "sms_sender_id": row.sms_sender_id,
        "contact_phone": row.contact_phone,
    }
    form = SettingsForm(request.POST or None, initial=initial)
    saved = _submit(
        request,
        form,
        lambda: notification_settings_update(
            **form.cleaned_data, actor=_actor(request), ip=client_ip(request)
        ),
        done=_("通知の設定を保存しました。"),
        to="console:notices:settings",
    )
    if saved is not None:
        return saved
    return console_page(
        request, "booking/console/notices/settings.html", {"form": form}, status=_status(request)
    )


def _cells() -> list[dict[str, Any]]:
    custom = set(NotificationTemplate.objects.values_list("kind", "channel", "language"))
    return [
        {
            "kind": kind,
            "label": label,
            "cells": [
                {
                    "channel": channel,
                    "channel_label": channel_label,
                    "language": language,
                    "language_label": language_label,
                    "custom": (kind, channel, language) in custom,
                }
                for channel, channel_label in NotificationChannel.choices
                for language, language_label in Language.choices
            ],
        }
        for kind, label in NotificationKind.choices
    ]


@require_http_methods(["GET"])
@admins
def templates(request: HttpRequest) -> HttpResponse:
    return console_page(request, "booking/console/notices/templates.html", {"kinds": _cells()})


@require_http_methods(["GET", "POST"])
@admins
def template_edit(request: HttpRequest, kind: str, channel: str, language: str) -> HttpResponse:
    if (
        kind not in NotificationKind.values
        or channel not in NotificationChannel.values
        or language not in Language.values
    ):
        raise Http404("no such template")
    email = channel == NotificationChannel.EMAIL
    custom = NotificationTemplate.objects.filter(
        kind=kind, channel=channel, language=language
    ).first()
    if custom is not None:
        initial = {"subject": custom.subject, "body": custom.body}
    else:
        initial = {
            "subject": packaged_source(
                kind=kind, channel=channel, language=language, part="subject"
            )
            if email
            else "",
            "body": packaged_source(kind=kind, channel=channel, language=language, part="body"),
        }
    initial["version"] = template_version(custom)
    form = TemplateForm(request.POST or None, initial=initial, email=email)
    seen = request.POST.get("version", "")
    ip = client_ip(request)
    preview = None
    if request.method == "POST":
        if request.POST.get("action") == "preview":
            # The text as a resident would receive it: nothing saved, sent or recorded.
            if form.is_valid():
                try:
                    preview = notification_template_preview(
                        kind=kind,
                        channel=channel,
                        language=language,
                        subject=form.cleaned_data.get("subject", ""),
                        body=form.cleaned_data["body"],
                        municipality_name=current_municipality().name,
                    )
                except ValidationError as invalid:
                    form.add_error(None, invalid)
        elif request.POST.get("action") == "delete":
            if not request.POST.get("confirm"):
                # One press of a button beside 保存 would lose the municipality's wording.
                messages.error(
                    request, _("標準の文面に戻すときは、確認のチェックを入れてください。")
                )
                return redirect(request.path)
            try:
                notification_template_delete(
                    kind=kind,
                    channel=channel,
                    language=language,
                    actor=_actor(request),
                    ip=ip,
                    seen_version=seen,
                )
            except ValidationError as refused:
                messages.error(request, refused.messages[0])
                return redirect(request.path)
            messages.success(request, _("標準の文面に戻しました。"))
            return redirect("console:notices:templates")
    saved = (
        None
        if request.POST.get("action") == "preview"
        else _submit(
            request,
            form,
            lambda: notification_template_save(
                kind=kind,
                channel=channel,
                language=language,
                subject=form.cleaned_data.get("subject", ""),
                body=form.cleaned_data["body"],
                actor=_actor(request),
                ip=ip,
                seen_version=form.cleaned_data["version"],
            ),
            done=_("文面を保存しました。次に送るお知らせから使われます。"),
            to="console:notices:templates",
        )
    )
    if saved is not None:
        return saved
    context = {
        "form": form,
        "kind_label": NotificationKind(kind).label,
        "channel_label": NotificationChannel(channel).label,
        "language_label": Language(language).label,
        "custom": custom,
        "placeholders": [(name, PLACEHOLDER_LABELS.get(name, "")) for name in PLACEHOLDERS[kind]],
        "short": not email,
        "action_url": request.path,
        "preview": preview,
        # A long SMS goes as several messages.
        "sms_parts": sms_parts(preview.body) if preview and channel == "sms" else 0,
        # An incident's notice is about no booking: the preview does not say it is one's.
        "about_a_booking": kind != NotificationKind.INCIDENT_NOTICE,
    }
    status = 200 if preview is not None else _status(request)
    return console_page(
        request, "booking/console/notices/template_edit.html", context, status=status
    )


@require_http_methods(["GET", "POST"])
@admins
def line(request: HttpRequest) -> HttpResponse:
    row = LineChannel.objects.filter(pk=LineChannel.SINGLETON_ID).first()
    form = LineChannelForm(request.POST or None)
    saved = _submit(
        request,
        form,
        lambda: line_channel_configure(
            **form.cleaned_data, actor=_actor(request), ip=client_ip(request)
        ),
        done=_("LINEチャネルの設定を保存しました。"),
        to="console:notices:line",
    )
    if saved is not None:
        return saved
    context = {"form": form, "channel": row}
    return console_page(
        request, "booking/console/notices/line.html", context, status=_status(request)
    )
