"""Slot CSV upload: Japanese headers, UTF-8 or CP932, every error with its line, all or nothing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from booking.models import Slot
from tenants.models import Municipality

from ..conftest import START, events
from .conftest import JAPAN, MONDAY, World, at, in_a, make_slot

URL = "/console/planning/slots/upload/"
HEADER = "会場,日付,開始時刻,終了時刻,ワクチンコード,ウェブ枠,LINE枠,コールセンター枠"


def upload(client: Client, text: str, *, encoding: str = "utf-8", check_only: bool = False):
    data: dict[str, object] = {
        "file": SimpleUploadedFile("slots.csv", text.encode(encoding), content_type="text/csv")
    }
    if check_only:
        data["check_only"] = "on"
    return client.post(URL, data)


def slots(tenant: Municipality) -> list[tuple[str, datetime, int, int, int]]:
    with in_a(tenant):
        return [
            (s.venue.name, s.starts_at, s.capacity_web, s.capacity_line, s.capacity_call_centre)
            for s in Slot.objects.select_related("venue").order_by("starts_at", "venue__name")
        ]


def test_a_utf8_file_creates_its_slots_and_is_audited(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    text = "\n".join(
        [
            "\ufeff" + HEADER,
            f"{world.civic.pk},2026/5/18,9:00,9:30,pfizer,10,5,5",
            "北部集会所,2026-05-18,09:30,10:00,PFIZER,８,０,２",  # name, full-width digits
            ",,,,,,,",  # Excel's empty row
        ]
    )
    response = upload(as_admin, text)
    assert response.status_code == 302, response.content.decode()[:3000]
    # The list opens on the file's days, where the new slots are (two venues: any venue).
    assert response["Location"] == (
        "/console/planning/slots/?first_day=2026-05-18&last_day=2026-05-18"
    )
    assert slots(tenant_a) == [
        ("小平市役所", at(MONDAY, 9), 10, 5, 5),
        ("北部集会所", at(MONDAY, 9, 30), 8, 0, 2),
    ]
    created = events(tenant_a, "slots.created")[-1]
    assert created.details["source"] == "csv" and created.details["created"] == 2


def test_a_cp932_file_from_excel_is_read(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    text = "\r\n".join([HEADER, "小平市役所,2026/5/19,14:00,14:30,moderna,3,0,1", ""])
    response = upload(as_admin, text, encoding="cp932")
    assert response.status_code == 302
    assert slots(tenant_a) == [("小平市役所", at(MONDAY.replace(day=19), 14), 3, 0, 1)]


def test_errors_are_listed_with_their_line_numbers_and_nothing_is_written(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    text = "\n".join(
        [
            HEADER,
            f"{world.civic.pk},2026/5/18,9:00,9:30,pfizer,10,5,5",  # line 2: fine
            f"{world.civic.pk},2026/13/1,9:00,9:30,pfizer,10,5,5",  # line 3: no 13th month
            "市民ホール,2026/5/18,9:00,9:30,pfizer,10,5,5",  # line 4: no such venue
            f"{world.north.pk},2026/5/18,9:00,9:30,moderna,1,0,0",  # line 5: not offered there
            f"{world.civic.pk},2026/5/18,10:00,9:30,pfizer,-1,0,0",  # line 6: two errors
            f"{world.civic.pk},2026/5/18,9:00,9:30,pfizer,1,1,1",  # line 7: twin of line 2
            f"{world.civic.pk},2026/5/18,9:15,9:45,pfizer,1,1,1",  # line 8: overlaps line 2
            f"{world.civic.pk},2026/5/1,9:00,9:30,pfizer,1,1,1",  # line 9: in the past
            f"{world.civic.pk},2026/5/19,14:00",  # line 10: cut short
        ]
    )
    response = upload(as_admin, text)
    assert response.status_code == 400
    page = response.content.decode()
    assert "何も登録していません" in page
    expected = [
        ("3行目", "日付の形式が正しくありません"),
        ("4行目", "会場が見つかりません"),
        ("5行目", "この会場では扱っていないワクチンです"),
        ("6行目", "終了時刻は開始時刻より後にしてください"),
        ("6行目", "ウェブ枠は0以上"),
        ("7行目", "2行目と同じ会場・ワクチン・開始時刻です"),
        ("8行目", "2行目の枠と時間が重なっています"),
        ("9行目", "過去の日時には枠を作成できません"),
        ("10行目", "列が足りません（3列。見出しは8列です）。"),
    ]
    for line, message in expected:
        assert f"<td>{line}</td><td>{message}" in page, (line, message)
    assert "2行目</td>" not in page
    assert page.count("<td>10行目</td>") == 1  # one message for the short row, not three
    assert slots(tenant_a) == []
    assert events(tenant_a, "slots.created") == []


def test_a_missing_column_is_named(as_admin: Client, world: World, tenant_a: Municipality) -> None:
    response = upload(as_admin, "会場,日付,開始時刻,終了時刻,ウェブ枠\n1,2026/5/18,9:00,9:30,1\n")
    assert response.status_code == 400
    page = response.content.decode()
    assert "見出しに次の列がありません：ワクチンコード、LINE枠、コールセンター枠" in page
    assert slots(tenant_a) == []


def test_an_unreadable_encoding_is_explained(as_admin: Client, world: World) -> None:
    response = as_admin.post(
        URL, {"file": SimpleUploadedFile("slots.csv", b"\x81\x00\xff\xfe\x80", "text/csv")}
    )
    assert response.status_code == 400
    assert "文字コードを読み取れません" in response.content.decode()


def test_check_only_writes_nothing(as_admin: Client, world: World, tenant_a: Municipality) -> None:
    text = f"{HEADER}\n{world.civic.pk},2026/5/18,9:00,9:30,pfizer,10,5,5\n"
    response = upload(as_admin, text, check_only=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "確認結果（まだ登録していません）" in page and "新しく作成する枠：1件" in page
    assert slots(tenant_a) == []


def test_a_row_for_an_existing_slot_is_skipped_not_refused(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    with in_a(tenant_a):
        make_slot(world.civic, world.pfizer, at(MONDAY, 9))
    text = "\n".join(
        [
            HEADER,
            f"{world.civic.pk},2026/5/18,9:00,9:30,pfizer,10,5,5",
            f"{world.civic.pk},2026/5/18,9:30,10:00,pfizer,10,5,5",
        ]
    )
    looked = upload(as_admin, text, check_only=True).content.decode()
    assert "作成しない枠：1件" in looked
    assert "新しく作成する枠の定員の合計：ウェブ 10、LINE 5、コールセンター 5" in looked
    response = upload(as_admin, text)
    assert response.status_code == 302
    assert len(slots(tenant_a)) == 2
    created = events(tenant_a, "slots.created")[-1]
    assert (created.details["created"], created.details["skipped"]) == (1, 1)


def test_the_form_looks_first_and_its_template_uploads_as_it_is(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """The check box "確認だけする" starts ticked (a look before writing, as the generator);
    and the template's example is a day ahead, so the file downloaded is accepted."""
    form = as_admin.get(URL).content.decode()
    assert re.search(r'<input[^>]*name="check_only"[^>]*checked', form)
    template = as_admin.get(URL + "template.csv").content.decode("utf-8-sig")
    with in_a(tenant_a):
        venue_id = world.civic.pk
    text = template.replace("\r\n1,", f"\r\n{venue_id},", 1)
    looked = upload(as_admin, text, check_only=True)
    assert looked.status_code == 200 and slots(tenant_a) == []
    assert upload(as_admin, text).status_code == 302
    assert len(slots(tenant_a)) == 1


