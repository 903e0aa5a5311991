"""What the municipal console shows about notifications: counts, and the messages that need a
person (failed, unconfirmed, retrying), each with its reason. Never an address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext_lazy

from booking.models import Booking, ContactPreference, Notification
from booking.services.reception import day_bounds

ATTENTION = Q(status__in=["failed", "unconfirmed"]) | (Q(status="pending") & ~Q(last_error=""))


@dataclass(frozen=True)
class NotificationRow:
    id: int
    kind: str
    channel: str
    status: str
    attempts: int
    reason: str
    booking_number: str
    created_at: datetime
    next_try_at: datetime | None


def notification_counts() -> dict[str, int]:
    """Rows per status, every status present (0 when none)."""
    counts = dict.fromkeys(Notification.Status.values, 0)
    for row in Notification.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def notifications_needing_attention(*, limit: int = 200) -> list[NotificationRow]:
    """Failed and unconfirmed messages, and those waiting for a retry, newest first."""
    rows = (
        Notification.objects.filter(ATTENTION)
        .order_by("-created_at")
        .values(
            "id",
            "kind",
            "channel",
            "status",
            "attempts",
            "last_error",
            "context__booking_number",
            "created_at",
            "not_before",
        )[:limit]
    )
    return [
        NotificationRow(
            id=row["id"],
            kind=row["kind"],
            channel=row["channel"],
            status=row["status"],
            attempts=row["attempts"],
            reason=row["last_error"],
            booking_number=row["context__booking_number"] or "",
            created_at=row["created_at"],
            next_try_at=row["not_before"] if row["status"] == "pending" else None,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class ReminderCoverage:
    """Tomorrow's bookings, and how many of them no reminder can reach (no contact address
    consented to on any channel): residents who rely on their letter or their own note."""

    day: date
    bookings: int
    unreachable: int


def _live_on(day: date) -> QuerySet[Booking]:
    start, end = day_bounds(day)
    return Booking.objects.filter(
        status__in=Booking.LIVE_STATUSES, slot__starts_at__gte=start, slot__starts_at__lt=end
    )


def _unreachable(bookings: QuerySet[Booking]) -> QuerySet[Booking]:
    reached = ContactPreference.objects.filter(ContactPreference.reachable()).values("voucher_id")
    return bookings.exclude(voucher_id__in=reached)


def reminder_coverage(day: date) -> ReminderCoverage:
    bookings = _live_on(day)
    total = bookings.count()
    unreachable = _unreachable(bookings).count() if total else 0
    return ReminderCoverage(day=day, bookings=total, unreachable=unreachable)


def reminder_unreachable(day: date) -> QuerySet[Booking]:
    """The live bookings of ``day`` that no reminder reaches, in the order of their slots."""
    return (
        _unreachable(_live_on(day))
        .select_related("voucher", "slot__venue")
        .order_by("slot__starts_at", "booking_number")
    )


# A sender's failure code (booking.notifications.delivery and providers) in words for the
# municipality's staff; the code itself stays beside it, for the vendor's support.
_FAILURES: tuple[tuple[str, Any], ...] = (
    ("booking.cancelled", gettext_lazy("予約が取り消されたため、送っていません。")),
    ("booking.changed", gettext_lazy("予約が変更されたため、この内容では送っていません。")),
    ("booking.", gettext_lazy("予約の状態が変わったため、送っていません。")),
    ("claim.expired", gettext_lazy("送信の処理が途中で止まりました。自動でやり直します。")),
    (
        "consent.withdrawn",
        gettext_lazy("住民がこの受け取り方をやめたか、連絡先がなくなったため、送っていません。"),
    ),
    ("attempts.exhausted", gettext_lazy("何度か送ろうとしましたが、送れませんでした。")),
    ("config.email_from", gettext_lazy("送信元のメールアドレスが設定されていません。")),
    ("config.line_channel", gettext_lazy("LINEの設定がありません。")),
    ("sms.not_japanese_number", gettext_lazy("日本の携帯電話番号ではないため、送れません。")),
    ("content.personal_data", gettext_lazy("本文に個人の情報が含まれていたため、送っていません。")),
    ("aws.connection", gettext_lazy("送信サービスにつながりませんでした。")),
    ("aws.", gettext_lazy("送信サービスが受け付けませんでした。")),
    ("line.connection", gettext_lazy("LINEにつながりませんでした。")),
    ("line.token", gettext_lazy("LINEの認証に失敗しました。LINEの設定を確かめてください。")),
    ("line.", gettext_lazy("LINEが受け付けませんでした。")),
)


def failure_text(reason: str) -> str:
    """Why a message was not sent, in words ("" when none is recorded)."""
    if not reason:
        return ""
    for prefix, text in _FAILURES:
        if reason.startswith(prefix):
            return str(text)
    return str(gettext_lazy("送れませんでした。"))
