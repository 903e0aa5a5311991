"""The call centre where the municipality books doses 1 and 2 together: after the first slot
the operator picks the second among call-centre slots of the same vaccine far enough after it;
both are booked at once, linked, and cancelling the first cancels the second (and says so)."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.test import Client
from django_tenants.utils import schema_context

from booking.models import Booking, Slot
from tenants.models import Municipality
from tests.booking.booking.conftest import counters
from tests.booking.console.callcentre.cast import (
    CALL_CENTRE_HOME,
    Town,
    confirm_identity,
    live_bookings,
    offered,
    signed_in,
)
from tests.booking.console.conftest import StaffAccount, events


@pytest.fixture
def together(tenant_a: Municipality, town: Town) -> Town:
    with schema_context(tenant_a.schema_name):
        town.world.policy.book_series_together = True
        town.world.policy.cancel_cascades = True
        town.world.policy.save()
    return town


def _slot(tenant: Municipality, town: Town, days: int, **kwargs: object) -> Slot:
    with schema_context(tenant.schema_name):
        return town.world.slot(days=days, hour=10, **kwargs)


def _book_url(town: Town) -> str:
    return f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/book/"


def _all_bookings(tenant: Municipality, town: Town) -> list[Booking]:
    with schema_context(tenant.schema_name):
        return list(Booking.objects.filter(voucher_id=town.hanako.pk).order_by("dose", "pk"))


def _book_both(client: Client, town: Town, second: Slot) -> Any:
    """Post the call-centre slot as dose 1 and `second` as dose 2, in one go."""
    return client.post(_book_url(town), {"slot": town.call_slot.pk, "second_slot": second.pk})


def _ready(client: Client, account: StaffAccount, town: Town, clock: object) -> None:
    signed_in(client, account, clock)  # type: ignore[arg-type]
    confirm_identity(client, town.hanako)


@pytest.fixture
def at_the_desk(
    client_a: Client,
    operator_a: StaffAccount,
    together: Town,
    clock: time_machine.Coordinates,
) -> None:
    """The operator signed in, with Hanako's identity confirmed, in a town that books both."""
    _ready(client_a, operator_a, together, clock)


def test_the_first_slot_leads_to_the_second_dose_s_slots(
    tenant_a: Municipality,
    client_a: Client,
    together: Town,
    at_the_desk: None,
) -> None:
    too_soon = _slot(tenant_a, together, 21)  # 18 days after the first: Pfizer needs 19
    in_time = _slot(tenant_a, together, 22)
    other_vaccine = _slot(tenant_a, together, 24, product=together.world.moderna)
    chosen = client_a.post(_book_url(together), {"slot": together.call_slot.pk})
    assert chosen.status_code == 302
    assert chosen["Location"] == f"{_book_url(together)}?first={together.call_slot.pk}"
    assert _all_bookings(tenant_a, together) == []  # nothing booked yet

    page = client_a.get(chosen["Location"]).content.decode()
    assert "1回目と2回目の予約" in page and "まだ予約されていません" in page
    assert f'name="first" value="{together.call_slot.pk}"' in page
    # The earliest allowed day is shown first, with the second-dose button.
    assert offered(page, in_time.pk)
    assert "この枠を2回目にして2回分を予約" in page
    # Its confirmation carries both slots, read back before the two are booked.
    confirm = client_a.get(f"{chosen['Location']}&confirm={in_time.pk}").content.decode()
    assert f'name="slot" value="{together.call_slot.pk}"' in confirm
    assert f'name="second_slot" value="{in_time.pk}"' in confirm
    assert "2回分の予約を確定する" in confirm
    for day, slot in ((21, too_soon), (24, other_vaccine)):
        date_text = slot.starts_at.date().isoformat()
        other = client_a.get(f"{chosen['Location']}&day={date_text}").content.decode()
        assert not offered(other, slot.pk), day
    # Asking for the other vaccine does not offer it for the second dose.
    asked = client_a.get(
        f"{chosen['Location']}&product=moderna&day={other_vaccine.starts_at.date().isoformat()}"
    ).content.decode()
    assert not offered(asked, other_vaccine.pk)


