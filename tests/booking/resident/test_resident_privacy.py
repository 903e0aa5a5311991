"""Only the voucher number is shown back to a resident (ARCHITECTURE.md "Personal data"): my
page, the printable confirmation and the booking pages carry none of the sealed record's
values. And behind HTTPS the session and CSRF cookies are Secure: SESSHU_HTTPS is what sets
them, so the derivation is checked in a fresh interpreter (settings are read once per
process) and the cookies a login sends are checked with the values it derives."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import Booking, Voucher
from booking.services.booking import booking_create
from tenants.crypto import cipher_for
from tenants.models import Municipality
from tests.booking.resident.conftest import Resident, World, logged_in, login_dob, set_mode

ROOT = Path(__file__).resolve().parents[3]

# A sealed record whose every value is distinctive: the fixture's usual address is also the
# civic venue's, which the pages rightly show, so it could not tell a leak from a venue.
PERSONAL = {
    "name": "秘密 太郎",
    "name_kana": "ヒミツ タロウ",
    "birth_date": "1949-11-23",
    "sex": "1",
    "postal_code": "1870099",
    "address": "東京都小平市花小金井南町9-87-65",
    "phone": "09087654321",
    "email": "taro.secret@example.jp",
    "address_number": "000987654",
}
BORN = date(1949, 11, 23)


def _forms_of_each_value() -> list[str]:
    """Every personal value in the shapes a page might print it."""
    name_parts = PERSONAL["name"].split() + PERSONAL["name_kana"].split()
    return [
        PERSONAL["name"],
        PERSONAL["name"].replace(" ", ""),
        PERSONAL["name_kana"],
        PERSONAL["name_kana"].replace(" ", ""),
        "ひみつ",
        *name_parts,
        PERSONAL["birth_date"],
        "1949年11月23日",
        "1949/11/23",
        "昭和24年",
        PERSONAL["postal_code"],
        "187-0099",
        PERSONAL["address"],
        "花小金井南町",
        "9-87-65",
        PERSONAL["phone"],
        "090-8765-4321",
        PERSONAL["email"],
        "taro.secret",
        PERSONAL["address_number"],
    ]


@pytest.fixture
def secret_resident(tenant_a: Municipality) -> Resident:
    number = "1000000042"
    with tenant_context(tenant_a):
        voucher = Voucher.objects.create(
            voucher_number=number,
            personal=cipher_for(tenant_a).seal_record(
                PERSONAL, table="booking_voucher", row_id=number
            ),
            content_hash=cipher_for(tenant_a).blind_index(number, purpose="tests"),
        )
    return Resident(tenant_a, voucher, number, BORN, PERSONAL["name_kana"], None)


@pytest.fixture
def booked(world_a: World, secret_resident: Resident) -> Booking:
    with tenant_context(world_a.municipality):
        return booking_create(
            voucher=Voucher.objects.get(pk=secret_resident.pk),
            slot=world_a.slot(3, 10),
            channel="web",
            actor=Actor.resident(secret_resident.pk),
        )


def _leaks(text: str) -> list[str]:
    return [value for value in _forms_of_each_value() if value in text]


def test_my_page_and_the_print_page_show_nothing_personal(
    client_a: Client, secret_resident: Resident, booked: Booking
) -> None:
    logged_in(client_a, secret_resident)
    number = booked.booking_number
    pages = {
        "/mypage/": client_a.get("/mypage/"),
        "print": client_a.get(f"/bookings/{number}/print/"),
        "detail": client_a.get(f"/bookings/{number}/"),
        "done": client_a.get(f"/bookings/{number}/done/"),
        "contact": client_a.get("/contact/"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        text = response.content.decode()
        assert _leaks(text) == [], name
        assert response["Cache-Control"] == "no-store", name
    # The pages are the resident's own: the voucher number and the booking are there.
    mypage = pages["/mypage/"].content.decode()
    printed = pages["print"].content.decode()
    assert secret_resident.number in mypage and secret_resident.number in printed
    assert number[:5] in printed and "小平市役所" in printed


def test_the_check_finds_a_value_when_a_page_shows_it(secret_resident: Resident) -> None:
    """The scan above is not blind: a page carrying the record would be caught."""
    page = f"<dd>{PERSONAL['name']}</dd><dd>090-8765-4321</dd><dd>1949年11月23日</dd>"
    assert set(_leaks(page)) >= {PERSONAL["name"], "090-8765-4321", "1949年11月23日"}


# --- Secure cookies ---------------------------------------------------------------------------

PROBE = """
import json
import django
django.setup()
from django.conf import settings
print(json.dumps({
    "https": settings.SESSHU_HTTPS,
    "session_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_secure": settings.CSRF_COOKIE_SECURE,
    "session_httponly": settings.SESSION_COOKIE_HTTPONLY,
    "session_samesite": settings.SESSION_COOKIE_SAMESITE,
    "csrf_samesite": settings.CSRF_COOKIE_SAMESITE,
    "hsts": settings.SECURE_HSTS_SECONDS,
}))
"""
_PROCESS_SETTINGS = ("SESSHU_HTTPS", "SESSHU_TESTING", "DJANGO_DEBUG", "SECRET_KEY")


def _derived(**env: str) -> dict[str, object]:
    base = {k: v for k, v in os.environ.items() if k not in _PROCESS_SETTINGS}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={
            **base,
            "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
            "DJANGO_SETTINGS_MODULE": "sesshu.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_sesshu_https_makes_the_session_and_csrf_cookies_secure() -> None:
    on = _derived(SESSHU_TESTING="1", SESSHU_HTTPS="1")
    assert (on["https"], on["session_secure"], on["csrf_secure"]) == (True, True, True)
    assert on["session_httponly"] is True
    assert on["session_samesite"] == on["csrf_samesite"] == "Lax"
    assert isinstance(on["hsts"], int) and on["hsts"] > 0
    off = _derived(SESSHU_TESTING="1", SESSHU_HTTPS="0")
    assert (off["session_secure"], off["csrf_secure"]) == (False, False)


def test_outside_development_https_is_the_default() -> None:
    production = _derived(
        SECRET_KEY="p" * 64,
        SESSHU_LOCAL_MASTER_KEY=base64.b64encode(b"0" * 32).decode(),
    )
    assert (production["https"], production["session_secure"], production["csrf_secure"]) == (
        True,
        True,
        True,
    )


@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)
def test_behind_https_the_login_sends_secure_cookies(
    client_a: Client, resident_a: Resident, tenant_a: Municipality
) -> None:
    """The values derived above, as a login sends them (HTTPS behind the load balancer)."""
    set_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB)
    form = client_a.get("/login/", secure=True)
    csrf = form.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["secure"] and csrf["httponly"] and csrf["samesite"] == "Lax"
    response = login_dob(client_a, resident_a)
    assert response.status_code == 302
    session = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"] and session["samesite"] == "Lax"
