"""Booking a dose (or the series together), with a fresh 予約番号."""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import record
from audit.chain import Actor
from booking.models import BookedThrough, Booking, BookingPolicy, Channel, Slot, Voucher
from booking.models.bookings import booking_number_new
from booking.selectors.residents import DoseTaken, dose_history, series_size
from booking.services.booking.access import _check_actor, _check_channel, _check_municipality
from booking.services.booking.capacity import (
    SlotMarks,
    _refusal_after_failed_claim,
    slot_claim_capacity,
)
from booking.services.booking.checks import (
    _birth_date,
    _check_eligible,
    _check_follows,
    _check_slot,
    _check_slot_at_the_venue,
    _choose_dose,
    _Context,
    _day_of,
    _load_slot,
    _lock_voucher,
    _product,
)
from booking.services.booking.notices import _notify
from booking.services.booking.refusals import BookingRefused
from sesshu import metrics
from sesshu.rows import insert_of

LIVE_BOOKING_CONSTRAINT = "one_live_booking_per_voucher_and_dose"
# A resident at the venue's desk takes a place of whichever channel has one left: the call
# centre's first (staff book with its places), then the web's and LINE's, which nobody else
# can book once the slot's cut-off has passed.
WALK_IN_CHANNELS = (Channel.CALL_CENTRE, Channel.WEB, Channel.LINE)
_NUMBER_ATTEMPTS = 5


def _constraint_name(exc: IntegrityError) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


def _with_fresh_number(operation: Callable[[], Booking]) -> Booking:
    """Run ``operation`` in its own transaction; retry it when a new booking number was
    already taken (50 random bits: it will not happen twice)."""
    for _attempt in range(_NUMBER_ATTEMPTS):
        try:
            with transaction.atomic():
                return operation()
        except IntegrityError as exc:
            constraint = _constraint_name(exc)
            if constraint == LIVE_BOOKING_CONSTRAINT:
                # Another transaction booked this dose in between (the voucher lock makes
                # that rare; code outside this service does not take it).
                raise BookingRefused("already_booked") from exc
            if constraint is None or "booking_number" not in constraint:
                raise
    raise RuntimeError("could not draw an unused booking number")


def _insert_booking(
    *,
    voucher: Voucher,
    slot: Slot,
    dose: int,
    channel: str,
    actor: Actor,
    linked_to_id: int | None,
    booked_through: str | None = None,
) -> Booking:
    booking = Booking(
        booking_number=booking_number_new(),
        voucher=voucher,
        slot=slot,
        dose=dose,
        channel=channel,
        booked_through=booked_through or channel,
        status=Booking.Status.ACTIVE,
        linked_to_id=linked_to_id,
        actor_kind=actor.kind,
        actor_id=actor.id,
    )
    return insert_of(Booking)(booking)


def booking_create(
    *,
    voucher: Voucher,
    slot: Slot,
    channel: str,
    actor: Actor,
    ip: str | None = None,
    dose: int | None = None,
    second_slot: Slot | None = None,
    told: dict[str, str] | None = None,
    at_the_venue: bool = False,
) -> Booking:
    """Book the voucher's next dose in ``slot`` with ``channel``'s capacity.

    ``second_slot`` books the following dose too, in the same transaction, when the policy
    books the series together (the returned booking's ``linked`` holds it). ``dose`` is for
    the call centre's checks: it must be the next dose. ``told``: what the caller told the
    call centre (who is on the phone), recorded with each booking. Raises BookingRefused.

    ``at_the_venue``: staff give a resident at the venue's desk, without a booking, a free
    place in a slot of today there (``_check_slot_at_the_venue``): the place of whichever
    channel has one left (``WALK_IN_CHANNELS``), booked through ``channel``. Every other
    rule holds (eligibility, the dose interval, one booking per dose).
    """
    channel = _check_channel(channel)
    _check_actor(actor, channel, voucher.pk)
    _check_municipality(voucher, slot, second_slot)
    if at_the_venue and (actor.kind != Actor.STAFF or second_slot is not None):
        raise ValueError("a booking at the venue is staff's, of one dose")

    def create() -> Booking:
        ctx = _Context(timezone.now(), BookingPolicy.current(), channel, _lock_voucher(voucher.pk))
        if ctx.voucher.status == Voucher.Status.WITHDRAWN:
            raise BookingRefused("voucher_withdrawn", phone=ctx.phone)
        first = _load_slot(slot.pk)
        history = dose_history(ctx.voucher)
        first_dose = _choose_dose(ctx, history, dose, first)
        birth_date = _birth_date(ctx.voucher)
        plan: list[tuple[Slot, int]] = [(first, first_dose)]
        _check_eligible(ctx, first, first_dose, birth_date)
        if at_the_venue:
            _check_slot_at_the_venue(ctx, first, first_dose)
        else:
            _check_slot(ctx, first, first_dose)
        previous = history.previous
        if previous is not None:
            _check_follows(
                first, first_dose, previous, previous_product=_product(previous.product_id, first)
            )
        if second_slot is not None:
            second_dose = first_dose + 1
            if not ctx.policy.book_series_together:
                raise ValueError("second_slot is for municipalities that book the series together")
            if second_dose > series_size(first.product, history):
                raise ValueError("the vaccine's series has no further dose to book together")
            second = _load_slot(second_slot.pk)
            _check_slot(ctx, second, second_dose)
            _check_eligible(ctx, second, second_dose, birth_date)
            stand_in = DoseTaken(first_dose, first.product_id, _day_of(first.starts_at), False)
            _check_follows(second, second_dose, stand_in, previous_product=first.product)
            plan.append((second, second_dose))

        # Booked together, a dose follows the live booking of the dose before it even when
        # booked later on its own (after cancelling just that dose): cancelling the first
        # then cancels it too, instead of leaving it behind and making the next dose the 3rd.
        follows_booking_id = (
            previous.booking_id
            if ctx.policy.book_series_together and previous is not None and not previous.given
            else None
        )
        marks = SlotMarks()
        places = WALK_IN_CHANNELS if at_the_venue else (channel,)
        held: dict[int, str] = {}  # slot id -> the channel whose place it holds
        for claimed, claimed_dose in sorted(plan, key=lambda item: item[0].pk):
            held_by = next(
                (
                    each
                    for each in places
                    if slot_claim_capacity(slot=claimed, channel=each, marks=marks)
                ),
                None,
            )
            if held_by is None:
                raise _refusal_after_failed_claim(ctx, claimed, claimed_dose)
            held[claimed.pk] = held_by
        bookings: list[Booking] = []
        for planned, planned_dose in plan:
            bookings.append(
                _insert_booking(
                    voucher=ctx.voucher,
                    slot=planned,
                    dose=planned_dose,
                    channel=held[planned.pk],
                    booked_through=BookedThrough.AT_THE_VENUE if at_the_venue else channel,
                    actor=actor,
                    linked_to_id=bookings[-1].pk if bookings else follows_booking_id,
                )
            )
        for booking in bookings:
            _notify("booking_created", booking)
        metrics.booking_created(channel, len(bookings))
        for booking in bookings:
            record(
                action="booking.created",
                actor=actor,
                target=booking,
                ip=ip,
                details={
                    "channel": channel,
                    "dose": booking.dose,
                    "slot": booking.slot_id,
                    "linked_to": booking.linked_to_id,
                    **(
                        {"at_the_venue": True, "places_of": booking.channel} if at_the_venue else {}
                    ),
                    **(told or {}),
                },
            )
        marks.invalidate_on_commit()
        return bookings[0]

    return _with_fresh_number(create)
