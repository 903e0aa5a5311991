"""SES and SNS take no idempotency key: a send whose outcome is in doubt is never repeated on its
own, neither by botocore's retries nor by the outbox's. Only a failure known to have happened
before AWS accepted the message is tried again. Through real boto3 clients, against a local
endpoint that fails and then the local moto server."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.test import override_settings
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import Notification
from booking.notifications.delivery import Outcome, notification_deliver
from booking.services.notifications import notification_enqueue, notification_resend
from sesshu import aws
from tenants.models import Municipality
from tests.booking.notifications.aws_fault import aws_fault
from tests.booking.notifications.conftest import ses_sent, sns_sent
from tests.booking.notifications.factories import (
    make_booking,
    make_slot,
    make_voucher,
    set_contacts,
)
from tests.booking.notifications.line_fake import LineFake

pytestmark = pytest.mark.django_db


def _queued(channel: str) -> Notification:
    resident = make_voucher()
    if channel == "email":
        set_contacts(resident, email="hanako@example.jp")
    else:
        set_contacts(resident, phone="090-1234-5678")
    (row,) = notification_enqueue(
        kind="booking_created", booking=make_booking(resident, make_slot())
    )
    return row


@pytest.mark.parametrize(
    ("channel", "mode", "reason"),
    [
        ("email", "hang", "aws.connection: ReadTimeoutError; may have been sent"),
        ("email", "drop", "aws.connection: ConnectionClosedError; may have been sent"),
        ("email", "500", "aws.InternalFailure: HTTP 500; may have been sent"),
        ("sms", "hang", "aws.connection: ReadTimeoutError; may have been sent"),
        ("sms", "500", "aws.InternalFailure: HTTP 500; may have been sent"),
    ],
)
def test_a_send_that_may_have_reached_aws_becomes_unconfirmed_after_one_request(
    tenant_a: Municipality, providers: LineFake, channel: str, mode: str, reason: str
) -> None:
    with tenant_context(tenant_a):
        row = _queued(channel)
        with aws_fault(mode) as fault:
            assert notification_deliver(notification_id=row.pk).outcome == Outcome.UNCONFIRMED
            # Neither the sweeper nor a redelivered task asks AWS again.
            later = row.created_at + timedelta(hours=3)
            assert notification_deliver(notification_id=row.pk, now=later).outcome == (
                Outcome.ALREADY_DONE
            )
        # One request: botocore did not retry it either (its default would have made five).
        assert fault.requests == ["SendEmail" if channel == "email" else "Publish"]
        row.refresh_from_db()
        assert (row.status, row.attempts, row.last_error) == ("unconfirmed", 1, reason)
        assert "hanako" not in row.last_error and "9012345678" not in row.last_error

        # A person decides to send it again: it goes out once (here to the local moto).
        notification_resend(notification_id=row.pk, actor=Actor.system("tests"), ip=None)
        assert notification_deliver(notification_id=row.pk).outcome == Outcome.SENT
    assert len(ses_sent()) + len(sns_sent()) == 1


def test_throttling_is_retried_later_because_aws_refused_before_accepting(
    tenant_a: Municipality, providers: LineFake
) -> None:
    with tenant_context(tenant_a):
        row = _queued("email")
        with aws_fault("throttle") as fault:
            first = notification_deliver(notification_id=row.pk)
        assert first.outcome == Outcome.RETRY and fault.requests == ["SendEmail"]
        row.refresh_from_db()
        assert (row.status, row.last_error) == ("pending", "aws.Throttling")
        later = row.not_before + timedelta(seconds=1)
        assert notification_deliver(notification_id=row.pk, now=later).outcome == Outcome.SENT
    assert len(ses_sent()) == 1


def test_no_connection_made_is_retried_later(tenant_a: Municipality, providers: LineFake) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens there once the probe closes
    with tenant_context(tenant_a):
        row = _queued("sms")
        aws.clear_clients()
        with override_settings(AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port}"):
            assert notification_deliver(notification_id=row.pk).outcome == Outcome.RETRY
        aws.clear_clients()
        row.refresh_from_db()
        assert row.status == "pending"
        assert row.last_error == "aws.connection: EndpointConnectionError"
        later = row.not_before + timedelta(seconds=1)
        assert notification_deliver(notification_id=row.pk, now=later).outcome == Outcome.SENT
    assert len(sns_sent()) == 1


def test_the_notification_clients_make_one_attempt_and_others_keep_their_retries(
    local_aws: str,
) -> None:
    for service in ("ses", "sns"):
        retries = aws.client(service, send_once=True).meta.config.retries
        assert retries["total_max_attempts"] == 1
    assert aws.client("kms").meta.config.retries["total_max_attempts"] == 5
    assert aws.client("ses") is not aws.client("ses", send_once=True)
