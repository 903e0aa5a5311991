"""What the municipal console shows about notifications: counts, and the messages that need a
person (failed, unconfirmed, retrying), each with its reason. Never an address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Q

from booking.models import Booking, Notification, Voucher

JAPAN = ZoneInfo("Asia/Tokyo")

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


def reminder_coverage(day: date) -> ReminderCoverage:
    start = datetime.combine(day, time(0, 0), tzinfo=JAPAN)
    bookings = Booking.objects.filter(
        status__in=Booking.LIVE_STATUSES,
        slot__starts_at__gte=start,
        slot__starts_at__lt=start + timedelta(days=1),
    )
    reachable = (
        Q(
            contact_preference__email_consented_at__isnull=False,
            contact_preference__email__isnull=False,
        )
        | Q(
            contact_preference__sms_consented_at__isnull=False,
            contact_preference__phone__isnull=False,
        )
        | Q(
            contact_preference__line_consented_at__isnull=False,
            contact_preference__line_user_id__isnull=False,
        )
    )
    reached = Voucher.objects.filter(reachable).values("pk")
    total = bookings.count()
    unreachable = bookings.exclude(voucher__in=reached).count() if total else 0
    return ReminderCoverage(day=day, bookings=total, unreachable=unreachable)
