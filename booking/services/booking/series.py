"""The series booked together: what to book with the first dose."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from booking.models import BookingPolicy, Slot, VaccineProduct, Voucher
from booking.selectors.residents import dose_history, series_size
from booking.services.booking.checks import _day_of


@dataclass(frozen=True)
class SeriesTogether:
    """The dose booked with the first one when the municipality books the series together:
    which dose, of which vaccine, and the first day it may be (the vaccine's interval after
    the first slot's day). The booking service checks it all again when both are booked."""

    first_dose: int
    second_dose: int
    product: VaccineProduct
    earliest_day: date


def series_together_for(
    voucher: Voucher, first_slot: Slot, *, policy: BookingPolicy | None = None
) -> SeriesTogether | None:
    """What to book with ``first_slot`` as the voucher's next dose, or None when it is booked
    alone: the policy books one dose at a time, the next dose is not the first of the
    voucher's series, or the vaccine has no further dose. ``policy``: the one the request
    already read, if any."""
    if policy is None:
        policy = BookingPolicy.current()
    if not policy.book_series_together:
        return None
    history = dose_history(voucher)
    if history.doses:
        return None
    dose = history.next_dose
    if dose + 1 > series_size(first_slot.product, history):
        return None
    return SeriesTogether(
        first_dose=dose,
        second_dose=dose + 1,
        product=first_slot.product,
        earliest_day=_day_of(first_slot.starts_at)
        + timedelta(days=first_slot.product.interval_days),
    )
