"""The error pages speak the visitor's language and name the municipality (Django's own are
English); the server error names the request for support, and needs nothing that failed."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.test import Client

from booking.console import views as console_views
from booking.resident import waiting_room
from tenants.models import Municipality
from tests.conftest import host_of

PLATFORM_HOST = "platform.localhost"


def _html_lang(page: str) -> str:
    found = re.search(r'<html lang="([a-z-]+)">', page)
    assert found is not None, page[:200]
    return found.group(1)


def test_a_page_not_found_is_in_japanese_and_names_the_municipality(
    tenant_a: Municipality,
) -> None:
    response = Client(HTTP_HOST=host_of(tenant_a)).get("/no-such-page/")
    page = response.content.decode()
    assert response.status_code == 404 and _html_lang(page) == "ja"
    assert "ページが見つかりません" in page and "トップページからお進みください" in page
    assert f'<p class="site-name">{tenant_a.name}</p>' in page
    assert '<a href="/">トップページへ</a>' in page
    assert "Not Found" not in page
    assert "Content-Security-Policy" in response  # the security headers go on it too


def test_a_page_not_found_reads_in_english_where_the_browser_asks(
    tenant_a: Municipality,
) -> None:
    page = (
        Client(HTTP_HOST=host_of(tenant_a), HTTP_ACCEPT_LANGUAGE="en")
        .get("/no-such-page/")
        .content.decode()
    )
    assert _html_lang(page) == "en" and "Page not found" in page
    assert "ページが見つかりません" not in page


def test_an_unknown_host_and_the_control_plane_answer_the_same_page(db: None) -> None:
    for host in ("nowhere.localhost", PLATFORM_HOST):
        response = Client(HTTP_HOST=host).get("/no-such-page/")
        page = response.content.decode()
        assert response.status_code == 404, host
        assert "ページが見つかりません" in page and '<p class="site-name">Sesshu</p>' in page


@pytest.mark.parametrize(
    ("raised", "status", "heading"),
    [
        (RuntimeError("boom"), 500, "ただいまご利用いただけません"),
        (PermissionDenied(), 403, "このページは表示できません"),
        (SuspiciousOperation("odd"), 400, "リクエストを処理できませんでした"),
    ],
)
def test_a_failure_answers_its_page_in_japanese(
    tenant_a: Municipality,
    monkeypatch: pytest.MonkeyPatch,
    raised: Exception,
    status: int,
    heading: str,
) -> None:
    def fail(municipality: Municipality | None = None) -> int:
        raise raised

    monkeypatch.setattr(waiting_room, "per_minute", fail)  # on every resident page
    client = Client(HTTP_HOST=host_of(tenant_a), raise_request_exception=False)
    response = client.get("/login/")
    page = response.content.decode()
    assert response.status_code == status and _html_lang(page) == "ja"
    assert f"<h1>{heading}</h1>" in page and tenant_a.name in page
    if status == 500:
        # The request's id, as in every log line of it: what the call centre reads out.
        assert f"お問い合わせの際は、この番号をお伝えください：{response['X-Request-ID']}" in page
        assert "お急ぎの方は" in page
    else:
        assert "お問い合わせの際は" not in page


def test_the_console_s_server_error_does_not_send_staff_to_the_call_centre(
    tenant_a: Municipality, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(console_views, "render", fail)  # the console's login page fails
    response = Client(HTTP_HOST=host_of(tenant_a), raise_request_exception=False).get(
        "/console/login/"
    )
    page = response.content.decode()
    assert response.status_code == 500 and "ただいまご利用いただけません" in page
    assert response["X-Request-ID"] in page and "コールセンター" not in page


def test_a_form_s_address_opened_as_a_page_is_no_blank_page(tenant_a: Municipality) -> None:
    """/logout/ takes a POST (the button): opened from the history or a bookmark, Django's
    answer is an empty 405, a blank page."""
    response = Client(HTTP_HOST=host_of(tenant_a)).get("/logout/")
    page = response.content.decode()
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert "<h1>この操作はできません</h1>" in page and "トップページからお進みください" in page
    assert _html_lang(page) == "ja" and tenant_a.name in page
    # A page like the others, with their security headers.
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY" and response["Cache-Control"] == "no-store"
    assert response["Content-Type"].startswith("text/html")