def test_a_slot_past_the_booking_deadline_is_created_with_a_warning(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """Written at once (no check first), a slot nobody can book any more is still said."""
    tomorrow = (START + timedelta(hours=20)).astimezone(JAPAN)
    row = f"{world.civic.pk},{tomorrow:%Y/%m/%d},{tomorrow:%H}:00,{tomorrow:%H}:30,pfizer,1,0,0"
    text = f"{HEADER}\n{row}"
    response = upload(as_admin, text)
    assert response.status_code == 302
    assert f"venue={world.civic.pk}" in response["Location"]  # one venue: the list shows it
    listed = as_admin.get(response["Location"]).content.decode()
    assert "このうち1件は、予約の締切（接種開始の24時間前）を過ぎているため" in listed


def test_a_file_with_slots_on_a_day_called_off_at_their_venue_is_warned_of(
    as_admin: Client, world: World, tenant_a: Municipality
) -> None:
    """After a typhoon day was cancelled at a venue, a file that makes slots there that day
    again would take bookings for it: the check says so before, the upload after."""
    from audit.chain import Actor
    from booking.services.planning import slot_cancel

    with in_a(tenant_a):
        slot = make_slot(world.civic, world.pfizer, at(MONDAY, 15))
        slot_cancel(slot=slot, actor=Actor(Actor.STAFF, "1"))
    text = "\n".join(
        [
            HEADER,
            f"{world.civic.pk},2026/5/18,9:00,9:30,pfizer,10,5,5",  # the called-off day
            "北部集会所,2026/5/18,9:00,9:30,pfizer,10,5,5",  # another venue, same day
            f"{world.civic.pk},2026/5/19,9:00,9:30,pfizer,10,5,5",  # the next day
        ]
    )
    checked = upload(as_admin, text, check_only=True).content.decode()
    warned = checked.split('id="called-off-days"')[1].split("</p>")[0]
    assert "小平市役所 5月18日（月）" in warned
    assert "北部集会所" not in warned and "5月19日" not in warned

    done = upload(as_admin, text)
    assert done.status_code == 302
    page = as_admin.get(done["Location"]).content.decode()
    assert "中止した予約枠があります" in page and "小平市役所 5月18日（月）" in page

    # A file with nothing on a called-off day says nothing of it.
    clean = "\n".join([HEADER, "北部集会所,2026/5/20,9:00,9:30,pfizer,10,5,5"])
    assert 'id="called-off-days"' not in upload(as_admin, clean, check_only=True).content.decode()
