"""Venues: an admin creates, edits, closes and reopens them; every change is audited."""

from __future__ import annotations

import re

from django.test import Client

from booking.models import Booking, Venue
from booking.services.booking import BookingRefused
from tenants.models import Municipality

from ..conftest import events
from .conftest import MONDAY, World, at, in_a, make_slot

NEW_VENUE = {
    "name": "小平市民総合体育館",
    "area": "南地区",
    "address": "東京都小平市津田町1-1-1",
    "access_notes": "西武多摩湖線 一橋学園駅 徒歩10分",
    "accessibility": "車いす用駐車場・エレベーターあり",
    "map_url": "https://maps.example.jp/kodaira-gym",
}


def test_an_admin_creates_a_venue_with_its_vaccines(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    response = as_admin.post(
        "/console/planning/venues/new/", {**NEW_VENUE, "products": [world.pfizer.pk]}
    )
    assert response.status_code == 302
    with in_a(tenant_a):
        venue = Venue.objects.get(name="小平市民総合体育館")
        assert venue.area == "南地区" and venue.is_open
        assert venue.map_url == "https://maps.example.jp/kodaira-gym"
        assert list(venue.products.values_list("code", flat=True)) == ["pfizer"]
    created = events(tenant_a, "venue.created")[-1]
    assert created.target_id == str(venue.pk)
    assert created.details == {
        **{f"venue_{field}": value for field, value in NEW_VENUE.items()},
        "products": [world.pfizer.pk],
    }

    page = as_admin.get("/console/planning/venues/").content.decode()
    assert "小平市民総合体育館" in page and "南地区" in page


def test_a_map_link_must_be_a_web_address(as_admin: Client, world: World, tenant_a: Municipality):
    response = as_admin.post(
        "/console/planning/venues/new/", {**NEW_VENUE, "map_url": "javascript:alert(1)"}
    )
    assert response.status_code == 400
    with in_a(tenant_a):
        assert not Venue.objects.filter(name="小平市民総合体育館").exists()


def test_editing_records_which_fields_changed(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    url = f"/console/planning/venues/{world.north.pk}/edit/"
    page = as_admin.get(url).content.decode()
    assert 'value="北部集会所"' in page
    response = as_admin.post(
        url,
        {
            "name": "北部集会所",
            "area": "北地区",
            "address": "東京都小平市上水本町2-2",
            "products": [world.pfizer.pk, world.moderna.pk],
        },
    )
    assert response.status_code == 302
    with in_a(tenant_a):
        world.north.refresh_from_db()
        assert world.north.address == "東京都小平市上水本町2-2"
        assert world.north.products.count() == 2
    updated = events(tenant_a, "venue.updated")[-1]
    assert updated.details["changed"] == ["address", "products"]
    assert updated.details["previous_products"] == [world.pfizer.pk]  # what it was
    # The address before and after: one that sent residents astray is traced.
    assert updated.details["venue_address"] == "東京都小平市上水本町1-1 → 東京都小平市上水本町2-2"
    assert "venue_name" not in updated.details  # unchanged fields are not repeated


def test_a_vaccine_with_slots_ahead_is_not_taken_off_its_venue(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """The venue would say one vaccine while residents book another there."""
    with in_a(tenant_a):
        world.north.products.set([world.pfizer])
        slot = make_slot(world.north, world.pfizer, at(MONDAY, 10))
        make_slot(world.north, world.pfizer, at(MONDAY, 11))
        world.book(slot, world.residents[0])
    url = f"/console/planning/venues/{world.north.pk}/edit/"
    fields = {"name": "北部集会所", "area": "北地区", "address": "東京都小平市上水本町1-1"}
    refused = as_admin.post(url, {**fields, "products": [world.moderna.pk]})
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "ファイザー社ワクチン（2枠）の予約枠があり（予約1件）" in text
    assert "先にその予約枠を中止してください" in text
    with in_a(tenant_a):
        assert list(world.north.products.all()) == [world.pfizer]
    assert not events(tenant_a, "venue.updated")
    # Adding a vaccine is no harm.
    both = as_admin.post(url, {**fields, "products": [world.pfizer.pk, world.moderna.pk]})
    assert both.status_code == 302
    with in_a(tenant_a):
        assert world.north.products.count() == 2


def test_closing_a_venue_stops_new_bookings_and_keeps_the_old_ones(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        slot = make_slot(world.north, world.pfizer, at(MONDAY, 10))
        kept = world.book(slot, world.residents[0])

    page = as_admin.get(f"/console/planning/venues/{world.north.pk}/close/").content.decode()
    assert "今後の予約：1件" in page and "すでにある予約は取り消されません" in page
    assert as_admin.post(f"/console/planning/venues/{world.north.pk}/close/").status_code == 302

    with in_a(tenant_a):
        world.north.refresh_from_db()
        assert not world.north.is_open
        kept.refresh_from_db()
        assert kept.status == Booking.Status.ACTIVE
        try:
            world.book(slot, world.residents[1])
        except BookingRefused as refused:
            assert refused.code == "slot_closed"
        else:
            raise AssertionError("a closed venue took a booking")
    assert events(tenant_a, "venue.closed")[-1].details == {"live_bookings_kept": 1}
    # Its slots are listed as stopped with the venue, not as taking bookings.
    listed = as_admin.get(f"/console/planning/slots/?venue={world.north.pk}").content.decode()
    row = listed.split("<tbody>")[1].split("</tr>")[0]
    assert "会場の受付停止中" in row and "受付中" not in row

    assert as_admin.post(f"/console/planning/venues/{world.north.pk}/reopen/").status_code == 302
    with in_a(tenant_a):
        world.north.refresh_from_db()
        assert world.north.is_open
    assert events(tenant_a, "venue.reopened")


def test_two_venues_never_share_a_name(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    assert as_admin.post("/console/planning/venues/new/", NEW_VENUE).status_code == 302
    twin = {**NEW_VENUE, "name": " 小平市民総合体育館 "}  # the same, as typed again
    refused = as_admin.post("/console/planning/venues/new/", twin)
    text = refused.content.decode()
    assert refused.status_code == 400 and "という会場は既にあります" in text
    assert 'value="東京都小平市津田町1-1-1"' in text  # what was typed stays
    with in_a(tenant_a):
        gym = Venue.objects.get(name="小平市民総合体育館")
        assert Venue.objects.filter(name__contains="体育館").count() == 1
    # Renaming another venue to it is refused; keeping a venue's own name is not.
    rename = {**NEW_VENUE, "name": "小平市民総合体育館"}
    assert (
        as_admin.post(f"/console/planning/venues/{world.north.pk}/edit/", rename).status_code == 400
    )
    same = {**NEW_VENUE, "area": "中央地区"}
    assert as_admin.post(f"/console/planning/venues/{gym.pk}/edit/", same).status_code == 302


def test_a_venue_name_a_spreadsheet_would_run_is_refused(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """The venue's name goes into the VRS file as it is: one that starts as a formula is
    refused in words (changing it would send the VRS another name)."""
    typed = {**NEW_VENUE, "name": '=HYPERLINK("http://evil.example","会場")'}
    refused = as_admin.post("/console/planning/venues/new/", typed)
    assert refused.status_code == 400
    assert "「=」「+」「-」「@」で始めずに入力してください。" in refused.content.decode()
    with in_a(tenant_a):
        assert not Venue.objects.filter(name__contains="HYPERLINK").exists()


def test_half_width_katakana_is_kept_as_residents_read_it_and_a_twin_names_the_venue(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    typed = {
        **NEW_VENUE,
        "name": "ﾃﾞﾓ市 第２会場（ＡＢＣﾋﾞﾙ）",
        "address": "東京都小平市ｶﾞｸｴﾝ町1-1",
        "access_notes": "ﾊﾞｽ停すぐ",
    }
    assert as_admin.post("/console/planning/venues/new/", typed).status_code == 302
    with in_a(tenant_a):
        venue = Venue.objects.latest("pk")
        # Half-width katakana made full width; the municipality's full-width letters kept.
        assert venue.name == "デモ市 第２会場（ＡＢＣビル）"
        assert venue.address == "東京都小平市ガクエン町1-1" and venue.access_notes == "バス停すぐ"
    refused = as_admin.post(
        "/console/planning/venues/new/", {**NEW_VENUE, "name": "デモ市 第2会場(ABCビル)"}
    )
    assert refused.status_code == 400
    # The existing venue as the lists show it, not the name typed.
    assert "「デモ市 第２会場（ＡＢＣビル）」という会場は既にあります" in refused.content.decode()


def test_a_map_link_is_an_https_address_with_one_message(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    for url in ("http://maps.example.jp/x", "javascript:alert(1)"):
        refused = as_admin.post("/console/planning/venues/new/", {**NEW_VENUE, "map_url": url})
        text = refused.content.decode()
        assert refused.status_code == 400, url
        assert text.count("https:// で始まる地図ページのアドレスを入力してください") == 1, url


def test_a_name_too_long_is_refused_in_plain_japanese(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """Django's own words read "この値は 100 文字以下でなければなりません( 150 文字に
    なっています)。": the project's catalogue words them as the rest of the console."""
    refused = as_admin.post("/console/planning/venues/new/", {**NEW_VENUE, "name": "会" * 150})
    text = refused.content.decode()
    assert refused.status_code == 400
    assert "100文字以内で入力してください（いまは150文字です）。" in text
    assert "でなければなりません" not in text


def test_an_edit_made_meanwhile_by_another_admin_is_never_written_back_over(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """Two admins open the venue's form; one corrects the address; the other, from the form
    as first opened, changes the access notes: refused (before, the old address came back)."""
    url = f"/console/planning/venues/{world.north.pk}/edit/"
    form = as_admin.get(url).content.decode()
    version = re.search(r'name="version" value="([0-9a-f]+)"', form)
    assert version is not None
    fields = {
        "name": "北部集会所",
        "area": "北地区",
        "products": [world.pfizer.pk],
        "version": version.group(1),
    }
    fixed = {**fields, "address": "東京都小平市上水本町9-9"}
    assert as_admin.post(url, fixed).status_code == 302
    stale = {**fields, "address": "東京都小平市上水本町1-1", "access_notes": "駐車場あり"}
    refused = as_admin.post(url, stale)
    assert refused.status_code == 400
    assert "ほかの職員がこの会場の情報を変更しました" in refused.content.decode()
    with in_a(tenant_a):
        world.north.refresh_from_db()
    assert (world.north.address, world.north.access_notes) == ("東京都小平市上水本町9-9", "")
    assert len(events(tenant_a, "venue.updated")) == 1
