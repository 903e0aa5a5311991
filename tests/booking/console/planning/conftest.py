"""Planning fixtures: staff of every role in A (and an admin of B), a small venue world.

The console's clock (``clock``) stands at 09:30 in Tokyo on Monday 11 May 2026. Bookings are
made through the booking service (``booking_create``), so counters and rows agree as they
would in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import Actor
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
from booking.services.booking import booking_create
from tenants.crypto import cipher_for
from tenants.models import Municipality

from ..conftest import StaffAccount, login, make_staff

JAPAN = ZoneInfo("Asia/Tokyo")
SYSTEM = Actor.system("tests")
RESIDENT_NAME = "計画 花子"
RESIDENT_KANA = "ケイカク ハナコ"
RESIDENT_PHONE = "0423000000"
MONDAY = date(2026, 5, 18)  # a week after the clock's Monday


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=JAPAN)


def make_voucher(municipality: Municipality, number: str, *, address_number: str) -> Voucher:
    """A voucher as the registry import leaves it: personal fields sealed under the key."""
    cipher = cipher_for(municipality)
    values = {
        "name": RESIDENT_NAME,
        "name_kana": RESIDENT_KANA,
        "birth_date": "1950-04-01",
        "sex": "2",
        "postal_code": "1870001",
        "address": "東京都小平市小川町1-1",
        "phone": RESIDENT_PHONE,
        "email": None,
        "address_number": address_number,
    }
    return Voucher.objects.create(
        voucher_number=number,
        personal=cipher.seal_record(values, table="booking_voucher", row_id=number),
        content_hash=cipher.blind_index(number, purpose="tests"),
    )


def make_slot(
    venue: Venue,
    product: VaccineProduct,
    starts_at: datetime,
    *,
    web: int = 4,
    line: int = 2,
    call_centre: int = 2,
    minutes: int = 30,
    status: str = Slot.Status.OPEN,
) -> Slot:
    return Slot.objects.create(
        venue=venue,
        product=product,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        capacity_web=web,
        capacity_line=line,
        capacity_call_centre=call_centre,
        status=status,
    )


@dataclass
class World:
    municipality: Municipality
    pfizer: VaccineProduct
    moderna: VaccineProduct
    civic: Venue  # 中央地区, both vaccines
    north: Venue  # 北地区, Pfizer only
    residents: list[Voucher]

    def book(self, slot: Slot, voucher: Voucher, channel: str = "web") -> Booking:
        return booking_create(voucher=voucher, slot=slot, channel=channel, actor=SYSTEM)


def build_world(municipality: Municipality) -> World:
    policy = BookingPolicy.current()
    policy.opens_days_ahead = 60
    policy.closes_hours_before = 24
    policy.book_series_together = False
    policy.cancel_cascades = True
    policy.save()
    AgePhase.objects.create(
        name="12歳以上", minimum_age=12, opens_at=timezone.now() - timedelta(days=1)
    )
    pfizer = VaccineProduct.objects.create(
        code="pfizer", name="ファイザー社ワクチン", maker="ファイザー", interval_days=19
    )
    moderna = VaccineProduct.objects.create(
        code="moderna", name="モデルナ社ワクチン", maker="武田/モデルナ", interval_days=28
    )
    civic = Venue.objects.create(
        name="小平市役所", area="中央地区", address="東京都小平市小川町2-1333"
    )
    north = Venue.objects.create(
        name="北部集会所", area="北地区", address="東京都小平市上水本町1-1"
    )
    civic.products.add(pfizer, moderna)
    north.products.add(pfizer)
    residents = [
        make_voucher(municipality, f"10000000{index:02d}", address_number=f"A{index:09d}")
        for index in range(1, 7)
    ]
    return World(municipality, pfizer, moderna, civic, north, residents)


@pytest.fixture
def world(tenant_a: Municipality, clock: time_machine.Coordinates) -> Iterator[World]:
    with tenant_context(tenant_a):
        yield build_world(tenant_a)


@pytest.fixture
def venue_staff_a(tenant_a: Municipality, clock: time_machine.Coordinates) -> StaffAccount:
    return make_staff(tenant_a, "kaijo@kodaira.example.jp", StaffMember.Role.VENUE)


@pytest.fixture
def auditor_a(tenant_a: Municipality, clock: time_machine.Coordinates) -> StaffAccount:
    return make_staff(tenant_a, "kansa@kodaira.example.jp", StaffMember.Role.AUDITOR)


def logged_in(client: Client, account: StaffAccount, clock: time_machine.Coordinates) -> Client:
    clock.shift(30)  # a new TOTP step: the code of the setup (or a previous login) is spent
    response = login(client, account)
    assert response.status_code == 302, response.content.decode()[:500]
    return client


@pytest.fixture
def as_admin(client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates) -> Client:
    return logged_in(client_a, admin_a, clock)


def in_a(tenant: Municipality) -> Any:
    return tenant_context(tenant)
