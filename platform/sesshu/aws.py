"""The one place boto3 clients are made.

Going through `client()` guarantees three things the rest of the code can rely on: the client
talks to ap-northeast-1 and nowhere else, a local emulator is used when `AWS_ENDPOINT_URL` is
set, and clients are reused (building one costs milliseconds and a fresh connection pool).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from sesshu.regions import ALLOWED_REGION

if TYPE_CHECKING:
    from mypy_boto3_kms.client import KMSClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_ses.client import SESClient
    from mypy_boto3_sns.client import SNSClient

DEFAULT_READ_TIMEOUT_SECONDS = 10


def _config(*, send_once: bool, read_timeout: float) -> Config:
    """Standard retry mode backs off with jitter and respects throttling; a KMS or S3 call
    that hangs must not hold a gunicorn worker or a Celery task for the default 60 s.

    ``send_once``: a call that must reach the service at most once unless a person decides
    otherwise. SES SendEmail and SNS Publish take no idempotency key, and botocore retrying
    a read timeout, a dropped connection or a 5xx on its own would deliver a second copy;
    the caller sees the first failure and decides (booking.notifications.providers). In
    Config, ``max_attempts`` counts retries after the first call, ``total_max_attempts``
    every call.
    """
    return Config(
        connect_timeout=3,
        read_timeout=read_timeout,
        retries=(
            {"mode": "standard", "total_max_attempts": 1}
            if send_once
            else {"mode": "standard", "max_attempts": 4}
        ),
        # Gunicorn threads and Celery workers share one client per service.
        max_pool_connections=32,
    )


# At DEBUG, botocore logs whole request and response bodies: KMS plaintext data keys, SES and
# SNS messages with residents' addresses and phone numbers. Those two loggers never go below
# INFO here, whatever the root level; the LOGGING setting must not lower them either.
PAYLOAD_LOGGERS = ("botocore.endpoint", "botocore.parsers")
for _logger_name in PAYLOAD_LOGGERS:
    logging.getLogger(_logger_name).setLevel(logging.INFO)

_ClientKey = tuple[str, str, str | None, str | None, bool, float]

_clients: dict[_ClientKey, Any] = {}
_clients_lock = threading.Lock()


def _setting(name: str) -> str | None:
    value = getattr(settings, name, None)
    return value or None


def _read_timeout() -> float:
    return float(getattr(settings, "AWS_READ_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT_SECONDS))


def _resolve_region(service: str, region: str | None) -> str:
    if region:
        source, resolved = "the region argument", region
    else:
        # With neither given, the client is pinned to Tokyo explicitly rather than left to
        # boto3's default chain, which would read AWS_DEFAULT_REGION or ~/.aws/config.
        source, resolved = "settings.AWS_REGION", _setting("AWS_REGION") or ALLOWED_REGION
    if resolved != ALLOWED_REGION:
        raise ImproperlyConfigured(
            f"Refusing to build a boto3 {service!r} client for region {resolved!r} "
            f"(from {source}): Sesshu runs only in {ALLOWED_REGION!r}."
        )
    return resolved


def _credentials() -> dict[str, str]:
    access_key_id = _setting("AWS_ACCESS_KEY_ID")
    secret_access_key = _setting("AWS_SECRET_ACCESS_KEY")
    if access_key_id is None and secret_access_key is None:
        # In EKS the pod's IAM role (IRSA) comes through boto3's default chain.
        return {}
    if access_key_id is None or secret_access_key is None:
        raise ImproperlyConfigured(
            "Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither."
        )
    return {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key}


@overload
def client(
    service: Literal["kms"], *, region: str | None = None, send_once: bool = False
) -> KMSClient: ...


@overload
def client(
    service: Literal["s3"], *, region: str | None = None, send_once: bool = False
) -> S3Client: ...


@overload
def client(
    service: Literal["ses"], *, region: str | None = None, send_once: bool = False
) -> SESClient: ...


@overload
def client(
    service: Literal["sns"], *, region: str | None = None, send_once: bool = False
) -> SNSClient: ...


@overload
def client(service: str, *, region: str | None = None, send_once: bool = False) -> Any: ...


def client(service: str, *, region: str | None = None, send_once: bool = False) -> Any:
    """A shared boto3 client for `service` in ap-northeast-1.

    Raises ImproperlyConfigured for any other region, whether passed in or taken from
    settings.AWS_REGION. boto3 clients are thread-safe, so the same one is returned to every
    caller with the same service, region, endpoint, credentials and retry policy.

    ``send_once`` turns botocore's own retries off (one attempt): for calls that must not be
    repeated blindly because the service cannot tell a repeat from a new request.
    """
    resolved_region = _resolve_region(service, region)
    endpoint_url = _setting("AWS_ENDPOINT_URL")
    credentials = _credentials()
    read_timeout = _read_timeout()
    key: _ClientKey = (
        service,
        resolved_region,
        endpoint_url,
        credentials.get("aws_access_key_id"),
        send_once,
        read_timeout,
    )
    with _clients_lock:
        cached = _clients.get(key)
        if cached is None:
            # boto3's default session is not safe to build clients from concurrently; a
            # session of our own, under the lock, is.
            session = boto3.session.Session()
            cached = session.client(
                service,  # type: ignore[call-overload]
                region_name=resolved_region,
                endpoint_url=endpoint_url,
                config=_config(send_once=send_once, read_timeout=read_timeout),
                **credentials,
            )
            _clients[key] = cached
        return cached


def clear_clients() -> None:
    """Forget every cached client (tests that change endpoints or credentials)."""
    with _clients_lock:
        _clients.clear()
