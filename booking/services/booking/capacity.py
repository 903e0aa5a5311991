"""Claiming and releasing a slot's places, and the availability marks to refresh."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from functools import cache, partial

from django.db import connection, transaction

from booking.models import Channel, Slot
from booking.selectors.availability import availability_invalidate, mark_for
from booking.services.booking.access import _check_channel
from booking.services.booking.checks import _Context, _day_of
from booking.services.booking.refusals import BookingRefused
from sesshu.rows import column, fetch_one, table

logger = logging.getLogger("sesshu.booking")

# Column names come from this fixed table, never from input. Each claim is a single statement:
# the row lock it takes serialises concurrent claims on the slot, and the WHERE clause is
# re-checked against the committed row, so the last place goes to exactly one transaction.

_CLAIM_SQL = {
    channel: (
        f"UPDATE booking_slot SET booked_{channel} = booked_{channel} + 1 "  # noqa: S608
        f"WHERE id = %s AND status = 'open' AND booked_{channel} < capacity_{channel} "
        f"RETURNING booked_{channel}, capacity_{channel}"
    )
    for channel in Channel.values
}
_RELEASE_SQL = {
    channel: (
        f"UPDATE booking_slot SET booked_{channel} = booked_{channel} - 1 "  # noqa: S608
        f"WHERE id = %s AND booked_{channel} > 0 "
        f"RETURNING booked_{channel}, capacity_{channel}"
    )
    for channel in Channel.values
}


@dataclass
class SlotMarks:
    """Slots whose ◎○△× changed in this transaction: the cache to drop on commit."""

    changed: dict[str, set[date]] = field(default_factory=dict)

    def note(self, channel: str, slot: Slot, before: int, after: int, capacity: int) -> None:
        if mark_for(capacity - before, capacity) != mark_for(capacity - after, capacity):
            self.changed.setdefault(channel, set()).add(_day_of(slot.starts_at))

    def invalidate_on_commit(self) -> None:
        for channel, days in self.changed.items():
            transaction.on_commit(
                partial(availability_invalidate, channels=[channel], days=sorted(days))
            )


def slot_claim_capacity(*, slot: Slot, channel: str, marks: SlotMarks | None = None) -> bool:
    """Take one place of ``channel`` in ``slot``; False when none is left or it is not open.

    Call inside the booking transaction: a rollback gives the place back.
    """
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL[_check_channel(channel)], [slot.pk])
        row = cursor.fetchone()
    if row is None:
        return False
    booked, capacity = row
    setattr(slot, f"booked_{channel}", booked)
    if marks is not None:
        marks.note(channel, slot, booked - 1, booked, capacity)
    return True


def slot_release_capacity(*, slot: Slot, channel: str, marks: SlotMarks | None = None) -> None:
    """Give back one place of ``channel`` in ``slot``. Call inside the booking transaction."""
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE_SQL[_check_channel(channel)], [slot.pk])
        row = cursor.fetchone()
    if row is None:
        # The counter is already 0: someone changed it by hand. The booking is released
        # anyway; the count cannot go below zero (CHECK) and the drift is logged.
        logger.error("slot %s: %s counter already 0 when releasing a booking", slot.pk, channel)
        return
    booked, capacity = row
    setattr(slot, f"booked_{channel}", booked)
    if marks is not None:
        marks.note(channel, slot, booked + 1, booked, capacity)


@cache
def _slot_status_query() -> str:
    """The slot's status by id, its names taken from the model (made once per process)."""
    return f"SELECT {column(Slot, 'status')} FROM {table(Slot)} WHERE id = %s"  # noqa: S608


def _refusal_after_failed_claim(ctx: _Context, slot: Slot, dose: int) -> BookingRefused:
    """The claim found no place: full, unless the slot was closed in the meantime."""
    # On the path of every "full" answer in a rush: one statement, not compiled (sesshu.rows).
    row = fetch_one(_slot_status_query(), [slot.pk])
    code = "full" if row is not None and row[0] == Slot.Status.OPEN else "slot_closed"
    return BookingRefused(code, dose=dose, slot_id=slot.pk, phone=ctx.phone)
