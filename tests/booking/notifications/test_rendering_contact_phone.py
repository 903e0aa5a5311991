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


def test_an_incident_notice_in_english_says_what_matters_then_gives_the_notice(
    tenant_a: Municipality,
) -> None:
    """The municipality writes its incident notice in Japanese: a resident who chose English
    is told in English that the site is closed and whom to call, then given the notice."""
    from booking.notifications.rendering import render_message

    notice = "不正アクセスの疑いがあるため、予約サイトを停止しています。"
    with tenant_context(tenant_a):
        policy = BookingPolicy.current()
        policy.call_centre_phone = "0120-000-000"
        policy.save()
        for channel, said in [
            ("sms", "Booking site closed for now; call the call centre (0120-000-000) to book."),
            ("email", "To check, change or cancel a booking, please call the call centre."),
        ]:
            message = render_message(
                kind="incident_notice",
                channel=channel,
                language="en",
                context={"notice": notice},
                municipality_name=tenant_a.name,
            )
            assert said in message.body and notice in message.body
