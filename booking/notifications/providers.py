"""One small interface for every way a message leaves Sesshu, and its implementations.

``SESSHU_NOTIFICATION_BACKEND`` chooses: ``console`` (development, the default) prints each
message; ``aws`` sends email through Amazon SES, SMS through Amazon SNS (both through
``sesshu.aws.client``, so Tokyo only) and LINE through the Messaging API push endpoint with
the municipality's channel access token.

A provider raises ``TransientSendError`` for what may succeed later and is safe to ask again
(throttling, no connection made; for LINE, anything, as it honours an idempotency key),
``AmbiguousSendError`` when the provider may have accepted the message although the call
failed (a read timeout, a connection dropped after the request went out, a 5xx: SES and SNS
take no idempotency key, so asking again could deliver it twice) and ``PermanentSendError``
for what never will succeed (a rejected address, a bad token). Error reasons are codes and
short texts for staff, never the address or the message.
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from sesshu import aws

logger = logging.getLogger(__name__)

LINE_API_BASE = "https://api.line.me"
LINE_TIMEOUT_SECONDS = 10
LINE_TEXT_LIMIT = 5000  # characters in one LINE text message


@dataclass(frozen=True)
class OutgoingMessage:
    channel: str  # "email", "sms", "line"
    to: str = field(repr=False)  # an address: kept out of reprs, logs and errors
    body: str = field(repr=False)
    idempotency_key: str
    subject: str = ""
    sender: str = ""  # email From, or the SMS sender id


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    # True when the provider said it had already accepted this idempotency key.
    duplicate: bool = False


class SendError(Exception):
    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail

    @property
    def reason(self) -> str:
        return str(self)[:300]


class TransientSendError(SendError):
    """May succeed if tried again later."""


class PermanentSendError(SendError):
    """Will not succeed as it is; retrying is pointless."""


class AmbiguousSendError(SendError):
    """The call failed after the request may have reached the provider, and the provider has
    no idempotency key: it may have delivered the message. Asking again is a person's call."""


class Provider(Protocol):
    name: str
    # Whether asking twice with the same idempotency key delivers once. Decides what happens
    # to a message whose sender stopped between the call and recording its result.
    honours_idempotency_key: bool

    def send(self, message: OutgoingMessage) -> SendResult: ...


# --- Development --------------------------------------------------------------------------


class ConsoleProvider:
    """Prints the message to standard output (local development only)."""

    name = "console"
    honours_idempotency_key = True

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._seen: set[str] = set()

    def send(self, message: OutgoingMessage) -> SendResult:
        if message.idempotency_key in self._seen:
            return SendResult(provider_message_id=message.idempotency_key, duplicate=True)
        self._seen.add(message.idempotency_key)
        lines = [
            f"--- {message.channel} {message.idempotency_key} to {_masked(message.to)}",
            *([f"Subject: {message.subject}"] if message.subject else []),
            message.body,
            "---",
        ]
        print("\n".join(lines), file=sys.stdout, flush=True)
        return SendResult(provider_message_id=f"console-{message.idempotency_key}")


def _masked(address: str) -> str:
    return address[:3] + "***" if len(address) > 6 else "***"


# --- Amazon SES (email) -------------------------------------------------------------------

# Refusals made before the message was accepted: asking again later is safe.
_AWS_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "KMSThrottlingException",
        # HTTP 408: the service did not receive the whole request in time.
        "RequestTimeout",
    }
)
# Errors from the service's side that say nothing about whether the message went out.
_AWS_SERVER_CODES = frozenset(
    {"ServiceUnavailable", "InternalFailure", "InternalError", "InternalServerError"}
)
# Failures raised before a byte of the request was sent: no connection was ever made, or the
# request could not even be signed.
_AWS_NOT_SENT = (
    ConnectTimeoutError,
    EndpointConnectionError,
    ProxyConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)


def _region(setting: str) -> str | None:
    # None: sesshu.aws pins Tokyo; a value must be Tokyo too or the client refuses to exist.
    return getattr(settings, setting, None) or None


