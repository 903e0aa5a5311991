"""What a municipality has set up for taking bookings, for its admin's console home: before an
opening (UX.md "The admin's path"), the vaccines, age phases, venues, slots, registry and
call-centre number, each counted, so that what is missing shows before residents find out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from booking.models import AgePhase, BookingPolicy, Slot, VaccineProduct, Venue, Voucher


@dataclass(frozen=True)
class Readiness:
    vaccines: int  # offered
    phases: int
    phases_open: int  # opened by now
    next_phase: AgePhase | None  # the next to open, if any
    venues: int  # open
    slots: int  # open, from now to the end of the booking window
    places_web: int
    places_line: int
    places_call_centre: int
    vouchers: int  # active
    call_centre_phone: str
    days_ahead: int

    @property
    def residents_have_places(self) -> bool:
        """Slots with a place left for the web or LINE."""
        return bool(self.slots and (self.places_web or self.places_line))

    @property
    def waiting_for_opening(self) -> bool:
        """Everything is set, and residents can book once the next phase opens."""
        return bool(
            self.vaccines
            and not self.phases_open
            and self.next_phase is not None
            and self.residents_have_places
            and self.vouchers
        )

    @property
    def can_take_bookings(self) -> bool:
        """Whether a resident could book at all: a vaccine, an opened phase, a place for the
        web or LINE, and a voucher to log in with."""
        return bool(
            self.vaccines and self.phases_open and self.residents_have_places and self.vouchers
        )


def booking_readiness() -> Readiness:
    """A handful of counts (one query each), read when an admin opens the console."""
    now = timezone.now()
    policy = BookingPolicy.current()
    phases = AgePhase.every()  # earliest first
    # Slots residents can still book: past the cut-off, a place is for the call centre only.
    upcoming = Slot.objects.filter(
        status=Slot.Status.OPEN,
        venue__is_open=True,
        product__active=True,
        starts_at__gt=now + timedelta(hours=policy.closes_hours_before),
        starts_at__lte=policy.bookable_until(now),
    ).aggregate(
        slots=Count("id"),
        web=Sum("capacity_web") - Sum("booked_web"),
        line=Sum("capacity_line") - Sum("booked_line"),
        call_centre=Sum("capacity_call_centre") - Sum("booked_call_centre"),
    )
    return Readiness(
        vaccines=VaccineProduct.objects.filter(active=True).count(),
        phases=len(phases),
        phases_open=sum(1 for phase in phases if phase.opens_at <= now),
        next_phase=next((phase for phase in phases if phase.opens_at > now), None),
        venues=Venue.objects.filter(is_open=True).count(),
        slots=upcoming["slots"] or 0,
        places_web=upcoming["web"] or 0,
        places_line=upcoming["line"] or 0,
        places_call_centre=upcoming["call_centre"] or 0,
        vouchers=Voucher.objects.filter(~Q(status=Voucher.Status.WITHDRAWN)).count(),
        call_centre_phone=policy.call_centre_phone,
        days_ahead=policy.opens_days_ahead,
    )
