from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from audit.chain import Actor
from tenants.models import Municipality
from tenants.services import municipality_resume, municipality_suspend
from tests.conftest import host_of


def test_an_unknown_host_is_not_found(db: None) -> None:
    assert Client(HTTP_HOST="nowhere.localhost").get("/").status_code == 404


def test_the_connection_is_back_in_public_after_a_request(tenant_a: Municipality) -> None:
    Client(HTTP_HOST=host_of(tenant_a)).get("/")
    assert connection.schema_name == "public"


def test_a_suspended_municipality_serves_nothing(
    tenant_a: Municipality, caplog: pytest.LogCaptureFixture
) -> None:
    municipality_suspend(municipality=tenant_a, actor=Actor.system("tests"))
    response = Client(HTTP_HOST=host_of(tenant_a)).get("/console/")
    assert response.status_code == 503
    console = response.content.decode()
    assert "現在停止しています" in console and "運営事業者の窓口" in console
    assert "コールセンターにお電話ください" not in console  # staff are not sent to themselves
    resident = Client(HTTP_HOST=host_of(tenant_a)).get("/").content.decode()
    # Residents are not sent to a call centre that cannot help while it lasts.
    assert "コールセンターでも予約の確認や変更ができません" in resident
    assert "コールセンターにお電話ください" not in resident and "運営事業者" not in resident
    # Answered on purpose: no error in Django's request log (nor a Sentry event per page).
    assert not [r for r in caplog.records if r.name == "django.request"]
    municipality_resume(municipality=tenant_a, actor=Actor.system("tests"))
    assert Client(HTTP_HOST=host_of(tenant_a)).get("/").status_code != 503


def test_health_probes_need_no_host_or_tenant(db: None) -> None:
    response = Client(HTTP_HOST="10.0.0.12").get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    ready = Client(HTTP_HOST="10.0.0.12").get("/readyz")
    assert ready.json()["checks"]["database"] == "ok"


def test_every_response_has_a_strict_csp_and_no_store(tenant_a: Municipality) -> None:
    response = Client(HTTP_HOST=host_of(tenant_a)).get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["Cache-Control"] == "no-store"


def test_cache_keys_carry_the_tenant(tenant_a: Municipality, tenant_b: Municipality) -> None:
    with schema_context(tenant_a.schema_name):
        cache.set("availability", "A's")
    with schema_context(tenant_b.schema_name):
        assert cache.get("availability") is None
        cache.set("availability", "B's")
    with schema_context(tenant_a.schema_name):
        assert cache.get("availability") == "A's"


def test_file_paths_carry_the_tenant_read_at_call_time(
    tenant_a: Municipality, tenant_b: Municipality, settings, tmp_path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    with schema_context(tenant_a.schema_name):
        name = default_storage.save("uploads/imports/registry.csv", ContentFile(b"a"))
        assert name.startswith(f"uploads/tenants/{tenant_a.schema_name}/imports/")
        assert default_storage.exists(name)
    with schema_context(tenant_b.schema_name):
        # The same name means B's folder in B's context: A's file is not reachable.
        assert not default_storage.exists("uploads/imports/" + name.rsplit("/", 1)[1])
        # A's full key is read under B's folder too: still not A's file.
        assert not default_storage.exists(name)
    assert default_storage.save("exports/x.txt", ContentFile(b"p")).startswith("exports/platform/")
