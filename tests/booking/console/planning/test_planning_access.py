"""Who may open which planning page; the wrong member of the cast is refused and audited."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client

from booking.models import Slot, StaffMember, Venue
from tenants.models import Municipality
from tests.conftest import host_of

from ..conftest import StaffAccount, events, make_staff
from .conftest import MONDAY, World, at, in_a, logged_in, make_slot

ADMIN_ONLY_GETS = [
    "/console/planning/venues/",
    "/console/planning/venues/new/",
    "/console/planning/slots/",
    "/console/planning/slots/generate/",
    "/console/planning/slots/upload/",
    "/console/planning/slots/upload/template.csv",
    "/console/planning/free.csv",
    "/console/planning/vrs/",
    "/console/planning/rules/",
    "/console/planning/rules/policy/",
    "/console/planning/rules/phases/new/",
    "/console/planning/rules/vaccines/new/",
]


def _role(tenant: Municipality, role: str) -> StaffAccount:
    return make_staff(tenant, f"{role}@kodaira.example.jp", role)


@pytest.mark.parametrize("role", ["call_centre", "venue", "auditor"])
@pytest.mark.parametrize("url", ADMIN_ONLY_GETS)
def test_admin_pages_are_refused_to_other_roles_and_audited(
    client_a: Client,
    tenant_a: Municipality,
    clock: time_machine.Coordinates,
    role: str,
    url: str,
) -> None:
    account = _role(tenant_a, role)
    logged_in(client_a, account, clock)
    response = client_a.get(url)
    assert response.status_code == 403
    refused = events(tenant_a, "console.access_refused")[-1]
    assert refused.details["path"] == url and refused.details["reason"] == "role"
    assert refused.actor_id == str(account.user_id)


def test_the_call_centre_cannot_generate_slots(
    client_a: Client,
    operator_a: StaffAccount,
    world: World,
    tenant_a: Municipality,
    clock: time_machine.Coordinates,
) -> None:
    logged_in(client_a, operator_a, clock)
    response = client_a.post(
        "/console/planning/slots/generate/",
        {
            "venue": world.civic.pk,
            "product": world.pfizer.pk,
            "first_day": MONDAY.isoformat(),
            "last_day": MONDAY.isoformat(),
            "weekdays": ["0"],
            "opens": "09:00",
            "closes": "10:00",
            "slot_minutes": "30",
            "capacity_web": "1",
            "capacity_line": "0",
            "capacity_call_centre": "1",
            "action": "generate",
        },
    )
    assert response.status_code == 403
    with in_a(tenant_a):
        assert Slot.objects.count() == 0
    assert events(tenant_a, "slots.created") == []


def test_the_auditor_reads_reports_but_cannot_write(
    client_a: Client,
    auditor_a: StaffAccount,
    world: World,
    tenant_a: Municipality,
    clock: time_machine.Coordinates,
) -> None:
    with in_a(tenant_a):
        slot = make_slot(world.civic, world.pfizer, at(MONDAY, 10))
    logged_in(client_a, auditor_a, clock)
    assert client_a.get("/console/planning/reports/").status_code == 200
    assert client_a.get("/console/planning/reports/bookings.csv").status_code == 200
    assert client_a.get("/console/planning/free/").status_code == 200

    writes = [
        ("/console/planning/venues/new/", {"name": "x", "area": "y", "address": "z"}),
        (f"/console/planning/venues/{world.civic.pk}/close/", {}),
        (f"/console/planning/slots/{slot.pk}/close/", {}),
        (f"/console/planning/slots/{slot.pk}/cancel/", {"confirm": "on"}),
        ("/console/planning/vrs/", {"first_day": "2026-05-01", "last_day": "2026-05-10"}),
    ]
    for url, data in writes:
        assert client_a.post(url, data).status_code == 403, url
    with in_a(tenant_a):
        slot.refresh_from_db()
        world.civic.refresh_from_db()
        assert slot.status == Slot.Status.OPEN and world.civic.is_open
        assert Venue.objects.count() == 2
    assert events(tenant_a, "export.vrs") == []


def test_venue_staff_see_free_slots_of_their_venues_only_and_no_reports(
    client_a: Client,
    venue_staff_a: StaffAccount,
    world: World,
    tenant_a: Municipality,
    clock: time_machine.Coordinates,
) -> None:
    with in_a(tenant_a):
        make_slot(world.civic, world.pfizer, at(MONDAY, 10))
        make_slot(world.north, world.pfizer, at(MONDAY, 11))
        StaffMember.objects.get(pk=venue_staff_a.staff_id).venues.set([world.north])
    logged_in(client_a, venue_staff_a, clock)
    page = client_a.get("/console/planning/free/?first_day=2026-05-18").content.decode()
    assert "北部集会所" in page and "小平市役所" not in page
    assert client_a.get("/console/planning/reports/").status_code == 403
    assert client_a.get("/console/planning/free.csv").status_code == 403


def test_an_anonymous_visitor_is_sent_to_login(client_a: Client, tenant_a: Municipality) -> None:
    for url in ["/console/planning/", "/console/planning/free/", "/console/planning/vrs/"]:
        response = client_a.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/console/login/")


def test_staff_of_a_see_nothing_of_b(
    client_a: Client,
    admin_a: StaffAccount,
    admin_b: StaffAccount,
    world: World,
    tenant_a: Municipality,
    tenant_b: Municipality,
    clock: time_machine.Coordinates,
) -> None:
    with in_a(tenant_a):
        slot = make_slot(world.civic, world.pfizer, at(MONDAY, 10))

    # A's session on B's host is no session at all.
    logged_in(client_a, admin_a, clock)
    response = client_a.get("/console/planning/slots/", HTTP_HOST=host_of(tenant_b))
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")

    # B's admin, logged in at B, finds none of A's venues or slots.
    client_b = Client(HTTP_HOST=host_of(tenant_b))
    logged_in(client_b, admin_b, clock)
    assert client_b.get(f"/console/planning/venues/{world.civic.pk}/edit/").status_code == 404
    assert client_b.get(f"/console/planning/slots/{slot.pk}/cancel/").status_code == 404
    assert client_b.post(f"/console/planning/slots/{slot.pk}/close/").status_code == 404
    page = client_b.get("/console/planning/free/?first_day=2026-05-18").content.decode()
    assert "小平市役所" not in page
    assert "小平市役所" not in client_b.get("/console/planning/venues/").content.decode()
    fill = client_b.get(
        "/console/planning/reports/fill.csv?first_day=2026-05-11&last_day=2026-05-31"
    )
    assert fill.content.decode("utf-8-sig").count("\r\n") == 1  # the header only
    export = client_b.post(
        "/console/planning/vrs/",
        {
            "first_day": "2026-05-01",
            "last_day": "2026-05-31",
            "basis": "vaccinated_on",
            "encoding": "utf-8",
        },
    )
    assert b"".join(export.streaming_content).decode().count("\r\n") == 1  # the header only
    with in_a(tenant_a):
        slot.refresh_from_db()
        assert slot.status == Slot.Status.OPEN
