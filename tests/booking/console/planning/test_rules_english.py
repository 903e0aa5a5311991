"""The booking rules pages and the console home's readiness, in English."""

from __future__ import annotations

import re

import time_machine
from django.test import Client

from ..conftest import StaffAccount
from .conftest import World, logged_in

# Japanese outside what staff typed (venue, vaccine and phase names in the world's data).
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_DATA = ("ファイザー社ワクチン", "モデルナ社ワクチン", "ファイザー", "武田/モデルナ", "12歳以上")


def _untranslated(page: str) -> list[str]:
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    for value in _DATA:
        main = main.replace(value, "")
    text = re.sub(r"<[^>]+>", "\\n", main)
    return [line.strip() for line in text.splitlines() if _JAPANESE.search(line)]


def test_the_rules_pages_read_in_english(
    client_a: Client, admin_a: StaffAccount, world: World, clock: time_machine.Coordinates
) -> None:
    assert (
        client_a.post("/i18n/setlang/", {"language": "en", "next": "/console/"}).status_code == 302
    )
    logged_in(client_a, admin_a, clock)
    for path in (
        "/console/planning/rules/",
        "/console/planning/rules/policy/",
        "/console/planning/rules/phases/new/",
        "/console/planning/rules/vaccines/new/",
        f"/console/planning/rules/vaccines/{world.pfizer.pk}/edit/",
    ):
        page = client_a.get(path).content.decode()
        assert '<html lang="en">' in page, path
        assert _untranslated(page) == [], path
    home = client_a.get("/console/").content.decode()
    readiness = home.split('id="readiness-heading"')[1].split("</section>")[0]
    assert "Ready for bookings" in readiness
    assert not _JAPANESE.search(re.sub(r"<[^>]+>", "", readiness))
