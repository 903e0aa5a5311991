"""Closing a slot stops new bookings; cancelling it cancels its bookings and tells residents."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from audit.chain import Actor
from booking.models import Booking, Notification, Slot
from booking.services.booking import BookingRefused
from booking.services.notifications import contact_preferences_update
from tenants.models import Municipality

from ..conftest import events
from .conftest import MONDAY, RESIDENT_KANA, RESIDENT_NAME, World, at, in_a, make_slot


@pytest.fixture
def slot(world: World) -> Slot:
    return make_slot(world.civic, world.pfizer, at(MONDAY, 10))


def consent_to_email(voucher_pk: int, address: str) -> None:
    from booking.models import Voucher

    voucher = Voucher.objects.get(pk=voucher_pk)
    contact_preferences_update(
        voucher=voucher,
        email=address,
        phone=None,
        channels=["email"],
        language="ja",
        actor=Actor.resident(str(voucher.pk)),
        ip=None,
    )


def test_closing_a_slot_keeps_its_bookings_and_refuses_new_ones(
    as_admin: Client, world: World, slot: Slot, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        kept = world.book(slot, world.residents[0])

    response = as_admin.post(f"/console/planning/slots/{slot.pk}/close/")
    assert response.status_code == 302

    with in_a(tenant_a):
        slot.refresh_from_db()
        assert slot.status == Slot.Status.CLOSED
        kept.refresh_from_db()
        assert kept.status == Booking.Status.ACTIVE
        with pytest.raises(BookingRefused) as refused:
            world.book(slot, world.residents[1])
        assert refused.value.code == "slot_closed"
    closed = events(tenant_a, "slot.closed")[-1]
    assert closed.target_id == str(slot.pk) and closed.details == {"booked": 1}

    as_admin.post(f"/console/planning/slots/{slot.pk}/reopen/")
    with in_a(tenant_a):
        slot.refresh_from_db()
        assert slot.status == Slot.Status.OPEN
        world.book(slot, world.residents[1])
    assert events(tenant_a, "slot.reopened")[-1].details == {"previous_status": "closed"}


def test_the_cancel_page_lists_booking_and_voucher_numbers_but_no_names(
    as_admin: Client, world: World, slot: Slot, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        booking = world.book(slot, world.residents[0])
        world.book(slot, world.residents[1], channel="line")

    response = as_admin.get(f"/console/planning/slots/{slot.pk}/cancel/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "取り消される予約：2件" in page
    number = booking.booking_number
    assert f"{number[:5]}-{number[5:]}" in page
    assert world.residents[0].voucher_number in page
    assert world.residents[1].voucher_number in page
    for personal in (RESIDENT_NAME, RESIDENT_KANA, "1950", "小川町1-1"):
        assert personal not in page
    viewed = events(tenant_a, "slot.cancel_viewed")[-1]
    assert viewed.details == {
        "bookings_listed": 2,
        "linked_listed": 0,
        "vouchers": sorted([world.residents[0].pk, world.residents[1].pk]),
    }
    with in_a(tenant_a):
        slot.refresh_from_db()
        assert slot.status == Slot.Status.OPEN  # looking changes nothing


def test_cancelling_a_slot_cancels_every_booking_and_queues_one_message_each(
    as_admin: Client, world: World, slot: Slot, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        consent_to_email(world.residents[0].pk, "hanako@example.jp")
        told = world.book(slot, world.residents[0])
        untold = world.book(slot, world.residents[1], channel="line")  # no contact given
        other = make_slot(world.civic, world.pfizer, at(MONDAY, 11))
        elsewhere = world.book(other, world.residents[2])
        before = Notification.objects.filter(kind="booking_created").count()

    response = as_admin.post(
        f"/console/planning/slots/{slot.pk}/cancel/",
        {"confirm": "on", "notice": "会場の設備点検のため中止します。"},
    )
    assert response.status_code == 302

    with in_a(tenant_a):
        slot.refresh_from_db()
        assert slot.status == Slot.Status.CANCELLED
        assert (slot.booked_web, slot.booked_line, slot.booked_call_centre) == (0, 0, 0)
        for booking in (told, untold):
            booking.refresh_from_db()
            assert booking.status == Booking.Status.CANCELLED
        elsewhere.refresh_from_db()
        assert elsewhere.status == Booking.Status.ACTIVE

        messages = Notification.objects.filter(booking=told).exclude(kind="booking_created")
        pending = messages.filter(status="pending")
        assert [(n.kind, n.channel) for n in pending] == [("slot_cancelled", "email")]
        assert pending[0].context["notice"] == "会場の設備点検のため中止します。"
        # 予約枠の中止 instead of the booking service's plain 予約取消: one message, not two.
        assert not messages.filter(kind="booking_cancelled").exists()
        assert (
            not Notification.objects.filter(booking=untold).exclude(kind="booking_created").exists()
        )
        assert Notification.objects.filter(kind="booking_created").count() == before

    cancelled = events(tenant_a, "slot.cancelled")[-1]
    assert cancelled.actor_kind == "staff"
    assert cancelled.details == {
        "bookings_cancelled": 2,
        "linked_cancelled": 0,
        "notifications": 1,
        "notice": True,
        "notice_text": "会場の設備点検のため中止します。",
        "bookings": sorted([told.pk, untold.pk]),
        "not_told": [untold.pk],
    }
    per_booking = events(tenant_a, "booking.cancelled")[-2:]
    assert {e.target_id for e in per_booking} == {str(told.pk), str(untold.pk)}
    # Each recorded as cancelled with its slot, not as a cancellation by the call centre,
    # and kept so on the booking (the resident's pages and the call centre say why).
    assert all(e.details["reason"] == "slot_cancelled" for e in per_booking)
    assert all("channel" not in e.details for e in per_booking)
    with in_a(tenant_a):
        assert {b.cancel_reason for b in Booking.objects.filter(pk__in=[told.pk, untold.pk])} == {
            "slot_cancelled"
        }


def test_who_cannot_be_told_is_shown_before_and_listed_to_phone_after(
    as_admin: Client, world: World, slot: Slot, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        consent_to_email(world.residents[0].pk, "hanako@example.jp")
        told = world.book(slot, world.residents[0])
        untold = world.book(slot, world.residents[1], channel="line")
    url = f"/console/planning/slots/{slot.pk}/cancel/"

    def row_of(page: str, booking: Booking) -> str:
        number = booking.booking_number
        return page.split(f"{number[:5]}-{number[5:]}")[1].split("</tr>")[0]

    before = as_admin.get(url).content.decode()
    assert "送る" in row_of(before, told) and "届かない" not in row_of(before, told)
    assert "届かない：電話で連絡" in row_of(before, untold)

    response = as_admin.post(url, {"confirm": "on"})
    assert response.status_code == 302 and response["Location"] == url
    after = as_admin.get(url).content.decode()
    assert "連絡先の登録がない1件の方には、お知らせが届きません" in after
    listed = after.split('id="cancelled-bookings"')[1]
    assert "送信済み" in row_of(listed, told)
    assert "届かない：電話で連絡" in row_of(listed, untold)
    assert world.residents[1].voucher_number in row_of(listed, untold)
    viewed = events(tenant_a, "slot.cancellation_list_viewed")[-1]
    assert viewed.details == {
        "bookings_listed": 2,
        "vouchers": sorted([world.residents[0].pk, world.residents[1].pk]),
    }
    # The console's home keeps the slot on the admin's list until its day has passed.
    home = as_admin.get("/console/").content.decode()
    to_phone = home.split('id="to-phone"')[1].split("</section>")[0]
    assert f"/console/planning/slots/{slot.pk}/cancel/" in to_phone and "1件" in to_phone


def test_cancelling_needs_the_confirmation_box(
    as_admin: Client, world: World, slot: Slot, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        booking = world.book(slot, world.residents[0])
    response = as_admin.post(f"/console/planning/slots/{slot.pk}/cancel/", {"notice": ""})
    assert response.status_code == 400
    with in_a(tenant_a):
        booking.refresh_from_db()
        slot.refresh_from_db()
        assert booking.status == Booking.Status.ACTIVE and slot.status == Slot.Status.OPEN
    assert events(tenant_a, "slot.cancelled") == []


def test_a_slot_with_a_checked_in_resident_is_not_cancelled(
    as_admin: Client, world: World, slot: Slot, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        arrived = world.book(slot, world.residents[0])
        waiting = world.book(slot, world.residents[1])
        Booking.objects.filter(pk=arrived.pk).update(status=Booking.Status.CHECKED_IN)

    page = as_admin.get(f"/console/planning/slots/{slot.pk}/cancel/").content.decode()
    assert "受付済みの方がいるため" in page and "中止して予約を取り消す" not in page
    response = as_admin.post(f"/console/planning/slots/{slot.pk}/cancel/", {"confirm": "on"})
    assert response.status_code == 400
    with in_a(tenant_a):
        waiting.refresh_from_db()
        slot.refresh_from_db()
        assert waiting.status == Booking.Status.ACTIVE and slot.status == Slot.Status.OPEN


def test_a_later_dose_booked_together_is_listed_and_cancelled_with_it(
    as_admin: Client, world: World, slot: Slot, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        from booking.models import BookingPolicy
        from booking.services.booking import booking_create

        from .conftest import SYSTEM

        policy = BookingPolicy.current()
        policy.book_series_together = True
        policy.save()
        second_slot = make_slot(world.civic, world.pfizer, at(date(2026, 6, 8), 10))
        first = booking_create(
            voucher=world.residents[0],
            slot=slot,
            channel="web",
            actor=SYSTEM,
            second_slot=second_slot,
        )
        second = first.linked.get()

    page = as_admin.get(f"/console/planning/slots/{slot.pk}/cancel/").content.decode()
    assert "あわせて取り消される次回の予約：1件" in page
    as_admin.post(f"/console/planning/slots/{slot.pk}/cancel/", {"confirm": "on"})
    with in_a(tenant_a):
        second.refresh_from_db()
        assert second.status == Booking.Status.CANCELLED
    assert events(tenant_a, "slot.cancelled")[-1].details["linked_cancelled"] == 1


def test_a_cancelled_slot_reopens_only_once_confirmed_and_its_bookings_stay_cancelled(
    as_admin: Client, world: World, slot: Slot, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        booking = world.book(slot, world.residents[0])
    as_admin.post(f"/console/planning/slots/{slot.pk}/cancel/", {"confirm": "on"})
    url = f"/console/planning/slots/{slot.pk}/reopen/"
    listing = as_admin.get(f"/console/planning/slots/?venue={world.civic.pk}").content.decode()
    assert f'href="{url}"' in listing  # a page to confirm on, not a button that reopens
    # and the list of those it cancelled (to phone), from the slot's row
    assert f'href="/console/planning/slots/{slot.pk}/cancel/"' in listing
    page = as_admin.get(url).content.decode()
    assert "取り消した予約1件は、再開しても元に戻りません" in page
    unconfirmed = as_admin.post(url)
    assert unconfirmed.status_code == 400 and 'id="confirm-error"' in unconfirmed.content.decode()
    with in_a(tenant_a):
        slot.refresh_from_db()
        assert slot.status == Slot.Status.CANCELLED
    reopened = as_admin.post(url, {"confirm": "1"})
    assert reopened.status_code == 302 and f"venue={world.civic.pk}" in reopened["Location"]
    with in_a(tenant_a):
        slot.refresh_from_db()
        booking.refresh_from_db()
        assert slot.status == Slot.Status.OPEN and booking.status == Booking.Status.CANCELLED
    # The list of those the cancellation cancelled outlives the reopening, from the row too.
    listing = as_admin.get(f"/console/planning/slots/?venue={world.civic.pk}").content.decode()
    assert f'href="/console/planning/slots/{slot.pk}/cancel/">取り消した予約' in listing
    after = as_admin.get(f"/console/planning/slots/{slot.pk}/cancel/").content.decode()
    number = booking.booking_number
    assert "以前の中止" in after and f"{number[:5]}-{number[5:]}" in after
    assert events(tenant_a, "slot.reopened")[-1].details == {"previous_status": "cancelled"}


def test_a_resident_phoned_is_marked_so_and_the_home_counts_only_those_left(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """The call centre phones those the cancellation could not tell: each is marked phoned
    (who and when, in the trail), one booked again needs no call, and the console home
    counts only those still to phone."""
    with in_a(tenant_a):
        slot = make_slot(world.civic, world.pfizer, at(MONDAY, 10))
        first = world.book(slot, world.residents[0])
        second = world.book(slot, world.residents[1])
        third = world.book(slot, world.residents[2])
    url = f"/console/planning/slots/{slot.pk}/cancel/"
    as_admin.post(url, {"confirm": "on"})
    again = as_admin.post(url, {"confirm": "on"}, follow=True).content.decode()
    assert "この枠は、すでに中止してあります" in again and "予約0件を取り消しました" not in again
    home = as_admin.get("/console/").content.decode()
    assert "3件" in home.split('id="to-phone"')[1].split("</section>")[0]
    notices = as_admin.get("/console/notifications/").content.decode()
    assert "まだ電話でお知らせしていない方が3人います" in notices

    marked = as_admin.post(f"/console/planning/slots/{slot.pk}/phoned/{first.pk}/", {"back": url})
    assert marked.status_code == 302 and marked["Location"] == url
    with in_a(tenant_a):
        world.book(make_slot(world.civic, world.pfizer, at(MONDAY, 11)), world.residents[1])
    listed = as_admin.get(url).content.decode()
    rows = listed.split('id="cancelled-bookings"')[1].split("</table>")[0]
    assert "電話で連絡済み" in rows and "再予約済み" in rows and "連絡済みにする" in rows
    home = as_admin.get("/console/").content.decode()
    assert "1件" in home.split('id="to-phone"')[1].split("</section>")[0]
    (event,) = events(tenant_a, "slot.resident_phoned")
    assert event.target_id == str(first.pk) and event.details == {"slot": slot.pk}
    # Marked twice, or a booking the cancellation did not leave untold: nothing recorded.
    as_admin.post(f"/console/planning/slots/{slot.pk}/phoned/{first.pk}/")
    as_admin.post(f"/console/planning/slots/{slot.pk}/phoned/{second.pk + 1000}/")
    assert len(events(tenant_a, "slot.resident_phoned")) == 1
    as_admin.post(f"/console/planning/slots/{slot.pk}/phoned/{third.pk}/")
    assert 'id="to-phone"' not in as_admin.get("/console/").content.decode()
    # A mark on the wrong row is taken back: that resident is to phone again.
    assert "連絡済みの印を取り消す" in as_admin.get(url).content.decode()
    as_admin.post(f"/console/planning/slots/{slot.pk}/phoned/{third.pk}/", {"undo": "1"})
    home = as_admin.get("/console/").content.decode()
    assert "1件" in home.split('id="to-phone"')[1].split("</section>")[0]
    (undone,) = events(tenant_a, "slot.resident_phoned_undone")
    assert undone.target_id == str(third.pk)
    as_admin.post(f"/console/planning/slots/{slot.pk}/phoned/{third.pk}/", {"undo": "1"})
    assert len(events(tenant_a, "slot.resident_phoned_undone")) == 1  # nothing to take back