def test_the_operator_books_both_doses_linked(
    tenant_a: Municipality,
    client_a: Client,
    together: Town,
    at_the_desk: None,
) -> None:
    second = _slot(tenant_a, together, 23, venue=together.world.north)
    response = _book_both(client_a, together, second)
    assert response.status_code == 302
    dose1, dose2 = live_bookings(tenant_a, together.hanako)
    assert response["Location"].endswith(f"/bookings/{dose1.pk}/")
    assert (dose1.dose, dose1.slot_id) == (1, together.call_slot.pk)
    assert (dose2.dose, dose2.slot_id, dose2.linked_to_id) == (2, second.pk, dose1.pk)
    assert dose1.channel == dose2.channel == "call_centre"
    with schema_context(tenant_a.schema_name):
        assert counters(together.call_slot) == (0, 0, 1)
        assert counters(second) == (0, 0, 1)
    created = events(tenant_a, "booking.created")[-2:]
    assert [event.details["linked_to"] for event in created] == [None, dose1.pk]
    page = client_a.get(response["Location"]).content.decode()
    assert "1回目と2回目を予約しました" in page
    assert "一緒に予約した2回目" in page
    number = dose2.booking_number
    assert f"{number[:5]}-{number[5:]}" in page


def test_a_second_slot_too_early_is_refused_and_nothing_is_booked(
    tenant_a: Municipality,
    client_a: Client,
    together: Town,
    at_the_desk: None,
) -> None:
    too_soon = _slot(tenant_a, together, 21)
    response = _book_both(client_a, together, too_soon)
    assert response.status_code == 409
    text = response.content.decode()
    assert "2回目の予約：2回目は、前の接種から19日以上あける必要があります" in text
    assert 'role="alert"' in text
    # The page stays on the second dose, with the first slot kept.
    assert f'name="first" value="{together.call_slot.pk}"' in text
    assert _all_bookings(tenant_a, together) == []
    with schema_context(tenant_a.schema_name):
        assert counters(together.call_slot) == (0, 0, 0)
        assert counters(too_soon) == (0, 0, 0)


def test_a_full_second_slot_books_nothing(
    tenant_a: Municipality,
    client_a: Client,
    together: Town,
    at_the_desk: None,
) -> None:
    full = _slot(tenant_a, together, 23, call_centre=1)
    with schema_context(tenant_a.schema_name):
        Slot.objects.filter(pk=full.pk).update(booked_call_centre=1)
    response = _book_both(client_a, together, full)
    assert response.status_code == 409
    assert "2回目の予約：" in response.content.decode()
    assert "受付枠が、ちょうど埋まりました" in response.content.decode()
    assert _all_bookings(tenant_a, together) == []
    with schema_context(tenant_a.schema_name):
        assert counters(together.call_slot) == (0, 0, 0)


def test_cancelling_dose_1_cancels_dose_2_and_says_so(
    tenant_a: Municipality,
    client_a: Client,
    together: Town,
    at_the_desk: None,
) -> None:
    second = _slot(tenant_a, together, 23)
    _book_both(client_a, together, second)
    dose1, dose2 = live_bookings(tenant_a, together.hanako)
    cancel_url = f"{CALL_CENTRE_HOME}residents/{together.hanako.pk}/bookings/{dose1.pk}/cancel/"
    asked = client_a.get(cancel_url).content.decode()
    assert "一緒に予約した2回目" in asked and "も取り消されます" in asked
    response = client_a.post(cancel_url, {"asked_by": "resident"}, follow=True)
    text = response.content.decode()
    assert "一緒に予約していた2回目" in text and "も取り消しました" in text
    assert {b.status for b in _all_bookings(tenant_a, together)} == {"cancelled"}
    with schema_context(tenant_a.schema_name):
        assert counters(together.call_slot) == (0, 0, 0)
        assert counters(second) == (0, 0, 0)
    cascade = [e for e in events(tenant_a, "booking.cancelled") if e.details["cascade_of"]]
    assert [e.target_id for e in cascade] == [str(dose2.pk)]


def test_without_the_policy_the_first_slot_is_booked_alone(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    _ready(client_a, operator_a, town, clock)
    second = _slot(tenant_a, town, 23)
    refused = _book_both(client_a, town, second)
    assert refused.status_code == 409
    assert "2回分をまとめて予約できません" in refused.content.decode()
    assert _all_bookings(tenant_a, town) == []
    booked = client_a.post(_book_url(town), {"slot": town.call_slot.pk})
    assert booked.status_code == 302
    [booking] = live_bookings(tenant_a, town.hanako)
    assert booking.linked_to_id is None
    assert (
        "まだ予約されていません"
        not in client_a.get(
            f"{_book_url(town)}?first={town.call_slot.pk}", follow=True
        ).content.decode()
    )
