"""The staff console is Japanese by default and English through the base template's form."""

from __future__ import annotations

import time_machine
from django.test import Client
from django_tenants.utils import tenant_context

from tenants.models import Municipality
from tests.booking.console.conftest import StaffAccount, login
from tests.booking.console.planning.conftest import MONDAY, at, build_world, make_slot
from tests.conftest import host_of


def _english(client: Client) -> None:
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/console/"})
    assert response.status_code == 302


def _logged_in(client: Client, account: StaffAccount, clock: time_machine.Coordinates) -> Client:
    clock.shift(30)  # a new TOTP step: the code of the setup (or a previous login) is spent
    response = login(client, account)
    assert response.status_code == 302, response.content.decode()[:500]
    return client


def test_the_console_entrance_is_japanese_by_default(
    client_a: Client, admin_a: StaffAccount
) -> None:
    text = client_a.get("/console/login/").content.decode()
    assert '<html lang="ja">' in text and "職員ログイン" in text


def test_a_staff_member_switches_the_entrance_and_the_home_page_to_english(
    client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    _english(client_a)
    entrance = client_a.get("/console/login/").content.decode()
    assert '<html lang="en">' in entrance
    assert "Staff login" in entrance and "Authentication code" in entrance
    assert "authenticator app" in entrance
    assert "職員ログイン" not in entrance and "認証コード" not in entrance
    failed = login(client_a, admin_a, password="not-the-password-at-all")
    assert (
        "The email address, password or authentication code is not correct."
        in failed.content.decode()
    )

    _logged_in(client_a, admin_a, clock)  # the language outlives the new session
    home = client_a.get("/console/").content.decode()
    assert '<html lang="en">' in home
    assert "staff console" in home and "Your role: Administrator" in home
    assert "Staff accounts" in home and "Invite a staff member" in home
    assert "Log out" in home and "Call centre" in home and "Incident mode" in home
    assert "職員コンソール" not in home and "ログアウト" not in home


def test_the_call_centre_search_reads_in_english(
    tenant_a: Municipality, operator_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    client = _logged_in(Client(HTTP_HOST=host_of(tenant_a)), operator_a, clock)
    _english(client)  # switching after logging in works as well
    page = client.get("/console/callcentre/").content.decode()
    assert '<html lang="en">' in page
    assert "Call centre: find a resident" in page
    assert "Voucher number, name (kana) or phone number" in page and "Search" in page
    assert "住民を探す" not in page and "検索" not in page
    missing = client.post("/console/callcentre/", {"q": ""}).content.decode()
    assert "Enter a voucher number, a name (kana) or a phone number." in missing


def test_the_planning_pages_read_in_english(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    with tenant_context(tenant_a):
        world = build_world(tenant_a)
        make_slot(world.civic, world.pfizer, at(MONDAY, 9))
    _english(client_a)
    _logged_in(client_a, admin_a, clock)
    index = client_a.get("/console/planning/").content.decode()
    assert "Venues, slots and reports" in index and "Create slots in bulk" in index
    assert "Free slots" in index and "Export vaccination records as CSV for VRS" in index
    assert "予約枠をまとめて作成" not in index and "集計" not in index
    slots = client_a.get(
        "/console/planning/slots/?first_day=2026-05-18&last_day=2026-05-18"
    ).content.decode()
    assert "Mon 18 May 2026" in slots  # the date format is translated too
    assert "Booked / places" in slots and '<span class="status-active">Open</span>' in slots
    assert "2026年5月18日" not in slots and "受付停止" not in slots
