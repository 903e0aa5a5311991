"""Message texts: the municipality's own template if it has one, else the packaged one.

Templates see only the outbox row's context (booking number, venue, dose, times, extras),
the municipality's name and contact number: nothing about the resident exists in it. Texts
are plain (no HTML), rendered without autoescaping. SMS and LINE share the short template.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.template import Context, Engine, TemplateDoesNotExist, engines
from django.template.backends.django import DjangoTemplates
from django.template.loader import select_template

from booking.models import BookingPolicy, NotificationSettings, NotificationTemplate
from booking.models.bookings import booking_number_display

JAPAN = ZoneInfo("Asia/Tokyo")
TEMPLATE_DIR = "booking/notifications"
_WEEKDAYS_JA = "月火水木金土日"


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str


def _engine() -> Engine:
    backend = engines["django"]
    assert isinstance(backend, DjangoTemplates)
    return backend.engine


def _when(value: str | None, language: str) -> dict[str, str]:
    if not value:
        return {"date": "", "time": ""}
    moment = datetime.fromisoformat(value).astimezone(JAPAN)
    if language == "en":
        return {"date": moment.strftime("%a %-d %b %Y"), "time": moment.strftime("%H:%M")}
    weekday = _WEEKDAYS_JA[moment.weekday()]
    return {
        "date": f"{moment.year}年{moment.month}月{moment.day}日（{weekday}）",
        "time": moment.strftime("%H:%M"),
    }


def message_context(
    context: dict[str, Any], *, language: str, municipality_name: str
) -> dict[str, Any]:
    starts = _when(context.get("starts_at"), language)
    ends = _when(context.get("ends_at"), language)
    previous = _when(context.get("previous_starts_at"), language)
    settings_row = NotificationSettings.objects.filter(pk=NotificationSettings.SINGLETON_ID).first()
    return {
        **context,
        # As the residents' pages and the confirmation sheet write it (8VSU6-AGN34), which
        # is what reception is read out and what a resident compares.
        "booking_number": booking_number_display(str(context.get("booking_number") or "")),
        "date": starts["date"],
        "start_time": starts["time"],
        "end_time": ends["time"],
        "previous_date": previous["date"],
        "previous_time": previous["time"],
        "municipality_name": municipality_name,
        "contact_phone": (settings_row.contact_phone if settings_row else "")
        # The call centre's number of the booking rules when messages have none of their own
        # (one number set is enough for residents to be told where to call).
        or BookingPolicy.current().call_centre_phone,
    }


def _channel_group(channel: str) -> str:
    return "email" if channel == "email" else "short"


def render_message(
    *, kind: str, channel: str, language: str, context: dict[str, Any], municipality_name: str
) -> RenderedMessage:
    values = Context(
        message_context(context, language=language, municipality_name=municipality_name),
        autoescape=False,
    )
    custom = NotificationTemplate.objects.filter(
        kind=kind, channel=channel, language=language
    ).first()
    if custom is not None:
        subject = custom.subject
        if not subject and _channel_group(channel) == "email":
            # Saved without a subject before one was required: never a mail without one.
            subject = packaged_source(kind=kind, channel=channel, language=language, part="subject")
        return _rendered(subject, custom.body, values)
    body = _packaged(_packaged_name(kind, channel, language, "body")).render(values)
    subject = (
        _packaged(_packaged_name(kind, channel, language, "subject")).render(values)
        if _channel_group(channel) == "email"
        else ""
    )
    return RenderedMessage(subject=" ".join(subject.split()), body=_tidy(body))


def render_text(
    *, subject: str, body: str, context: dict[str, Any], language: str, municipality_name: str
) -> RenderedMessage:
    """A municipality's own subject and body, filled in from an outbox row's ``context``."""
    values = Context(
        message_context(context, language=language, municipality_name=municipality_name),
        autoescape=False,
    )
    return _rendered(subject, body, values)


def _rendered(subject: str, body: str, values: Context) -> RenderedMessage:
    engine = _engine()
    subject = engine.from_string(subject).render(values) if subject else ""
    return RenderedMessage(
        subject=" ".join(subject.split()), body=_tidy(engine.from_string(body).render(values))
    )


def _packaged_name(kind: str, channel: str, language: str, part: str) -> str:
    """``part`` is "body" or "subject" (email only)."""
    return f"{language}/{kind}.{_channel_group(channel) if part == 'body' else part}.txt"


def packaged_source(*, kind: str, channel: str, language: str, part: str) -> str:
    """The packaged wording of ``part`` ("body" or "subject") as written, placeholders and
    all, for staff to start their own from; "" when there is none."""
    try:
        return str(_packaged(_packaged_name(kind, channel, language, part)).source).strip()
    except TemplateDoesNotExist:
        return ""


def _packaged(name: str) -> Any:
    # The backend wrapper's render() always autoescapes; plain text needs the inner template.
    return select_template([f"{TEMPLATE_DIR}/{name}"]).template  # type: ignore[attr-defined]


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue  # template tags leave blank lines behind
        out.append(line)
    return "\n".join(out)


# What one SMS holds: 160 characters of the GSM alphabet's basic set (153 a part when split),
# or 70 of anything else — Japanese among it (67 a part).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def sms_parts(text: str) -> int:
    """How many messages an SMS of ``text`` goes as."""
    single, part = (160, 153) if set(text) <= _GSM_BASIC else (70, 67)
    return 1 if len(text) <= single else -(-len(text) // part)
