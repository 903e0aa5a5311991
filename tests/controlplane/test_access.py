"""Who is refused: anonymous visitors, users who are not vendor operators, sessions past their
idle or absolute limit — and a vendor's session on any municipal host."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client, RequestFactory
from django.test.client import Client as ClientType
from django.urls import URLPattern, reverse
from django_tenants.utils import schema_context

from audit.platform.models import PlatformEvent
from controlplane import urls as controlplane_urls
from controlplane.access import SESSION_LAST_SEEN, SESSION_LOGIN_AT
from sesshu.session_store import SessionStore
from tenants.models import Municipality
from tests.conftest import CAST, host_of
from tests.controlplane.conftest import PLATFORM_HOST

OPEN_TO_ANYONE = {"login", "logout"}
GUARDED = [
    pattern
    for pattern in controlplane_urls.urlpatterns
    if isinstance(pattern, URLPattern) and pattern.name not in OPEN_TO_ANYONE
]


def _path(pattern: URLPattern) -> str:
    groups = pattern.pattern.regex.groupindex
    kwargs: dict[str, object] = {"code": CAST["a"]["code"]} if "code" in groups else {}
    if "pk" in groups:
        kwargs["pk"] = 1
    return reverse(f"controlplane:{pattern.name}", urlconf="sesshu.urls_public", kwargs=kwargs)


def _refusals() -> list[PlatformEvent]:
    return list(PlatformEvent.objects.filter(action="controlplane.access_refused").order_by("seq"))


def test_every_page_but_login_is_guarded() -> None:
    names = {pattern.name for pattern in GUARDED}
    assert {
        "municipality_list",
        "municipality_create",
        "municipality_detail",
        "municipality_suspend",
        "municipality_resume",
        "municipality_decommission",
        "stats_refresh",
    } <= names


@pytest.mark.parametrize("pattern", GUARDED, ids=lambda p: p.name)
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_anonymous_visitor_is_sent_to_the_login(
    platform_client: ClientType, tenant_a: Municipality, pattern: URLPattern, method: str
) -> None:
    path = _path(pattern)
    response = getattr(platform_client, method)(path)
    if response.status_code == 405:  # the page does not take this method at all
        return
    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("controlplane:login", urlconf="sesshu.urls_public")
    )
    (refusal,) = _refusals()
    assert refusal.details == {"reason": "anonymous", "path": path}
    assert refusal.actor_kind == "anonymous"
    assert refusal.ip == "127.0.0.1"
    assert Municipality.objects.get(pk=tenant_a.pk).status == Municipality.Status.ACTIVE


def test_the_login_page_comes_back_to_the_page_asked_for(platform_client: ClientType) -> None:
    response = platform_client.get("/municipalities/132110/")
    assert response["Location"] == "/login/?next=/municipalities/132110/"
    page = platform_client.get(response["Location"]).content.decode()
    assert 'name="next" value="/municipalities/132110/"' in page


def test_a_user_who_is_not_a_vendor_operator_is_refused(platform_client: ClientType) -> None:
    user = User.objects.create_user("not-an-operator", password="irrelevant-password-1")
    platform_client.force_login(user)
    response = platform_client.get("/")
    assert response.status_code == 403
    assert "ログインしてください" in response.content.decode()
    (refusal,) = _refusals()
    assert refusal.details["reason"] == "not_operator"
    assert (refusal.actor_kind, refusal.actor_id) == ("vendor", str(user.pk))
    assert platform_client.get("/").status_code == 302  # and the session is gone


def test_a_password_without_totp_opens_nothing(platform_client: ClientType) -> None:
    user = User.objects.create_user("staff-no-otp", password="irrelevant-password-1", is_staff=True)
    platform_client.force_login(user)  # logged in, but never verified by a TOTP device
    response = platform_client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert _refusals()[-1].details["reason"] == "not_verified"
    # The login page does not bounce a half-logged-in user back to the list.
    assert platform_client.get("/login/").status_code == 200


def _age_session(client: ClientType, **seconds_ago: int) -> None:
    session = client.session
    now = int(time.time())
    for key, ago in seconds_ago.items():
        session[key] = now - ago
    session.save()


def test_a_session_idle_too_long_is_ended(operator_client: ClientType) -> None:
    session_key = operator_client.cookies[settings.SESSION_COOKIE_NAME].value
    _age_session(operator_client, **{SESSION_LAST_SEEN: settings.SESSHU_SESSION_IDLE_SECONDS - 30})
    assert operator_client.get("/").status_code == 200  # not yet idle; this visit counts
    assert operator_client.session[SESSION_LAST_SEEN] >= int(time.time()) - 5

    _age_session(operator_client, **{SESSION_LAST_SEEN: settings.SESSHU_SESSION_IDLE_SECONDS + 1})
    response = operator_client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not Session.objects.filter(session_key=session_key).exists()
    page = operator_client.get(response["Location"]).content.decode()
    assert "一定時間操作がなかったため、ログアウトしました。" in page
    assert _refusals()[-1].details["reason"] == "idle_timeout"


def test_a_session_ends_at_its_absolute_limit_however_busy(operator_client: ClientType) -> None:
    _age_session(
        operator_client,
        **{SESSION_LOGIN_AT: settings.SESSION_COOKIE_AGE + 1, SESSION_LAST_SEEN: 10},
    )
    response = operator_client.get("/")
    assert response.status_code == 302
    assert _refusals()[-1].details["reason"] == "absolute_timeout"
    assert operator_client.get("/").status_code == 302


@pytest.mark.parametrize("path", ["/console/", "/console/login/", "/"])
def test_a_vendor_session_means_nothing_on_a_municipal_host(
    operator_client: ClientType, tenant_a: Municipality, path: str
) -> None:
    session_key = operator_client.cookies[settings.SESSION_COOKIE_NAME].value
    assert Session.objects.filter(session_key=session_key).exists()  # valid on the platform
    assert operator_client.get("/").status_code == 200

    host = host_of(tenant_a)
    municipal = Client(HTTP_HOST=host)
    municipal.cookies[settings.SESSION_COOKIE_NAME] = session_key
    response = municipal.get(path)

    if path == "/console/":
        assert response.status_code != 200
        if response.status_code == 302:
            assert response["Location"].startswith("/console/login/")
        else:
            assert response.status_code in (403, 404)
    # Sessions live in each municipality's schema: the vendor's key is not there, so the
    # municipality sees an anonymous visitor.
    with schema_context(tenant_a.schema_name):
        assert not Session.objects.filter(session_key=session_key).exists()
        request = RequestFactory().get(path, HTTP_HOST=host)
        request.session = SessionStore(session_key=session_key)
        assert get_user(request).is_anonymous
    # What the municipal request itself loaded, if it looked (read lazily now, it would be
    # read in the public context the connection has gone back to).
    loaded = getattr(response.wsgi_request.session, "_session_cache", None)
    if loaded is not None:
        assert "_auth_user_id" not in loaded


def test_pages_carry_no_inline_script_or_style(operator_client: ClientType) -> None:
    for path in [
        "/",
        "/municipalities/new/",
        "/municipalities/132110/",
        "/municipalities/132110/suspend/",
        "/municipalities/132110/decommission/",
        "/login/",
    ]:
        response = operator_client.get(path)
        assert response.status_code in (200, 302), path
        body = response.content.decode()
        assert "<script" not in body, path
        assert " style=" not in body and "<style" not in body, path
        assert " on" + "click=" not in body, path
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert response["Cache-Control"] == "no-store"


def test_pages_are_japanese_by_default_and_english_on_request(operator_client: ClientType) -> None:
    assert '<html lang="ja">' in operator_client.get("/").content.decode()
    english = operator_client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="en">' in english.content.decode()


def test_control_plane_pages_are_not_served_on_a_municipal_host(tenant_a: Municipality) -> None:
    response = Client(HTTP_HOST=host_of(tenant_a)).get("/municipalities/new/")
    assert response.status_code == 404
    assert PLATFORM_HOST != host_of(tenant_a)
