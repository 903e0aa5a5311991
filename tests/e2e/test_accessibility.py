"""Every page a resident, a member of staff or a vendor operator reaches, checked by axe-core
in Chromium.

The pages are found by following links, the way a person would: from the top page and my
page for a resident (before and after booking), from the console's home for each staff role,
from the control plane's list for an operator. Pages reached by sending a form are visited
on the way: a refused login, a refused contact form, the booking's done page. Each page is
checked against the rules axe-core tags WCAG 2.0, 2.1 and 2.2, levels A and AA (names and
labels, contrast, target size, language, ARIA), and its best practices (landmarks, headings),
at a phone's width and at a desktop's. A violation
fails the test with the page and the elements axe found.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest
from django_otp.oath import totp
from django_tenants.utils import tenant_context

from audit.chain import Actor
from booking.models import Booking, Slot, StaffMember, Voucher
from booking.models.bookings import booking_number_new
from controlplane.services import CreatedOperator, operator_create
from tests.e2e.conftest import Site, StaffLogin, add_voucher, staff_account, watched_page

pytestmark = pytest.mark.browser

# WCAG 2.0, 2.1 and 2.2 at levels A and AA, and axe's best practices (one main landmark, a
# first-level heading, headings in order, every content in a landmark).
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
PASSWORD = "axe-kensa-e2e-2026-pass"
# Links that end the session or start another one.
_NOT_FOLLOWED = re.compile(r"/logout/|/login/|/setup/")
# Pages of one kind (their paths alike but for numbers, or under one list of the same
# three segments, such as the message templates) are checked a few at a time.
_OF_A_KIND = 3

# Asked from the page (Playwright's own requests do not resolve *.localhost as Chromium is
# told to): only pages that answer HTML themselves, not downloads or redirects, are checked.
_CONTENT_TYPE = """async url => {
    const answer = await fetch(url, {redirect: "manual"});
    return answer.status === 200 ? answer.headers.get("content-type") || "" : "";
}"""


def _violations(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}})
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']}: "
        + ", ".join(" ".join(map(str, node["target"])) for node in violation["nodes"][:5])
        for violation in results.response["violations"]
    ]


def _kind(url: str) -> str:
    path = re.sub(r"\d+", "N", urlsplit(url).path)
    return "/".join(path.split("/")[:4]) if "N" not in path else path


class Crawl:
    """The violations found on the pages of one origin, each page checked once."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.seen: set[str] = set()
        self.kinds: Counter[str] = Counter()
        self.found: dict[str, list[str]] = {}

    def check(self, name: str) -> None:
        """The page as it stands (reached by a form, say)."""
        problems = _violations(self.page)
        if problems:
            self.found[name] = problems

    def follow(self, starts: Iterable[str], *, within: str, limit: int = 60) -> None:
        """Every HTML page under ``within`` reached from ``starts`` by links."""
        queue = [self.origin + path for path in starts]
        if not self.page.url.startswith(self.origin):
            self.page.goto(queue[0])  # the pages are asked from a page of the origin
        visited = 0
        while queue and visited < limit:
            url = queue.pop(0)
            if url in self.seen or self.kinds[_kind(url)] >= _OF_A_KIND:
                continue
            self.seen.add(url)
            if "text/html" not in self.page.evaluate(_CONTENT_TYPE, url):
                continue
            visited += 1
            self.kinds[_kind(url)] += 1
            self.page.goto(url)
            parts = urlsplit(url)
            self.check(parts.path + (f"?{parts.query}" if parts.query else ""))
            for href in self.page.eval_on_selector_all("a[href]", "all => all.map(a => a.href)"):
                link, _fragment = urldefrag(href)
                if link.startswith(self.origin + within) and not _NOT_FOLLOWED.search(link):
                    queue.append(link)
        assert visited, f"no page reached from {starts}"


WIDTHS = (420, 1280)


