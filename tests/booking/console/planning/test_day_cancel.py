"""A typhoon: every slot of a day, at one venue or at all, cancelled in one go with one
notice, and one list of the residents the call centre must phone."""

from __future__ import annotations

import time_machine
from django.test import Client

from booking.models import Booking, Notification, Slot
from tenants.models import Municipality

from ..conftest import StaffAccount, events
from .conftest import MONDAY, World, at, in_a, logged_in, make_slot
from .test_slot_cancel import consent_to_email


def test_a_day_at_a_venue_is_cancelled_in_one_go_and_lists_whom_to_phone(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        morning = make_slot(world.civic, world.pfizer, at(MONDAY, 10))
        afternoon = make_slot(world.civic, world.pfizer, at(MONDAY, 14))
        elsewhere = make_slot(world.north, world.pfizer, at(MONDAY, 10))
        next_day = make_slot(world.civic, world.pfizer, at(MONDAY.replace(day=19), 10))
        told = world.book(morning, world.residents[0])
        consent_to_email(world.residents[0].pk, "hanako@example.jp")
        untold = world.book(afternoon, world.residents[1])
        kept = world.book(elsewhere, world.residents[2])
    url = f"/console/planning/days/{MONDAY.isoformat()}/cancel/?venue={world.civic.pk}"
    asked = as_admin.get(url).content.decode()
    assert "2026年5月18日（月）の予約枠の中止" in asked and "会場：小平市役所" in asked
    assert "中止する予約枠：2件、取り消される予約：2件（うち電話で連絡が必要：1件）" in asked
    assert "北部集会所" not in asked.split('id="day-slots"')[1].split("</table>")[0]

    unconfirmed = as_admin.post(url, {"notice": "台風の接近のため"})
    assert unconfirmed.status_code == 400
    done = as_admin.post(url, {"notice": "台風の接近のため", "confirm": "on"})
    assert done.status_code == 302 and done["Location"] == url
    after = as_admin.get(url).content.decode()
    assert "予約枠2件を中止し、予約2件を取り消しました" in after
    assert "連絡先の登録がない1件の方" in after
    assert world.residents[1].voucher_number in after and "届かない：電話で連絡" in after
    with in_a(tenant_a):
        for slot in (morning, afternoon):
            slot.refresh_from_db()
            assert slot.status == Slot.Status.CANCELLED
        for booking in (told, untold):
            booking.refresh_from_db()
            assert booking.status == Booking.Status.CANCELLED and booking.called_off
        kept.refresh_from_db()
        assert kept.status == Booking.Status.ACTIVE
        assert Slot.objects.get(pk=next_day.pk).status == Slot.Status.OPEN
        (sent,) = Notification.objects.filter(kind="slot_cancelled")
        assert sent.context["notice"] == "台風の接近のため"
    assert len(events(tenant_a, "slot.cancelled")) == 2
    (day,) = events(tenant_a, "slot.day_cancelled")
    assert day.details["day"] == "2026-05-18" and day.details["bookings_cancelled"] == 2
    # Nothing left to cancel: said, no form; pressed again (a second tab), said so.
    assert "中止できる予約枠はありません" in after and 'name="confirm"' not in after
    again = as_admin.post(url, {"notice": "台風の接近のため", "confirm": "on"}, follow=True)
    assert "すでに中止してあります" in again.content.decode()
    assert "予約枠0件" not in again.content.decode()


def test_a_day_at_every_venue_leaves_slots_with_residents_checked_in(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        civic = make_slot(world.civic, world.pfizer, at(MONDAY, 10))
        north = make_slot(world.north, world.pfizer, at(MONDAY, 10))
        arrived = world.book(north, world.residents[0])
        Booking.objects.filter(pk=arrived.pk).update(status=Booking.Status.CHECKED_IN)
    url = f"/console/planning/days/{MONDAY.isoformat()}/cancel/"
    asked = as_admin.get(url).content.decode()
    assert "会場：すべての会場" in asked and "受付済みの方がいるため中止しません" in asked
    as_admin.post(url, {"confirm": "on"})
    with in_a(tenant_a):
        assert Slot.objects.get(pk=civic.pk).status == Slot.Status.CANCELLED
        assert Slot.objects.get(pk=north.pk).status == Slot.Status.OPEN
        assert Booking.objects.get(pk=arrived.pk).status == Booking.Status.CHECKED_IN


def test_the_slot_list_offers_the_day_s_cancellation_and_only_admins_may(
    as_admin: Client,
    world: World,
    tenant_a: Municipality,
    venue_staff_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    with in_a(tenant_a):
        make_slot(world.civic, world.pfizer, at(MONDAY, 10))
    listed = as_admin.get(
        f"/console/planning/slots/?venue={world.civic.pk}&first_day={MONDAY.isoformat()}"
    ).content.decode()
    assert f"/console/planning/days/{MONDAY.isoformat()}/cancel/?venue={world.civic.pk}" in listed
    assert as_admin.get("/console/planning/days/2026-02-30/cancel/").status_code == 404
    venue = logged_in(Client(HTTP_HOST=as_admin.defaults["HTTP_HOST"]), venue_staff_a, clock)
    refused = venue.post(f"/console/planning/days/{MONDAY.isoformat()}/cancel/", {"confirm": "on"})
    assert refused.status_code == 403
    with in_a(tenant_a):
        assert not Slot.objects.filter(status=Slot.Status.CANCELLED).exists()
