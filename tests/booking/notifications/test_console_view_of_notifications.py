"""Failed messages stay visible with their reason, and staff can send them again."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django_tenants.utils import tenant_context

from audit.chain import Actor
from audit.models import Event
from booking.models import Notification
from booking.notifications.delivery import Outcome, notification_deliver
from booking.notifications.selectors import notification_counts, notifications_needing_attention
from booking.services.notifications import notification_enqueue, notification_resend
from tenants.models import Municipality
from tests.booking.notifications.conftest import LINE_USER
from tests.booking.notifications.factories import (
    make_booking,
    make_slot,
    make_voucher,
    set_contacts,
)
from tests.booking.notifications.line_fake import LineFake

pytestmark = pytest.mark.django_db


def test_failed_messages_are_listed_with_their_reason_and_can_be_resent(
    tenant_a: Municipality, providers: LineFake, line_channel_a: None
) -> None:
    providers.fail_next(400)  # e.g. the resident blocked the official account
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, line_user_id=LINE_USER)
        booking = make_booking(resident, make_slot())
        (row,) = notification_enqueue(kind="booking_created", booking=booking)
        assert notification_deliver(notification_id=row.pk).outcome == Outcome.FAILED
        (listed,) = notifications_needing_attention()
        assert (listed.id, listed.status, listed.reason) == (row.pk, "failed", "line.http_400")
        assert listed.booking_number == booking.booking_number
        assert notification_counts()["failed"] == 1

        notification_resend(notification_id=row.pk, actor=Actor.system("tests"), ip="192.0.2.7")
        assert notification_deliver(notification_id=row.pk).outcome == Outcome.SENT
        assert notifications_needing_attention() == []
        assert Notification.objects.get(pk=row.pk).status == "sent"
        event = Event.objects.get(action="notification.resent")
        assert event.details == {
            "previous_status": "failed",
            "channel": "line",
            "kind": "booking_created",
        }
        with pytest.raises(ValidationError):
            notification_resend(notification_id=row.pk, actor=Actor.system("tests"), ip=None)
    assert len(providers.delivered) == 1
