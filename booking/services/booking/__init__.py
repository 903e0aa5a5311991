"""The one booking service: web, LINE and the call centre book, change and cancel through it.

Every rule is enforced here, server-side, for every channel (ARCHITECTURE.md "Booking"; the
Tokyo 2021 call centre booked slots not open to it): the slot is open and gives the channel
capacity, the booking window, the voucher, the dose, the age phases, the interval after the
previous dose, the same vaccine for the series, one live booking per voucher and dose.

Capacity is claimed with one conditional UPDATE inside the booking transaction (SQL in
``capacity``), so two residents can never take the last place twice; the slot's CHECK
constraints and the partial unique index on (voucher, dose) make overbooking and double
bookings impossible even for code that bypasses this package.

Lock order, the same in all three operations so they cannot deadlock with one another: the
voucher row, then the booking row, then slot rows in ascending id, then (last, held only until
commit) the audit chain's advisory lock.

Who may use which channel: a resident books through the web or LINE, only for their own
voucher (``resident_actor``); staff book through the call centre only, so an operator can
never spend the places kept for the web, nor a resident those kept for the phone; the system
(demo data, benchmarks, tasks) may use any. Anything else is a ``PermissionDenied`` (audited
by ``audit.middleware`` when it reaches a view).

One concept per module: ``refusals`` (BookingRefused and its messages), ``access`` (who,
through which channel), ``checks`` (the rules), ``capacity`` (claiming places),
``series`` (the series booked together), ``notices`` (the calls into notifications), and
the three operations ``create``, ``change`` and ``cancel``. Callers import from here.
"""

from booking.services.booking.access import resident_actor
from booking.services.booking.cancel import booking_cancel
from booking.services.booking.capacity import (
    SlotMarks,
    slot_claim_capacity,
    slot_release_capacity,
)
from booking.services.booking.change import booking_change
from booking.services.booking.checks import (
    JAPAN,
    VOUCHER_TABLE,
    AgeWindow,
    age_on,
    age_window,
    booking_closes_at,
    booking_days,
    next_dose_age_window,
    product_age_refusal,
    slot_refusal,
)
from booking.services.booking.create import LIVE_BOOKING_CONSTRAINT, booking_create
from booking.services.booking.out_of_step import OutOfStep, bookings_out_of_step
from booking.services.booking.refusals import REFUSAL_CODES, BookingRefused
from booking.services.booking.series import SeriesTogether, series_together_for

__all__ = [
    "slot_refusal",
    "OutOfStep",
    "SlotMarks",
    "bookings_out_of_step",
    "JAPAN",
    "LIVE_BOOKING_CONSTRAINT",
    "REFUSAL_CODES",
    "VOUCHER_TABLE",
    "AgeWindow",
    "BookingRefused",
    "SeriesTogether",
    "age_on",
    "age_window",
    "booking_days",
    "booking_cancel",
    "booking_closes_at",
    "booking_change",
    "booking_create",
    "next_dose_age_window",
    "product_age_refusal",
    "resident_actor",
    "series_together_for",
    "slot_claim_capacity",
    "slot_release_capacity",
]
