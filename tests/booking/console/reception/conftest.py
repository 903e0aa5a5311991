"""Reception fixtures: a venue day in municipality A, and B's for the cross-tenant checks.

The console's clock (``clock``) stands at 09:30 in Tokyo on Monday 11 May 2026: the 09:00
slot has just ended, the 10:00 slot is still to come.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from booking.models import (
    AgePhase,
    Booking,
    BookingPolicy,
    Slot,
    StaffMember,
    VaccineProduct,
    Venue,
    Voucher,
)
from booking.models.bookings import booking_number_display, booking_number_new
from tenants.crypto import cipher_for
from tenants.models import Municipality

from ..conftest import StaffAccount, login, make_staff

JAPAN = ZoneInfo("Asia/Tokyo")
RESIDENT_NAME = "受付 花子"
RESIDENT_KANA = "ウケツケ ハナコ"
RESIDENT_BORN = date(1948, 4, 1)  # 昭和23年, 78 on the day


def at(days: int, hour: int, minute: int = 0) -> datetime:
    day = timezone.localdate(timezone=JAPAN) + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=JAPAN)


def make_voucher(
    municipality: Municipality,
    number: str,
    *,
    name: str = RESIDENT_NAME,
    kana: str = RESIDENT_KANA,
    born: date = RESIDENT_BORN,
) -> Voucher:
    """A voucher as the registry import leaves it: personal fields sealed under the key."""
    cipher = cipher_for(municipality)
    values = {
        "name": name,
        "name_kana": kana,
        "birth_date": born.isoformat(),
        "sex": "2",
        "postal_code": "1870031",
        "address": "東京都小平市小川東町1-1",
        "phone": "0423000001",
        "email": None,
        "address_number": "1234" + number[-6:],
    }
    return Voucher.objects.create(
        voucher_number=number,
        personal=cipher.seal_record(values, table="booking_voucher", row_id=number),
        content_hash=cipher.blind_index(number, purpose="tests"),
    )


def make_slot(venue: Venue, product: VaccineProduct, starts_at: datetime) -> Slot:
    return Slot.objects.create(
        venue=venue,
        product=product,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        capacity_web=10,
        capacity_line=2,
        capacity_call_centre=5,
    )


def make_booking(
    voucher: Voucher, slot: Slot, *, dose: int = 1, status: str = Booking.Status.ACTIVE
) -> Booking:
    """A booking as the booking service leaves it (it refuses slots this close, so tests
    that need today's bookings write them directly)."""
    return Booking.objects.create(
        booking_number=booking_number_new(),
        voucher=voucher,
        slot=slot,
        dose=dose,
        channel="web",
        booked_through="web",
        status=status,
        actor_kind="system",
        actor_id="tests",
    )


@dataclass
class Day:
    municipality: Municipality
    pfizer: VaccineProduct
    moderna: VaccineProduct
    civic: Venue  # 小平市役所: venue staff work here
    north: Venue  # 北部集会所: another venue
    resident: Voucher
    early: Slot  # today 09:00-09:30 at civic, ended
    later: Slot  # today 10:00-10:30 at civic
    tomorrow: Slot  # tomorrow 10:00 at civic
    north_today: Slot  # today 10:00 at north
    booking: Booking  # the resident's first dose, today 10:00 at civic

    @property
    def number(self) -> str:
        return booking_number_display(self.booking.booking_number)


def build_day(municipality: Municipality) -> Day:
    policy = BookingPolicy.current()
    policy.opens_days_ahead = 60
    policy.closes_hours_before = 24
    policy.book_series_together = False
    policy.save()
    AgePhase.objects.create(
        name="65歳以上", minimum_age=65, opens_at=timezone.now() - timedelta(days=30)
    )
    pfizer = VaccineProduct.objects.create(
        code="pfizer", name="ファイザー社ワクチン", interval_days=19, doses_in_series=2
    )
    moderna = VaccineProduct.objects.create(
        code="moderna", name="モデルナ社ワクチン", interval_days=28, doses_in_series=2
    )
    civic = Venue.objects.create(
        name="小平市役所", area="中央地区", address="東京都小平市小川町2-1333"
    )
    north = Venue.objects.create(name="北部集会所", area="北地区", address="東京都小平市上水本町")
    civic.products.add(pfizer, moderna)
    north.products.add(pfizer)
    resident = make_voucher(municipality, "1000000001")
    later = make_slot(civic, pfizer, at(0, 10))
    return Day(
        municipality=municipality,
        pfizer=pfizer,
        moderna=moderna,
        civic=civic,
        north=north,
        resident=resident,
        early=make_slot(civic, pfizer, at(0, 9)),
        later=later,
        tomorrow=make_slot(civic, pfizer, at(1, 10)),
        north_today=make_slot(north, pfizer, at(0, 10)),
        booking=make_booking(resident, later),
    )


@pytest.fixture
def day(tenant_a: Municipality, clock: time_machine.Coordinates) -> Day:
    with tenant_context(tenant_a):
        return build_day(tenant_a)


@pytest.fixture
def day_b(tenant_b: Municipality, clock: time_machine.Coordinates) -> Day:
    with tenant_context(tenant_b):
        return build_day(tenant_b)


def works_at(account: StaffAccount, *venues: Venue) -> StaffAccount:
    with schema_context(account.tenant.schema_name):
        StaffMember.objects.get(pk=account.staff_id).venues.add(*venues)
    return account


@pytest.fixture
def venue_a(tenant_a: Municipality, day: Day) -> StaffAccount:
    """Venue staff of A who work at the civic centre."""
    return works_at(
        make_staff(tenant_a, "uketsuke@kodaira.example.jp", StaffMember.Role.VENUE), day.civic
    )


@pytest.fixture
def venue_north_a(tenant_a: Municipality, day: Day) -> StaffAccount:
    """Venue staff of A who work at the north hall only."""
    return works_at(
        make_staff(tenant_a, "kita@kodaira.example.jp", StaffMember.Role.VENUE), day.north
    )


@pytest.fixture
def auditor_a(tenant_a: Municipality, clock: time_machine.Coordinates) -> StaffAccount:
    return make_staff(tenant_a, "kansa@kodaira.example.jp", StaffMember.Role.AUDITOR)


@pytest.fixture
def venue_b(tenant_b: Municipality, day_b: Day) -> StaffAccount:
    return works_at(
        make_staff(tenant_b, "uketsuke@chiyoda.example.jp", StaffMember.Role.VENUE), day_b.civic
    )


def logged_in(client: Client, account: StaffAccount, clock: time_machine.Coordinates) -> Client:
    clock.shift(30)  # a new TOTP step: the setup's code is spent
    assert login(client, account).status_code == 302
    return client


@pytest.fixture
def in_a(tenant_a: Municipality) -> Iterator[None]:
    with tenant_context(tenant_a):
        yield
