from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from django.test import Client
from sentry_sdk.transport import Transport

from sesshu.observability import init_sentry, scrub_event
from tenants.models import Municipality
from tests.conftest import host_of

PERSONAL = {
    "voucher_number": "1234567890",
    "name": "小平 花子",
    "birth_date": "1948-04-01",
    "phone": "09012345678",
}


class CapturingTransport(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[str] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.payloads.append(envelope.serialize().decode("utf-8", "replace"))


@pytest.fixture
def sentry_transport() -> Iterator[CapturingTransport]:
    transport = CapturingTransport()
    assert init_sentry(
        dsn="https://public@sentry.invalid/1", environment="test", transport=transport
    )
    yield transport
    sentry_sdk.init(dsn=None)


def test_no_personal_value_reaches_sentry(
    tenant_a: Municipality, sentry_transport: CapturingTransport, settings
) -> None:
    settings.ROOT_URLCONF = "tests.sesshu.urls_boom"
    client = Client(HTTP_HOST=host_of(tenant_a), raise_request_exception=False)
    client.cookies["sessionid"] = "resident-session-cookie-value"
    response = client.post(
        "/book?voucher_number=1234567890", PERSONAL, HTTP_X_RESIDENT_PHONE=PERSONAL["phone"]
    )
    assert response.status_code == 500
    sentry_sdk.flush()
    assert sentry_transport.payloads, "the error was not reported at all"
    payload = "\n".join(sentry_transport.payloads)
    assert "ValueError" in payload
    for value in [*PERSONAL.values(), "resident-session-cookie-value", "小平", "花子"]:
        assert value not in payload
        assert json.dumps(value)[1:-1] not in payload  # nor JSON-escaped


def test_the_scrubber_drops_bodies_locals_and_personal_keys() -> None:
    event = {
        "request": {
            "data": {"name": "x"},
            "cookies": {"a": "b"},
            "query_string": "v=1",
            "url": "https://a.example/x?voucher=1",
            "headers": {"Cookie": "c", "User-Agent": "ua"},
        },
        "user": {"email": "a@example.jp"},
        "exception": {"values": [{"stacktrace": {"frames": [{"vars": {"phone": "0"}}]}}]},
        "extra": {"email": "taro@example.jp", "note": "voucher 1234567890"},
    }
    scrubbed = scrub_event(event)
    assert "data" not in scrubbed["request"] and "cookies" not in scrubbed["request"]
    assert scrubbed["request"]["url"] == "https://a.example/x"
    assert scrubbed["request"]["headers"] == {"User-Agent": "ua"}
    assert "user" not in scrubbed
    assert "vars" not in scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert scrubbed["extra"] == {"email": "[Filtered]", "note": "voucher ＊"}
