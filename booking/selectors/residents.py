"""The resident-scoped reads: every request-time lookup of a resident's bookings and doses.

Pages, the LINE flow and the booking service reach a resident's objects only through these
helpers, which scope each query to the voucher of the logged-in resident (SECURITY.md: the
Tokyo 2021 analysis tool showed other people's records). A booking number is not a secret
that opens a booking: ``booking_of`` answers 404 for a booking of anyone else, exactly as for
a number that does not exist.

The voucher passed in must come from the current municipality's schema (see
``made_in_current_schema``): ids repeat across municipalities, so a voucher of B used under A
would name A's resident with the same id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import QuerySet
from django.http import Http404

from audit.models import Event
from booking.models import (
    Booking,
    BookingPolicy,
    ContactPreference,
    VaccinationRecord,
    VaccineProduct,
    Voucher,
)
from booking.models.bookings import (
    booking_number_is_well_formed,
    booking_number_normalize,
    made_in_current_schema,
)
from booking.selectors.slots import bookings_with_slots
from sesshu.rows import columns_of, fetch_one

JAPAN = ZoneInfo("Asia/Tokyo")
LIVE = [Booking.Status.ACTIVE, Booking.Status.CHECKED_IN]


def _own(voucher: Voucher | None) -> Voucher:
    if voucher is None or voucher.pk is None or not made_in_current_schema(voucher):
        raise Http404
    return voucher


def bookings_of(voucher: Voucher, *, live_only: bool = False) -> list[Booking]:
    """The resident's bookings, soonest first, with slot, venue and vaccine loaded (my page
    reads them on every visit: sesshu.rows)."""
    _own(voucher)
    where = "b.voucher_id = %s"
    params: list[object] = [voucher.pk]
    if live_only:
        where += " AND b.status = ANY(%s)"
        params.append([str(status) for status in LIVE])
    return bookings_with_slots(where, params, then="ORDER BY s.starts_at, b.dose")


def booking_of(voucher: Voucher, booking_number: str) -> Booking:
    """The resident's booking with this number; Http404 for anyone else's or none."""
    _own(voucher)
    number = booking_number_normalize(booking_number)
    if not booking_number_is_well_formed(number):
        raise Http404
    # With its slot, venue and vaccine, as bookings_of() loads them: every done page reads
    # one.
    found = bookings_with_slots("b.voucher_id = %s AND b.booking_number = %s", [voucher.pk, number])
    if not found:
        raise Http404
    return found[0]


def booking_of_voucher(voucher: Voucher, booking_id: int) -> Booking | None:
    """The voucher's booking with this id, loaded as bookings_of() loads them, or None."""
    _own(voucher)
    found = bookings_with_slots("b.voucher_id = %s AND b.id = %s", [voucher.pk, booking_id])
    return found[0] if found else None


def live_booking_in_slot(voucher: Voucher, slot_id: int) -> Booking | None:
    """The voucher's live booking in this slot, loaded as bookings_of() loads them, or None:
    what a booking sent twice finds."""
    _own(voucher)
    found = bookings_with_slots(
        "b.voucher_id = %s AND b.slot_id = %s AND b.status = ANY(%s)",
        [voucher.pk, slot_id, [str(status) for status in LIVE]],
    )
    return found[0] if found else None


def vaccinations_of(voucher: Voucher) -> QuerySet[VaccinationRecord]:
    """Doses given (接種記録), first dose first."""
    _own(voucher)
    return (
        VaccinationRecord.objects.filter(voucher_id=voucher.pk)
        .select_related("product")
        .order_by("dose")
    )


@dataclass(frozen=True, slots=True)
class DoseTaken:
    """A dose given (``given``) or booked and not yet given: what the next dose follows."""

    dose: int
    product_id: int
    day: date
    given: bool
    booking_id: int | None = None


@dataclass(frozen=True, slots=True)
class DoseHistory:
    doses: dict[int, DoseTaken]
    # The first dose this voucher is for: 1, or the dose printed on it (a booster voucher).
    first_dose: int

    @property
    def next_dose(self) -> int:
        return max(max(self.doses, default=0) + 1, self.first_dose)

    @property
    def previous(self) -> DoseTaken | None:
        return self.doses.get(self.next_dose - 1)

    @property
    def pending(self) -> list[DoseTaken]:
        """Booked and not yet given."""
        return [taken for taken in self.doses.values() if not taken.given]


_HISTORY_SQL = """
SELECT b.dose, s.product_id, (s.starts_at AT TIME ZONE 'Asia/Tokyo')::date, false, b.id
  FROM booking_booking b JOIN booking_slot s ON s.id = b.slot_id
 WHERE b.voucher_id = %s AND b.status IN ('active', 'checked_in')
UNION ALL
SELECT r.dose, r.product_id, r.vaccinated_on, true, r.booking_id
  FROM booking_vaccinationrecord r
 WHERE r.voucher_id = %s AND r.voided_at IS NULL
"""


