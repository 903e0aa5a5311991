"""The municipality's notification settings and its own message wording, changed from the console.

Writes here are audited with what changed, never with a resident's value (there is none: the
settings and templates are the municipality's own). The pause switch, resending and the LINE
channel are in ``booking.services.notifications``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.template import Engine, TemplateSyntaxError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from audit import record
from audit.chain import Actor
from booking.models import (
    NotificationChannel,
    NotificationKind,
    NotificationSettings,
    NotificationTemplate,
    Slot,
    VaccineProduct,
    Venue,
)
from booking.notifications.rendering import JAPAN, RenderedMessage, render_text
from booking.services.notifications import notification_settings_lock

# What each kind's message may say: the keys of rendering.message_context that are filled
# for that kind. Nothing about the resident is among them.
_COMMON = ("municipality_name", "contact_phone")
_BOOKING = (
    "booking_number",
    "date",
    "start_time",
    "end_time",
    "venue_name",
    "venue_address",
    "venue_map_url",
    "product_name",
    "dose",
)
# What each placeholder stands for, as the template page explains it to the municipality.
PLACEHOLDER_LABELS: dict[str, Any] = {
    "booking_number": gettext_lazy("予約番号"),
    "date": gettext_lazy("接種日（曜日つき）"),
    "start_time": gettext_lazy("開始時刻"),
    "end_time": gettext_lazy("終了時刻"),
    "venue_name": gettext_lazy("会場名"),
    "venue_address": gettext_lazy("会場の住所"),
    "venue_map_url": gettext_lazy("会場の地図のURL"),
    "product_name": gettext_lazy("ワクチン名"),
    "dose": gettext_lazy("接種回数"),
    "previous_date": gettext_lazy("変更前の接種日"),
    "previous_time": gettext_lazy("変更前の開始時刻"),
    "notice": gettext_lazy("市区町村からのお知らせ文"),
    "municipality_name": gettext_lazy("市区町村名"),
    "contact_phone": gettext_lazy("コールセンターの電話番号"),
}
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    NotificationKind.BOOKING_CREATED: _BOOKING + _COMMON,
    NotificationKind.BOOKING_CHANGED: _BOOKING + ("previous_date", "previous_time") + _COMMON,
    NotificationKind.BOOKING_CANCELLED: _BOOKING + _COMMON,
    NotificationKind.REMINDER: _BOOKING + _COMMON,
    NotificationKind.SLOT_CANCELLED: _BOOKING + ("notice",) + _COMMON,
    NotificationKind.INCIDENT_NOTICE: ("notice",) + _COMMON,
}
SUBJECT_MAX = 200
BODY_MAX = 2000

_TAG = re.compile(r"\{%(.*?)%\}", re.DOTALL)
_VARIABLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"[a-z_]+")
_CONDITION = re.compile(r"if\s+([a-z_]+)")


def template_problems(text: str, *, kind: str) -> list[str]:
    """What is wrong with ``text`` as a template for ``kind``, in words for staff (none: [])."""
    allowed = PLACEHOLDERS[kind]
    problems: list[str] = []
    for match in _VARIABLE.finditer(text):
        name = match.group(1).strip()
        if not _NAME.fullmatch(name) or name not in allowed:
            problems.append(
                _("「%(placeholder)s」は使えない差し込み項目です。")
                % {"placeholder": match.group(0)}
            )
    for match in _TAG.finditer(text):
        tag = " ".join(match.group(1).split())
        condition = _CONDITION.fullmatch(tag)
        if tag in ("else", "endif") or (condition and condition.group(1) in allowed):
            continue
        problems.append(
            _(
                "「%(tag)s」は使えません。使える指定は "
                "{%% if 項目 %%}・{%% else %%}・{%% endif %%} だけです。"
            )
            % {"tag": match.group(0)}
        )
    if "｛" in text or "｝" in text:
        problems.append(
            _("全角の「｛」「｝」は使えません。差し込み項目は半角の {{ }} で囲んでください。")
        )
    # A mark left open ("{{ booking_number" with no "}}") would be sent as typed.
    variables, tags = len(_VARIABLE.findall(text)), len(_TAG.findall(text))
    if {text.count("{{"), text.count("}}")} != {variables} or {
        text.count("{%"),
        text.count("%}"),
    } != {tags}:
        problems.append(_("「{{」と「}}」（または「{%」と「%}」）の組み合わせが正しくありません。"))
    if not problems:
        try:
            Engine().from_string(text)
        except TemplateSyntaxError:
            problems.append(_("「if」と「endif」の組み合わせが正しくありません。"))
    return problems


def template_version(row: NotificationTemplate | None) -> str:
    """What the edit form showed: the municipality's own text (a fingerprint of it), or
    the standard one. A save or a return to the standard text from a form opened before
    another admin's change is refused (``seen_version``)."""
    if row is None:
        return "standard"
    digest = hashlib.sha256(f"{row.subject}\x00{row.body}".encode())
    return digest.hexdigest()[:16]


