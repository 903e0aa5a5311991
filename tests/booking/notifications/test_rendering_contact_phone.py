"""The number messages tell residents to call: the messages' own, else the call centre's."""

from __future__ import annotations

from django_tenants.utils import tenant_context

from booking.models import BookingPolicy, NotificationSettings
from booking.notifications.rendering import message_context
from tenants.models import Municipality


def test_messages_fall_back_to_the_call_centres_number_of_the_booking_rules(
    tenant_a: Municipality,
) -> None:
    with tenant_context(tenant_a):
        policy = BookingPolicy.current()
        policy.call_centre_phone = "0120-000-000"
        policy.save()
        NotificationSettings.objects.filter(pk=NotificationSettings.SINGLETON_ID).delete()

        def phone() -> str:
            said = message_context({}, language="ja", municipality_name=tenant_a.name)
            return str(said["contact_phone"])

        assert phone() == "0120-000-000"
        NotificationSettings.objects.create(
            pk=NotificationSettings.SINGLETON_ID, contact_phone="042-000-0000"
        )
        assert phone() == "042-000-0000"  # the messages' own number wins
