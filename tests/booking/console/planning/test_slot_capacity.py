"""Changing a slot's places for each channel: never below what is booked, shown at once."""

from __future__ import annotations

import pytest
from django.test import Client

from booking.models import Slot
from booking.selectors.availability import Mark, availability_for_day
from booking.services.booking import BookingRefused
from tenants.models import Municipality

from ..conftest import StaffAccount, events
from .conftest import MONDAY, World, at, in_a, logged_in, make_slot


@pytest.fixture
def slot(world: World) -> Slot:
    return make_slot(world.civic, world.pfizer, at(MONDAY, 10), web=1, line=2, call_centre=2)


def capacity(
    client: Client,
    slot: Slot,
    web: object,
    line: object,
    call_centre: object,
    *,
    seen: tuple[int, int, int] | None = None,
):
    """The form sent, as opened when ``slot`` was read (its places as seen), unless ``seen``."""
    seen_web, seen_line, seen_call_centre = seen or (
        slot.capacity_web,
        slot.capacity_line,
        slot.capacity_call_centre,
    )
    return client.post(
        f"/console/planning/slots/{slot.pk}/capacity/",
        {
            "capacity_web": web,
            "capacity_line": line,
            "capacity_call_centre": call_centre,
            "seen_web": seen_web,
            "seen_line": seen_line,
            "seen_call_centre": seen_call_centre,
        },
    )


def test_more_places_are_bookable_at_once_and_the_change_is_audited(
    as_admin: Client, world: World, slot: Slot, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        world.book(slot, world.residents[0])
        with pytest.raises(BookingRefused) as full:
            world.book(slot, world.residents[1])
        assert full.value.code == "full"
    listing = as_admin.get("/console/planning/slots/?venue=" + str(world.civic.pk)).content
    assert f"/console/planning/slots/{slot.pk}/capacity/" in listing.decode()
    form = as_admin.get(f"/console/planning/slots/{slot.pk}/capacity/").content.decode()
    assert 'name="capacity_web" value="1"' in form and "予約済み" in form

    response = capacity(as_admin, slot, 3, 2, 1)
    assert response.status_code == 302
    assert "定員を変更しました" in as_admin.get(response["Location"]).content.decode()
    with in_a(tenant_a):
        slot.refresh_from_db()
        assert (slot.capacity_web, slot.capacity_line, slot.capacity_call_centre) == (3, 2, 1)
        # The residents' availability shows it at once (no stale "full" in the cache).
        (venue,) = availability_for_day(channel="web", day=MONDAY)
        (shown,) = [s for s in venue.slots if s.slot_id == slot.pk]
        assert shown.mark is not Mark.NONE
        world.book(slot, world.residents[1])
    (changed,) = events(tenant_a, "slot.capacity_changed")
    assert changed.target_id == str(slot.pk)
    assert changed.details == {"web": "1 → 3", "call_centre": "2 → 1"}


def test_places_never_fall_below_what_is_booked(
    as_admin: Client, world: World, slot: Slot, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        world.book(slot, world.residents[0], channel="line")
        world.book(slot, world.residents[1], channel="line")
    refused = capacity(as_admin, slot, 1, 1, 2)
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "LINEの定員は、予約済みの2人より少なくできません" in text
    assert 'name="capacity_line" value="1"' in text  # what was typed stays
    # Said at the LINE box, which is marked (not only above the form).
    line_box = text.split('name="capacity_line"')[1].split(">")[0]
    assert 'aria-invalid="true"' in line_box
    assert 'aria-invalid="true"' not in text.split('name="capacity_web"')[1].split(">")[0]
    for typed, message in (
        ((1, 2, 2), "定員が変わっていません"),
        ((-1, 2, 2), "定員は 0 以上にしてください"),
        (("", 2, 2), "定員を入力してください"),
        (("a", 2, 2), "定員は数字で"),
    ):
        again = capacity(as_admin, slot, *typed)
        assert again.status_code == 400 and message in again.content.decode(), typed
    with in_a(tenant_a):
        slot.refresh_from_db()
        assert (slot.capacity_web, slot.capacity_line, slot.capacity_call_centre) == (1, 2, 2)
    assert not events(tenant_a, "slot.capacity_changed")


def test_no_capacity_change_for_a_cancelled_or_started_slot_nor_by_other_roles(
    as_admin: Client,
    world: World,
    slot: Slot,
    tenant_a: Municipality,
    operator_a: StaffAccount,
    clock,
) -> None:
    with in_a(tenant_a):
        started = make_slot(world.civic, world.pfizer, at(MONDAY, 10).replace(day=11, hour=9))
        cancelled = make_slot(
            world.civic, world.pfizer, at(MONDAY, 11), status=Slot.Status.CANCELLED
        )
    for gone, message in ((started, "開始時刻を過ぎた枠"), (cancelled, "中止した枠")):
        response = capacity(as_admin, gone, 9, 9, 9)
        assert response.status_code == 400 and message in response.content.decode()
        assert (
            message in as_admin.get(f"/console/planning/slots/{gone.pk}/capacity/").content.decode()
        )
    operator = logged_in(Client(HTTP_HOST=as_admin.defaults["HTTP_HOST"]), operator_a, clock)
    assert capacity(operator, slot, 9, 9, 9).status_code == 403
    with in_a(tenant_a):
        slot.refresh_from_db()
        assert slot.capacity_web == 1


def test_a_change_made_by_another_admin_meanwhile_is_never_written_over(
    as_admin: Client,
    world: World,
    slot: Slot,
    tenant_a: Municipality,
    admin_a: StaffAccount,
    clock,
) -> None:
    """Two admins open the same slot's form (web 1, LINE 2, call centre 2); the second adds
    call-centre places and saves; the first, still on the old form, adds web places: refused,
    naming the other change, and the form opens again from the places as they are now."""
    other = logged_in(Client(HTTP_HOST=as_admin.defaults["HTTP_HOST"]), admin_a, clock)
    form = as_admin.get(f"/console/planning/slots/{slot.pk}/capacity/").content.decode()
    assert 'name="seen_call_centre" value="2"' in form
    assert capacity(other, slot, 1, 2, 5).status_code == 302

    refused = capacity(as_admin, slot, 8, 2, 2)  # the form as first opened
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "ほかの職員がこの枠の定員を変更しました（コールセンター 2 → 5）" in text
    assert 'name="capacity_call_centre" value="5"' in text
    assert 'name="capacity_web" value="1"' in text  # the typed 8 is not offered again as saved
    with in_a(tenant_a):
        slot.refresh_from_db()
        assert (slot.capacity_web, slot.capacity_line, slot.capacity_call_centre) == (1, 2, 5)
    (changed,) = events(tenant_a, "slot.capacity_changed")
    assert changed.details == {"call_centre": "2 → 5"}

    # Sent again from the form as it now is: written.
    assert capacity(as_admin, slot, 8, 2, 5).status_code == 302
    with in_a(tenant_a):
        slot.refresh_from_db()
        assert (slot.capacity_web, slot.capacity_call_centre) == (8, 5)
