"""Phoning the residents whom no reminder reaches: the bookings of tomorrow whose resident
registered no contact a message could use (many of them elderly), listed for the call
centre, each marked once phoned so that operators share the list. Reading the list shows
voucher numbers, so it is audited; each mark is an event on the booking, taken back by
another (the trail is the record, never changed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from audit import record
from audit.chain import Actor
from booking.models import Booking
from booking.models.bookings import booking_number_display
from booking.notifications.selectors import reminder_unreachable
from booking.selectors.marks import bookings_marked

REMINDER_PHONED = "callcentre.reminder_phoned"
REMINDER_PHONED_UNDONE = "callcentre.reminder_phoned_undone"
REMINDER_CALLS_LISTED = "callcentre.reminder_calls_listed"


@dataclass(frozen=True)
class ReminderCall:
    booking: Booking
    number: str
    phoned_at: datetime | None


def reminder_calls(*, day: date, actor: Actor, ip: str | None = None) -> list[ReminderCall]:
    """The bookings of ``day`` no reminder reaches, those still to phone first; the read is
    audited with the day and how many were listed."""
    bookings = list(reminder_unreachable(day))
    phoned = _phoned([booking.pk for booking in bookings])
    calls = [
        ReminderCall(
            booking, booking_number_display(booking.booking_number), phoned.get(booking.pk)
        )
        for booking in bookings
    ]
    if calls:
        record(
            action=REMINDER_CALLS_LISTED,
            actor=actor,
            ip=ip,
            details={"day": day.isoformat(), "bookings": [call.booking.pk for call in calls]},
        )
    return sorted(calls, key=lambda call: call.phoned_at is not None)


def reminder_calls_left(day: date) -> int:
    """How many of ``day``'s bookings no reminder reaches are still to phone (a count: not
    audited)."""
    ids = list(reminder_unreachable(day).values_list("pk", flat=True))
    return len(ids) - len(_phoned(ids))


def reminder_phoned(
    *, booking: Booking, day: date, actor: Actor, ip: str | None = None, undo: bool = False
) -> bool:
    """Mark the resident of ``booking`` phoned about it (``undo``: take a mistaken mark
    back). False, with nothing recorded, when the booking is not on ``day``'s list or is
    marked so already."""
    if not reminder_unreachable(day).filter(pk=booking.pk).exists():
        return False
    if bool(_phoned([booking.pk])) != undo:
        return False
    record(
        action=REMINDER_PHONED_UNDONE if undo else REMINDER_PHONED,
        actor=actor,
        target=booking,
        ip=ip,
        details={"day": day.isoformat()},
    )
    return True


def _phoned(booking_ids: list[int]) -> dict[int, datetime]:
    """When each of these bookings' residents was marked phoned (a mark not taken back)."""
    return bookings_marked(
        mark=REMINDER_PHONED, undone=REMINDER_PHONED_UNDONE, booking_ids=booking_ids
    )
