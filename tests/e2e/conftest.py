"""Browser tests: headless Chromium (Playwright) against a real server thread.

pytest-django's ``live_server`` needs a transactional database, whose flush (TRUNCATE) the
append-only audit trail refuses. Instead each module provisions its own municipality outside
any test transaction, serves the test database from a server thread, and decommissions the
municipality (key destroyed, schema dropped) at the end. Chromium resolves every
``*.localhost`` host to the server, so the municipality is chosen by host as in production.

Screenshots go to ``test-artifacts/e2e/`` (ignored by git).
"""

from __future__ import annotations

import itertools
import os
import shutil
from binascii import unhexlify
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.cache import cache
from django.test.testcases import LiveServerThread
from django.utils import timezone
from django_otp.oath import totp
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.console.totp import new_totp_key
from booking.models import (
    AgePhase,
    BookingPolicy,
    Slot,
    VaccineProduct,
    Venue,
    Voucher,
)
from booking.services.staff import staff_invitation_accept, staff_invite
from tenants.codes import check_digit, reference_municipalities
from tenants.crypto import cipher_for
from tenants.models import Municipality
from tenants.services import municipality_decommission, municipality_provision

JAPAN = ZoneInfo("Asia/Tokyo")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
# Each module's municipality gets a code of its own: decommissioning keeps the row, so a
# code is never provisioned twice in one test database.
_modules = itertools.count(980)


def _next_municipality() -> tuple[str, str]:
    """A valid code of prefecture 13 that names no real municipality, and a subdomain."""
    while True:
        number = next(_modules)
        first_five = f"13{number:03d}"
        code = first_five + str(check_digit(first_five))
        if code not in reference_municipalities():
            return code, f"e2e-{number}"


ACTOR = Actor.system("tests/e2e")


@dataclass(frozen=True)
class Site:
    municipality: Municipality
    base_url: str
    voucher_number: str
    born: date

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def log_in(self, page: Any) -> None:
        """Type the resident's voucher number and birth date on the login form the page
        shows, and land on my page."""
        page.get_by_label("接種券番号（10桁）").fill(self.voucher_number)
        page.select_option("#id_birth_date_year", str(self.born.year))
        page.select_option("#id_birth_date_month", str(self.born.month))
        page.select_option("#id_birth_date_day", str(self.born.day))
        page.get_by_role("button", name="ログイン").click()
        page.wait_for_url(self.url("/mypage/"))


def _at(days: int, hour: int) -> datetime:
    day = timezone.localdate(timezone=JAPAN) + timedelta(days=days)
    return datetime.combine(day, time(hour, 0), tzinfo=JAPAN)


def _populate(municipality: Municipality) -> tuple[str, date]:
    """A policy, an open age phase, one vaccine, two venues with slots, one resident."""
    born = date(1948, 3, 15)
    number = "3000000001"
    with tenant_context(municipality):
        policy = BookingPolicy.current()
        policy.call_centre_phone = "042-000-0000"
        policy.save()
        AgePhase.objects.create(
            name="65歳以上の方", minimum_age=65, opens_at=timezone.now() - timedelta(days=1)
        )
        pfizer = VaccineProduct.objects.create(
            code="pfizer", name="ファイザー社ワクチン", interval_days=19
        )
        civic = Venue.objects.create(
            name="市役所 健康センター", area="中央地区", address="東京都小平市小川町2-1333"
        )
        north = Venue.objects.create(
            name="北部公民館", area="北地区", address="東京都小平市上水本町1-1"
        )
        for venue in (civic, north):
            venue.products.add(pfizer)
            for days in (3, 5):
                for hour in (10, 14):
                    starts_at = _at(days, hour)
                    Slot.objects.create(
                        venue=venue,
                        product=pfizer,
                        starts_at=starts_at,
                        ends_at=starts_at + timedelta(minutes=30),
                        capacity_web=10,
                        capacity_line=2,
                        capacity_call_centre=2,
                    )
        add_voucher(municipality, number, born)
    return number, born