def _check_template_unchanged(
    kind: str, channel: str, language: str, seen_version: str
) -> NotificationTemplate | None:
    """The template's row, locked; ValidationError when it is not what the form showed."""
    row = (
        NotificationTemplate.objects.select_for_update()
        .filter(kind=kind, channel=channel, language=language)
        .first()
    )
    if seen_version and seen_version != template_version(row):
        raise ValidationError(
            _(
                "この画面を開いた後に、ほかの職員がこの文面を変更しました。保存していません。"
                "文面の一覧から開き直して、いまの文面を確かめてから変更してください。"
            ),
            code="changed_meanwhile",
        )
    return row


def notification_template_save(
    *,
    kind: str,
    channel: str,
    language: str,
    subject: str,
    body: str,
    actor: Actor,
    ip: str | None,
    seen_version: str = "",
) -> NotificationTemplate:
    """Use the municipality's own wording for one kind, channel and language.

    Raises ``ValidationError`` keyed by ``subject`` and ``body`` when a text uses a placeholder
    the kind does not have, a tag other than if/else/endif, or is malformed. A subject is
    kept for email only. Audited with the text as saved (placeholders, never a resident's
    data): the wording residents were sent can be told afterwards.
    """
    subject, body = _checked(kind=kind, channel=channel, subject=subject, body=body)
    with transaction.atomic():
        _check_template_unchanged(kind, channel, language, seen_version)
        row, created = NotificationTemplate.objects.update_or_create(
            kind=kind,
            channel=channel,
            language=language,
            defaults={"subject": subject, "body": body},
        )
        record(
            action="notification.template_saved",
            actor=actor,
            target=row,
            ip=ip,
            details={
                "kind": kind,
                "channel": channel,
                "language": language,
                "new": created,
                **({"subject": subject} if subject else {}),
                "body": body,
            },
        )
    return row


def notification_template_preview(
    *, kind: str, channel: str, language: str, subject: str, body: str, municipality_name: str
) -> RenderedMessage:
    """The message a text would make, filled in with a made-up booking at the municipality's
    first venue (nothing is saved or sent): refused as ``notification_template_save`` would."""
    subject, body = _checked(kind=kind, channel=channel, subject=subject, body=body)
    return render_text(
        subject=subject,
        body=body,
        context=_sample_context(),
        language=language,
        municipality_name=municipality_name,
    )


def _sample_context() -> dict[str, Any]:
    """An outbox row's context as a booking tomorrow at 10:00 would have it, at the venue and
    with the vaccine of the next slot offered (a pair that exists); a change from a week
    later."""
    slot = (
        Slot.objects.filter(starts_at__gt=timezone.now(), status=Slot.Status.OPEN)
        .select_related("venue", "product")
        .order_by("starts_at")
        .first()
    )
    venue = slot.venue if slot else Venue.objects.order_by("pk").first()
    product = slot.product if slot else VaccineProduct.objects.order_by("pk").first()
    tomorrow = timezone.localdate(timezone=JAPAN) + timedelta(days=1)
    starts = datetime.combine(tomorrow, time(10, 0), tzinfo=JAPAN)
    return {
        "booking_number": "8VSU6AGN34",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(minutes=30)).isoformat(),
        "previous_starts_at": (starts + timedelta(days=7)).isoformat(),
        "venue_name": venue.name if venue else _("市民会館"),
        "venue_address": (venue.address if venue else "") or _("（会場の住所）"),
        "venue_map_url": (venue.map_url if venue else "") or "https://www.example.jp/map",
        "product_name": product.name if product else _("（ワクチン名）"),
        "dose": 1,
        "notice": _("（ここに、市区町村が書いたお知らせ文が入ります。）"),
    }


