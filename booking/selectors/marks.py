"""Marks kept as events on bookings ("phoned", and its undoing): the trail is the record,
never changed, so a mark is whatever its latest event says."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from audit.models import Event


def bookings_marked(*, mark: str, undone: str, booking_ids: Sequence[int]) -> dict[int, datetime]:
    """When each of these bookings was marked ``mark`` (its latest event of the two being
    ``mark``, not ``undone``)."""
    events = Event.objects.filter(
        action__in=[mark, undone],
        target_type="booking.booking",
        target_id__in=[str(pk) for pk in booking_ids],
    ).order_by("seq")
    marked: dict[int, datetime] = {}
    for action, target, at in events.values_list("action", "target_id", "occurred_at"):
        if action == mark:
            marked[int(target)] = at
        else:
            marked.pop(int(target), None)
    return marked