@pytest.fixture(params=WIDTHS, ids=["phone", "desktop"])
def width(request: Any) -> int:
    return request.param


@pytest.fixture
def page(browser: Any, site: Site, width: int) -> Iterator[Any]:
    with watched_page(browser, site, width=width, statuses=[400]) as page:
        yield page


def test_axe_finds_what_it_is_asked_to(page: Any, site: Site) -> None:
    """The check itself: a field without a label and an image without a text are found."""
    page.goto(site.url("/"))
    assert _violations(page) == []
    page.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend',"
        " '<input type=text><img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">')"
    )
    found = {problem.split(" ")[0] for problem in _violations(page)}
    assert {"label", "image-alt"} <= found


def test_resident_pages(page: Any, site: Site, django_db_blocker: Any) -> None:
    crawl = Crawl(page, site.url("").rstrip("/"))
    crawl.follow(["/"], within="/", limit=10)

    # A refused login, then the pages of a resident with no booking.
    page.goto(site.url("/"))
    page.get_by_label("接種券番号（10桁）").fill("1234")
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_load_state()
    crawl.check("/ (ログインできなかったとき)")
    site.log_in(page)
    crawl.follow(["/mypage/"], within="/")

    # A contact form sent with an address but no channel ticked.
    page.goto(site.url("/contact/"))
    page.locator("input[type=email]").first.fill("hanako@example.jp")
    page.get_by_role("button", name="保存する", exact=True).click()
    page.wait_for_load_state()
    crawl.check("/contact/ (入力に誤りがあるとき)")

    # A booking, its done page, and every page of a resident who holds one.
    page.goto(site.url("/mypage/"))
    page.get_by_role("link", name="1回目の接種を予約する").click()
    page.locator("a.day").first.click()
    page.locator("a.slot").first.click()
    page.get_by_role("button", name="予約する").click()
    page.wait_for_url(re.compile(r".*/bookings/[A-Z0-9]+/done/$"))
    crawl.check("/bookings/…/done/")
    crawl.seen.clear()
    crawl.kinds.clear()
    crawl.follow(["/mypage/"], within="/")

    # Cancelled again (the next width starts with no booking), and my page that says so.
    page.goto(site.url("/mypage/"))
    page.get_by_role("link", name="取り消す").click()
    page.get_by_role("button", name="予約を取り消す").click()
    page.wait_for_url(site.url("/mypage/"))
    crawl.check("/mypage/ (取り消したあと)")

    assert crawl.found == {}


@pytest.fixture(scope="module")
def staff(site: Site, django_db_blocker: Any) -> dict[tuple[str, int], StaffLogin]:
    """An account per role and width: an authenticator's code is taken once only."""
    with django_db_blocker.unblock():
        return {
            (role, width): staff_account(
                site, email=f"axe-{role}-{width}@e2e.example.jp", role=role, password=PASSWORD
            )
            for role in StaffMember.Role.values
            for width in WIDTHS
        } | {
            ("work", width): staff_account(
                site, email=f"axe-work-{width}@e2e.example.jp", role="admin", password=PASSWORD
            )
            for width in WIDTHS
        }


@pytest.mark.parametrize("role", StaffMember.Role.values)
def test_console_pages(
    page: Any, site: Site, staff: dict[tuple[str, int], StaffLogin], width: int, role: str
) -> None:
    crawl = Crawl(page, site.url("").rstrip("/"))
    page.goto(site.url("/console/login/"))
    crawl.check("/console/login/")
    staff[role, width].log_in(page, site)
    crawl.follow(["/console/"], within="/console/", limit=80)
    assert crawl.found == {}


@pytest.fixture
def operator(site: Site, width: int, django_db_blocker: Any) -> CreatedOperator:
    with django_db_blocker.unblock():
        return operator_create(
            username=f"axe-operator-{width}", password=PASSWORD, actor=Actor.system("tests/e2e")
        )


