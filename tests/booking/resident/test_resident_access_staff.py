"""The rest of the cast against the resident pages: an operator (staff) of A, an operator of
B and a vendor operator, each logged in where they work, then sent to a resident's pages of A
(my page, book, change, cancel, print). A staff or control-plane session is not a resident's:
every page sends them to the top page, the refusal is audited, and nothing changes."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from audit.chain import Actor
from booking.models import Booking, Slot, StaffMember, Voucher
from booking.services.booking import booking_create
from controlplane.services import operator_create
from tenants.models import Municipality
from tests.booking.console.conftest import (
    StaffAccount,
    clock,  # noqa: F401  (fixture)
    make_staff,
)
from tests.booking.console.conftest import login as console_login
from tests.booking.resident.conftest import Resident, World, events, logged_in
from tests.conftest import host_of
from tests.controlplane.conftest import PLATFORM_HOST, token_for
from tests.controlplane.conftest import login as platform_login


@pytest.fixture(autouse=True)
def _frozen_clock(clock: time_machine.Coordinates) -> None:  # noqa: F811
    """Staff log in with TOTP on the console's frozen clock: build the world on it too."""


@pytest.fixture
def residents_booking(
    clock: time_machine.Coordinates,  # noqa: F811  (the world is built on the frozen clock)
    world_a: World,
    resident_a: Resident,
) -> Booking:
    with tenant_context(world_a.municipality):
        voucher = Voucher.objects.get(pk=resident_a.pk)
        return booking_create(
            voucher=voucher,
            slot=world_a.slot(3, 10),
            channel="web",
            actor=Actor.resident(voucher.pk),
        )


def _staff_client(
    account: StaffAccount,
    traveller: time_machine.Coordinates,
    host: str,
) -> Client:
    """A browser with ``account`` logged in to its own municipality's console, then sent to
    ``host`` (cookies go with it: the test client keeps one jar for every host)."""
    client = Client(HTTP_HOST=host_of(account.tenant))
    traveller.shift(30)  # a fresh TOTP step
    response = console_login(client, account)
    assert response.status_code == 302, response.content.decode()[:500]
    assert client.get("/console/").status_code == 200  # really logged in there
    client.defaults["HTTP_HOST"] = host
    return client


def _staff_of(
    tenant: Municipality,
    email: str,
    role: str,
    traveller: time_machine.Coordinates,
    visiting: Municipality,
) -> Client:
    """A new staff member of ``tenant``, logged in to its console, sent to ``visiting``."""
    return _staff_client(make_staff(tenant, email, role), traveller, host_of(visiting))


@pytest.fixture
def operator_of_a(
    tenant_a: Municipality,
    clock: time_machine.Coordinates,  # noqa: F811
    residents_booking: Booking,
) -> Client:
    return _staff_of(
        tenant_a, "call@kodaira.example.jp", StaffMember.Role.CALL_CENTRE, clock, tenant_a
    )


@pytest.fixture
def admin_of_a(
    tenant_a: Municipality,
    clock: time_machine.Coordinates,  # noqa: F811
    residents_booking: Booking,
) -> Client:
    return _staff_of(tenant_a, "kanri@kodaira.example.jp", StaffMember.Role.ADMIN, clock, tenant_a)


@pytest.fixture
def operator_of_b(
    tenant_a: Municipality,
    tenant_b: Municipality,
    clock: time_machine.Coordinates,  # noqa: F811
    residents_booking: Booking,
) -> Client:
    return _staff_of(
        tenant_b, "call@chiyoda.example.jp", StaffMember.Role.CALL_CENTRE, clock, tenant_a
    )


