"""Live bookings that the dose given before them no longer allows: that dose was recorded
with another vaccine than the booking's (changed at the venue, or a record withdrawn and
recorded again), or on a day that leaves too short an interval. The rule is the booking
service's own (``checks._check_follows``); here it is asked of bookings already made, for the
pages that say which booking to change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from booking.models import Booking, VaccinationRecord, Voucher
from booking.models.bookings import booking_number_display
from booking.selectors.residents import DoseTaken, bookings_of, vaccinations_of
from booking.services.booking.checks import _check_follows
from booking.services.booking.refusals import BookingRefused


@dataclass(frozen=True)
class OutOfStep:
    """``reason``: the booking service's refusal code for the same case
    ("different_product" or "too_soon_after_previous_dose")."""

    booking: Booking
    reason: str
    given_product: str
    earliest: date

    @property
    def number(self) -> str:
        return booking_number_display(self.booking.booking_number)


def bookings_out_of_step(
    voucher: Voucher,
    *,
    live: list[Booking] | None = None,
    records: list[VaccinationRecord] | None = None,
) -> list[OutOfStep]:
    """The resident's live bookings that the booking service would refuse now because of
    the dose recorded before them: to be changed (the call centre, or the resident).
    ``live`` and ``records``: the resident's live bookings and doses given, when the page
    has read them already (``bookings_of``, ``vaccinations_of``)."""
    given = {
        record.dose: record
        for record in (records if records is not None else vaccinations_of(voucher))
    }
    if not given:
        return []
    if live is None:
        live = bookings_of(voucher, live_only=True)
    found = []
    for booking in live:
        previous = given.get(booking.dose - 1)
        if previous is None:
            continue
        taken = DoseTaken(
            previous.dose, previous.product_id, previous.vaccinated_on, True, previous.booking_id
        )
        try:
            _check_follows(booking.slot, booking.dose, taken, previous_product=previous.product)
        except BookingRefused as refused:
            earliest = previous.vaccinated_on + timedelta(days=previous.product.interval_days)
            found.append(OutOfStep(booking, refused.code, previous.product.name, earliest))
    return found
