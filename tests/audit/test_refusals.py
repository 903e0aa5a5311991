from __future__ import annotations

from django.test import Client
from django_tenants.utils import schema_context

from audit.models import Event
from audit.platform.models import PlatformEvent
from tenants.models import Municipality
from tests.conftest import host_of


def test_a_csrf_failure_is_refused_in_japanese_and_audited(tenant_a: Municipality) -> None:
    client = Client(HTTP_HOST=host_of(tenant_a), enforce_csrf_checks=True)
    response = client.post(
        "/i18n/setlang/", {"language": "en"}, HTTP_REFERER=f"http://{host_of(tenant_a)}/mypage/"
    )
    assert response.status_code == 403
    page = response.content.decode()
    # Said to have done nothing, in the municipality's name, with the way back.
    assert "操作は完了していません" in page and "操作は行われていません" in page
    assert f"| {tenant_a.name}</title>" in page and 'href="/mypage/"' in page
    elsewhere = client.post("/i18n/setlang/", {}, HTTP_REFERER="https://evil.example/x")
    assert 'href="/"' in elsewhere.content.decode()  # never a way to another site
    # Nor through a path of this site's that a browser reads as another host.
    for path in ("//evil.example/x", "/\\evil.example/x"):
        sneaky = client.post(
            "/i18n/setlang/", {}, HTTP_REFERER=f"http://{host_of(tenant_a)}{path}"
        ).content.decode()
        assert 'href="/"' in sneaky and "evil.example" not in sneaky
    with schema_context(tenant_a.schema_name):
        event = Event.objects.filter(action="access.refused").latest("seq")
    assert event.details == {"path": "/i18n/setlang/", "method": "POST", "reason": "csrf"}
    assert event.actor_kind == "anonymous"


def test_a_csrf_failure_on_the_control_plane_goes_to_the_platform_trail(db: None) -> None:
    client = Client(HTTP_HOST="platform.localhost", enforce_csrf_checks=True)
    assert client.post("/i18n/setlang/", {"language": "en"}).status_code == 403
    assert PlatformEvent.objects.filter(action="access.refused").exists()