def dose_history(voucher: Voucher) -> DoseHistory:
    """Doses given and live bookings, in one query (it is on the booking path of every
    resident in a rush). The booking service calls it with the voucher row locked, so nothing
    changes between this read and its insert."""
    _own(voucher)
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY_SQL, [voucher.pk, voucher.pk])
        rows = cursor.fetchall()
    doses: dict[int, DoseTaken] = {}
    # What was given wins over a booking of the same dose.
    for dose, product_id, day, given, booking_id in sorted(rows, key=lambda row: row[3]):
        doses[dose] = DoseTaken(dose, product_id, day, given, booking_id)
    return DoseHistory(doses=doses, first_dose=max(voucher.dose or 1, 1))


@dataclass(frozen=True, slots=True)
class NextDose:
    """What the resident's page says about booking next."""

    dose: int
    # The dose before it (given or booked), its vaccine, and the first day the next may be.
    previous: DoseTaken | None
    product: VaccineProduct | None
    earliest_day: date | None
    # The series of the previous dose's vaccine is complete: nothing more to book here.
    series_complete: bool
    # A booking not yet given exists (one at a time unless the series is booked together).
    has_pending_booking: bool

    def waits_for_pending(self, policy: BookingPolicy) -> bool:
        """The next dose waits for the booked one to be given: one booking at a time, unless
        the municipality books the series together (the booking service's rule)."""
        return self.has_pending_booking and not policy.book_series_together


def series_size(product: VaccineProduct, history: DoseHistory) -> int:
    """Doses this voucher may book with ``product``: the product's series, or up to the dose
    printed on a booster voucher."""
    return max(product.doses_in_series, history.first_dose)


def next_dose(voucher: Voucher) -> NextDose:
    history = dose_history(voucher)
    previous = history.previous
    product = None
    earliest = None
    complete = False
    if previous is not None:
        product = VaccineProduct.objects.filter(pk=previous.product_id).first()
        if product is not None:
            earliest = previous.day + timedelta(days=product.interval_days)
            complete = history.next_dose > series_size(product, history)
    return NextDose(
        dose=history.next_dose,
        previous=previous,
        product=product,
        earliest_day=earliest,
        series_complete=complete,
        has_pending_booking=bool(history.pending),
    )


def bookings_linked_to(booking: Booking, *, lock: bool = False) -> list[Booking]:
    """The live bookings made together with ``booking`` (dose 2, 3, ...), in dose order: what
    cancelling it cancels too when the municipality's policy cascades. Read without locks to
    tell the resident beforehand; the booking service finds them again with ``lock`` (row
    locks, inside its transaction)."""
    then = "ORDER BY b.dose" + (" FOR UPDATE OF b" if lock else "")
    found: list[Booking] = []
    frontier = [booking.pk]
    while frontier:
        batch = bookings_with_slots(
            "b.linked_to_id = ANY(%s) AND b.voucher_id = %s AND b.status = %s",
            [frontier, booking.voucher_id, Booking.Status.ACTIVE.value],
            then=then,
        )
        found += batch
        frontier = [each.pk for each in batch]
    return found


def cancelled_together(booking: Booking, linked: list[Booking]) -> list[Booking]:
    """Those of ``linked`` (read before cancelling ``booking``) that are cancelled now: what
    the booking service did, not what it was expected to do."""
    return list(
        Booking.objects.filter(
            pk__in=[each.pk for each in linked],
            voucher_id=booking.voucher_id,
            status=Booking.Status.CANCELLED,
        ).order_by("dose")
    )


def contact_preference_of(voucher_id: int) -> ContactPreference | None:
    """The voucher's contact preference, or None: read by every booking, change and
    cancellation, and by my page (sesshu.rows)."""
    columns = columns_of(ContactPreference, "c")
    row = fetch_one(f"{columns.select} WHERE c.voucher_id = %s", [voucher_id])
    return None if row is None else columns.load(row)


def booking_events(booking: Booking, action: str) -> QuerySet[Event]:
    """The booking's ``action`` events in the trail (``booking.created``, ...)."""
    return Event.objects.filter(
        action=action, target_type="booking.booking", target_id=str(booking.pk)
    )


def booking_event(booking: Booking, action: str) -> tuple[str, dict[str, Any]] | None:
    """Who did ``action`` (``booking.created``, ``booking.cancelled``, ...) to the booking
    (the actor's kind) and with which details, from its latest such event; None when it
    has none."""
    event = (
        booking_events(booking, action)
        .order_by("-seq")
        .values_list("actor_kind", "details")
        .first()
    )
    if event is None:
        return None
    actor_kind, details = event
    return actor_kind, details if isinstance(details, dict) else {}


def booking_cancellation(booking: Booking) -> tuple[str, dict[str, Any]] | None:
    """Who cancelled the booking, and the cancellation's details (``booking_event``)."""
    return booking_event(booking, "booking.cancelled")
