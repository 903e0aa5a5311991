from __future__ import annotations

import pytest
from django.test import Client

from audit.models import Event
from sesshu.proxy import forwarded_client
from tests.conftest import host_of


@pytest.mark.parametrize(
    ("header", "trusted", "expected"),
    [
        ("203.0.113.7", 1, "203.0.113.7"),
        ("198.51.100.1, 203.0.113.7", 1, "203.0.113.7"),  # the client wrote the first one
        ("198.51.100.1, 203.0.113.7, 10.0.0.2", 2, "203.0.113.7"),
        ("", 1, None),
        ("not-an-ip", 1, None),
        ("203.0.113.7", 0, None),
        ("203.0.113.7", 2, None),
    ],
)
def test_the_client_is_the_address_the_trusted_proxy_saw(header, trusted, expected) -> None:
    assert forwarded_client(header, trusted) == expected


def test_the_audit_trail_records_the_client_behind_the_balancer(tenant_a, settings) -> None:
    from django_tenants.utils import schema_context

    settings.SESSHU_TRUSTED_PROXY_COUNT = 1
    client = Client(
        HTTP_HOST=host_of(tenant_a),
        enforce_csrf_checks=True,
        HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.50",
    )
    client.post("/i18n/setlang/", {"language": "en"})  # refused: no CSRF token
    with schema_context(tenant_a.schema_name):
        event = Event.objects.filter(action="access.refused").latest("seq")
    assert event.ip == "203.0.113.50"


def test_the_deploy_check_warns_when_no_proxy_is_trusted_behind_https(settings) -> None:  # noqa: ANN001
    from sesshu.proxy import check_trusted_proxies

    settings.SESSHU_HTTPS = True
    settings.SESSHU_TRUSTED_PROXY_COUNT = 0
    assert [message.id for message in check_trusted_proxies(None)] == ["sesshu.W002"]
    settings.SESSHU_TRUSTED_PROXY_COUNT = 1
    assert check_trusted_proxies(None) == []
    settings.SESSHU_HTTPS = False  # the demo on a developer's machine: no balancer
    settings.SESSHU_TRUSTED_PROXY_COUNT = 0
    assert check_trusted_proxies(None) == []