# A mail without a subject reads as spam and is left unopened (the form says the same).
SUBJECT_REQUIRED = gettext_noop(
    "メールの件名を入力してください（件名のないメールは迷惑メールと見分けにくく、開かれないことがあります）。"
)


def _checked(*, kind: str, channel: str, subject: str, body: str) -> tuple[str, str]:
    """The subject and body as saved (a subject for email only), or ValidationError keyed by
    ``subject`` and ``body``."""
    if kind not in PLACEHOLDERS or channel not in NotificationChannel.values:
        raise ValueError("unknown notification kind or channel")
    subject = " ".join(subject.split()) if channel == NotificationChannel.EMAIL else ""
    body = body.replace("\r\n", "\n").strip()
    errors: dict[str, list[str]] = {}
    if not body:
        errors["body"] = [_("本文を入力してください。")]
    elif len(body) > BODY_MAX:
        errors["body"] = [_("本文は%(max)d文字以内にしてください。") % {"max": BODY_MAX}]
    else:
        errors["body"] = template_problems(body, kind=kind)
    if channel == NotificationChannel.EMAIL and not subject:
        errors["subject"] = [_(SUBJECT_REQUIRED)]
    elif len(subject) > SUBJECT_MAX:
        errors["subject"] = [_("件名は%(max)d文字以内にしてください。") % {"max": SUBJECT_MAX}]
    else:
        errors["subject"] = template_problems(subject, kind=kind)
    errors = {field: messages for field, messages in errors.items() if messages}
    if errors:
        raise ValidationError(errors)
    return subject, body


def notification_template_delete(
    *,
    kind: str,
    channel: str,
    language: str,
    actor: Actor,
    ip: str | None,
    seen_version: str = "",
) -> bool:
    """Go back to the packaged wording. Audited when there was something to delete.
    ``seen_version``: as for ``notification_template_save``."""
    with transaction.atomic():
        _check_template_unchanged(kind, channel, language, seen_version)
        deleted, _rows = NotificationTemplate.objects.filter(
            kind=kind, channel=channel, language=language
        ).delete()
        if deleted:
            record(
                action="notification.template_deleted",
                actor=actor,
                ip=ip,
                details={"kind": kind, "channel": channel, "language": language},
            )
    return bool(deleted)


def notification_settings_update(
    *,
    reminder_time: time,
    reminders_enabled: bool,
    email_from: str,
    sms_sender_id: str,
    contact_phone: str,
    actor: Actor,
    ip: str | None,
) -> NotificationSettings:
    """Change when reminders go out and what messages are sent from. Audited with the names
    of the fields that changed (and the reminder time, which is not personal)."""
    if reminder_time.second or reminder_time.microsecond:
        reminder_time = reminder_time.replace(second=0, microsecond=0)
    values = {
        "reminder_time": reminder_time,
        "reminders_enabled": reminders_enabled,
        "email_from": email_from.strip(),
        "sms_sender_id": sms_sender_id.strip(),
        "contact_phone": contact_phone.strip(),
    }
    with transaction.atomic():
        row = notification_settings_lock()
        changed = sorted(name for name, value in values.items() if getattr(row, name) != value)
        if not changed:
            return row
        for name, value in values.items():
            setattr(row, name, value)
        row.full_clean()
        row.save()
        record(
            action="notification.settings_updated",
            actor=actor,
            target=row,
            ip=ip,
            details={
                "changed": changed,
                "reminder_time": reminder_time.strftime("%H:%M"),
                "reminders_enabled": reminders_enabled,
            },
        )
    return row
