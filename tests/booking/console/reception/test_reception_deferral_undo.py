"""接種見合わせ recorded by mistake, taken back the same day at the venue."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import Booking, BookingPolicy, Notification, Slot
from booking.services.notifications import contact_preferences_update
from tenants.models import Municipality

from ..conftest import StaffAccount, events
from .conftest import Day, logged_in, make_booking


def _card(client: Client, booking: Booking) -> str:
    return client.get(f"/console/reception/bookings/{booking.pk}/").content.decode()


def _deferred(client: Client, booking: Booking) -> None:
    """Checked in, then 接種見合わせ chosen (by mistake) on the card."""
    client.post(f"/console/reception/bookings/{booking.pk}/check-in/")
    client.post(
        f"/console/reception/bookings/{booking.pk}/not-given/",
        {"outcome": "deferred", "confirm": "1"},
    )


def _undo(client: Client, booking: Booking, **data: str) -> str:
    response = client.post(f"/console/reception/bookings/{booking.pk}/deferral/undo/", data)
    assert response.status_code == 302
    return client.get(response["Location"]).content.decode()


def _claimed(tenant: Municipality, day: Day, slot: Slot) -> None:
    """The place the booking service would have claimed for a booking written directly."""
    with tenant_context(tenant):
        Slot.objects.filter(pk=slot.pk).update(booked_web=1)


def _now(tenant: Municipality, booking: Booking) -> Booking:
    with tenant_context(tenant):
        return Booking.objects.get(pk=booking.pk)


def test_a_mistaken_deferral_is_taken_back_and_the_resident_checked_in_again(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    _claimed(tenant_a, day, day.later)
    logged_in(client_a, venue_a, clock)
    _deferred(client_a, day.booking)
    card = _card(client_a, day.booking)
    assert 'id="undo-deferral"' in card and "接種見合わせを誤って記録したとき" in card
    with tenant_context(tenant_a):
        assert Slot.objects.get(pk=day.later.pk).booked_web == 0

    # Without the confirmation, nothing is done.
    page = _undo(client_a, day.booking)
    assert "確認のチェックを入れてから押してください" in page
    assert _now(tenant_a, day.booking).status == Booking.Status.CANCELLED

    page = _undo(client_a, day.booking, confirm="1")
    assert f"予約番号 {day.number} の接種見合わせを取り消し、受付済みに戻しました" in page
    assert 'id="record-vaccination"' in page and 'id="undo-deferral"' not in page
    back = _now(tenant_a, day.booking)
    assert back.status == Booking.Status.CHECKED_IN
    assert back.cancelled_at is None and back.cancel_reason == ""
    with tenant_context(tenant_a):  # its place claimed again, for the channel it held
        assert Slot.objects.get(pk=day.later.pk).booked_web == 1
    (undone,) = events(tenant_a, "reception.deferral_undone")
    assert undone.actor_id == str(venue_a.user_id)
    assert undone.details == {
        "venue": day.civic.pk,
        "slot": day.later.pk,
        "restored": [],
        "not_restored": [],
    }

    # A second press (a double tap): said as done; the place is not claimed twice.
    page = _undo(client_a, day.booking, confirm="1")
    assert "この操作はすでに記録されています" in page
    with tenant_context(tenant_a):
        assert Slot.objects.get(pk=day.later.pk).booked_web == 1
    assert len(events(tenant_a, "reception.deferral_undone")) == 1


def test_a_deferral_whose_place_has_been_taken_stays_and_says_what_to_do(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    _claimed(tenant_a, day, day.later)
    logged_in(client_a, venue_a, clock)
    _deferred(client_a, day.booking)
    with tenant_context(tenant_a):  # the freed place booked by someone else meanwhile
        Slot.objects.filter(pk=day.later.pk).update(booked_web=day.later.capacity_web)
    page = _undo(client_a, day.booking, confirm="1")
    assert "ほかの方の予約で埋まったため、元に戻せません" in page
    assert _now(tenant_a, day.booking).deferred
    with tenant_context(tenant_a):
        assert Slot.objects.get(pk=day.later.pk).booked_web == day.later.capacity_web
    assert events(tenant_a, "reception.deferral_undone") == []
    assert events(tenant_a, "reception.refused")[-1].details == {
        "operation": "undo_deferral",
        "reason": "slot_full_now",
    }


def test_the_doses_cancelled_with_the_deferral_are_booked_again_where_they_still_fit(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        policy = BookingPolicy.current()
        policy.cancel_cascades = True
        policy.save()
        second_slot = Slot.objects.create(
            venue=day.civic,
            product=day.pfizer,
            starts_at=day.later.starts_at + timedelta(days=21),
            ends_at=day.later.ends_at + timedelta(days=21),
            capacity_web=1,
        )
        second = make_booking(day.resident, second_slot, dose=2)
        Booking.objects.filter(pk=second.pk).update(linked_to=day.booking)
        Slot.objects.filter(pk=second_slot.pk).update(booked_web=1)
        contact_preferences_update(
            voucher=day.resident,
            email="hanako@example.jp",
            phone=None,
            channels=["email"],
            language="ja",
            actor=Actor.system("tests"),
            ip=None,
        )
    _claimed(tenant_a, day, day.later)
    logged_in(client_a, venue_a, clock)
    _deferred(client_a, day.booking)
    assert _now(tenant_a, second).status == Booking.Status.CANCELLED  # cascaded

    page = _undo(client_a, day.booking, confirm="1")
    assert "一緒に取り消されていた2回目の予約" in page and "元に戻しました" in page
    assert _now(tenant_a, second).status == Booking.Status.ACTIVE
    assert _now(tenant_a, second).cancelled_at is None
    with tenant_context(tenant_a):
        assert Slot.objects.get(pk=second_slot.pk).booked_web == 1
        # The resident, told of the cancellation, is told the booking stands again.
        told = Notification.objects.filter(booking_id=second.pk).order_by("pk")
        assert [each.kind for each in told] == ["booking_cancelled", "booking_created"]
    (undone,) = events(tenant_a, "reception.deferral_undone")
    assert undone.details["restored"] == [second.pk]
    assert undone.details["not_restored"] == []


def test_a_cancelled_dose_whose_place_has_gone_is_left_for_the_call_centre(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    with tenant_context(tenant_a):
        policy = BookingPolicy.current()
        policy.cancel_cascades = True
        policy.save()
        second = make_booking(day.resident, day.tomorrow, dose=2)
        Booking.objects.filter(pk=second.pk).update(linked_to=day.booking)
    _claimed(tenant_a, day, day.later)
    _claimed(tenant_a, day, day.tomorrow)
    logged_in(client_a, venue_a, clock)
    _deferred(client_a, day.booking)
    with tenant_context(tenant_a):
        Slot.objects.filter(pk=day.tomorrow.pk).update(booked_web=day.tomorrow.capacity_web)
    page = _undo(client_a, day.booking, confirm="1")
    assert "受付済みに戻しました" in page
    assert "2回目の予約" in page and "コールセンターで予約し直すようお伝えください" in page
    assert _now(tenant_a, day.booking).status == Booking.Status.CHECKED_IN
    assert _now(tenant_a, second).status == Booking.Status.CANCELLED
    (undone,) = events(tenant_a, "reception.deferral_undone")
    assert undone.details["not_restored"] == [second.pk]


def test_a_deferral_is_not_taken_back_another_day_or_after_booking_again(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    _claimed(tenant_a, day, day.later)
    logged_in(client_a, venue_a, clock)
    _deferred(client_a, day.booking)
    with tenant_context(tenant_a):  # booked again (dose 1, tomorrow)
        again = make_booking(day.resident, day.tomorrow)
    page = _undo(client_a, day.booking, confirm="1")
    assert "接種見合わせのあとで同じ回を予約し直しています" in page
    assert _now(tenant_a, day.booking).deferred
    with tenant_context(tenant_a):
        Booking.objects.filter(pk=again.pk).update(status=Booking.Status.CANCELLED)

    clock.shift(24 * 3600)  # the next day: the card no longer offers it, and it is refused
    logged_in(client_a, venue_a, clock)
    assert 'id="undo-deferral"' not in _card(client_a, day.booking)
    page = _undo(client_a, day.booking, confirm="1")
    assert "接種見合わせを取り消せるのは、予約の当日だけです" in page
    assert _now(tenant_a, day.booking).deferred


def test_only_staff_of_the_venue_take_a_deferral_back(
    tenant_a: Municipality,
    client_a: Client,
    day: Day,
    venue_a: StaffAccount,
    venue_north_a: StaffAccount,
    clock,
) -> None:
    _claimed(tenant_a, day, day.later)
    logged_in(client_a, venue_a, clock)
    _deferred(client_a, day.booking)
    other = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    logged_in(other, venue_north_a, clock)
    response = other.post(
        f"/console/reception/bookings/{day.booking.pk}/deferral/undo/", {"confirm": "1"}
    )
    assert response.status_code == 403
    assert _now(tenant_a, day.booking).deferred
    # A booking that was never deferred has nothing to take back.
    with tenant_context(tenant_a):
        plain = make_booking(day.resident, day.tomorrow, dose=2)
    page = _undo(client_a, plain, confirm="1")
    assert "接種見合わせで終了した予約ではありません" in page
