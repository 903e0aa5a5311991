"""What the planning services share: the refusal, Tokyo days, the residents' cache."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from functools import partial
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied
from django.db import transaction

from booking.models import Slot
from booking.models.bookings import made_in_current_schema
from booking.selectors.availability import availability_invalidate

JAPAN = ZoneInfo("Asia/Tokyo")


class PlanningRefused(Exception):
    """A planning rule said no; ``message`` is for the staff member (Japanese).
    ``by_channel``: where the refusal is about some channels' values (a slot's places),
    the message about each, for the form to put at its box."""

    def __init__(self, code: str, message: str, *, by_channel: dict[str, str] | None = None):
        self.code = code
        self.message = message
        self.by_channel = by_channel or {}
        super().__init__(code)


def invalidate_on_commit(days: Iterable[date]) -> None:
    """Drop the residents' cached availability of these days once the change commits."""
    days = sorted(set(days))
    if days:
        transaction.on_commit(partial(availability_invalidate, channels=None, days=days))


def check_slot(slot: Slot) -> None:
    if not made_in_current_schema(slot):
        raise PermissionDenied(f"slot {slot.pk} is not of the current municipality")


def slot_day(slot: Slot) -> date:
    return slot.starts_at.astimezone(JAPAN).date()