@pytest.fixture
def vendor_operator(
    tenant_a: Municipality,
    clock: time_machine.Coordinates,  # noqa: F811
    residents_booking: Booking,
) -> Client:
    with schema_context("public"):
        created = operator_create(
            username="vendor-operator",
            email="operator@vendor.example.jp",
            password="correct horse battery staple 2021",
            actor=Actor.system("tests"),
        )
    client = Client(HTTP_HOST=PLATFORM_HOST)
    response = platform_login(
        client,
        username="vendor-operator",
        password="correct horse battery staple 2021",
        token=token_for(created.device),
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200  # really logged in to the control plane
    client.defaults["HTTP_HOST"] = host_of(tenant_a)
    return client


def _visits(booking: Booking, free_slot: Slot) -> list[tuple[str, str]]:
    number = booking.booking_number
    day = free_slot.starts_at.date().isoformat()
    return [
        ("get", "/mypage/"),
        ("get", "/contact/"),
        ("post", "/contact/"),
        ("get", "/book/"),
        ("get", f"/book/{day}/"),
        ("get", f"/book/slot/{free_slot.pk}/"),
        ("post", f"/book/slot/{free_slot.pk}/"),
        ("get", f"/book/slot/{booking.slot_id}/second/"),
        ("post", f"/book/slot/{booking.slot_id}/second/slot/{free_slot.pk}/"),
        ("get", f"/bookings/{number}/"),
        ("get", f"/bookings/{number}/done/"),
        ("get", f"/bookings/{number}/print/"),
        ("get", f"/bookings/{number}/change/"),
        ("get", f"/bookings/{number}/change/{day}/"),
        ("get", f"/bookings/{number}/change/slot/{free_slot.pk}/"),
        ("post", f"/bookings/{number}/change/slot/{free_slot.pk}/"),
        ("get", f"/bookings/{number}/cancel/"),
        ("post", f"/bookings/{number}/cancel/"),
    ]


def _refused_everywhere(client: Client, world: World, booking: Booking) -> None:
    free_slot = world.slot(6, 9)
    visits = _visits(booking, free_slot)
    before = len(events(world.municipality, "resident.access_refused"))
    for method, url in visits:
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url, response.status_code)
        assert response["Location"] == "/", (method, url)
        body = response.content.decode()
        assert booking.booking_number not in body and "小平 花子" not in body
    refused = events(world.municipality, "resident.access_refused")[before:]
    assert len(refused) == len(visits)
    assert {event.details["reason"] for event in refused} == {"anonymous"}
    assert {event.actor_kind for event in refused} == {"anonymous"}
    with tenant_context(world.municipality):
        untouched = Booking.objects.get(pk=booking.pk)
        assert untouched.status == Booking.Status.ACTIVE
        assert untouched.slot_id == booking.slot_id
        assert Booking.objects.count() == 1
        assert Slot.objects.get(pk=free_slot.pk).booked_web == 0
        assert Slot.objects.get(pk=booking.slot_id).booked_web == 1


@pytest.mark.parametrize("member", ["operator_of_a", "admin_of_a", "operator_of_b"])
def test_staff_of_either_municipality_are_not_residents(
    member: str,
    request: pytest.FixtureRequest,
    world_a: World,
    residents_booking: Booking,
) -> None:
    client = request.getfixturevalue(member)
    _refused_everywhere(client, world_a, residents_booking)


def test_a_vendor_operator_is_not_a_resident(
    vendor_operator: Client, world_a: World, residents_booking: Booking
) -> None:
    _refused_everywhere(vendor_operator, world_a, residents_booking)


def test_the_resident_pages_still_open_for_the_resident_alongside_staff(
    operator_of_a: Client,
    world_a: World,
    resident_a: Resident,
    residents_booking: Booking,
) -> None:
    """The refusals above are about who is asking: the same pages open for the resident (so
    the staff test would fail if the pages were simply broken)."""
    resident = logged_in(Client(HTTP_HOST=host_of(world_a.municipality)), resident_a)
    for url in ("/mypage/", f"/bookings/{residents_booking.booking_number}/print/"):
        assert resident.get(url).status_code == 200, url
    # And the operator's session still is not one, even in the same municipality.
    assert operator_of_a.get("/mypage/")["Location"] == "/"
