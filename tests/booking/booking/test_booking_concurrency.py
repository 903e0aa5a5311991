"""Real concurrent transactions: the last place goes to exactly one resident.

These tests need committed data that other connections can see, so they work in a
municipality of their own, provisioned outside the test transaction for this module and
decommissioned (key destroyed, schema and role dropped, row removed) at the end.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import AgePhase, Booking, Slot, Voucher
from booking.services.booking import BookingRefused, booking_create
from tenants.db.roles import owner_mode
from tenants.models import Municipality
from tenants.services import municipality_decommission, municipality_provision
from tests.booking.booking.conftest import build_world, make_slot, make_voucher

RUSH = 40
CAPACITY = 5
SYSTEM = Actor.system("tests")


@dataclass(frozen=True)
class Rush:
    municipality: Municipality
    slot_id: int
    voucher_ids: list[int]
    lone_voucher_id: int  # for the second test, untouched by the first
    second_slots: list[int]


@pytest.fixture(scope="module")
def rush(django_db_setup: None, django_db_blocker) -> Iterator[Rush]:
    with django_db_blocker.unblock():
        municipality = municipality_provision(
            code="132217",
            subdomain="kiyose-rush",
            admin_email="admin@kiyose-rush.example.jp",
            actor=SYSTEM,
        ).municipality
        connection.set_schema_to_public()
        try:
            with tenant_context(municipality):
                world = build_world(municipality)
                AgePhase.objects.update(opens_at=timezone.now() - timedelta(days=1))
                starts = timezone.now() + timedelta(days=3)
                slot = make_slot(
                    world.civic, world.pfizer, starts, web=CAPACITY, line=0, call_centre=0
                )
                others = [
                    make_slot(world.north, world.pfizer, starts + timedelta(hours=i), web=10)
                    for i in range(10)
                ]
                vouchers = [make_voucher(municipality, f"30000000{i:02d}").pk for i in range(RUSH)]
                lone = make_voucher(municipality, "3000000099").pk
            yield Rush(municipality, slot.pk, vouchers, lone, [s.pk for s in others])
        finally:
            connections.close_all()
            connection.set_schema_to_public()
            municipality_decommission(
                municipality=municipality, confirmation=municipality.code, actor=SYSTEM
            )
            with owner_mode():
                Municipality.objects.filter(pk=municipality.pk).delete()
            connection.set_schema_to_public()


def _in_parallel(rush: Rush, attempts: list[tuple[int, int]]) -> list[str]:
    """Run each (voucher id, slot id) booking in its own thread and connection, all released
    at once; return "booked" or the refusal code of each."""
    barrier = threading.Barrier(len(attempts))

    def attempt(voucher_id: int, slot_id: int) -> str:
        try:
            connection.set_tenant(rush.municipality)
            voucher = Voucher.objects.get(pk=voucher_id)
            slot = Slot.objects.get(pk=slot_id)
            connection.ensure_connection()
            barrier.wait(timeout=30)
            booking_create(
                voucher=voucher, slot=slot, channel="web", actor=Actor.resident(voucher_id)
            )
            return "booked"
        except BookingRefused as refusal:
            return refusal.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        futures = [pool.submit(attempt, v, s) for v, s in attempts]
        return [future.result() for future in futures]


def test_forty_residents_race_for_five_places(rush: Rush, django_db_blocker) -> None:
    with django_db_blocker.unblock():
        outcomes = _in_parallel(rush, [(v, rush.slot_id) for v in rush.voucher_ids])
        assert Counter(outcomes) == {"booked": CAPACITY, "full": RUSH - CAPACITY}
        with tenant_context(rush.municipality):
            slot = Slot.objects.get(pk=rush.slot_id)
            assert slot.booked_web == CAPACITY
            assert Booking.objects.filter(slot=slot, status="active").count() == CAPACITY
        connection.set_schema_to_public()


def test_one_resident_racing_themselves_gets_one_booking(rush: Rush, django_db_blocker) -> None:
    """The same voucher from ten tabs at once, each for another slot: one live booking."""
    with django_db_blocker.unblock():
        voucher_id = rush.lone_voucher_id
        outcomes = _in_parallel(rush, [(voucher_id, s) for s in rush.second_slots])
        assert Counter(outcomes) == {"booked": 1, "already_booked": len(rush.second_slots) - 1}
        with tenant_context(rush.municipality):
            assert Booking.objects.filter(voucher_id=voucher_id, status="active").count() == 1
            booked = sum(
                Slot.objects.filter(pk__in=rush.second_slots).values_list("booked_web", flat=True)
            )
            assert booked == 1
        connection.set_schema_to_public()
