"""Cancelling a live booking, and the doses booked together with it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import record
from audit.chain import Actor
from booking.models import Booking, BookingPolicy
from booking.selectors.residents import bookings_linked_to
from booking.services.booking.access import _check_actor, _check_channel, _check_municipality
from booking.services.booking.capacity import SlotMarks, slot_release_capacity
from booking.services.booking.change import (
    _check_changeable,
    _check_not_moved,
    _check_same_voucher,
    _lock_booking,
)
from booking.services.booking.checks import _Context, _lock_voucher
from booking.services.booking.notices import _notify, _withdraw_notices
from sesshu import metrics


def booking_cancel(
    *,
    booking: Booking,
    channel: str,
    actor: Actor,
    ip: str | None = None,
    notification_kind: str = "booking_cancelled",
    notification_extra: dict[str, Any] | None = None,
    reason: str | None = None,
    expected_slot_id: int | None = None,
    told: dict[str, str] | None = None,
) -> Booking:
    """Cancel a live booking and give its place back to the channel it was booked through.

    Residents cannot cancel after the cut-off; the call centre and staff can (an elderly
    resident phoning on the morning of the appointment). With ``policy.cancel_cascades``
    the doses booked together with it (``linked``) are cancelled too. Cancelling a cancelled
    booking returns it unchanged.

    The resident is told with a ``notification_kind`` message about ``booking`` (a slot
    cancelled by the municipality says so, and why, instead of a plain 予約取消) and a
    ``booking_cancelled`` one about each dose cancelled with it.

    ``reason`` (``Booking.CancelReason``): a booking ended at the venue, not by the caller
    or their call; kept on the booking (not on a dose cancelled with it). The trail records
    the reason instead of the channel the staff member acts through (the call centre's, for
    every member of staff).

    ``expected_slot_id``: the slot the booking had when the page that cancels it was shown.
    If it has moved since (an operator changed it while the resident's page stood open, or
    the other way round), nothing is cancelled: the caller may just have been told the new
    day, and a page showing the old one must not take it away.

    ``told``: what the caller told the call centre (who asked, and why), recorded with the
    cancellation of ``booking`` itself.
    """
    channel = _check_channel(channel)
    _check_actor(actor, channel, booking.voucher_id)
    _check_municipality(booking)

    def cancel() -> Booking:
        ctx = _Context(
            timezone.now(), BookingPolicy.current(), channel, _lock_voucher(booking.voucher_id)
        )
        current = _lock_booking(booking.pk)
        _check_same_voucher(current, ctx.voucher)
        if current.status == Booking.Status.CANCELLED:
            return current
        _check_changeable(ctx, current, actor, late_allowed=actor.kind != Actor.RESIDENT)
        _check_not_moved(current, expected_slot_id, code="moved_before_cancel")
        marks = SlotMarks()
        cancelled = [current]
        if ctx.policy.cancel_cascades:
            cancelled += bookings_linked_to(current, lock=True)
        for each in sorted(cancelled, key=lambda b: b.slot_id):
            slot_release_capacity(slot=each.slot, channel=each.channel, marks=marks)
        for each in cancelled:
            each.status = Booking.Status.CANCELLED
            each.cancelled_at = ctx.now
            # The reason is this booking's: a dose cancelled with it was not put off.
            each.cancel_reason = (reason or "") if each is current else ""
            each.save(update_fields=["status", "cancelled_at", "cancel_reason"])
        for each in cancelled:
            _withdraw_notices(each, because="cancelled")
            if each is current:
                _notify(notification_kind, each, notification_extra)
            else:
                _notify("booking_cancelled", each)
        metrics.booking_cancelled(channel, len(cancelled))
        for each in cancelled:
            record(
                action="booking.cancelled",
                actor=actor,
                target=each,
                ip=ip,
                details={
                    **({"reason": reason} if reason else {"channel": channel}),
                    "dose": each.dose,
                    "slot": each.slot_id,
                    # Where the resident booked, and whose places the booking held (a
                    # call-centre change moves a web booking to the call centre's places).
                    "booked_through": each.booked_through,
                    "booked_channel": each.channel,
                    "cascade_of": None if each is current else current.pk,
                    **((told or {}) if each is current else {}),
                },
            )
        marks.invalidate_on_commit()
        return current

    with transaction.atomic():
        return cancel()
