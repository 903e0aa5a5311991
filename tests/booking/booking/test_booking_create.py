"""booking_create: every rule, for every channel, and each refusal code."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import Actor
from audit.models import Event
from booking.models import Booking, Slot, Voucher
from booking.models.bookings import BOOKING_NUMBER_ALPHABET
from booking.services.booking import REFUSAL_CODES, BookingRefused, booking_create
from tests.booking.booking.conftest import (
    SYSTEM,
    World,
    counters,
    make_voucher,
    record_dose,
    today,
    years_ago,
)


def book(world: World, slot: Slot, voucher: Voucher | None = None, **kwargs):
    voucher = voucher or world.resident
    kwargs.setdefault("channel", "web")
    kwargs.setdefault("actor", world.resident_actor(voucher))
    return booking_create(voucher=voucher, slot=slot, **kwargs)


def refused(world: World, slot: Slot, voucher: Voucher | None = None, **kwargs) -> BookingRefused:
    with pytest.raises(BookingRefused) as caught:
        book(world, slot, voucher, **kwargs)
    return caught.value


def test_it_books_the_first_dose_and_claims_one_web_place(world: World) -> None:
    slot = world.slot()
    booking = book(world, slot, ip="192.0.2.1")
    assert booking.dose == 1
    assert booking.status == Booking.Status.ACTIVE
    assert booking.channel == "web"
    assert booking.actor_kind == "resident"
    assert re.fullmatch(f"[{BOOKING_NUMBER_ALPHABET}]{{10}}", booking.booking_number)
    assert counters(slot) == (1, 0, 0)


def test_booking_numbers_are_random_and_unique(world: World) -> None:
    slot = world.slot(web=30)
    numbers = {
        book(world, slot, make_voucher(world.municipality, f"20000000{i:02d}")).booking_number
        for i in range(20)
    }
    assert len(numbers) == 20


def test_it_audits_the_booking_without_personal_values(world: World) -> None:
    slot = world.slot()
    booking = book(world, slot, ip="192.0.2.1")
    event = Event.objects.get(action="booking.created", target_id=str(booking.pk))
    assert event.details == {"channel": "web", "dose": 1, "slot": slot.pk, "linked_to": None}
    assert event.actor_kind == "resident"
    assert event.actor_id == str(world.resident.pk)
    assert event.ip == "192.0.2.1"
    assert "1000000001" not in str(event.details)


def test_every_refusal_code_has_a_japanese_message_saying_what_to_do() -> None:
    for code in REFUSAL_CODES:
        refusal = BookingRefused(
            code,
            dose=2,
            phone="042-000-0000",
            days=19,
            hours=24,
            opens="6月1日（月）",
            earliest="6月1日（月）",
            product="ファイザー社ワクチン",
            age=12,
        )
        assert refusal.code == code
        assert re.search(r"[ぁ-んァ-ン一-龥]", refusal.message)
        assert "。" in refusal.message
    with pytest.raises(ValueError):
        BookingRefused("sold_out")


# --- slot, channel, window ---------------------------------------------------------------------


def test_it_refuses_a_full_slot(world: World) -> None:
    slot = world.slot(web=1)
    book(world, slot, world.neighbour)
    refusal = refused(world, slot)
    assert refusal.code == "full"
    assert "ほかの日時" in refusal.message
    assert counters(slot) == (1, 0, 0)
    assert world.live(world.resident) == []


def test_it_refuses_a_closed_slot_and_a_closed_venue(world: World) -> None:
    closed = world.slot(status=Slot.Status.CLOSED)
    assert refused(world, closed).code == "slot_closed"
    cancelled = world.slot(hour=11, status=Slot.Status.CANCELLED)
    assert refused(world, cancelled).code == "slot_closed"
    world.north.is_open = False
    world.north.save()
    assert refused(world, world.slot(venue=world.north)).code == "slot_closed"
    assert counters(closed) == (0, 0, 0)


def test_a_slot_removed_meanwhile_is_closed(world: World) -> None:
    slot = world.slot()
    Slot.objects.filter(pk=slot.pk).delete()
    assert refused(world, slot).code == "slot_closed"


def test_it_refuses_a_slot_closed_to_the_web(world: World, staff: Actor) -> None:
    slot = world.slot(web=0, line=0, call_centre=3)
    refusal = refused(world, slot)
    assert refusal.code == "channel_closed"
    assert "042-000-0000" in refusal.message
    assert refused(world, slot, channel="line").code == "channel_closed"
    # The same slot is open to the call centre, which books on the resident's behalf.
    booking = book(world, slot, channel="call_centre", actor=staff)
    assert booking.channel == "call_centre"
    assert counters(slot) == (0, 0, 1)


def test_it_refuses_a_slot_closed_to_the_call_centre(world: World, staff: Actor) -> None:
    slot = world.slot(web=5, line=2, call_centre=0)
    assert refused(world, slot, channel="call_centre", actor=staff).code == "channel_closed"
    assert counters(slot) == (0, 0, 0)


def test_the_call_centre_cannot_spend_web_capacity(world: World, staff: Actor) -> None:
    slot = world.slot(web=5, call_centre=0)
    for channel in ("web", "line"):
        with pytest.raises(PermissionDenied):
            book(world, slot, channel=channel, actor=staff)
    assert counters(slot) == (0, 0, 0)


def test_a_resident_cannot_spend_call_centre_capacity(world: World) -> None:
    slot = world.slot(web=0, call_centre=5)
    with pytest.raises(PermissionDenied):
        book(world, slot, channel="call_centre")
    assert counters(slot) == (0, 0, 0)


def test_the_call_centre_full_does_not_touch_web_places(world: World, staff: Actor) -> None:
    slot = world.slot(web=5, line=0, call_centre=1)
    book(world, slot, world.neighbour, channel="call_centre", actor=staff)
    assert refused(world, slot, channel="call_centre", actor=staff).code == "full"
    book(world, slot)  # the web still has places
    assert counters(slot) == (1, 0, 1)


def test_line_books_with_line_capacity(world: World) -> None:
    slot = world.slot(web=0, line=1, call_centre=0)
    assert book(world, slot, channel="line").channel == "line"
    assert counters(slot) == (0, 1, 0)


def test_it_refuses_before_the_window_opens(world: World) -> None:
    slot = world.slot(days=world.policy.opens_days_ahead + 2)
    refusal = refused(world, slot)
    assert refusal.code == "window_not_open"
    assert "28日前" in refusal.message


def test_it_refuses_after_the_window_closes(world: World) -> None:
    soon = timezone.now() + timedelta(hours=world.policy.closes_hours_before - 1)
    slot = world.slot(days=0)
    slot.starts_at, slot.ends_at = soon, soon + timedelta(minutes=30)
    slot.save()
    refusal = refused(world, slot)
    assert refusal.code == "window_closed"
    assert "24時間前" in refusal.message
    past = world.slot(days=-1)
    assert refused(world, past).code == "window_closed"


def test_the_window_applies_to_the_call_centre_too(world: World, staff: Actor) -> None:
    slot = world.slot(days=world.policy.opens_days_ahead + 2)
    assert refused(world, slot, channel="call_centre", actor=staff).code == "window_not_open"


# --- the voucher and the resident --------------------------------------------------------------


def test_it_refuses_a_withdrawn_voucher(world: World) -> None:
    world.resident.status = Voucher.Status.WITHDRAWN
    world.resident.save()
    refusal = refused(world, world.slot())
    assert refusal.code == "voucher_withdrawn"
    assert "コールセンター" in refusal.message


def test_it_refuses_a_resident_whose_age_phase_has_not_opened(world: World) -> None:
    forty = make_voucher(world.municipality, "1000000040", born=years_ago(40))
    refusal = refused(world, world.slot(), forty)
    assert refusal.code == "not_eligible_yet"
    assert "お知らせ" in refusal.message


def test_age_counts_on_the_day_of_the_slot(world: World) -> None:
    turns_65_in_five_days = make_voucher(world.municipality, "1000000065", born=years_ago(65, -5))
    assert refused(world, world.slot(days=4), turns_65_in_five_days).code == "not_eligible_yet"
    assert book(world, world.slot(days=5), turns_65_in_five_days).dose == 1  # the birthday


def test_it_refuses_a_child_below_the_vaccine_minimum_age(world: World) -> None:
    from booking.models import AgePhase

    AgePhase.objects.create(name="全員", minimum_age=0, opens_at=timezone.now() - timedelta(days=1))
    child = make_voucher(world.municipality, "1000000010", born=years_ago(10))
    refusal = refused(world, world.slot(), child)
    assert refusal.code == "below_product_age"
    pfizer = world.pfizer
    assert f"このワクチン（{pfizer.name}）は{pfizer.minimum_age}歳以上" in refusal.message
    teenager = make_voucher(world.municipality, "1000000013", born=years_ago(13))
    assert book(world, world.slot(hour=11), teenager).dose == 1


def test_a_phase_that_opened_lets_younger_residents_book(world: World) -> None:
    from booking.models import AgePhase

    AgePhase.objects.filter(minimum_age=12).update(opens_at=timezone.now() - timedelta(minutes=1))
    forty = make_voucher(world.municipality, "1000000040", born=years_ago(40))
    assert book(world, world.slot(), forty).dose == 1


# --- doses -------------------------------------------------------------------------------------


def test_it_books_the_second_dose_after_the_first_was_given(world: World) -> None:
    record_dose(world.resident, 1, world.pfizer, today() - timedelta(days=16))
    booking = book(world, world.slot(days=3))  # exactly 19 days after
    assert booking.dose == 2


def test_it_refuses_a_second_dose_too_soon_after_the_first(world: World) -> None:
    record_dose(world.resident, 1, world.pfizer, today() - timedelta(days=15))
    slot = world.slot(days=3)  # 18 days after
    refusal = refused(world, slot)
    assert refusal.code == "too_soon_after_previous_dose"
    assert refusal.dose == 2
    assert "19日" in refusal.message
    assert counters(slot) == (0, 0, 0)


def test_the_interval_is_the_previous_vaccine_s(world: World) -> None:
    record_dose(world.resident, 1, world.moderna, today() - timedelta(days=22))
    assert refused(world, world.slot(product=world.moderna)).code == (
        "too_soon_after_previous_dose"
    )  # 25 days < 28
    assert book(world, world.slot(days=6, product=world.moderna)).dose == 2  # 28 days


def test_it_refuses_a_different_vaccine_for_the_second_dose(world: World) -> None:
    record_dose(world.resident, 1, world.moderna, today() - timedelta(days=60))
    refusal = refused(world, world.slot(product=world.pfizer))
    assert refusal.code == "different_product"
    assert "モデルナ" in refusal.message


def test_it_refuses_a_dose_beyond_the_series(world: World) -> None:
    record_dose(world.resident, 1, world.pfizer, today() - timedelta(days=80))
    record_dose(world.resident, 2, world.pfizer, today() - timedelta(days=60))
    assert refused(world, world.slot()).code == "series_complete"


def test_a_booster_voucher_books_the_dose_printed_on_it(world: World) -> None:
    booster = make_voucher(world.municipality, "1000000003", dose=3)
    booking = book(world, world.slot(), booster)
    assert booking.dose == 3
    record_dose(booster, 3, world.pfizer, today() - timedelta(days=1))
    booking.delete()
    assert refused(world, world.slot(days=25), booster).code == "series_complete"


def test_it_refuses_a_second_live_booking(world: World) -> None:
    book(world, world.slot(days=3))
    refusal = refused(world, world.slot(days=25))
    assert refusal.code == "already_booked"
    assert len(world.live(world.resident)) == 1


def test_it_refuses_a_dose_that_is_not_the_next(world: World, staff: Actor) -> None:
    record_dose(world.resident, 1, world.pfizer, today() - timedelta(days=30))
    slot = world.slot()
    assert refused(world, slot, dose=1, channel="call_centre", actor=staff).code == (
        "already_booked"
    )
    assert refused(world, slot, dose=3, channel="call_centre", actor=staff).code == (
        "not_eligible_yet"
    )
    assert book(world, slot, dose=2, channel="call_centre", actor=staff).dose == 2


def test_a_cancelled_booking_does_not_count(world: World) -> None:
    from booking.services.booking import booking_cancel

    first = book(world, world.slot(days=3))
    booking_cancel(booking=first, channel="web", actor=world.resident_actor())
    again = book(world, world.slot(days=4))
    assert again.dose == 1


# --- the series booked together ------------------------------------------------------------------


def test_it_books_both_doses_together(world: World) -> None:
    world.policy.book_series_together = True
    world.policy.save()
    first_slot, second_slot = world.slot(days=3), world.slot(days=22, venue=world.north)
    first = book(world, first_slot, second_slot=second_slot)
    second = first.linked.get()
    assert (first.dose, second.dose) == (1, 2)
    assert second.linked_to_id == first.pk
    assert second.booking_number != first.booking_number
    assert counters(first_slot) == (1, 0, 0)
    assert counters(second_slot) == (1, 0, 0)
    assert Event.objects.filter(action="booking.created").count() == 2


def test_a_refused_second_dose_books_neither(world: World) -> None:
    world.policy.book_series_together = True
    world.policy.save()
    first_slot = world.slot(days=3)
    too_soon = world.slot(days=20)
    refusal = refused(world, first_slot, second_slot=too_soon)
    assert (refusal.code, refusal.dose, refusal.slot_id) == (
        "too_soon_after_previous_dose",
        2,
        too_soon.pk,
    )
    other_vaccine = world.slot(days=25, product=world.moderna)
    assert refused(world, first_slot, second_slot=other_vaccine).code == "different_product"
    phone_only = world.slot(days=24, web=0, line=1)
    assert refused(world, first_slot, second_slot=phone_only).code == "channel_closed"
    assert counters(first_slot) == (0, 0, 0)
    assert world.live(world.resident) == []


def test_a_full_second_slot_gives_back_the_first_place(world: World) -> None:
    world.policy.book_series_together = True
    world.policy.save()
    first_slot, second_slot = world.slot(days=3), world.slot(days=24, web=1)
    book(world, second_slot, world.neighbour)
    assert refused(world, first_slot, second_slot=second_slot).code == "full"
    assert counters(first_slot) == (0, 0, 0)
    assert counters(second_slot) == (1, 0, 0)


def test_the_second_dose_can_follow_a_booked_first_when_booked_together(world: World) -> None:
    world.policy.book_series_together = True
    world.policy.save()
    book(world, world.slot(days=3))
    assert refused(world, world.slot(days=21)).code == "too_soon_after_previous_dose"
    assert book(world, world.slot(days=22)).dose == 2


def test_a_dose_booked_later_follows_the_live_dose_before_it_when_booked_together(
    world: World,
) -> None:
    from booking.services.booking import booking_cancel

    world.policy.book_series_together = True
    world.policy.save()
    first = book(world, world.slot(days=3), second_slot=world.slot(days=22))
    booking_cancel(booking=first.linked.get(), channel="web", actor=world.resident_actor())
    again = book(world, world.slot(days=23))
    assert (again.dose, again.linked_to_id) == (2, first.pk)
    booking_cancel(booking=first, channel="web", actor=world.resident_actor())
    again.refresh_from_db()
    assert again.status == Booking.Status.CANCELLED


def test_a_dose_after_one_given_is_linked_to_nothing(world: World) -> None:
    world.policy.book_series_together = True
    world.policy.save()
    first = book(world, world.slot(days=3))
    Booking.objects.filter(pk=first.pk).update(status=Booking.Status.CHECKED_IN)
    record_dose(world.resident, 1, world.pfizer, today() - timedelta(days=20))
    second = book(world, world.slot(days=3, hour=11))
    assert (second.dose, second.linked_to_id) == (2, None)


def test_series_together_for_says_what_to_book_with_the_first_slot(world: World) -> None:
    from booking.services.booking import series_together_for

    first_slot = world.slot(days=3)
    assert series_together_for(world.resident, first_slot) is None  # the policy is off
    world.policy.book_series_together = True
    world.policy.save()
    series = series_together_for(world.resident, first_slot)
    assert series is not None
    assert (series.first_dose, series.second_dose, series.product) == (1, 2, world.pfizer)
    assert series.earliest_day == today() + timedelta(days=3 + 19)
    book(world, first_slot, second_slot=world.slot(days=22))
    assert series_together_for(world.resident, world.slot(days=4)) is None  # dose 1 is booked


def test_a_second_slot_needs_the_together_policy(world: World) -> None:
    with pytest.raises(ValueError):
        book(world, world.slot(days=3), second_slot=world.slot(days=25))


# --- who may book what -------------------------------------------------------------------------


def test_a_resident_books_only_their_own_voucher(world: World) -> None:
    with pytest.raises(PermissionDenied):
        book(world, world.slot(), world.neighbour, actor=world.resident_actor())
    assert world.live(world.neighbour) == []


def test_vendors_and_anonymous_visitors_cannot_book(world: World) -> None:
    slot = world.slot()
    for actor in (Actor.anonymous(), Actor(Actor.VENDOR, "1")):
        with pytest.raises(PermissionDenied):
            book(world, slot, actor=actor)
    assert counters(slot) == (0, 0, 0)


def test_a_voucher_of_another_municipality_is_refused(tenant_b, world: World) -> None:
    with tenant_context(tenant_b):
        stranger = make_voucher(tenant_b, "1000000001")
    slot = world.slot()
    with pytest.raises(PermissionDenied):
        booking_create(voucher=stranger, slot=slot, channel="web", actor=SYSTEM)
    assert counters(slot) == (0, 0, 0)
    assert world.live(world.resident) == []


def test_an_unknown_channel_is_an_error(world: World) -> None:
    with pytest.raises(ValueError):
        book(world, world.slot(), channel="fax", actor=SYSTEM)


# --- what the database guarantees on its own ----------------------------------------------------


def test_the_database_refuses_a_second_live_booking_for_a_dose(world: World) -> None:
    booking = book(world, world.slot())
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.create(
            booking_number="ZZZZZZZZZZ",
            voucher=world.resident,
            slot=booking.slot,
            dose=1,
            channel="web",
            booked_through="web",
            actor_kind="system",
        )


def test_the_database_refuses_overbooking(world: World) -> None:
    slot = world.slot(web=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=slot.pk).update(booked_web=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=slot.pk).update(booked_call_centre=-1)


def test_a_booking_number_already_taken_is_drawn_again(world: World, monkeypatch) -> None:
    """50 random bits do not collide in practice; the retry is still exercised once here by
    making the generator repeat itself."""
    taken = book(world, world.slot(), world.neighbour, actor=world.resident_actor(world.neighbour))
    draws = iter([taken.booking_number, "ABCDEFGHJK"])
    monkeypatch.setattr("booking.services.booking.create.booking_number_new", lambda: next(draws))
    slot = world.slot(hour=11)
    booking = book(world, slot)
    assert booking.booking_number == "ABCDEFGHJK"
    assert counters(slot) == (1, 0, 0)  # the first attempt's claim was rolled back


@pytest.mark.parametrize(
    ("change", "code"),
    [({"status": Slot.Status.CLOSED}, "slot_closed"), ({"booked_web": 5}, "full")],
)
def test_a_slot_that_changes_between_its_checks_and_its_claim_is_refused_for_what_it_became(
    world: World, monkeypatch: pytest.MonkeyPatch, change: dict[str, object], code: str
) -> None:
    from booking.services.booking import checks

    slot = world.slot(web=5)
    load = checks.slot_with_venue_and_product

    def load_then_change(slot_id: int, **kwargs: object) -> Slot | None:
        loaded = load(slot_id, **kwargs)  # as the checks see it: open, with places
        Slot.objects.filter(pk=slot_id).update(**change)  # staff, or the last place, meanwhile
        return loaded

    monkeypatch.setattr(checks, "slot_with_venue_and_product", load_then_change)
    assert refused(world, slot).code == code
    assert not Booking.objects.filter(slot=slot).exists()


def test_every_character_of_a_booking_number_has_a_way_to_be_read_out() -> None:
    from booking.models.bookings import BOOKING_NUMBER_ALPHABET, booking_number_spoken

    spoken = booking_number_spoken(BOOKING_NUMBER_ALPHABET)
    pairs = zip(spoken, BOOKING_NUMBER_ALPHABET, strict=True)
    assert all(item != character for item, character in pairs)
    assert booking_number_spoken("B2") == ["ビー（ベースボールのB）", "に"]
    assert len(set(spoken)) == len(spoken)
    # Letters Japanese hears alike are not told by words that start alike (ラ行, バ行).
    assert booking_number_spoken("LRBV") == [
        "エル（LサイズのL）",
        "アール（ラジオのR）",
        "ビー（ベースボールのB）",
        "ブイ（VサインのV）",
    ]
