"""The booking service's calls into notifications: the outbox row to send, the notices to
withdraw."""

from __future__ import annotations

from typing import Any

from booking.models import Booking


def _notify(kind: str, booking: Booking, extra: dict[str, Any] | None = None) -> None:
    """The one call into notifications: an outbox row in this transaction (sent on commit)."""
    from booking.services.notifications import notification_enqueue

    notification_enqueue(kind=kind, booking=booking, extra=extra)


def _withdraw_notices(booking: Booking, *, because: str) -> None:
    """Pending confirmations and reminders that describe the booking as it no longer is."""
    from booking.services.notifications import (
        WITHDRAWN_CANCELLED,
        WITHDRAWN_CHANGED,
        notifications_withdraw_for_booking,
    )

    reason = WITHDRAWN_CANCELLED if because == "cancelled" else WITHDRAWN_CHANGED
    notifications_withdraw_for_booking(booking=booking, reason=reason)
