"""The Tokyo-region guard: Sesshu refuses to run against any AWS region but ap-northeast-1.

Residents' personal data must stay in Japan. A single setting pointing at another region (a
bucket, a KMS key, an e-mail sender) would move it abroad silently, so every place the
application can be told about a region is inspected here, at start-up (`assert_tokyo`, called
from wsgi/asgi/celery) and by `manage.py check` (`check_tokyo_region`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

ALLOWED_REGION = "ap-northeast-1"

# A KMS key ARN (not an alias, not a bare key id): what S3 bucket policies compare against.
KMS_KEY_ARN_RE = re.compile(r"arn:aws:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+")

# Settings that hold a bare region name. AWS_REGION is the default for every client.
REGION_SETTINGS: tuple[str, ...] = (
    "AWS_REGION",
    "SESSHU_KMS_REGION",
    "AWS_S3_REGION_NAME",
    "SESSHU_SES_REGION",
    "SESSHU_SNS_REGION",
)

# Settings that may hold an ARN, whose fourth field is a region.
ARN_SETTINGS: tuple[str, ...] = ("SESSHU_KMS_KEY_ID", "AWS_S3_SSE_KMS_KEY_ID")

# Settings that may hold an endpoint URL; a real AWS host names its region.
ENDPOINT_SETTINGS: tuple[str, ...] = ("AWS_ENDPOINT_URL", "AWS_S3_ENDPOINT_URL")

# boto3 falls back to this when a client is built without a region (django-storages does
# that when AWS_S3_REGION_NAME is unset), so it is configuration too.
REGION_ENVIRONMENT: tuple[str, ...] = ("AWS_DEFAULT_REGION",)

_AWS_HOST_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")

_HINT = f"Sesshu keeps residents' data in Japan: every AWS region must be {ALLOWED_REGION}."


def _is_set(value: object) -> bool:
    # Environment helpers turn an empty variable into "", which means "not configured".
    return value is not None and value != ""


def _region_problem(source: str, value: object) -> str | None:
    if not _is_set(value) or value == ALLOWED_REGION:
        return None
    return f"{source} is {value!r}, not {ALLOWED_REGION!r}"


def _arn_problem(source: str, value: object) -> str | None:
    if not isinstance(value, str) or not value.startswith("arn:"):
        # A bare key id or alias name resolves in the client's region, which is checked.
        return None
    parts = value.split(":", 5)
    if len(parts) < 6:
        return f"{source} is {value!r}, which is not a well-formed ARN"
    region = parts[3]
    if region != ALLOWED_REGION:
        return f"{source} is {value!r}, an ARN in region {region!r}, not {ALLOWED_REGION!r}"
    return None


def _endpoint_problem(source: str, value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    host = (urlsplit(value).hostname or "").lower()
    if not host.endswith(_AWS_HOST_SUFFIXES):
        # A local emulator (moto) or a VPC endpoint alias: nothing leaves the network.
        return None
    if f".{ALLOWED_REGION}." in f".{host}":
        return None
    # The global endpoints (s3.amazonaws.com, ...) are us-east-1.
    return f"{source} is {value!r}, an AWS endpoint outside {ALLOWED_REGION!r}"


def _storage_options(settings_obj: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    storages = getattr(settings_obj, "STORAGES", None)
    if not isinstance(storages, Mapping):
        return
    for alias, config in storages.items():
        options = config.get("OPTIONS") if isinstance(config, Mapping) else None
        if isinstance(options, Mapping):
            yield f"STORAGES[{alias!r}]['OPTIONS']", options


def _sse_kms_key(parameters: object) -> object:
    if isinstance(parameters, Mapping):
        return parameters.get("SSEKMSKeyId")
    return None


def region_violations(settings_obj: Any, *, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every AWS region setting that is set to something other than ap-northeast-1.

    `environ` is the process environment unless given; pass `{}` to inspect settings only.
    """
    if environ is None:
        environ = os.environ
    problems: list[str | None] = []
    for name in REGION_SETTINGS:
        problems.append(_region_problem(name, getattr(settings_obj, name, None)))
    for name in ARN_SETTINGS:
        problems.append(_arn_problem(name, getattr(settings_obj, name, None)))
    for name in ENDPOINT_SETTINGS:
        problems.append(_endpoint_problem(name, getattr(settings_obj, name, None)))
    problems.append(
        _arn_problem(
            "AWS_S3_OBJECT_PARAMETERS['SSEKMSKeyId']",
            _sse_kms_key(getattr(settings_obj, "AWS_S3_OBJECT_PARAMETERS", None)),
        )
    )
    for source, options in _storage_options(settings_obj):
        problems.append(_region_problem(f"{source}['region_name']", options.get("region_name")))
        problems.append(_endpoint_problem(f"{source}['endpoint_url']", options.get("endpoint_url")))
        problems.append(
            _arn_problem(
                f"{source}['object_parameters']['SSEKMSKeyId']",
                _sse_kms_key(options.get("object_parameters")),
            )
        )
    for variable in REGION_ENVIRONMENT:
        problems.append(_region_problem(f"environment variable {variable}", environ.get(variable)))
    return [problem for problem in problems if problem is not None]


def assert_tokyo(settings_obj: Any, *, environ: Mapping[str, str] | None = None) -> None:
    """Refuse to start outside Tokyo. Call before serving a request or running a task."""
    violations = region_violations(settings_obj, environ=environ)
    if violations:
        raise ImproperlyConfigured(
            "Sesshu refuses to start: " + "; ".join(violations) + f". {_HINT}"
        )


def check_tokyo_region(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Django system check: one sesshu.E001 per region outside ap-northeast-1."""
    from django.conf import settings

    return [
        checks.Error(violation, hint=_HINT, id="sesshu.E001")
        for violation in region_violations(settings)
    ]