@pytest.fixture
def platform(site: Site) -> Site:
    """The control plane, served by the same server at the platform's host."""
    return replace(site, base_url=re.sub(r"//[^.]+\.", "//platform.", site.base_url))


def test_control_plane_pages(
    browser: Any, platform: Site, width: int, operator: CreatedOperator
) -> None:
    with watched_page(browser, platform, width=width) as page:
        _control_plane_pages(page, platform.base_url, operator)


def _control_plane_pages(page: Any, origin: str, operator: CreatedOperator) -> None:
    crawl = Crawl(page, origin)
    page.goto(origin + "/login/")
    crawl.check("/login/")
    device = operator.device
    page.locator("input[name=username]").fill(operator.user.username)
    page.locator("input[name=password]").fill(PASSWORD)
    token = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    page.locator("input[name=token]").fill(str(token).zfill(device.digits))
    page.get_by_role("button", name="ログイン").click()
    page.wait_for_url(origin + "/")
    crawl.follow(["/"], within="/", limit=40)
    assert crawl.found == {}


@pytest.fixture(scope="module")
def booked(site: Site, django_db_blocker: Any) -> Booking:
    """A resident of their own with a web booking, for the call centre and the reception."""
    with django_db_blocker.unblock(), tenant_context(site.municipality):
        add_voucher(site.municipality, "3000000077", date(1949, 5, 5))
        return Booking.objects.create(
            booking_number=booking_number_new(),
            voucher=Voucher.objects.get(voucher_number="3000000077"),
            slot=Slot.objects.order_by("starts_at", "pk")[0],
            dose=1,
            channel="web",
            booked_through="web",
            actor_kind="system",
            actor_id="tests/e2e",
        )


def test_console_pages_at_work(
    page: Any, site: Site, staff: dict[tuple[str, int], StaffLogin], width: int, booked: Booking
) -> None:
    """Pages reached by sending forms: a resident found by the call centre, a booking found
    at the reception, a registry file checked before import, and forms sent wrong."""
    crawl = Crawl(page, site.url("").rstrip("/"))
    staff["work", width].log_in(page, site)

    page.goto(site.url("/console/callcentre/"))
    search = page.get_by_label("接種券番号・氏名（カナ）・電話番号")
    search.fill(booked.voucher.voucher_number)
    search.press("Enter")
    page.wait_for_url(re.compile(r".*/callcentre/residents/\d+/$"))
    crawl.follow([urlsplit(page.url).path], within="/console/callcentre/", limit=12)

    page.goto(site.url("/console/reception/"))
    box = page.get_by_label("予約番号・接種券番号（またはQRコードの読み取り）")
    box.fill(booked.booking_number)
    box.press("Enter")
    page.wait_for_url(re.compile(r".*/reception/bookings/\d+/$"))
    crawl.check("/console/reception/bookings/…/")

    page.goto(site.url("/console/imports/"))
    registry = (
        "接種券番号,氏名,氏名カナ,生年月日\n3000000088,東 一,アズマ ハジメ,S24.4.1\n30000,,,\n"
    )
    page.locator("input[type=file]").set_input_files(
        {"name": "meibo.csv", "mimeType": "text/csv", "buffer": registry.encode("cp932")}
    )
    page.get_by_role("button", name="アップロードして内容を確認").click()
    page.wait_for_url(re.compile(r".*/imports/\d+/$"))
    crawl.check("/console/imports/…/")

    page.goto(site.url("/console/planning/venues/new/"))
    page.get_by_role("button", name="登録する").click()
    page.wait_for_load_state()
    crawl.check("/console/planning/venues/new/ (入力に誤りがあるとき)")

    page.goto(site.url("/console/"))
    page.locator("form[action$='/staff/invite/'] input[type=email]").fill("shokuin@")
    page.get_by_role("button", name="招待リンクを作成").click()
    page.wait_for_load_state()
    crawl.check("/console/ (招待の入力に誤りがあるとき)")

    assert crawl.found == {}
