"""The control plane is Japanese by default and English through the base template's form."""

from __future__ import annotations

from typing import Any

from django.test.client import Client as ClientType

from controlplane.services import CreatedOperator
from tenants.models import Municipality
from tests.controlplane.conftest import OPERATOR_USERNAME, error_summary, login, wrong_token_for


def _english(client: ClientType) -> None:
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    assert response.status_code == 302


def test_the_login_page_is_japanese_by_default(platform_client: ClientType) -> None:
    text = platform_client.get("/login/").content.decode()
    assert '<html lang="ja">' in text and "運営事業者のログイン" in text


def test_the_login_page_reads_in_english(
    platform_client: ClientType, operator: CreatedOperator
) -> None:
    _english(platform_client)
    page = platform_client.get("/login/").content.decode()
    assert '<html lang="en">' in page
    assert "Operator login" in page and "User name" in page
    assert "Authentication code (6 digits)" in page and "Skip to main content" in page
    assert "運営事業者のログイン" not in page and "ユーザー名" not in page
    assert "本文へ移動" not in page
    failed = login(
        platform_client,
        username=OPERATOR_USERNAME,
        password="not the password",
        token=wrong_token_for(operator.device),
    )
    assert "Could not log in. Please check the user name" in error_summary(failed)


def test_the_municipality_list_reads_in_english(operator_client: ClientType) -> None:
    _english(operator_client)
    page = operator_client.get("/").content.decode()
    assert '<html lang="en">' in page
    assert "Municipalities" in page and "Add a municipality" in page and "Log out" in page
    assert "市区町村一覧" not in page and "ログアウト" not in page


def test_the_waiting_room_rate_reads_in_english(
    operator_client: ClientType, tenant_b: Municipality, settings: Any
) -> None:
    settings.SESSHU_WAITING_ROOM_PER_MINUTE = 1200
    _english(operator_client)
    detail = operator_client.get(f"/municipalities/{tenant_b.code}/").content.decode()
    assert "1,200 a minute (the platform's default)" in detail
    page = operator_client.get(f"/municipalities/{tenant_b.code}/waiting-room/").content.decode()
    assert "Residents let into the resident pages per minute" in page
    assert "the platform&#x27;s default applies (1,200 a minute)" in page
    refused = operator_client.post(
        f"/municipalities/{tenant_b.code}/waiting-room/", {"per_minute": "-1"}
    ).content.decode()
    assert "Enter 0 or more." in refused and "待合室" not in refused
