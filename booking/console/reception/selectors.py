"""Reception's reads that show no personal data: the day at a venue, in numbers."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.utils import timezone

from booking.models import Booking, Channel, Slot, StaffMember, VaccinationRecord, Venue
from booking.models.bookings import booking_number_display
from booking.services.reception import day_bounds, reception_venues, today_in_japan


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
