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


def _logged_in_in_english(
    client: Client, account: StaffAccount, clock: time_machine.Coordinates
) -> Client:
    """Switch the browser to English, then log in (the language outlives the new session)."""
    _english(client)
    return _logged_in(client, account, clock)


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
    _logged_in_in_english(client_a, admin_a, clock)
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


def _page(client: Client, url: str, **post: str) -> str:
    response = client.post(url, post) if post else client.get(url)
    assert response.status_code in (200, 400, 404), (url, response.status_code)
    text = response.content.decode()
    assert '<html lang="en">' in text
    return text


def test_the_home_page_lists_the_sections_and_staff_actions_in_english(
    client_a: Client,
    admin_a: StaffAccount,
    operator_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    _logged_in_in_english(client_a, admin_a, clock)
    home = _page(client_a, "/console/")
    assert "Work areas" in home and "Browse the audit trail and download the report" in home
    assert "Deactivate the account" in home and "Active" in home
    assert "業務メニュー" not in home and "アカウントを無効にする" not in home
    client_a.post("/console/staff/invite/", {"email": "n@kodaira.example.jp", "role": "venue"})
    invited = _page(client_a, "/console/")
    assert "The registration link was emailed to n@kodaira.example.jp." in invited
    assert "登録リンクをメールで送りました" not in invited
    refused = client_a.post(
        f"/console/staff/{admin_a.staff_id}/deactivate/", {"confirm": "1"}, follow=True
    )
    assert "You cannot deactivate your own account." in refused.content.decode()


def test_the_reception_pages_read_in_english(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    _logged_in_in_english(client_a, admin_a, clock)
    lookup = _page(client_a, "/console/reception/")
    assert "Reception" in lookup and "Find the booking" in lookup
    assert (
        "Booking number or voucher number (or scan the QR code)" in lookup
        and "Today's bookings" in lookup
    )
    assert "予約番号" not in lookup and "受付" not in lookup and "本日の予約" not in lookup
    missing = _page(client_a, "/console/reception/", number="ABCDE12345")
    assert "No booking was found for this booking or voucher number." in missing
    assert "予約番号" not in missing and "見つかりません" not in missing
    no_shows = _page(client_a, "/console/reception/no-shows/")
    assert "Checking no-shows" in no_shows and "Show the list" in no_shows
    assert "Back to reception" in no_shows and "会場" not in no_shows


def test_the_incident_pages_read_in_english(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    _logged_in_in_english(client_a, admin_a, clock)
    index = _page(client_a, "/console/security/")
    assert "Incident mode" in index and "Start incident mode" in index
    assert "The staff console can still be used." in index
    assert "インシデントモード" not in index and "住民サイト" not in index
    networks = _page(client_a, "/console/security/networks/")
    assert "Networks allowed to use the staff console" in networks and "Save" in networks
    assert "ネットワーク" not in networks and "保存" not in networks
    wrong = _page(client_a, "/console/security/networks/", networks="not-a-network")
    assert "Line 1: &quot;not-a-network&quot; is not a network" in wrong
    assert "行目" not in wrong


def test_the_audit_trail_pages_read_in_english(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    _logged_in_in_english(client_a, admin_a, clock)
    trail = _page(client_a, "/console/trail/")
    assert "Audit trail" in trail and "Download the CSV" in trail
    assert "Records (newest first)" in trail and "Who acted" in trail
    assert "監査記録" not in trail and "操作した人" not in trail and "開始" not in trail
    backwards = client_a.post(
        "/console/trail/report/",
        {"report-start": "2026-05-11T10:00", "report-end": "2026-05-11T09:00"},
    )
    assert backwards.status_code == 400
    assert "The end must be after the start." in backwards.content.decode()
    verify = _page(client_a, "/console/trail/verify/")
    assert "Verifying the audit trail" in verify and "No tampering was found." in verify
    assert "改ざん" not in verify


def test_the_registry_import_pages_read_in_english(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
    settings,  # noqa: ANN001
    tmp_path,  # noqa: ANN001
    django_capture_on_commit_callbacks,  # noqa: ANN001
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.booking.registry_import.conftest import csv_bytes, row

    settings.MEDIA_ROOT = tmp_path
    settings.SESSHU_REGISTRY_PROCESSES = 1
    _logged_in_in_english(client_a, admin_a, clock)
    listing = _page(client_a, "/console/imports/")
    assert "Voucher registry import" in listing and "Upload and check the contents" in listing
    assert "Import as a full list" in listing and "No imports yet." in listing
    assert "名簿" not in listing and "取込" not in listing and "文字コード" not in listing
    data = csv_bytes([row("0000000001"), row("0000000002", birth="昭和23年2月30日")])
    with django_capture_on_commit_callbacks(execute=True):
        uploaded = client_a.post(
            "/console/imports/",
            {
                "file": SimpleUploadedFile("meibo.csv", data, content_type="text/csv"),
                "encoding": "",
            },
        )
    assert uploaded.status_code == 302
    detail = _page(client_a, uploaded["Location"])
    assert "Import this" in detail
    assert "取り込む" not in detail and "確認済み" not in detail
