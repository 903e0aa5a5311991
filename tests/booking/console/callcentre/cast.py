"""What the call-centre, incident and trail tests share: staff of every role, residents with
their search indexes, a small booking world, logging in.

Each package's conftest imports the fixtures it uses from here.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
import time_machine
from django.contrib.auth.hashers import make_password
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from booking.models import (
    Booking,
    ResidentCredential,
    ResidentSession,
    Slot,
    StaffMember,
    Voucher,
)
from booking.registry.pipeline import kana_key
from sesshu.session_store import SessionStore
from tenants.crypto import cipher_for
from tenants.models import Municipality
from tests.booking.booking.conftest import World, build_world, years_ago
from tests.booking.console.conftest import StaffAccount, login, make_staff

CALL_CENTRE_HOME = "/console/callcentre/"


def signed_in(client: Client, account: StaffAccount, clock: time_machine.Coordinates) -> Client:
    clock.shift(30)  # a new TOTP step: an earlier login spent the previous code
    response = login(client, account)
    assert response.status_code == 302, response.content.decode()[:500]
    return client


def signed_in_as_role(
    request: pytest.FixtureRequest,
    role_fixture: str,
    client: Client,
    clock: time_machine.Coordinates,
) -> StaffAccount:
    """Sign in the staff member the named fixture makes, and return the account."""
    account: StaffAccount = request.getfixturevalue(role_fixture)
    signed_in(client, account, clock)
    return account


def make_resident(
    municipality: Municipality,
    number: str,
    *,
    name: str,
    kana: str,
    phone: str,
    born: date,
    address: str = "東京都小平市小川町1-1",
) -> Voucher:
    """A voucher as the registry import leaves it, with the kana and phone blind indexes."""
    cipher = cipher_for(municipality)
    values = {
        "name": name,
        "name_kana": kana,
        "birth_date": born.isoformat(),
        "sex": "2",
        "postal_code": "1870001",
        "address": address,
        "phone": phone,
        "email": None,
        "address_number": "000000" + number[-4:],
    }
    return Voucher.objects.create(
        voucher_number=number,
        personal=cipher.seal_record(values, table="booking_voucher", row_id=number),
        kana_index=cipher.blind_index(kana_key(kana), purpose="name_kana"),
        phone_index=cipher.blind_index(phone, purpose="phone"),
        content_hash=cipher.blind_index(number, purpose="tests"),
    )


@dataclass
class Town:
    """Municipality A with residents the call centre can find and slots to book."""

    world: World
    hanako: Voucher  # 小平 花子, 70, phone 042-311-1111
    namesake: Voucher  # another 小平 花子 (同姓同名), 80, a mobile phone
    call_slot: Slot  # 3 days ahead: web 5, LINE 2, call centre 2
    web_only: Slot  # 4 days ahead: no call-centre capacity
    later_slot: Slot  # 5 days ahead: call centre 2


def build_town(tenant: Municipality) -> Town:
    with tenant_context(tenant):
        world = build_world(tenant)
        hanako = make_resident(
            tenant,
            "2000000001",
            name="小平 花子",
            kana="コダイラ ハナコ",
            phone="0423111111",
            born=years_ago(70),
        )
        namesake = make_resident(
            tenant,
            "2000000002",
            name="小平 花子",
            kana="コダイラ ハナコ",
            phone="09012345678",
            born=years_ago(80),
            address="東京都小平市上水本町2-2",
        )
        return Town(
            world=world,
            hanako=hanako,
            namesake=namesake,
            call_slot=world.slot(days=3, hour=10),
            web_only=world.slot(days=4, hour=10, call_centre=0),
            later_slot=world.slot(days=5, hour=14),
        )


def resident_session(tenant: Municipality, voucher: Voucher) -> str:
    """A live resident web session, as the resident login registers it."""
    with schema_context(tenant.schema_name):
        store = SessionStore()
        store["resident_voucher_id"] = voucher.pk
        store.create()
        assert store.session_key is not None
        ResidentSession.objects.create(session_key=store.session_key, voucher=voucher)
        return store.session_key


def give_password(tenant: Municipality, voucher: Voucher) -> None:
    with schema_context(tenant.schema_name):
        ResidentCredential.objects.create(
            voucher=voucher,
            password=make_password("a-long-resident-password"),
            password_set_at=timezone.now(),
        )


def set_login_mode(tenant: Municipality, mode: str) -> None:
    with schema_context("public"):
        Municipality.objects.filter(pk=tenant.pk).update(login_mode=mode)


def status_of(tenant: Municipality) -> str:
    with schema_context("public"):
        return str(Municipality.objects.get(pk=tenant.pk).status)


def live_bookings(tenant: Municipality, voucher: Voucher) -> list[Booking]:
    with schema_context(tenant.schema_name):
        return list(
            Booking.objects.filter(voucher_id=voucher.pk, status=Booking.Status.ACTIVE)
            .select_related("slot")
            .order_by("dose")
        )


def confirm_identity(client: Client, voucher: Voucher, *, asked_by: str = "resident") -> Any:
    """The operator's path: reveal for the identity check, then say who is on the phone and
    tick all three items."""
    url = f"{CALL_CENTRE_HOME}residents/{voucher.pk}/"
    revealed = client.post(url + "reveal/", {"reason": "identity_check", "note": ""})
    assert revealed.status_code == 200
    return client.post(
        url + "identity/",
        {
            "asked_by": asked_by,
            "name_matches": "on",
            "birth_date_matches": "on",
            "address_matches": "on",
        },
    )


def csv_rows(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


# --- Fixtures -------------------------------------------------------------------------------


@pytest.fixture
def as_admin(client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates) -> Client:
    """A's client, with A's admin signed in."""
    return signed_in(client_a, admin_a, clock)


@pytest.fixture
def town(tenant_a: Municipality, clock: time_machine.Coordinates) -> Town:
    return build_town(tenant_a)


@pytest.fixture
def venue_a(tenant_a: Municipality, clock: time_machine.Coordinates) -> StaffAccount:
    return make_staff(tenant_a, "kaijo@kodaira.example.jp", StaffMember.Role.VENUE)


@pytest.fixture
def auditor_a(tenant_a: Municipality, clock: time_machine.Coordinates) -> StaffAccount:
    return make_staff(tenant_a, "kansa@kodaira.example.jp", StaffMember.Role.AUDITOR)


@pytest.fixture
def operator_b(tenant_b: Municipality, clock: time_machine.Coordinates) -> StaffAccount:
    return make_staff(tenant_b, "call@chiyoda.example.jp", StaffMember.Role.CALL_CENTRE)


def offered(page: str, slot_id: int) -> bool:
    """Whether the operator's booking page offers this slot (its button opens the slot's
    confirmation, read back to the caller before anything is booked)."""
    return f"&amp;confirm={slot_id}#confirm" in page
