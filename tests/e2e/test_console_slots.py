"""An admin, in Japanese, in headless Chromium: log in with a password and TOTP, then generate
a week of slots (preview first, then write) from the planning pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from booking.models import Slot, StaffMember, Venue
from tests.e2e.conftest import JAPAN, Shots, Site, StaffLogin, staff_account, watched_page

pytestmark = pytest.mark.browser

PASSWORD = "e2e-kanri-password-2026"


@pytest.fixture(scope="module")
def admin(site: Site, django_db_blocker: Any) -> StaffLogin:
    with django_db_blocker.unblock():
        return staff_account(
            site, email="kanri@e2e.example.jp", role=StaffMember.Role.ADMIN, password=PASSWORD
        )


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    with watched_page(browser, site, width=1024) as page:
        yield page


def _monday_in_two_weeks() -> date:
    """Clear of the slots the site starts with (3 and 5 days ahead)."""
    day = timezone.localdate(timezone=JAPAN) + timedelta(days=14)
    return day - timedelta(days=day.weekday())


def test_an_admin_logs_in_with_totp_and_generates_a_week_of_slots(
    page: Any, site: Site, admin: StaffLogin, django_db_blocker: Any
) -> None:
    shots = Shots("console-generate-slots")
    monday = _monday_in_two_weeks()

    admin.log_in(page, site, shots)

    page.get_by_role("navigation", name="メニュー").get_by_role(
        "link", name="会場・予約枠・集計"
    ).click()
    page.get_by_role("link", name="予約枠をまとめて作成").click()
    page.wait_for_url(site.url("/console/planning/slots/generate/"))
    _fill_a_week(page, monday)
    shots.take(page, "generator-filled")

    # Enter in a field previews: it never writes.
    page.get_by_label("1枠の定員：コールセンター").press("Enter")
    page.get_by_role("heading", name="作成内容の確認").wait_for()
    main = page.inner_text("main")
    assert "新しく作成する枠：30件（計画 30件）" in main
    assert _slots(site, django_db_blocker, monday) == 0
    shots.take(page, "generator-preview")

    page.get_by_role("button", name="この内容で30件を作成する").click()
    page.wait_for_url(site.url("/console/planning/slots/") + "**")
    assert "予約枠を30件作成しました" in page.inner_text("main")
    shots.take(page, "slots-created")
    assert _slots(site, django_db_blocker, monday) == 30

    # The same week again: the preview says there is nothing new, and nothing is duplicated.
    page.goto(site.url("/console/planning/slots/generate/"))
    _fill_a_week(page, monday)
    page.get_by_role("button", name="確認する（まだ作成しません）").click()
    page.get_by_role("heading", name="作成内容の確認").wait_for()
    assert "新しく作成する枠：0件（計画 30件）" in page.inner_text("main")
    shots.take(page, "generator-again")
    assert _slots(site, django_db_blocker, monday) == 30


def _fill_a_week(page: Any, monday: date) -> None:
    page.get_by_label("会場").select_option(label="市役所 健康センター")
    page.get_by_label("ワクチン").select_option(label="ファイザー社ワクチン")
    page.get_by_label("開始日").fill(monday.isoformat())
    page.get_by_label("終了日").fill((monday + timedelta(days=6)).isoformat())
    # Monday to Friday are ticked already; Saturday and Sunday stay off.
    assert page.get_by_label("月", exact=True).is_checked()
    assert not page.get_by_label("土", exact=True).is_checked()
    page.get_by_label("受付開始時刻").fill("09:00")
    page.get_by_label("受付終了時刻").fill("12:00")
    page.get_by_label("1枠の長さ（分）").fill("30")
    page.get_by_label("1枠の定員：ウェブ").fill("6")
    page.get_by_label("1枠の定員：LINE").fill("2")
    page.get_by_label("1枠の定員：コールセンター").fill("2")


def _slots(site: Site, django_db_blocker: Any, monday: date) -> int:
    start = datetime.combine(monday, time.min, tzinfo=JAPAN)
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        venue = Venue.objects.get(name="市役所 健康センター")
        return Slot.objects.filter(
            venue=venue, starts_at__gte=start, starts_at__lt=start + timedelta(days=7)
        ).count()


@pytest.fixture(scope="module")
def planner(site: Site, django_db_blocker: Any) -> StaffLogin:
    """A second admin: a TOTP code is good once, and the first admin's may still be this
    30-second step's when this module's next test signs in."""
    with django_db_blocker.unblock():
        return staff_account(
            site, email="keikaku@e2e.example.jp", role=StaffMember.Role.ADMIN, password=PASSWORD
        )


def test_an_admin_sets_an_age_phase_and_sees_it_in_the_rules(
    page: Any, site: Site, planner: StaffLogin, django_db_blocker: Any
) -> None:
    shots = Shots("console-booking-rules")
    tomorrow = timezone.localdate(timezone=JAPAN) + timedelta(days=1)
    planner.log_in(page, site, shots)
    page.goto(site.url("/console/planning/"))
    page.get_by_role("link", name="予約の受付条件・年齢区分・ワクチン").click()
    page.wait_for_url(site.url("/console/planning/rules/"))
    main = page.inner_text("main")
    assert "65歳以上の方" in main and "ファイザー社ワクチン" in main
    shots.take(page, "rules")

    page.get_by_role("link", name="年齢区分を登録する").click()
    page.get_by_label("名称").fill("12歳以上の方")
    page.get_by_label("年齢（以上）").fill("12")
    page.get_by_label("予約開始日").fill(tomorrow.isoformat())
    page.get_by_label("予約開始時刻").fill("09:00")
    shots.take(page, "phase-filled")
    page.get_by_role("button", name="登録する").click()
    page.wait_for_url(site.url("/console/planning/rules/"))
    row = page.get_by_role("row", name="12歳以上の方")
    assert "開始前" in row.inner_text()
    assert f"{tomorrow.month}月{tomorrow.day}日" in row.inner_text()
    shots.take(page, "phase-registered")
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        from booking.models import AgePhase

        phase = AgePhase.objects.get(minimum_age=12)
        assert phase.opens_at == datetime.combine(tomorrow, time(9, 0), tzinfo=JAPAN)
        phase.delete()


# Pages an admin opens on a phone, with every folded table unfolded.
NARROW_PAGES = (
    "/console/",
    "/console/planning/",
    "/console/planning/slots/",
    "/console/planning/rules/",
    "/console/planning/reports/",
    "/console/planning/free/",
    "/console/imports/",
    "/console/notifications/",
    "/console/trail/",
)


def test_each_console_page_fits_a_phone_and_its_tables_scroll_in_their_own_box(
    browser: Any, site: Site, django_db_blocker: Any
) -> None:
    """At 360 px the page is the screen's width: a wide table (the trail, the slots, the
    reports) scrolls sideways inside its box, and the menu and buttons stay where they are."""
    with django_db_blocker.unblock():
        admin = staff_account(
            site, email="phone@e2e.example.jp", role=StaffMember.Role.ADMIN, password=PASSWORD
        )
    shots = Shots("console-on-a-phone")
    with watched_page(browser, site, width=360) as page:
        admin.log_in(page, site)
        tables = 0
        for path in NARROW_PAGES:
            page.goto(site.url(path))
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            assert page.evaluate("document.scrollingElement.scrollWidth") <= 360, path
            tables += page.locator(".table-scroll > table").count()
            assert (
                page.locator("main table").count()
                == page.locator("main .table-scroll > table").count()
            ), path
            shots.take(page, path.strip("/").replace("/", "-") or "home")
        assert tables >= 5
