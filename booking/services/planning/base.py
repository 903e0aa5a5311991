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
    """A planning rule said no; ``message`` is for the staff member (Japanese)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
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
