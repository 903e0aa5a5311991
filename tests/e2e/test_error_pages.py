"""A resident who follows a dead link, in headless Chromium: a Japanese page that names the
municipality and leads back to the top page (Django's own is an English "Not Found")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Shots, Site, watched_page

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    with watched_page(browser, site, width=420, statuses=[404]) as page:
        yield page


def test_a_dead_link_leads_back_to_the_top_page(page: Any, site: Site) -> None:
    response = page.goto(site.url("/bookings/ZZZZZZZZZZ/done/extra/"))
    assert response is not None and response.status == 404
    assert page.get_by_role("heading", name="ページが見つかりません").is_visible()
    assert page.locator("html").get_attribute("lang") == "ja"
    assert site.municipality.name in page.inner_text("header")
    Shots("error-pages").take(page, "not-found")
    page.get_by_role("link", name="トップページへ").click()
    page.wait_for_url(site.url("/"))
    assert page.get_by_label("接種券番号（10桁）").is_visible()