def _aws_error(exc: Exception) -> SendError:
    """What a failed SES or SNS send means for sending again.

    Neither service takes an idempotency key, so only a failure known to have happened
    before the service accepted the message may be retried; one that may have happened
    after (a 5xx, a read timeout, a connection closed mid-call, anything unrecognised) is
    ambiguous and left to staff as ``unconfirmed``.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "ClientError"))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
        # The AWS message can quote the address it refused: keep the code only.
        if status >= 500 or code in _AWS_SERVER_CODES:
            return AmbiguousSendError(f"aws.{code}", f"HTTP {status}; may have been sent")
        if code in _AWS_THROTTLING_CODES:
            return TransientSendError(f"aws.{code}")
        return PermanentSendError(f"aws.{code}")
    if isinstance(exc, _AWS_NOT_SENT):
        return TransientSendError("aws.connection", type(exc).__name__)
    return AmbiguousSendError("aws.connection", f"{type(exc).__name__}; may have been sent")


class SesProvider:
    name = "ses"
    honours_idempotency_key = False

    def send(self, message: OutgoingMessage) -> SendResult:
        if not message.sender:
            raise PermanentSendError("config.email_from", "the municipality has no From address")
        try:
            response = aws.client(
                "ses", region=_region("SESSHU_SES_REGION"), send_once=True
            ).send_email(
                Source=message.sender,
                Destination={"ToAddresses": [message.to]},
                Message={
                    "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
                },
                # Lets SES event records (configuration-set destinations) be matched to the
                # outbox row when a delivery is in doubt.
                Tags=[{"Name": "notification", "Value": message.idempotency_key}],
            )
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(exc) from None
        return SendResult(provider_message_id=str(response["MessageId"]))


# --- Amazon SNS (SMS) ---------------------------------------------------------------------


class SnsProvider:
    name = "sns"
    honours_idempotency_key = False

    def send(self, message: OutgoingMessage) -> SendResult:
        if not message.to.startswith("+81"):
            raise PermanentSendError("sms.not_japanese_number")
        attributes: dict[str, Any] = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
        }
        if message.sender:
            attributes["AWS.SNS.SMS.SenderID"] = {
                "DataType": "String",
                "StringValue": message.sender,
            }
        try:
            response = aws.client(
                "sns", region=_region("SESSHU_SNS_REGION"), send_once=True
            ).publish(PhoneNumber=message.to, Message=message.body, MessageAttributes=attributes)
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(exc) from None
        return SendResult(provider_message_id=str(response["MessageId"]))


# --- LINE Messaging API (push) ------------------------------------------------------------


def line_api_base() -> str:
    return str(getattr(settings, "SESSHU_LINE_API_BASE", "") or LINE_API_BASE).rstrip("/")


class LineProvider:
    """``POST /v2/bot/message/push`` with the municipality's channel access token.

    ``X-Line-Retry-Key`` is LINE's idempotency key: a second request with the same key is
    answered 409 with the id of the request LINE already accepted, and nothing is delivered
    twice. So a message whose sender died after the call is simply asked for again.
    """

    name = "line"
    honours_idempotency_key = True

    def __init__(self, access_token: str) -> None:
        self._access_token = access_token

    def __repr__(self) -> str:
        return "LineProvider()"

    def send(self, message: OutgoingMessage) -> SendResult:
        payload = {
            "to": message.to,
            "messages": [{"type": "text", "text": message.body[:LINE_TEXT_LIMIT]}],
        }
        request = urllib.request.Request(  # noqa: S310 - https (or a local fake in tests)
            f"{line_api_base()}/v2/bot/message/push",
            data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self._access_token}",
                "X-Line-Retry-Key": message.idempotency_key,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=LINE_TIMEOUT_SECONDS) as response:  # noqa: S310
                request_id = response.headers.get("x-line-request-id", "")
                response.read()
                return SendResult(provider_message_id=request_id or message.idempotency_key)
        except urllib.error.HTTPError as exc:
            status = exc.code
            accepted = exc.headers.get("x-line-accepted-request-id", "")
            exc.read()
            if status == 409 and accepted:
                return SendResult(provider_message_id=accepted, duplicate=True)
            if status == 429 or status >= 500:
                raise TransientSendError(f"line.http_{status}") from None
            raise PermanentSendError(f"line.http_{status}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise TransientSendError("line.connection", type(exc).__name__) from None


# --- Choosing ----------------------------------------------------------------------------


def backend() -> str:
    value = str(getattr(settings, "SESSHU_NOTIFICATION_BACKEND", "console") or "console")
    if value not in ("console", "aws"):
        raise ImproperlyConfigured("SESSHU_NOTIFICATION_BACKEND must be 'console' or 'aws'.")
    return value


_console_providers: dict[str, ConsoleProvider] = {}


def provider_for(channel: str, *, line_access_token: str | None = None) -> Provider:
    """The provider for ``channel`` under the configured backend.

    LINE needs the municipality's channel access token (``line_access_token``); raises
    PermanentSendError without one.
    """
    if backend() == "console":
        return _console_providers.setdefault(channel, ConsoleProvider(channel))
    if channel == "email":
        return SesProvider()
    if channel == "sms":
        return SnsProvider()
    if channel == "line":
        if not line_access_token:
            raise PermanentSendError("config.line_channel", "no LINE channel is configured")
        return LineProvider(line_access_token)
    raise ValueError(f"unknown channel {channel!r}")
