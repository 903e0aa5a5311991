"""Sending outbox rows through the real client libraries: boto3 to the local moto server for
SES and SNS, urllib to the local LINE fake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from audit.chain import Actor
from audit.models import Event
from booking.models import Notification, NotificationTemplate
from booking.models.bookings import booking_number_display
from booking.notifications.delivery import (
    MAX_ATTEMPTS,
    Outcome,
    notification_deliver,
    notifications_due,
)
from booking.services.notifications import (
    contact_preferences_update,
    line_channel_configure,
    notification_enqueue,
    notifications_pause_set,
)
from booking.tasks_notifications import notification_send_batch
from tenants.models import Municipality
from tests.booking.notifications.conftest import (
    LINE_TOKEN_A,
    LINE_USER,
    ses_sent,
    sns_sent,
)
from tests.booking.notifications.factories import (
    make_booking,
    make_slot,
    make_voucher,
    set_contacts,
)
from tests.booking.notifications.line_fake import LineFake

pytestmark = pytest.mark.django_db
STAFF = Actor.system("tests")
KINDS = [
    "booking_created",
    "booking_changed",
    "booking_cancelled",
    "reminder",
    "slot_cancelled",
    "incident_notice",
]


def _resident_on_every_channel(language: str = "ja"):
    resident = make_voucher()
    set_contacts(
        resident,
        email="hanako@example.jp",
        phone="090-1234-5678",
        line_user_id=LINE_USER,
        language=language,
    )
    return resident


def _status(row: Notification) -> str:
    return Notification.objects.get(pk=row.pk).status


def test_a_confirmation_goes_out_once_on_every_consented_channel(
    tenant_a: Municipality, providers: LineFake, line_channel_a: None
) -> None:
    with tenant_context(tenant_a):
        resident = _resident_on_every_channel()
        booking = make_booking(resident, make_slot())
        rows = notification_enqueue(kind="booking_created", booking=booking)
        assert sorted(row.channel for row in rows) == ["email", "line", "sms"]
        for row in rows:
            assert notification_deliver(notification_id=row.pk).outcome == Outcome.SENT
        # Asking again (a redelivered task, the sweeper) sends nothing more.
        for row in rows:
            assert notification_deliver(notification_id=row.pk).outcome == Outcome.ALREADY_DONE
        sent = Notification.objects.filter(pk__in=[row.pk for row in rows])
        assert {(row.status, row.attempts) for row in sent} == {("sent", 1)}
        assert all(row.provider_message_id and row.sent_at for row in sent)

    (email,) = ses_sent()
    assert email.destinations["ToAddresses"] == ["hanako@example.jp"]
    # Written as the residents' pages write it (two groups of five).
    shown = booking_number_display(booking.booking_number)
    assert shown in email.subject and "小平市" in email.subject
    assert "小平市役所 健康センター" in email.body
    ((phone, sms),) = sns_sent()
    assert phone == "+819012345678"
    assert shown in sms
    (push,) = providers.delivered
    assert push.to == LINE_USER and shown in push.texts[0]
    assert providers.refused == []


def test_sms_and_line_never_carry_name_birth_date_or_voucher_number(
    tenant_a: Municipality, providers: LineFake, line_channel_a: None
) -> None:
    with tenant_context(tenant_a):
        for language in ("ja", "en"):
            resident = _resident_on_every_channel(language)
            booking = make_booking(resident, make_slot())
            for kind in KINDS:
                rows = notification_enqueue(
                    kind=kind, booking=booking, extra={"notice": "システムを点検しています。"}
                )
                for row in rows:
                    if row.channel != "email":
                        assert notification_deliver(notification_id=row.pk).outcome == (
                            Outcome.SENT
                        )
    texts = [text for _phone, text in sns_sent()] + [push.texts[0] for push in providers.delivered]
    assert len(texts) == 2 * len(KINDS) * 2
    for text in texts:
        compact = "".join(text.split())
        assert "小平花子" not in compact and "コダイラハナコ" not in compact
        assert "1948" not in text and "3月15日" not in text
        assert resident.voucher.voucher_number[:4] not in text  # "90.." numbers
    assert any("Your vaccination is tomorrow" in text for text in texts)
    assert any("明日は接種の予約日です" in text for text in texts)


def test_a_template_that_would_name_the_resident_is_refused(
    tenant_a: Municipality, providers: LineFake, line_channel_a: None
) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, line_user_id=LINE_USER)
        NotificationTemplate.objects.create(
            kind="booking_created",
            channel="line",
            language="ja",
            body=f"接種券番号 {resident.voucher.voucher_number} の予約 {{{{ booking_number }}}}",
        )
        (row,) = notification_enqueue(
            kind="booking_created", booking=make_booking(resident, make_slot())
        )
        assert notification_deliver(notification_id=row.pk).outcome == Outcome.FAILED
        row.refresh_from_db()
        assert row.last_error.startswith("content.personal_data")
    assert providers.delivered == []


def test_a_municipality_template_is_used_in_the_residents_language(
    tenant_a: Municipality, providers: LineFake, line_channel_a: None
) -> None:
    with tenant_context(tenant_a):
        NotificationTemplate.objects.create(
            kind="booking_created",
            channel="line",
            language="en",
            body="Kodaira: booked {{ booking_number }} on {{ date }} at {{ start_time }}.",
        )
        resident = make_voucher()
        set_contacts(resident, line_user_id=LINE_USER, language="en")
        booking = make_booking(resident, make_slot(datetime(2026, 12, 1, 5, 0, tzinfo=UTC)))
        (row,) = notification_enqueue(kind="booking_created", booking=booking)
        notification_deliver(notification_id=row.pk)
    (push,) = providers.delivered
    shown = booking_number_display(booking.booking_number)
    assert push.texts == [f"Kodaira: booked {shown} on Tue 1 Dec 2026 at 14:00."]


def test_a_transient_failure_is_retried_with_backoff_and_its_reason_kept(
    tenant_a: Municipality, providers: LineFake, line_channel_a: None
) -> None:
    providers.fail_next(500)
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, line_user_id=LINE_USER)
        (row,) = notification_enqueue(
            kind="booking_created", booking=make_booking(resident, make_slot())
        )
        first = notification_deliver(notification_id=row.pk)
        assert first.outcome == Outcome.RETRY and 27 <= first.countdown <= 33
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "line.http_500")
        assert row.not_before is not None
        # Too early: nothing happens until the backoff is over.
        assert notification_deliver(notification_id=row.pk).outcome == Outcome.NOT_DUE
        later = row.not_before + timedelta(seconds=1)
        assert notification_deliver(notification_id=row.pk, now=later).outcome == Outcome.SENT
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    # Both tries carried the same retry key; one message was delivered.
    assert len({r["retry_key"] for r in providers.requests}) == 1
    assert len(providers.delivered) == 1


def test_it_gives_up_after_the_last_attempt_and_shows_why(
    tenant_a: Municipality, providers: LineFake, line_channel_a: None
) -> None:
    providers.fail_next(*[503] * MAX_ATTEMPTS)
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, line_user_id=LINE_USER)
        (row,) = notification_enqueue(kind="reminder", booking=make_booking(resident, make_slot()))
        now = timezone.now()
        outcomes = []
        for _ in range(MAX_ATTEMPTS):
            outcomes.append(notification_deliver(notification_id=row.pk, now=now).outcome)
            now += timedelta(hours=2)
        assert outcomes == [Outcome.RETRY] * (MAX_ATTEMPTS - 1) + [Outcome.FAILED]
        row.refresh_from_db()
        assert row.status == "failed"
        assert row.last_error == f"attempts.exhausted after {MAX_ATTEMPTS}: line.http_503"
    assert providers.delivered == []


def test_a_permanent_refusal_fails_at_once_with_the_providers_reason(
    tenant_a: Municipality, providers: LineFake, line_channel_a: None
) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, email="hanako@example.jp")
        (row,) = notification_enqueue(
            kind="booking_created", booking=make_booking(resident, make_slot())
        )
        with override_settings(SESSHU_NOTIFICATION_EMAIL_FROM="unverified@example.jp"):
            assert notification_deliver(notification_id=row.pk).outcome == Outcome.FAILED
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_error) == ("failed", 1, "aws.MessageRejected")
        assert "hanako" not in row.last_error
    assert ses_sent() == []


def test_each_municipality_pushes_with_its_own_line_token(
    tenant_b: Municipality, providers: LineFake
) -> None:
    with tenant_context(tenant_b):
        line_channel_configure(
            login_channel_id="1650000002",
            login_channel_secret="secret-of-chiyoda",
            messaging_access_token="line-access-token-of-chiyoda",
            actor=STAFF,
            ip=None,
        )
        resident = make_voucher()
        set_contacts(resident, line_user_id=LINE_USER)
        (row,) = notification_enqueue(
            kind="booking_created", booking=make_booking(resident, make_slot())
        )
        # The fake only knows Kodaira's token: Chiyoda's is a different one, and is sent.
        assert notification_deliver(notification_id=row.pk).outcome == Outcome.FAILED
        row.refresh_from_db()
        assert row.last_error == "line.http_401"
    assert providers.refused == ["Authentication failed"]
    assert LINE_TOKEN_A != "line-access-token-of-chiyoda"


def test_the_pause_switch_holds_messages_until_resumed(
    tenant_a: Municipality,
    providers: LineFake,
    line_channel_a: None,
    django_capture_on_commit_callbacks,
) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, line_user_id=LINE_USER)
        notifications_pause_set(paused=True, actor=STAFF, ip="192.0.2.9")
        (row,) = notification_enqueue(
            kind="booking_created", booking=make_booking(resident, make_slot())
        )
        assert notification_deliver(notification_id=row.pk).outcome == Outcome.PAUSED
        assert _status(row) == "pending"
        assert providers.delivered == []
        with django_capture_on_commit_callbacks(execute=True):
            notifications_pause_set(paused=False, actor=STAFF, ip="192.0.2.9")
        # Resuming dispatched what waited (tasks run in-process without a broker).
        assert _status(row) == "sent"
        actions = list(
            Event.objects.filter(
                action__in=["notification.paused", "notification.resumed"]
            ).values_list("action", "ip")
        )
        assert actions == [
            ("notification.paused", "192.0.2.9"),
            ("notification.resumed", "192.0.2.9"),
        ]
    assert len(providers.delivered) == 1


def test_sending_is_held_to_the_providers_rate(
    tenant_a: Municipality, providers: LineFake, line_channel_a: None
) -> None:
    with tenant_context(tenant_a), override_settings(SESSHU_NOTIFICATION_RATES={"line": 3}):
        slot = make_slot()
        ids = []
        for _ in range(5):
            resident = make_voucher()
            set_contacts(resident, line_user_id=LINE_USER)
            ids += [
                row.pk
                for row in notification_enqueue(
                    kind="booking_created", booking=make_booking(resident, slot)
                )
            ]
        with time_machine.travel(datetime(2026, 11, 30, 1, 0, 0, 200_000, tzinfo=UTC), tick=False):
            counts = notification_send_batch(ids)
            assert counts == {"sent": 3, "rate_limited": 1, "deferred": 1}
            waiting = Notification.objects.filter(pk__in=ids, status="pending")
            assert waiting.count() == 2
            # The deferred rows carry when they are due, so the sweeper leaves them alone.
            assert all(row.not_before > timezone.now() for row in waiting)
            held = notification_deliver(notification_id=ids[4])
            assert held.outcome == Outcome.RATE_LIMITED and 0.8 <= held.countdown <= 1.8
        with time_machine.travel(datetime(2026, 11, 30, 1, 0, 3, tzinfo=UTC), tick=False):
            assert notification_send_batch(ids[3:]) == {"sent": 2}
    assert len(providers.delivered) == 5


def test_a_withdrawn_consent_stops_a_queued_message(
    tenant_a: Municipality, providers: LineFake
) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, email="hanako@example.jp")
        (row,) = notification_enqueue(
            kind="booking_created", booking=make_booking(resident, make_slot())
        )
        contact_preferences_update(
            voucher=resident.voucher,
            email=None,
            phone=None,
            channels=[],
            language="ja",
            actor=Actor.resident("tests"),
            ip=None,
        )
        assert notification_deliver(notification_id=row.pk).outcome == Outcome.SKIPPED
        row.refresh_from_db()
        assert row.status == "skipped" and row.last_error.startswith("consent.withdrawn")
    assert ses_sent() == []


def test_the_sweeper_finds_what_no_task_is_handling(tenant_a: Municipality) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, email="hanako@example.jp", phone="09012345678")
        lost, fresh = notification_enqueue(
            kind="booking_created", booking=make_booking(resident, make_slot())
        )
        (stale,) = notification_enqueue(
            kind="booking_cancelled", booking=make_booking(resident, make_slot(), dose=2)
        )[:1]
        now = timezone.now()
        Notification.objects.filter(pk=lost.pk).update(created_at=now - timedelta(minutes=5))
        Notification.objects.filter(pk=stale.pk).update(
            status="sending", claimed_until=now - timedelta(seconds=1)
        )
        assert notifications_due(now=now) == sorted([lost.pk, stale.pk])
        assert fresh.pk not in notifications_due(now=now)


def test_an_expired_ses_claim_becomes_unconfirmed_and_is_never_resent(
    tenant_a: Municipality, providers: LineFake
) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, email="hanako@example.jp")
        (row,) = notification_enqueue(
            kind="booking_created", booking=make_booking(resident, make_slot())
        )
        # What a sender that died after claiming leaves behind.
        Notification.objects.filter(pk=row.pk).update(
            status="sending", attempts=1, claimed_until=timezone.now() - timedelta(seconds=1)
        )
        assert notification_deliver(notification_id=row.pk).outcome == Outcome.UNCONFIRMED
        assert notification_deliver(notification_id=row.pk).outcome == Outcome.ALREADY_DONE
        row.refresh_from_db()
        assert row.status == "unconfirmed" and row.last_error.startswith("claim.expired")
    assert ses_sent() == []


def test_a_live_claim_is_left_alone(
    tenant_a: Municipality, providers: LineFake, line_channel_a: None
) -> None:
    with tenant_context(tenant_a):
        resident = make_voucher()
        set_contacts(resident, line_user_id=LINE_USER)
        (row,) = notification_enqueue(
            kind="booking_created", booking=make_booking(resident, make_slot())
        )
        Notification.objects.filter(pk=row.pk).update(
            status="sending", attempts=1, claimed_until=timezone.now() + timedelta(seconds=60)
        )
        outcome = notification_deliver(notification_id=row.pk).outcome
        assert outcome == Outcome.CLAIMED_ELSEWHERE
    assert providers.requests == []
