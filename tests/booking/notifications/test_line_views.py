"""Linking LINE from my page: only the logged-in resident, only with this attempt's state."""

from __future__ import annotations

import urllib.parse

import pytest
from django.test import Client, override_settings
from django_tenants.utils import tenant_context

from audit.models import Event
from booking.models import ContactPreference
from booking.services.notifications import contact_value
from tenants.models import Municipality
from tests.booking.notifications.conftest import LINE_USER
from tests.booking.notifications.line_fake import LineFake
from tests.booking.notifications.test_line_login import id_token
from tests.booking.resident.conftest import logged_in, make_resident
from tests.conftest import host_of

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("line_channel_a"),
]


@pytest.fixture(autouse=True)
def _urls() -> object:
    with override_settings(ROOT_URLCONF="tests.booking.notifications.urls"):
        yield


def _client(tenant: Municipality) -> Client:
    return Client(HTTP_HOST=host_of(tenant))


def _start(client: Client) -> dict[str, str]:
    response = client.post("/contact/line/link/")
    assert response.status_code == 302
    location = urllib.parse.urlsplit(response["Location"])
    assert location.netloc == "access.line.me"
    return dict(urllib.parse.parse_qsl(location.query))


def test_a_resident_links_and_unlinks_their_line_account(
    tenant_a: Municipality, line_fake: LineFake
) -> None:
    resident = make_resident(tenant_a, "1000000101")
    client = logged_in(_client(tenant_a), resident)
    query = _start(client)
    line_fake.code = "code-from-line"
    line_fake.redirect_uri = query["redirect_uri"]
    line_fake.id_token = id_token(nonce=query["nonce"])
    response = client.get(
        "/contact/line/callback/", {"code": "code-from-line", "state": query["state"]}
    )
    assert (response.status_code, response["Location"]) == (302, "/contact/")
    with tenant_context(tenant_a):
        preference = ContactPreference.objects.select_related("voucher").get(
            voucher=resident.voucher
        )
        assert contact_value(preference, "line_user_id") == LINE_USER
    # The attempt is used up: the same answer replayed links nothing more.
    replay = client.get(
        "/contact/line/callback/", {"code": "code-from-line", "state": query["state"]}
    )
    assert replay.status_code == 302
    assert client.post("/contact/line/unlink/").status_code == 302
    with tenant_context(tenant_a):
        preference.refresh_from_db()
        assert preference.line_user_id is None
        reasons = list(
            Event.objects.filter(action="notification.line_link_refused").values_list(
                "details", flat=True
            )
        )
        assert reasons == [{"reason": "state_missing"}]


def test_a_callback_with_another_state_links_nothing(
    tenant_a: Municipality, line_fake: LineFake
) -> None:
    resident = make_resident(tenant_a, "1000000102")
    client = logged_in(_client(tenant_a), resident)
    query = _start(client)
    line_fake.code = "code-from-line"
    line_fake.redirect_uri = query["redirect_uri"]
    line_fake.id_token = id_token(nonce=query["nonce"])
    response = client.get(
        "/contact/line/callback/", {"code": "code-from-line", "state": "forged-by-an-attacker"}
    )
    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert not ContactPreference.objects.filter(
            voucher=resident.voucher, line_user_id__isnull=False
        ).exists()
        event = Event.objects.filter(action="notification.line_link_refused").last()
        assert event is not None and event.details == {"reason": "state"}


@pytest.mark.parametrize("path", ["/contact/line/link/", "/contact/line/unlink/"])
def test_an_anonymous_visitor_is_refused(tenant_a: Municipality, path: str) -> None:
    response = _client(tenant_a).post(path)
    assert (response.status_code, response["Location"]) == (302, "/")


def test_starting_a_link_needs_a_post(tenant_a: Municipality) -> None:
    resident = make_resident(tenant_a, "1000000103")
    client = logged_in(_client(tenant_a), resident)
    assert client.get("/contact/line/link/").status_code == 405


def test_a_resident_of_b_cannot_use_a_session_of_a(
    tenant_a: Municipality, tenant_b: Municipality
) -> None:
    resident = make_resident(tenant_a, "1000000104")
    client = logged_in(_client(tenant_a), resident)
    other = Client(HTTP_HOST=host_of(tenant_b))
    other.cookies = client.cookies
    response = other.post("/contact/line/link/")
    assert (response.status_code, response["Location"]) == (302, "/")