def add_voucher(municipality: Municipality, number: str, born: date) -> None:
    """A voucher as the registry import leaves it (in the municipality's schema)."""
    cipher = cipher_for(municipality)
    values = {
        "name": "小平 花子",
        "name_kana": "コダイラ ハナコ",
        "birth_date": born.isoformat(),
        "sex": "2",
        "postal_code": "1878701",
        "address": "東京都小平市小川町2-1333",
        "phone": "0423411211",
        "email": None,
        "address_number": "000123456",
    }
    Voucher.objects.create(
        voucher_number=number,
        personal=cipher.seal_record(values, table="booking_voucher", row_id=number),
        content_hash=cipher.blind_index(number, purpose="e2e"),
    )


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an event loop in this thread; the test's own database
    calls (set-up, checks) are synchronous and safe here, so Django may allow them."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def site(django_db_setup: None, django_db_blocker: Any) -> Iterator[Site]:
    """A municipality of its own, committed, served by a real server thread."""
    code, subdomain = _next_municipality()
    with django_db_blocker.unblock():
        municipality = municipality_provision(
            code=code,
            subdomain=subdomain,
            name="E2E市",
            admin_email="admin@e2e.example.jp",
            login_mode=Municipality.LoginMode.VOUCHER_DOB,
            actor=ACTOR,
        ).municipality
        number, born = _populate(municipality)
    # The server thread opens its own connections to the test database; pytest-django's
    # blocker is process-wide, so it stays lifted while the module runs.
    with django_db_blocker.unblock():
        server = LiveServerThread("localhost", StaticFilesHandler, connections_override={}, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        try:
            yield Site(
                municipality=municipality,
                base_url=f"http://{subdomain}.localhost:{server.port}",
                voucher_number=number,
                born=born,
            )
        finally:
            server.terminate()
            municipality.refresh_from_db()
            municipality_decommission(municipality=municipality, confirmation=code, actor=ACTOR)
            cache.clear()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # A missing browser fails the run: a skipped browser test would hide untested pages.
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--host-resolver-rules=MAP *.localhost 127.0.0.1",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


class Shots:
    """Numbered screenshots of one flow, in ``test-artifacts/e2e/<flow>/``."""

    def __init__(self, flow: str) -> None:
        self.folder = ARTIFACTS / flow
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def take(self, page: Any, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def watched_page(
    browser: Any, site: Site, *, width: int, height: int = 900, statuses: Iterable[int] = ()
) -> Iterator[Any]:
    """A Japanese page that fails the test on anything unexpected: a script error, whatever
    the CSP blocks, a request to another site, or an error status other than ``statuses``
    (a refused form answers 400 on purpose)."""
    context = browser.new_context(locale="ja-JP", viewport={"width": width, "height": height})
    page = context.new_page()
    problems: list[str] = []
    expected = set(statuses)
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            # A failed load is judged by its response below, which knows the status.
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}")
            if response.status >= 400 and response.status not in expected
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "request",
        lambda request: (
            problems.append(f"third-party request {request.url}")
            if not request.url.startswith((site.base_url, "data:"))
            else None
        ),
    )
    try:
        yield page
    finally:
        context.close()
    assert problems == []


@dataclass(frozen=True)
class StaffLogin:
    email: str
    password: str
    key: str

    def code(self) -> str:
        """What the staff member's authenticator app shows now."""
        return f"{totp(unhexlify(self.key), step=30, t0=0, digits=6):06d}"

    def log_in(self, page: Any, site: Site, shots: Shots | None = None) -> None:
        page.goto(site.url("/console/login/"))
        page.get_by_label("メールアドレス").fill(self.email)
        page.get_by_label("パスワード").fill(self.password)
        page.get_by_label("認証コード").fill(self.code())
        if shots is not None:
            shots.take(page, "login")
        page.get_by_role("button", name="ログイン").click()
        # The role's own work page (an operator's search, reception) or the home.
        page.wait_for_url(
            lambda url: url.startswith(site.url("/console/")) and "/login/" not in url
        )


def staff_account(
    site: Site, *, email: str, role: str, password: str, venues: Iterable[Venue] = ()
) -> StaffLogin:
    """A staff account made the way the console makes one (invite, then accept), with its
    TOTP key. Call with database access unblocked."""
    with tenant_context(site.municipality):
        issued = staff_invite(email=email, role=role, invited_by=None, actor=ACTOR)
        key = new_totp_key()
        member = staff_invitation_accept(
            token=issued.token, password_hash=make_password(password), totp_key=key
        )
        member.venues.add(*venues)
    return StaffLogin(email, password, key)
