"""Tomorrow's bookings no reminder reaches: listed for the call centre to phone, each marked
once phoned (and a mistaken mark taken back), the list's read and every mark audited."""

from __future__ import annotations

import time_machine
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from booking.models import Booking, ContactPreference
from tenants.models import Municipality
from tests.booking.console.callcentre.cast import CALL_CENTRE_HOME, Town, signed_in
from tests.booking.console.conftest import StaffAccount, events
from tests.booking.console.reception.conftest import make_booking

TO_PHONE = CALL_CENTRE_HOME + "to-phone/"


def _tomorrow(tenant: Municipality, town: Town) -> tuple[Booking, Booking]:
    """Hanako (no contact registered) and her namesake (e-mail consented to), both booked
    for tomorrow at 10:00; and a booking the day after, which is not tomorrow's."""
    with tenant_context(tenant):
        slot = town.world.slot(days=1, hour=10)
        unreached = make_booking(town.hanako, slot)
        reached = make_booking(town.namesake, slot)
        ContactPreference.objects.create(
            voucher=town.namesake, email=b"sealed", email_consented_at=timezone.now()
        )
        make_booking(town.hanako, town.world.slot(days=2, hour=10), dose=2)
    return unreached, reached


def test_the_call_centre_phones_tomorrows_residents_no_reminder_reaches(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    unreached, _reached = _tomorrow(tenant_a, town)
    signed_in(client_a, operator_a, clock)
    home = client_a.get(CALL_CENTRE_HOME).content.decode()
    assert "まだお電話していない方：1人" in home.split('id="reminder-calls-left"')[1]
    page = client_a.get(TO_PHONE).content.decode()
    listed = page.split('id="reminder-calls"')[1]
    assert town.hanako.voucher_number in listed
    assert town.namesake.voucher_number not in listed  # her e-mail reaches her
    assert listed.count("<tr>") == 2  # the header and Hanako's one booking of tomorrow
    (read,) = events(tenant_a, "callcentre.reminder_calls_listed")
    assert read.details["bookings"] == [unreached.pk] and read.details["day"] == "2026-05-12"

    url = f"{TO_PHONE}reminders/{unreached.pk}/phoned/"
    after = client_a.post(url, follow=True).content.decode()
    assert "電話で連絡済みにしました。" in after and "09:30 連絡済み" in after
    assert 'id="reminder-calls-left"' not in client_a.get(CALL_CENTRE_HOME).content.decode()
    # Twice is once: the second press records nothing.
    assert "すでにその状態です" in client_a.post(url, follow=True).content.decode()
    assert len(events(tenant_a, "callcentre.reminder_phoned")) == 1
    # A mark on the wrong row, taken back: to phone again.
    client_a.post(url, {"undo": "1"})
    assert len(events(tenant_a, "callcentre.reminder_phoned_undone")) == 1
    assert "まだお電話していない方：1人" in client_a.get(CALL_CENTRE_HOME).content.decode()


def test_a_booking_not_on_tomorrows_list_is_not_marked(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    _unreached, reached = _tomorrow(tenant_a, town)
    signed_in(client_a, operator_a, clock)
    client_a.post(f"{TO_PHONE}reminders/{reached.pk}/phoned/")
    assert events(tenant_a, "callcentre.reminder_phoned") == []


def test_without_reminders_there_is_no_list_of_whom_they_miss(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    from booking.models import NotificationSettings

    _tomorrow(tenant_a, town)
    with tenant_context(tenant_a):
        NotificationSettings.objects.update_or_create(
            pk=NotificationSettings.SINGLETON_ID, defaults={"reminders_enabled": False}
        )
    signed_in(client_a, operator_a, clock)
    assert 'id="reminder-calls-left"' not in client_a.get(CALL_CENTRE_HOME).content.decode()
    page = client_a.get(TO_PHONE).content.decode()
    assert 'id="reminders-off"' in page and town.hanako.voucher_number not in page
    assert events(tenant_a, "callcentre.reminder_calls_listed") == []
