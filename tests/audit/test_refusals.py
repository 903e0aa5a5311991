from __future__ import annotations

from django.test import Client
from django_tenants.utils import schema_context

from audit.models import Event
from audit.platform.models import PlatformEvent
from tenants.models import Municipality
from tests.conftest import host_of


def test_a_csrf_failure_is_refused_in_japanese_and_audited(tenant_a: Municipality) -> None:
    client = Client(HTTP_HOST=host_of(tenant_a), enforce_csrf_checks=True)
    response = client.post("/i18n/setlang/", {"language": "en"})
    assert response.status_code == 403
    assert "もう一度お試しください" in response.content.decode()
    with schema_context(tenant_a.schema_name):
        event = Event.objects.filter(action="access.refused").latest("seq")
    assert event.details == {"path": "/i18n/setlang/", "method": "POST", "reason": "csrf"}
    assert event.actor_kind == "anonymous"


def test_a_csrf_failure_on_the_control_plane_goes_to_the_platform_trail(db: None) -> None:
    client = Client(HTTP_HOST="platform.localhost", enforce_csrf_checks=True)
    assert client.post("/i18n/setlang/", {"language": "en"}).status_code == 403
    assert PlatformEvent.objects.filter(action="access.refused").exists()
