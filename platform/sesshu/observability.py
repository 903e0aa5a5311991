"""Error reporting that never carries a resident's personal data.

Sentry receives no request bodies, no local variables, no cookies, no headers but a safe
few, and every string that survives passes the scrubber; ``before_send`` is the last
filter. Without a DSN nothing is initialised.
"""

from __future__ import annotations

import re
from typing import Any, cast

# Field names used in our forms, models and imports that hold personal data.
PERSONAL_FIELD_NAMES = frozenset(
    {
        "name",
        "name_kana",
        "kana",
        "full_name",
        "birth_date",
        "date_of_birth",
        "dob",
        "phone",
        "phone_number",
        "tel",
        "email",
        "address",
        "postal_code",
        "zip",
        "voucher_number",
        "address_number",
        "password",
        "password1",
        "password2",
        "activation_code",
        "otp_token",
        "token",
        "line_user_id",
        "sex",
        "氏名",
        "氏名カナ",
        "生年月日",
        "電話番号",
        "メールアドレス",
        "住所",
        "郵便番号",
        "接種券番号",
        "宛名番号",
        "性別",
    }
)
_SAFE_HEADERS = {"user-agent", "accept-language", "x-request-id", "host"}
_FILTERED = "[Filtered]"
# Values that look personal even without a telling key: digits runs (vouchers, phones,
# dates), e-mail addresses, and any Japanese text (names, addresses).
_PERSONAL_VALUE = re.compile(
    r"\d{4,}|[\w.+-]+@[\w-]+\.[\w.-]+|[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]"
)


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 20:
        return _FILTERED
    if isinstance(value, dict):
        return {
            key: _FILTERED if str(key).lower() in PERSONAL_FIELD_NAMES else _scrub(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(item, depth + 1) for item in value]
    if isinstance(value, str):
        return _PERSONAL_VALUE.sub("＊", value)
    return value


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        request.pop("query_string", None)
        headers = request.get("headers") or {}
        request["headers"] = {k: v for k, v in headers.items() if k.lower() in _SAFE_HEADERS}
        if "url" in request:
            request["url"] = str(request["url"]).split("?", 1)[0]
    event.pop("user", None)
    for exception in (event.get("exception") or {}).get("values", []):
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    return dict(_scrub(event))


def init_sentry(*, dsn: str | None, environment: str, transport: Any = None) -> bool:
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    options: dict[str, Any] = {}
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        include_source_context=False,
        before_send=cast(Any, scrub_event),
        before_breadcrumb=lambda crumb, hint: _scrub(crumb),
        integrations=[DjangoIntegration(), CeleryIntegration()],
        **options,
    )
    return True
