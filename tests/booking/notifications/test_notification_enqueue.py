"""The outbox is written in the booking's transaction, one row per consented channel."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django_tenants.utils import tenant_context

from audit.chain import Actor
from audit.models import Event
from booking.models import ContactPreference, Notification
from booking.services.notifications import (
    contact_preferences_update,
    contact_value,
    notification_enqueue,
)
from tenants.models import Municipality
from tests.booking.notifications.factories import make_booking, make_slot, make_voucher

pytestmark = pytest.mark.django_db

RESIDENT = Actor.resident("tests")


class _Rollback(Exception):
    pass


def test_it_writes_one_row_per_consented_channel_and_none_without_consent(
    tenant_a: Municipality,
) -> None:
    with tenant_context(tenant_a):
        slot = make_slot()
        silent = make_voucher()
        assert (
            notification_enqueue(kind="booking_created", booking=make_booking(silent, slot)) == []
        )
        resident = make_voucher()
        contact_preferences_update(
            voucher=resident.voucher,
            email="hanako@example.jp",
            phone="090-1234-5678",
            channels=["email", "sms"],
            language="ja",
            actor=RESIDENT,
            ip="192.0.2.1",
        )
        booking = make_booking(resident, slot)
        rows = notification_enqueue(kind="booking_created", booking=booking)
        assert sorted(row.channel for row in rows) == ["email", "sms"]
        assert {row.status for row in rows} == {"pending"}
        assert rows[0].context["booking_number"] == booking.booking_number


def test_the_outbox_rolls_back_with_the_booking(
    tenant_a: Municipality, django_capture_on_commit_callbacks
) -> None:
    with tenant_context(tenant_a):
        slot = make_slot()
        resident = make_voucher()
        contact_preferences_update(
            voucher=resident.voucher,
            email="hanako@example.jp",
            phone=None,
            channels=["email"],
            language="ja",
            actor=RESIDENT,
            ip=None,
        )
        before = Notification.objects.count()
        with django_capture_on_commit_callbacks() as callbacks:
            with pytest.raises(_Rollback), transaction.atomic():
                booking = make_booking(resident, slot)
                assert len(notification_enqueue(kind="booking_created", booking=booking)) == 1
                raise _Rollback
        assert Notification.objects.count() == before
        assert callbacks == []  # nothing is sent for a booking that never existed


def test_it_schedules_the_sender_only_after_commit(
    tenant_a: Municipality, django_capture_on_commit_callbacks
) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        contact_preferences_update(
            voucher=resident.voucher,
            email="hanako@example.jp",
            phone=None,
            channels=["email"],
            language="ja",
            actor=RESIDENT,
            ip=None,
        )
        with django_capture_on_commit_callbacks() as callbacks:
            with transaction.atomic():
                notification_enqueue(
                    kind="booking_created", booking=make_booking(resident, make_slot())
                )
        assert len(callbacks) == 1


def test_preferences_are_encrypted_and_audited_without_values(tenant_a: Municipality) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        preference = contact_preferences_update(
            voucher=resident.voucher,
            email="hanako@example.jp",
            phone="０９０－１２３４－５６７８",
            channels=["email", "sms"],
            language="en",
            actor=RESIDENT,
            ip="192.0.2.1",
        )
        stored = ContactPreference.objects.get(pk=preference.pk)
        assert b"hanako" not in bytes(stored.email)
        assert contact_value(preference, "phone") == "+819012345678"
        assert stored.consented_channels() == ["email", "sms"]
        assert stored.email_consented_at is not None and stored.sms_consented_at is not None
        event = Event.objects.filter(action="notification.preferences_updated").last()
        assert event is not None
        assert "hanako" not in str(event.details) and "1234" not in str(event.details)
        assert event.details["channels"] == ["email", "sms"]


@pytest.mark.parametrize(
    ("email", "phone", "channels", "field"),
    [
        (None, None, ["email"], "email"),
        ("not-an-address", None, [], "email"),
        (None, "0423411211", ["sms"], "phone"),  # a landline receives no SMS
        (None, None, ["line"], "channels"),  # LINE needs a linked account first
        (None, None, ["fax"], "channels"),
        # An address for a way not chosen would be kept and never used.
        ("hanako@example.jp", None, [], "channels"),
        (None, "09012345678", ["email"], "email"),
    ],
)
def test_it_refuses_a_channel_without_its_address(
    tenant_a: Municipality, email: str | None, phone: str | None, channels: list[str], field: str
) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        with pytest.raises(ValidationError) as refused:
            contact_preferences_update(
                voucher=resident.voucher,
                email=email,
                phone=phone,
                channels=channels,
                language="ja",
                actor=RESIDENT,
                ip=None,
            )
        assert field in refused.value.message_dict
