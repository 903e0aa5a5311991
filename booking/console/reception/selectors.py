"""Reception's reads that show no personal data: the day at a venue, in numbers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from booking.models import Booking, Channel, Slot, StaffMember, VaccinationRecord, Venue
from booking.models.bookings import booking_number_display
from booking.services.reception import JAPAN, day_bounds, reception_venues, today_in_japan


@dataclass(frozen=True)
class VenueDay:
    venue: Venue
    active: int
    checked_in: int
    vaccinated: int
    no_show: int
    # Put off at the venue after the pre-screening (their bookings are ended, not counted
    # among the others): the day's bookings add up with them.
    deferred: int = 0

    @property
    def total(self) -> int:
        return self.active + self.checked_in + self.vaccinated + self.no_show + self.deferred


def reception_day(staff: StaffMember) -> list[VenueDay]:
    """Today's bookings at each venue ``staff`` works at, counted by status."""
    venues: QuerySet[Venue] = reception_venues(staff)
    start, end = day_bounds(today_in_japan())
    counts: dict[tuple[int, str], int] = {}
    rows = (
        Booking.objects.filter(
            slot__venue__in=venues, slot__starts_at__gte=start, slot__starts_at__lt=end
        )
        .values_list("slot__venue_id", "status", "cancel_reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    for venue_id, status, reason, number in rows:
        if reason == Booking.CancelReason.DEFERRED:
            status = "deferred"
        counts[(venue_id, status)] = counts.get((venue_id, status), 0) + number
    return [
        VenueDay(
            venue=venue,
            active=counts.get((venue.pk, Booking.Status.ACTIVE), 0),
            checked_in=counts.get((venue.pk, Booking.Status.CHECKED_IN), 0),
            vaccinated=counts.get((venue.pk, Booking.Status.VACCINATED), 0),
            no_show=counts.get((venue.pk, Booking.Status.NO_SHOW), 0),
            deferred=counts.get((venue.pk, "deferred"), 0),
        )
        for venue in venues
    ]


@dataclass(frozen=True)
class FreePlaces:
    slot: Slot
    places: int  # left in the slot, every channel's together


def walk_in_slots(staff: StaffMember) -> list[FreePlaces]:
    """Today's slots at the venues ``staff`` works at that are not over and have a place
    left (of any channel): where a resident without a booking can be given one at the desk."""
    start, end = day_bounds(today_in_japan())
    slots = (
        Slot.objects.filter(
            venue__in=reception_venues(staff),
            venue__is_open=True,
            status=Slot.Status.OPEN,
            product__active=True,
            starts_at__gte=start,
            starts_at__lt=end,
            ends_at__gt=timezone.now(),
        )
        .select_related("venue", "product")
        .order_by("starts_at", "venue__name")
    )
    free = [
        FreePlaces(slot, sum(max(0, slot.remaining(channel)) for channel in Channel.values))
        for slot in slots
    ]
    return [each for each in free if each.places > 0]


@dataclass(frozen=True)
class LotCount:
    product: str
    lot_number: str
    doses: int


@dataclass(frozen=True)
class VenueVaccinations:
    """A venue's doses given today: by vaccine and lot (to reconcile the vials), and each
    record (no name: the booking number, the dose, the lot, the doctor)."""

    venue: Venue
    lots: list[LotCount]
    records: list[tuple[VaccinationRecord, str]]  # with its booking number as written

    @property
    def total(self) -> int:
        return len(self.records)


def vaccinations_today(staff: StaffMember) -> list[VenueVaccinations]:
    """Today's doses at each venue ``staff`` works at (the records that stand)."""
    venues = list(reception_venues(staff).order_by("name"))
    records = list(
        VaccinationRecord.objects.filter(
            vaccinated_on=today_in_japan(), booking__slot__venue__in=venues
        )
        .select_related("product", "booking__slot")
        .order_by("recorded_at")
    )
    result = []
    for venue in venues:
        mine = [r for r in records if r.booking is not None and r.booking.slot.venue_id == venue.pk]
        counts: dict[tuple[str, str], int] = {}
        for record in mine:
            key = (record.product.name, record.lot_number)
            counts[key] = counts.get(key, 0) + 1
        lots = [LotCount(product, lot, n) for (product, lot), n in sorted(counts.items())]
        numbered = [
            (record, booking_number_display(record.booking.booking_number))
            for record in mine
            if record.booking is not None
        ]
        result.append(VenueVaccinations(venue, lots, numbered))
    return result


# Days ahead the venue sees, today included: two weeks, to order and thaw vaccine and to plan
# the desk's staff.
AHEAD_DAYS = 14
# The bookings that still hold a place (today's may be received or done already).
_HOLDING = (Booking.Status.ACTIVE, Booking.Status.CHECKED_IN, Booking.Status.VACCINATED)


@dataclass(frozen=True)
class DayProduct:
    """One vaccine on one day at a venue: the residents booked, and the places of the day's
    slots of it that are not cancelled (every channel's together)."""

    day: date
    product: str
    booked: int
    places: int
    first_doses: int


@dataclass(frozen=True)
class VenueAhead:
    venue: Venue
    days: list[DayProduct]

    @property
    def booked(self) -> int:
        return sum(each.booked for each in self.days)


def bookings_ahead(staff: StaffMember) -> list[VenueAhead]:
    """How many residents are booked at each venue ``staff`` works at, day by day and vaccine
    by vaccine, from today for AHEAD_DAYS: what the venue prepares (vials, staff) from.
    Counts only. Two queries."""
    venues = list(reception_venues(staff))
    first = today_in_japan()
    start, end = day_bounds(first)[0], day_bounds(first + timedelta(days=AHEAD_DAYS - 1))[1]
    slots = Slot.objects.filter(venue__in=venues, starts_at__gte=start, starts_at__lt=end)
    day = TruncDate("starts_at", tzinfo=JAPAN)
    places = {
        (row["venue_id"], row["day"], row["product__name"]): int(row["places"] or 0)
        for row in slots.exclude(status=Slot.Status.CANCELLED)
        .annotate(day=day)
        .values("venue_id", "day", "product__name")
        .annotate(places=Sum(F("capacity_web") + F("capacity_line") + F("capacity_call_centre")))
        .order_by()
    }
    booked = {
        (row["slot__venue_id"], row["day"], row["slot__product__name"]): (
            int(row["booked"]),
            int(row["first_doses"]),
        )
        for row in Booking.objects.filter(slot__in=slots, status__in=_HOLDING)
        .annotate(day=TruncDate("slot__starts_at", tzinfo=JAPAN))
        .values("slot__venue_id", "day", "slot__product__name")
        .annotate(booked=Count("id"), first_doses=Count("id", filter=Q(dose=1)))
        .order_by()
    }
    result = []
    for venue in venues:
        keys = sorted(key for key in places.keys() | booked.keys() if key[0] == venue.pk)
        result.append(
            VenueAhead(
                venue,
                [
                    DayProduct(
                        day=key[1],
                        product=key[2],
                        booked=booked.get(key, (0, 0))[0],
                        places=places.get(key, 0),
                        first_doses=booked.get(key, (0, 0))[1],
                    )
                    for key in keys
                ],
            )
        )
    return result
