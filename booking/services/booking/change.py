"""Moving a live booking to another slot, keeping its 予約番号."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from audit import record
from audit.chain import Actor
from booking.models import Booking, BookingPolicy, Slot, Voucher
from booking.selectors.residents import dose_history
from booking.services.booking.access import _check_actor, _check_channel, _check_municipality
from booking.services.booking.capacity import (
    SlotMarks,
    _refusal_after_failed_claim,
    slot_claim_capacity,
    slot_release_capacity,
)
from booking.services.booking.checks import (
    JAPAN,
    _birth_date,
    _check_eligible,
    _check_follows,
    _check_precedes,
    _check_slot,
    _Context,
    _load_slot,
    _lock_voucher,
    _product,
    booking_closes_at,
)
from booking.services.booking.notices import _notify, _withdraw_notices
from booking.services.booking.refusals import BookingRefused
from sesshu import metrics


def _lock_booking(booking_id: int) -> Booking:
    return (
        Booking.objects.select_for_update(of=("self",))
        .select_related("slot__venue", "slot__product")
        .get(pk=booking_id)
    )


def _check_same_voucher(booking: Booking, voucher: Voucher) -> None:
    if booking.voucher_id != voucher.pk:
        raise PermissionDenied("the booking changed hands while it was being loaded")


def _check_changeable(ctx: _Context, booking: Booking, actor: Actor, *, late_allowed: bool) -> None:
    if booking.status != Booking.Status.ACTIVE:
        # Cancelled, checked in or done (perhaps a moment ago, by someone else).
        raise BookingRefused("no_longer_booked", dose=booking.dose, phone=ctx.phone)
    if ctx.now > booking_closes_at(booking.slot, ctx.policy) and not late_allowed:
        raise BookingRefused(
            "cutoff_passed",
            dose=booking.dose,
            slot_id=booking.slot_id,
            hours=ctx.policy.closes_hours_before,
            phone=ctx.phone,
        )


def _check_not_moved(current: Booking, expected_slot_id: int | None, *, code: str) -> None:
    """Refuse (``code``) when the booking is no longer in the slot the page acting on it
    showed (``expected_slot_id``; None: not known), saying where it is now."""
    if expected_slot_id is None or current.slot_id == expected_slot_id:
        return
    moved_to = current.slot
    when = formats.date_format(timezone.localtime(moved_to.starts_at), _("n月j日（D）H:i"))
    raise BookingRefused(
        code, dose=current.dose, slot_id=current.slot_id, now=f"{when} {moved_to.venue.name}"
    )


def booking_change(
    *,
    booking: Booking,
    slot: Slot,
    channel: str,
    actor: Actor,
    ip: str | None = None,
    expected_slot_id: int | None = None,
    told: dict[str, str] | None = None,
) -> Booking:
    """Move a live booking to ``slot``; all or nothing, and the 予約番号 stays the same.

    The booking row is moved rather than replaced: the resident keeps the number they wrote
    down, and the one-live-booking-per-dose constraint holds throughout because the row never
    stops being live. The new place is claimed (from ``channel``) and the old one released
    (to the channel it was booked through) in the same transaction, so if the new slot is
    gone the old booking is untouched. Refused after the cut-off, for everyone: the call
    centre can cancel late and book anew. The previous slot stays in the audit trail.

    ``expected_slot_id``: the slot the booking had when the page that changes it was shown.
    If it has moved since (another operator, the resident's other tab), the change is
    refused rather than made over a change the caller may already have been told of.

    ``told``: what the caller told the call centre (who is on the phone), recorded with the
    change.
    """
    channel = _check_channel(channel)
    _check_actor(actor, channel, booking.voucher_id)
    _check_municipality(booking, slot)

    def change() -> Booking:
        ctx = _Context(
            timezone.now(), BookingPolicy.current(), channel, _lock_voucher(booking.voucher_id)
        )
        current = _lock_booking(booking.pk)
        _check_same_voucher(current, ctx.voucher)
        _check_changeable(ctx, current, actor, late_allowed=False)
        if ctx.voucher.status == Voucher.Status.WITHDRAWN:
            raise BookingRefused("voucher_withdrawn", phone=ctx.phone)
        if current.slot_id == slot.pk and current.channel == channel:
            return current
        _check_not_moved(current, expected_slot_id, code="changed_meanwhile")
        target = _load_slot(slot.pk)
        _check_eligible(ctx, target, current.dose, _birth_date(ctx.voucher))
        _check_slot(ctx, target, current.dose)
        history = dose_history(ctx.voucher)
        previous = history.doses.get(current.dose - 1)
        if previous is not None:
            _check_follows(
                target,
                current.dose,
                previous,
                previous_product=_product(previous.product_id, target, current.slot),
            )
        _check_precedes(target, current.dose, history.doses.get(current.dose + 1))

        marks = SlotMarks()
        old_slot, old_channel = current.slot, current.channel
        steps: list[tuple[int, Callable[[], None]]] = [
            (target.pk, partial(_claim_or_refuse, ctx, target, current.dose, marks)),
            (
                old_slot.pk,
                partial(slot_release_capacity, slot=old_slot, channel=old_channel, marks=marks),
            ),
        ]
        # Slot rows in id order (see the package's lock order); a failed claim rolls back a
        # release already made, so the order does not change the outcome.
        for _slot_id, step in sorted(steps, key=lambda item: item[0]):
            step()
        previous_starts_at = old_slot.starts_at
        current.slot = target
        current.channel = channel
        current.changed_at = ctx.now
        current.save(update_fields=["slot", "channel", "changed_at"])
        metrics.booking_changed(channel)
        _withdraw_notices(current, because="changed")
        _notify(
            "booking_changed",
            current,
            extra={"previous_starts_at": previous_starts_at.astimezone(JAPAN).isoformat()},
        )
        record(
            action="booking.changed",
            actor=actor,
            target=current,
            ip=ip,
            details={
                "channel": channel,
                "dose": current.dose,
                "slot": target.pk,
                "previous_slot": old_slot.pk,
                "previous_channel": old_channel,
                **(told or {}),
            },
        )
        marks.invalidate_on_commit()
        return current

    with transaction.atomic():
        return change()


def _claim_or_refuse(ctx: _Context, slot: Slot, dose: int, marks: SlotMarks) -> None:
    if not slot_claim_capacity(slot=slot, channel=ctx.channel, marks=marks):
        raise _refusal_after_failed_claim(ctx, slot, dose)
