"""Notification fixtures: the LINE fake, SES and SNS on the local moto server, the backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.services.notifications import line_channel_configure
from sesshu import aws
from tenants.models import Municipality
from tests.aws_fixtures import REGION
from tests.booking.notifications.line_fake import LineFake, LineServer

LINE_TOKEN_A = "line-access-token-of-kodaira"
LINE_SECRET_A = "line-login-secret-of-kodaira"
LINE_CHANNEL_A = "1650000001"
LINE_USER = "U" + "4af4980629" * 3 + "ab"
EMAIL_FROM = "no-reply@kodaira.example.jp"
MOTO_ACCOUNT = "123456789012"


@pytest.fixture(autouse=True)
def _fresh_rate_budgets() -> None:
    cache.clear()


@pytest.fixture
def line_fake() -> Iterator[LineFake]:
    fake = LineFake(
        access_token=LINE_TOKEN_A, channel_id=LINE_CHANNEL_A, channel_secret=LINE_SECRET_A
    )
    with LineServer(fake), override_settings(SESSHU_LINE_API_BASE=fake.url):
        yield fake


@pytest.fixture
def providers(local_aws: str, line_fake: LineFake) -> Iterator[LineFake]:
    """The production backend: SES and SNS on moto through boto3, LINE on the local fake."""
    with override_settings(
        SESSHU_NOTIFICATION_BACKEND="aws", SESSHU_NOTIFICATION_EMAIL_FROM=EMAIL_FROM
    ):
        aws.client("ses").verify_email_identity(EmailAddress=EMAIL_FROM)
        yield line_fake


@pytest.fixture
def line_channel_a(tenant_a: Municipality) -> None:
    with tenant_context(tenant_a):
        line_channel_configure(
            login_channel_id=LINE_CHANNEL_A,
            login_channel_secret=LINE_SECRET_A,
            messaging_access_token=LINE_TOKEN_A,
            actor=Actor.system("tests"),
            ip=None,
        )


def ses_sent() -> list[Any]:
    """Emails the local SES accepted (moto's own record, in this process)."""
    from moto.ses.models import ses_backends

    return list(ses_backends[MOTO_ACCOUNT][REGION].sent_messages)


def sns_sent() -> list[tuple[str, str]]:
    """SMS the local SNS accepted: (phone number, text)."""
    from moto.sns.models import sns_backends

    return list(sns_backends[MOTO_ACCOUNT][REGION].sms_messages.values())
