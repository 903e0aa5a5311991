"""The host → municipality lookup each process remembers for a few seconds (tenants.hosts)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.chain import Actor
from sesshu import brief_cache
from tenants import hosts
from tenants.hosts import municipality_for_host, municipality_hosts_forget
from tenants.models import Municipality
from tenants.services import municipality_resume, municipality_suspend
from tests.conftest import host_of


@pytest.fixture
def remembering(settings: pytest.FixtureRequest) -> Iterator[None]:
    settings.SESSHU_TENANT_CACHE_SECONDS = 5  # type: ignore[attr-defined]
    municipality_hosts_forget()
    yield
    municipality_hosts_forget()


def _domain_lookups(queries: CaptureQueriesContext) -> int:
    return sum('FROM "tenants_domain"' in query["sql"] for query in queries.captured_queries)


def test_a_second_request_does_not_ask_the_database_again(
    tenant_a: Municipality, remembering: None
) -> None:
    client = Client(HTTP_HOST=host_of(tenant_a))
    with CaptureQueriesContext(connection) as first:
        client.get("/login/")
    with CaptureQueriesContext(connection) as second:
        client.get("/login/")
    assert _domain_lookups(first) == 1
    assert _domain_lookups(second) == 0


def test_it_is_off_when_the_setting_is_zero(tenant_a: Municipality, settings: object) -> None:
    settings.SESSHU_TENANT_CACHE_SECONDS = 0  # type: ignore[attr-defined]
    client = Client(HTTP_HOST=host_of(tenant_a))
    client.get("/login/")
    with CaptureQueriesContext(connection) as again:
        client.get("/login/")
    assert _domain_lookups(again) == 1


def test_a_change_saved_in_this_process_is_served_at_once(
    tenant_a: Municipality, remembering: None
) -> None:
    client = Client(HTTP_HOST=host_of(tenant_a))
    assert client.get("/login/").status_code == 200
    municipality_suspend(municipality=tenant_a, actor=Actor.system("tests"))
    assert client.get("/login/").status_code == 503
    municipality_resume(municipality=tenant_a, actor=Actor.system("tests"))
    assert client.get("/login/").status_code == 200


def test_a_change_made_elsewhere_is_served_once_the_time_is_up(
    tenant_a: Municipality, remembering: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = host_of(tenant_a)
    now = [1000.0]
    monkeypatch.setattr(brief_cache.time, "monotonic", lambda: now[0])
    assert municipality_for_host(host).status == Municipality.Status.ACTIVE  # type: ignore[union-attr]
    # Another process's bulk update: no signal reaches this one.
    Municipality.objects.filter(pk=tenant_a.pk).update(status=Municipality.Status.INCIDENT)
    now[0] += 4.9
    assert municipality_for_host(host).status == Municipality.Status.ACTIVE  # type: ignore[union-attr]
    now[0] += 0.2
    assert municipality_for_host(host).status == Municipality.Status.INCIDENT  # type: ignore[union-attr]


def test_each_caller_gets_a_copy_of_its_own(tenant_a: Municipality, remembering: None) -> None:
    host = host_of(tenant_a)
    first = municipality_for_host(host)
    assert first is not None
    first.name = "書き換えられた名前"
    second = municipality_for_host(host)
    assert second is not None and second is not first
    assert second.name == tenant_a.name


def test_unknown_and_decommissioned_hosts_are_not_remembered(
    tenant_a: Municipality, remembering: None
) -> None:
    assert municipality_for_host("nowhere.localhost") is None
    assert "nowhere.localhost" not in hosts._remembered
    host = host_of(tenant_a)
    Municipality.objects.filter(pk=tenant_a.pk).update(status=Municipality.Status.DECOMMISSIONED)
    assert municipality_for_host(host) is None
    assert host not in hosts._remembered
