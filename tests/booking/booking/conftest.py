"""Booking fixtures: a small municipality world inside A, built the way the console would.

Times are relative to now, in Tokyo: ``at(3, 10)`` is 10:00 three days from today. The default
policy opens bookings 28 days ahead and closes them 24 hours before; the 65+ phase is open and
the 12+ phase opens in 30 days; the resident of the cast is 70.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import (
    AgePhase,
    Booking,
    BookingPolicy,
    Slot,
    VaccinationRecord,
    VaccineProduct,
    Venue,
    Voucher,
)
from tenants.crypto import cipher_for
from tenants.models import Municipality

JAPAN = ZoneInfo("Asia/Tokyo")
SYSTEM = Actor.system("tests")


def today() -> date:
    return timezone.localdate(timezone=JAPAN)


def at(days: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(today() + timedelta(days=days), time(hour, minute), tzinfo=JAPAN)


def years_ago(years: int, days: int = 0) -> date:
    day = today()
    try:
        born = day.replace(year=day.year - years)
    except ValueError:  # 29 February
        born = day.replace(year=day.year - years, day=28)
    return born - timedelta(days=days)


def make_voucher(
    municipality: Municipality,
    number: str,
    *,
    born: date | None = None,
    status: str = Voucher.Status.ACTIVE,
    dose: int | None = None,
) -> Voucher:
    """A voucher as the registry import leaves it: personal fields sealed under the key."""
    cipher = cipher_for(municipality)
    values = {
        "name": "接種 太郎",
        "name_kana": "セッシュ タロウ",
        "birth_date": (born or years_ago(70)).isoformat(),
        "sex": "1",
        "postal_code": "1870001",
        "address": "東京都小平市小川町1-1",
        "phone": "0423000000",
        "email": None,
        "address_number": "000000" + number[-4:],
    }
    return Voucher.objects.create(
        voucher_number=number,
        personal=cipher.seal_record(values, table="booking_voucher", row_id=number),
        content_hash=cipher.blind_index(number, purpose="tests"),
        status=status,
        dose=dose,
    )


def make_slot(
    venue: Venue,
    product: VaccineProduct,
    starts_at: datetime,
    *,
    web: int = 5,
    line: int = 2,
    call_centre: int = 2,
    status: str = Slot.Status.OPEN,
) -> Slot:
    return Slot.objects.create(
        venue=venue,
        product=product,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        status=status,
        capacity_web=web,
        capacity_line=line,
        capacity_call_centre=call_centre,
    )


def record_dose(voucher: Voucher, dose: int, product: VaccineProduct, day: date) -> Any:
    return VaccinationRecord.objects.create(
        voucher=voucher,
        dose=dose,
        product=product,
        lot_number="AB1234",
        vaccinated_on=day,
        venue_name="小平市役所",
        actor_kind="staff",
        actor_id="1",
    )


def counters(slot: Slot) -> tuple[int, int, int]:
    slot.refresh_from_db()
    return slot.booked_web, slot.booked_line, slot.booked_call_centre


@dataclass
class World:
    municipality: Municipality
    policy: BookingPolicy
    pfizer: VaccineProduct
    moderna: VaccineProduct
    civic: Venue  # 中央地区
    north: Venue  # 北地区
    resident: Voucher  # 70 years old
    neighbour: Voucher  # another resident of the same municipality, 72

    def resident_actor(self, voucher: Voucher | None = None) -> Actor:
        return Actor.resident((voucher or self.resident).pk)

    def slot(self, days: int = 3, hour: int = 10, **kwargs: Any) -> Slot:
        venue = kwargs.pop("venue", self.civic)
        product = kwargs.pop("product", self.pfizer)
        return make_slot(venue, product, at(days, hour, kwargs.pop("minute", 0)), **kwargs)

    def live(self, voucher: Voucher) -> list[Booking]:
        return list(
            Booking.objects.filter(voucher=voucher, status=Booking.Status.ACTIVE).order_by("dose")
        )


def build_world(municipality: Municipality) -> World:
    policy = BookingPolicy.current()
    policy.opens_days_ahead = 28
    policy.closes_hours_before = 24
    policy.book_series_together = False
    policy.cancel_cascades = True
    policy.call_centre_phone = "042-000-0000"
    policy.save()
    now = timezone.now()
    AgePhase.objects.create(name="65歳以上", minimum_age=65, opens_at=now - timedelta(days=1))
    AgePhase.objects.create(name="12歳以上", minimum_age=12, opens_at=now + timedelta(days=30))
    pfizer = VaccineProduct.objects.create(
        code="pfizer", name="ファイザー社ワクチン", interval_days=19, doses_in_series=2
    )
    moderna = VaccineProduct.objects.create(
        code="moderna", name="モデルナ社ワクチン", interval_days=28, doses_in_series=2
    )
    civic = Venue.objects.create(
        name="小平市役所", area="中央地区", address="東京都小平市小川町2-1333"
    )
    north = Venue.objects.create(
        name="北部集会所", area="北地区", address="東京都小平市上水本町1-1"
    )
    civic.products.add(pfizer, moderna)
    north.products.add(pfizer)
    return World(
        municipality=municipality,
        policy=policy,
        pfizer=pfizer,
        moderna=moderna,
        civic=civic,
        north=north,
        resident=make_voucher(municipality, "1000000001"),
        neighbour=make_voucher(municipality, "1000000002", born=years_ago(72)),
    )


@pytest.fixture
def world(tenant_a: Municipality) -> Iterator[World]:
    with tenant_context(tenant_a):
        yield build_world(tenant_a)


@pytest.fixture
def staff() -> Actor:
    return Actor(Actor.STAFF, "7")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Availability is cached for seconds; a test must not see the previous test's slots."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
