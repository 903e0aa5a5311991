"""Municipalities that book doses 1 and 2 together: after the first slot the resident chooses
the second among slots of the same vaccine far enough after it, confirms both, and both are
booked at once, linked; cancelling the first cancels the second, and the page says so."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from booking.models import Booking, Slot, VaccineProduct
from tenants.models import Municipality
from tests.booking.resident.conftest import JAPAN, Resident, World, logged_in


@pytest.fixture
def together(world_a: World) -> World:
    with tenant_context(world_a.municipality):
        world_a.policy.book_series_together = True
        world_a.policy.cancel_cascades = True
        world_a.policy.save()
    return world_a


def _day(slot: Slot) -> str:
    return slot.starts_at.astimezone(JAPAN).date().isoformat()


def _bookings(municipality: Municipality, resident: Resident) -> list[Booking]:
    with tenant_context(municipality):
        return list(
            Booking.objects.filter(voucher_id=resident.pk)
            .select_related("slot")
            .order_by("dose", "pk")
        )


def _counters(municipality: Municipality, slot: Slot) -> tuple[int, int, int]:
    with tenant_context(municipality):
        fresh = Slot.objects.get(pk=slot.pk)
    return (fresh.booked_web, fresh.booked_line, fresh.booked_call_centre)


def _book_both(client: Client, first: Slot, second: Slot) -> str:
    response = client.post(f"/book/slot/{first.pk}/second/slot/{second.pk}/")
    assert response.status_code == 302, response.content.decode()[:3000]
    match = re.fullmatch(r"/bookings/([A-Z0-9]+)/done/", response["Location"])
    assert match is not None
    return match.group(1)


def test_choosing_the_first_slot_leads_to_the_second_dose_s_dates(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    first = together.slot(3, 10)
    too_soon = together.slot(21, 10)  # 18 days after: Pfizer needs 19
    in_time = together.slot(22, 10, venue=together.north)
    with tenant_context(together.municipality):
        moderna = VaccineProduct.objects.create(
            code="moderna", name="モデルナ社ワクチン", interval_days=28, doses_in_series=2
        )
        together.civic.products.add(moderna)
    other_vaccine = together.slot(24, 10, product=moderna)

    # The first slot's confirmation is not offered alone: the second dose comes first.
    chosen = client_a.get(f"/book/slot/{first.pk}/")
    assert chosen.status_code == 302
    assert chosen["Location"] == f"/book/slot/{first.pk}/second/"
    dates = client_a.get(chosen["Location"])
    text = dates.content.decode()
    assert dates.status_code == 200
    assert "2回目の接種を受ける日を選んでください" in text
    assert "まだ予約されていません" in text and "小平市役所" in text
    assert f'href="/book/slot/{first.pk}/second/{_day(in_time)}/' in text
    assert f"/second/{_day(too_soon)}/" not in text
    assert f"/second/{_day(other_vaccine)}/" not in text  # the same vaccine only
    # Asking for the other vaccine in the address changes nothing.
    text = client_a.get(f"/book/slot/{first.pk}/second/?product=moderna").content.decode()
    assert f"/second/{_day(other_vaccine)}/" not in text

    slots = client_a.get(f"/book/slot/{first.pk}/second/{_day(in_time)}/").content.decode()
    assert f'href="/book/slot/{first.pk}/second/slot/{in_time.pk}/?' in slots
    confirm = client_a.get(f"/book/slot/{first.pk}/second/slot/{in_time.pk}/")
    text = confirm.content.decode()
    assert confirm.status_code == 200
    assert "1回目と2回目を予約しますか" in text
    assert "小平市役所" in text and "北部集会所" in text
    assert "2回分を予約する" in text
    assert _bookings(together.municipality, resident_a) == []


def test_both_doses_are_booked_together_and_linked(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    first, second = together.slot(3, 10), together.slot(22, 14, venue=together.north)
    number = _book_both(client_a, first, second)
    dose1, dose2 = _bookings(together.municipality, resident_a)
    assert dose1.booking_number == number
    assert (dose1.dose, dose1.slot_id, dose1.status) == (1, first.pk, "active")
    assert (dose2.dose, dose2.slot_id, dose2.status) == (2, second.pk, "active")
    assert dose2.linked_to_id == dose1.pk
    assert dose1.channel == dose2.channel == "web"
    assert _counters(together.municipality, first) == (1, 0, 0)
    assert _counters(together.municipality, second) == (1, 0, 0)
    done = client_a.get(f"/bookings/{number}/done/").content.decode()
    assert "一緒に予約した2回目" in done and dose2.booking_number[:5] in done
    mypage = client_a.get("/mypage/").content.decode()
    assert dose1.booking_number[:5] in mypage and dose2.booking_number[:5] in mypage
    # The series is booked: nothing more to book, and no dose 3 offered.
    assert "すでに済んでいるか予約済み" in client_a.get("/book/").content.decode()


def test_a_first_slot_taken_meanwhile_answers_with_the_first_doses_day_again(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    first, other_first = together.slot(3, 10, web=1), together.slot(3, 14)
    second = together.slot(23, 10)
    with tenant_context(together.municipality):  # the first dose's last place goes meanwhile
        Slot.objects.filter(pk=first.pk).update(booked_web=1)
    response = client_a.post(f"/book/slot/{first.pk}/second/slot/{second.pk}/")
    assert response.status_code == 409
    text = response.content.decode()
    assert "1回目の予約：" in text and "満員" in text
    # The first dose is chosen again, from that day's slots: the taken one shown full.
    assert f'href="/book/slot/{other_first.pk}/"' in text
    assert f'href="/book/slot/{first.pk}/' not in text
    assert f'action="/book/{_day(first)}/"' in text
    assert _bookings(together.municipality, resident_a) == []
    assert _counters(together.municipality, second) == (0, 0, 0)


def test_a_second_slot_too_early_is_refused_and_nothing_is_booked(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    first, too_soon = together.slot(3, 10), together.slot(21, 10)
    response = client_a.post(f"/book/slot/{first.pk}/second/slot/{too_soon.pk}/")
    text = response.content.decode()
    assert response.status_code == 409
    assert 'role="alert"' in text
    assert "2回目の予約：2回目は、前の接種から19日以上あける必要があります" in text
    assert _bookings(together.municipality, resident_a) == []
    assert _counters(together.municipality, first) == (0, 0, 0)
    assert _counters(together.municipality, too_soon) == (0, 0, 0)


def test_a_full_second_slot_books_nothing(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    first = together.slot(3, 10)
    full = together.slot(23, 10, web=1)
    other = together.slot(23, 14)
    # Taken between the resident's look and their confirmation.
    page = client_a.get(f"/book/slot/{first.pk}/second/slot/{full.pk}/")
    assert page.status_code == 200
    with tenant_context(together.municipality):
        Slot.objects.filter(pk=full.pk).update(booked_web=1)
    response = client_a.post(f"/book/slot/{first.pk}/second/slot/{full.pk}/")
    assert response.status_code == 409
    text = response.content.decode()
    assert "2回目の予約：" in text and "満員" in text
    # The answer is the second dose's other slots that day, the first dose still chosen.
    assert f'href="/book/slot/{first.pk}/second/slot/{other.pk}/?' in text
    assert f'href="/book/slot/{first.pk}/second/slot/{full.pk}/' not in text
    assert f'action="/book/slot/{first.pk}/second/slot/{full.pk}/"' not in text
    assert f'action="/book/slot/{first.pk}/second/{_day(full)}/"' in text  # its filters
    assert _bookings(together.municipality, resident_a) == []
    assert _counters(together.municipality, first) == (0, 0, 0)


def test_the_first_slot_alone_books_nothing_when_the_series_is_booked_together(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    first = together.slot(3, 10)
    response = client_a.post(f"/book/slot/{first.pk}/")
    assert response.status_code == 302
    assert response["Location"] == f"/book/slot/{first.pk}/second/"
    assert _bookings(together.municipality, resident_a) == []
    assert _counters(together.municipality, first) == (0, 0, 0)


def test_cancelling_dose_1_cancels_dose_2_and_says_so(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    first, second = together.slot(3, 10), together.slot(22, 10)
    number = _book_both(client_a, first, second)
    _dose1, dose2 = _bookings(together.municipality, resident_a)
    asked = client_a.get(f"/bookings/{number}/cancel/").content.decode()
    assert "一緒に予約した2回目" in asked and "も取り消されます" in asked
    response = client_a.post(f"/bookings/{number}/cancel/", follow=True)
    text = response.content.decode()
    assert "一緒に予約していた2回目" in text and "を取り消しました" in text
    assert [b.status for b in _bookings(together.municipality, resident_a)] == [
        "cancelled",
        "cancelled",
    ]
    assert _counters(together.municipality, first) == (0, 0, 0)
    assert _counters(together.municipality, second) == (0, 0, 0)
    # Both places are free and the resident starts again from dose 1.
    again = client_a.get(f"/book/slot/{together.slot(4, 10).pk}/")
    assert again["Location"].endswith("/second/")
    assert dose2.booking_number[:5] not in client_a.get("/mypage/").content.decode()


def test_cancelling_dose_2_leaves_dose_1_and_does_not_warn(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    number = _book_both(client_a, together.slot(3, 10), together.slot(22, 10))
    _dose1, dose2 = _bookings(together.municipality, resident_a)
    asked = client_a.get(f"/bookings/{dose2.booking_number}/cancel/").content.decode()
    assert "も取り消されます" not in asked
    client_a.post(f"/bookings/{dose2.booking_number}/cancel/")
    assert [b.status for b in _bookings(together.municipality, resident_a)] == [
        "active",
        "cancelled",
    ]
    # Booking dose 2 again links it to dose 1: cancelling dose 1 still takes it along.
    again = together.slot(24, 10)
    response = client_a.post(f"/book/slot/{again.pk}/")
    assert response.status_code == 302
    rebooked = [b for b in _bookings(together.municipality, resident_a) if b.status == "active"]
    assert [b.dose for b in rebooked] == [1, 2]
    assert rebooked[1].linked_to_id == rebooked[0].pk
    client_a.post(f"/bookings/{number}/cancel/")
    assert {b.status for b in _bookings(together.municipality, resident_a)} == {"cancelled"}


def test_changing_dose_1_keeps_it_far_enough_before_dose_2(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    number = _book_both(client_a, together.slot(3, 10), together.slot(22, 10))
    too_late = together.slot(5, 10)
    refused = client_a.post(f"/bookings/{number}/change/slot/{too_late.pk}/")
    assert refused.status_code == 409
    assert "2回目の予約との間を19日以上あける必要があります" in refused.content.decode()
    earlier = together.slot(2, 10)
    moved = client_a.post(f"/bookings/{number}/change/slot/{earlier.pk}/")
    assert moved.status_code == 302
    dose1, dose2 = _bookings(together.municipality, resident_a)
    assert dose1.slot_id == earlier.pk and dose2.linked_to_id == dose1.pk


def test_a_single_dose_vaccine_is_booked_alone(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    with tenant_context(together.municipality):
        single = VaccineProduct.objects.create(
            code="single", name="1回接種ワクチン", interval_days=0, doses_in_series=1
        )
        together.civic.products.add(single)
    logged_in(client_a, resident_a)
    slot = together.slot(3, 10, product=single)
    assert client_a.get(f"/book/slot/{slot.pk}/").status_code == 200
    assert client_a.post(f"/book/slot/{slot.pk}/").status_code == 302
    (booking,) = _bookings(together.municipality, resident_a)
    assert booking.dose == 1 and booking.linked_to_id is None


def test_the_second_dose_pages_need_a_slot_open_to_the_channel(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    phone_only = together.slot(3, 10, web=0, line=0)
    second = together.slot(22, 10)
    for url in (
        f"/book/slot/{phone_only.pk}/second/",
        f"/book/slot/{phone_only.pk}/second/{_day(second)}/",
        f"/book/slot/{phone_only.pk}/second/slot/{second.pk}/",
        "/book/slot/999999/second/",
    ):
        assert client_a.get(url).status_code == 404, url
    assert client_a.post(f"/book/slot/{phone_only.pk}/second/slot/{second.pk}/").status_code == 404
    assert _bookings(together.municipality, resident_a) == []


def test_without_the_policy_the_second_dose_pages_book_the_first_alone(
    client_a: Client, world_a: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    first = world_a.slot(3, 10)
    response = client_a.get(f"/book/slot/{first.pk}/second/")
    assert response["Location"] == f"/book/slot/{first.pk}/"
    assert client_a.get(f"/book/slot/{first.pk}/").status_code == 200


def test_line_s_browser_books_both_with_line_s_places(
    together: World, resident_a: Resident
) -> None:
    from tests.booking.resident.test_resident_booking_pages import LINE_AGENT

    client = Client(HTTP_HOST="kodaira.localhost", HTTP_USER_AGENT=LINE_AGENT)
    logged_in(client, resident_a)
    first, second = together.slot(3, 10), together.slot(22, 10)
    assert client.get(f"/book/slot/{first.pk}/")["Location"].endswith("/second/")
    _book_both(client, first, second)
    dose1, dose2 = _bookings(together.municipality, resident_a)
    assert dose1.channel == dose2.channel == "line"
    assert dose2.linked_to_id == dose1.pk
    assert _counters(together.municipality, first) == (0, 1, 0)
    assert _counters(together.municipality, second) == (0, 1, 0)


def test_no_day_for_the_second_dose_says_what_to_do(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    late_first = together.slot(20, 10)  # dose 2 from day 39; booking opens 28 days ahead
    together.slot(27, 10)
    text = client_a.get(f"/book/slot/{late_first.pk}/second/").content.decode()
    assert "2回目を予約できる日がいまはありません" in text
    assert "1回目をもっと早い日にするか" in text
    assert 'href="/book/"' in text  # choose the first dose again


def test_the_second_dose_pages_read_in_english(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    logged_in(client_a, resident_a)
    assert client_a.post("/i18n/setlang/", {"language": "en", "next": "/"}).status_code == 302
    first, second = together.slot(3, 10), together.slot(22, 10)
    dates = client_a.get(f"/book/slot/{first.pk}/second/").content.decode()
    assert "Choose the day of dose 2" in dates and "(not booked yet)" in dates
    confirm = client_a.get(f"/book/slot/{first.pk}/second/slot/{second.pk}/").content.decode()
    assert "Book doses 1 and 2 as follows?" in confirm and "Book both doses" in confirm
    too_soon = together.slot(21, 10)
    refused = client_a.post(f"/book/slot/{first.pk}/second/slot/{too_soon.pk}/")
    assert "Dose 2: " in refused.content.decode()


def test_without_the_cascade_cancelling_dose_1_leaves_dose_2_and_does_not_warn(
    client_a: Client, together: World, resident_a: Resident
) -> None:
    with tenant_context(together.municipality):
        together.policy.cancel_cascades = False
        together.policy.save()
    logged_in(client_a, resident_a)
    number = _book_both(client_a, together.slot(3, 10), together.slot(22, 10))
    asked = client_a.get(f"/bookings/{number}/cancel/").content.decode()
    assert "も取り消されます" not in asked
    text = client_a.post(f"/bookings/{number}/cancel/", follow=True).content.decode()
    assert "一緒に予約していた" not in text and "を取り消しました" in text
    assert [b.status for b in _bookings(together.municipality, resident_a)] == [
        "cancelled",
        "active",
    ]
