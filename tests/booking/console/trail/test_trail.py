"""The trail: browsable and filterable by auditors and admins, the breach-scope report, the
chain verification; nobody else, and nothing of another municipality."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from audit import record
from audit.chain import Actor
from audit.services import audit_verify
from booking.console.trail.selectors import PAGE_SIZE
from tenants.models import Municipality
from tests.booking.console.callcentre.cast import (
    CALL_CENTRE_HOME,
    Town,
    csv_rows,
    signed_in,
)
from tests.booking.console.conftest import START, StaffAccount, events

TRAIL = "/console/trail/"


def local(moment) -> str:  # noqa: ANN001
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def searched_and_revealed(
    client: Client, operator_a: StaffAccount, town: Town, clock: time_machine.Coordinates
) -> Client:
    """An operator searches for Hanako and opens her details with a memo: the call-centre
    records the trail tests look for."""
    operator = signed_in(client, operator_a, clock)
    operator.post(CALL_CENTRE_HOME, {"q": "コダイラハナコ"})
    reveal(operator, town, reason="other", note="ご家族からの問い合わせ")
    return operator


def reveal(client: Client, town: Town, **data: str) -> None:
    url = f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/reveal/"
    response = client.post(url, {"reason": "identity_check", **data})
    assert response.status_code == 200


def test_the_report_lists_a_reveal_with_the_voucher_the_operator_and_the_time(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    auditor_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    operator = signed_in(client_a, operator_a, clock)
    reveal(operator, town)
    revealed = events(tenant_a, "callcentre.personal_data_revealed")[-1]
    # A reveal for "other" reasons: the operator's note is what explains it.
    reveal(operator, town, reason="other", note="ご家族から住所変更の問い合わせ")
    other = events(tenant_a, "callcentre.personal_data_revealed")[-1]

    auditor = signed_in(Client(HTTP_HOST="kodaira.localhost"), auditor_a, clock)
    response = auditor.post(
        TRAIL + "report/",
        {
            "report-start": local(START - timedelta(hours=1)),
            "report-end": local(START + timedelta(hours=1)),
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="access-report-')
    rows = csv_rows(b"".join(response.streaming_content))
    assert rows[0][:6] == ["日時", "操作", "閲覧者の種別", "閲覧者ID", "接種券ID", "接種券番号"]
    reveals = [row for row in rows[1:] if row[1] == "callcentre.personal_data_revealed"]
    assert reveals[1][0] == timezone.localtime(other.occurred_at).strftime("%Y/%m/%d %H:%M:%S")
    assert reveals[1][6] == "other" and reveals[1][-2] == "ご家族から住所変更の問い合わせ"
    assert reveals[:1] == [
        [
            # As Excel reads a date and time (ISO text would stay text).
            timezone.localtime(revealed.occurred_at).strftime("%Y/%m/%d %H:%M:%S"),
            "callcentre.personal_data_revealed",
            "staff",
            str(operator_a.user_id),
            str(town.hanako.pk),
            "2000000001",
            "identity_check",
            "127.0.0.1",
            str(revealed.seq),
            "",
            # Readable without the codes: what was done, and by whom.
            "個人情報の表示（コールセンター）",
            "call@kodaira.example.jp",
            "本人確認のため（読み上げと照合）",
            "",
            # What it was about: the voucher whose record was shown.
            f"booking.voucher:{town.hanako.pk}",
        ]
    ]
    viewed = [row for row in rows[1:] if row[1] == "callcentre.resident_viewed"]
    assert viewed == []  # the reveal came straight from a POST; no masked view before it
    downloaded = events(tenant_a, "trail.report_downloaded")[-1]
    assert downloaded.actor_id == str(auditor_a.user_id)
    assert downloaded.details["rows"] == len(rows) - 1 and downloaded.details["residents"] == 1
    assert downloaded.details["notes_opened"] == 1


def test_the_report_covers_only_its_time_range(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    operator = signed_in(client_a, operator_a, clock)
    reveal(operator, town)
    clock.shift(timedelta(hours=2))
    admin = signed_in(Client(HTTP_HOST="kodaira.localhost"), admin_a, clock)
    later = timezone.now()
    response = admin.post(
        TRAIL + "report/",
        {
            "report-start": local(later - timedelta(minutes=30)),
            "report-end": local(later + timedelta(hours=1)),
        },
    )
    rows = csv_rows(b"".join(response.streaming_content))
    assert [row for row in rows[1:] if "revealed" in row[1]] == []


def test_a_report_with_the_end_before_the_start_is_refused(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, auditor_a, clock)
    response = client_a.post(
        TRAIL + "report/",
        {"report-start": local(START), "report-end": local(START - timedelta(hours=1))},
    )
    assert response.status_code == 400
    assert events(tenant_a, "trail.report_downloaded") == []


def test_the_trail_filters_by_action_prefix_actor_and_time(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    auditor_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    searched_and_revealed(client_a, operator_a, town, clock)

    auditor = signed_in(Client(HTTP_HOST="kodaira.localhost"), auditor_a, clock)
    page = auditor.get(TRAIL, {"action": "callcentre."}).content.decode()
    assert "callcentre.searched" in page and "callcentre.personal_data_revealed" in page
    assert "console.login_succeeded" not in page
    assert "ご家族からの問い合わせ" in page  # the sealed note, opened for the auditor
    assert "note_sealed" not in page
    assert "call@kodaira.example.jp" in page
    # Reading the trail is in the trail: who, with what conditions, how many memos opened.
    [viewed] = events(tenant_a, "trail.viewed")
    assert viewed.actor_kind == "staff" and viewed.actor_id == str(auditor_a.user_id)
    assert viewed.details["conditions"] == ["action=callcentre."]
    assert viewed.details["rows"] >= 2 and viewed.details["notes_opened"] == 1

    by_actor = auditor.get(TRAIL, {"actor_kind": "staff", "actor_id": str(auditor_a.user_id)})
    body = by_actor.content.decode()
    assert "console.login_succeeded" in body and "callcentre.searched" not in body

    soon = timezone.now() + timedelta(minutes=5)
    later = auditor.get(TRAIL, {"start": local(soon), "end": local(soon + timedelta(minutes=5))})
    assert "条件に合う記録はありません" in later.content.decode()

    # One condition wrong: nothing listed (not every record, under conditions that do not
    # apply), and the page says why.
    wrong = auditor.get(TRAIL, {"action": "callcentre.", "end": "2026-12-31T25:00"})
    assert wrong.status_code == 400
    body = wrong.content.decode()
    assert 'id="filters-refused"' in body and "callcentre.searched" not in body
    assert "console.login_succeeded" not in body
    # The end before the start: said so, not "no records".
    backwards = auditor.get(TRAIL, {"start": local(soon), "end": local(soon - timedelta(hours=1))})
    assert backwards.status_code == 400
    body = backwards.content.decode()
    assert "終了日時は開始日時より後にしてください。" in body
    assert "条件に合う記録はありません" not in body


def test_the_trail_is_searched_in_the_words_it_shows(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    auditor_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """The actor as the trail writes it (staff:6, with its e-mail), an e-mail, words of the
    action's Japanese name, and a resident by voucher number or a booking by its number."""
    operator = signed_in(client_a, operator_a, clock)
    operator.post(CALL_CENTRE_HOME, {"q": "コダイラハナコ"})
    reveal(operator, town, reason="identity_check")
    auditor = signed_in(Client(HTTP_HOST="kodaira.localhost"), auditor_a, clock)
    written = f"staff:{operator_a.user_id} (call@kodaira.example.jp)"
    for actor in (written, f"staff:{operator_a.user_id}", "CALL@kodaira.example.jp"):
        body = auditor.get(TRAIL, {"actor_id": actor}).content.decode()
        assert "callcentre.searched" in body, actor
        assert f"staff:{auditor_a.user_id}" not in body, actor
    body = auditor.get(TRAIL, {"action": "個人情報の表示"}).content.decode()
    assert "callcentre.personal_data_revealed" in body and "callcentre.searched" not in body
    by_resident = auditor.get(TRAIL, {"target": town.hanako.voucher_number}).content.decode()
    assert "callcentre.personal_data_revealed" in by_resident
    assert "console.login_succeeded" not in by_resident
    nobody = auditor.get(TRAIL, {"target": "9999999999"}).content.decode()
    assert "条件に合う記録はありません" in nobody


def test_the_trail_pages_through_older_events(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    with schema_context(tenant_a.schema_name):
        for number in range(PAGE_SIZE + 5):
            record(action="tests.filler", actor=Actor.system("tests"), details={"n": number})
    auditor = signed_in(client_a, auditor_a, clock)
    first = auditor.get(TRAIL, {"action": "tests."}).content.decode()
    assert first.count("tests.filler") == PAGE_SIZE
    assert "n: 104<" in first and "n: 4<" not in first
    older = re.search(r'href="\?([^"]+)">さらに古い記録', first)
    assert older is not None
    second = auditor.get(TRAIL + "?" + older.group(1).replace("&amp;", "&")).content.decode()
    assert second.count("tests.filler") == 5
    assert "n: 0<" in second and "さらに古い記録" not in second


def test_the_conditions_are_sent_and_kept_never_in_an_address(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    auditor_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """A resident's voucher number or a member of staff's e-mail as a condition would sit
    in every address of the pages it selects (access and WAF logs, the browser's history):
    the form sends them, the session keeps them, the addresses carry a token."""
    searched_and_revealed(client_a, operator_a, town, clock)
    with schema_context(tenant_a.schema_name):
        for number in range(PAGE_SIZE + 5):
            record(
                action="tests.filler",
                actor=Actor.system("tests"),
                target=town.hanako,
                details={"n": number},
            )
    auditor = signed_in(Client(HTTP_HOST="kodaira.localhost"), auditor_a, clock)
    form = auditor.get(TRAIL).content.decode().split('id="id_target"')[0].rsplit("<form", 1)[1]
    assert 'method="post"' in form
    sent = auditor.post(TRAIL, {"target": town.hanako.voucher_number, "actor_id": ""})
    assert sent.status_code == 302 and town.hanako.voucher_number not in sent["Location"]
    assert re.fullmatch(r"/console/trail/\?f=[\w-]+", sent["Location"])
    page = auditor.get(sent["Location"]).content.decode()
    assert page.count("tests.filler") == PAGE_SIZE
    assert f'value="{town.hanako.voucher_number}"' in page  # the form shows what was asked
    links = re.findall(r'href="([^"]*(?:\?f=|export)[^"]*)"', page)
    assert links and all(town.hanako.voucher_number not in link for link in links)
    older = re.search(r'href="\?([^"]+)">さらに古い記録', page)
    assert older is not None
    second = auditor.get(TRAIL + "?" + older.group(1).replace("&amp;", "&")).content.decode()
    assert "n: 0<" in second
    export = re.search(r'href="([^"]+)" id="trail-export"', page)
    assert export is not None
    csv_text = b"".join(
        auditor.get(export.group(1).replace("&amp;", "&")).streaming_content
    ).decode("utf-8-sig")
    assert csv_text.count("tests.filler") == PAGE_SIZE + 5
    # New conditions sent from an older page start again at the newest record.
    again = auditor.post(
        TRAIL, {"target": town.hanako.voucher_number, "action": "tests.", "before": "3"}
    )
    newest = auditor.get(again["Location"]).content.decode()
    assert "n: 104<" in newest and newest.count("tests.filler") == PAGE_SIZE
    # Another session holds no such token: asked to filter again, the page and the export.
    other = signed_in(Client(HTTP_HOST="kodaira.localhost"), auditor_a, clock)
    for url in (sent["Location"], export.group(1).replace("&amp;", "&")):
        lost = other.get(url)
        assert lost.status_code == 302 and lost["Location"] == "/console/trail/"
        told = other.get(lost["Location"]).content.decode()
        assert "絞り込みの条件が見つかりません" in told


def test_the_chain_verification_is_shown(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, auditor_a, clock)
    page = client_a.get(TRAIL + "verify/").content.decode()
    with schema_context(tenant_a.schema_name):
        report = audit_verify()
    assert report.ok
    assert "改ざんは見つかりませんでした" in page
    assert f'<dd id="verified-events">{report.events}</dd>' in page


@pytest.mark.parametrize("role_fixture", ["operator_a", "venue_a"])
def test_the_trail_is_closed_to_other_roles(
    request: pytest.FixtureRequest,
    tenant_a: Municipality,
    client_a: Client,
    clock: time_machine.Coordinates,
    role_fixture: str,
) -> None:
    account: StaffAccount = request.getfixturevalue(role_fixture)
    signed_in(client_a, account, clock)
    assert client_a.get(TRAIL).status_code == 403
    assert client_a.get(TRAIL + "verify/").status_code == 403
    response = client_a.post(
        TRAIL + "report/",
        {"report-start": local(START), "report-end": local(START + timedelta(hours=1))},
    )
    assert response.status_code == 403
    assert events(tenant_a, "trail.report_downloaded") == []


def test_the_auditor_cannot_write(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, auditor_a, clock)
    assert client_a.post(CALL_CENTRE_HOME, {"q": "2000000001"}).status_code == 403
    url = f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/"
    assert client_a.post(url + "book/", {"slot": town.call_slot.pk}).status_code == 403
    assert client_a.post(url + "web-login/", {"disabled": "1"}).status_code == 403
    incident = {"notice": "停止します", "confirm": "on"}
    assert client_a.post("/console/security/incident/start/", incident).status_code == 403
    networks = {"networks": "127.0.0.0/8"}
    assert client_a.post("/console/security/networks/", networks).status_code == 403


def test_the_auditor_of_a_sees_nothing_of_b(
    tenant_a: Municipality,
    tenant_b: Municipality,
    client_a: Client,
    client_b: Client,
    auditor_a: StaffAccount,
    operator_b: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_b, operator_b, clock)
    client_b.post(CALL_CENTRE_HOME, {"q": "0000000001"})
    b_event = events(tenant_b, "callcentre.searched")[-1]
    signed_in(client_a, auditor_a, clock)
    page = client_a.get(TRAIL, {"action": "callcentre."}).content.decode()
    assert "call@chiyoda.example.jp" not in page
    assert "条件に合う記録はありません" in page
    assert b_event.seq  # B's trail has it; A's does not
    response = client_a.post(
        TRAIL + "report/",
        {
            "report-start": local(START - timedelta(hours=1)),
            "report-end": local(START + timedelta(hours=1)),
        },
    )
    rows = csv_rows(b"".join(response.streaming_content))
    assert all(row[1] != "callcentre.searched" for row in rows[1:])


def test_each_event_says_what_it_is_about_and_each_field_has_its_own_label(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    with schema_context(tenant_a.schema_name):
        record(action="callcentre.searched", actor=Actor.system("tests"), details={"found": 2})
    page = signed_in(client_a, auditor_a, clock).get(TRAIL).content.decode()
    assert "住民の検索（コールセンター）<br>" in page and "callcentre.searched" in page
    assert "found: 2" in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # the report's and the filter's dates apart


def test_lists_empty_values_and_moments_read_as_words_not_as_json(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    with schema_context(tenant_a.schema_name):
        record(
            action="booking_policy.updated",
            actor=Actor.system("tests"),
            details={
                "changed": ["closes_hours_before: 0 → 24", "opens_days_ahead: 28 → 60"],
                "removed": [],
                "product_reason": "",
                "as_of": "2026-12-07T15:02:44+00:00",
            },
        )
    page = signed_in(client_a, auditor_a, clock).get(TRAIL).content.decode()
    assert "closes_hours_before: 0 → 24、opens_days_ahead: 28 → 60" in page
    assert "[]" not in page and '["' not in page
    assert "（removed）: なし" in page and "（product_reason）: なし" in page
    assert "（as_of）: 2026年12月8日 00:02:44" in page  # in Japan's time, as the rows are


def test_the_default_report_ends_after_the_minute_it_is_asked_in(
    client_a: Client, auditor_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    """Its end is excluded and written to the minute: ending at this minute would leave out
    what was read in it (a reveal seconds before the download)."""
    clock.shift(timedelta(seconds=42))
    auditor = signed_in(client_a, auditor_a, clock)
    page = auditor.get(TRAIL).content.decode()
    end = re.search(r'name="report-end"[^>]*value="([^"]+)"', page)
    assert end is not None
    assert end.group(1) == local(timezone.now().replace(second=0) + timedelta(minutes=1))


def test_what_the_auditor_found_is_exported_whole_as_csv_and_the_export_is_audited(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    auditor_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    operator = searched_and_revealed(client_a, operator_a, town, clock)
    with schema_context(tenant_a.schema_name):
        for number in range(PAGE_SIZE + 5):  # more than a page of the trail
            record(action="callcentre.searched", actor=Actor.system("tests"), details={"n": number})

    auditor = signed_in(Client(HTTP_HOST="kodaira.localhost"), auditor_a, clock)
    page = auditor.get(TRAIL, {"action": "callcentre."}).content.decode()
    assert 'href="/console/trail/export/?action=callcentre."' in page
    response = auditor.get("/console/trail/export/", {"action": "callcentre."})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode()) and b"\r\n" in body
    header, *rows = csv_rows(body)
    assert header[:4] == ["番号", "日時（日本時間）", "操作", "操作（記号）"]
    assert len(rows) == PAGE_SIZE + 5 + 2  # every record, not a page: searches and the reveal
    assert {row[3] for row in rows} == {"callcentre.searched", "callcentre.personal_data_revealed"}
    assert any("ご家族からの問い合わせ" in row[7] for row in rows)
    assert all(re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}", row[1]) for row in rows)
    [exported] = events(tenant_a, "trail.exported")
    assert exported.actor_id == str(auditor_a.user_id)
    assert exported.details == {
        "conditions": ["action=callcentre."],
        "rows": PAGE_SIZE + 7,
        "notes_opened": 1,
    }
    # Other roles may not.
    assert operator.get("/console/trail/export/").status_code in (302, 403)


def test_the_export_never_hands_excel_a_formula(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    auditor_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """An operator's memo of what a caller said, typed as a formula, is exported as text:
    opened in Excel by the auditor, it shows, never runs."""
    operator = signed_in(client_a, operator_a, clock)
    reveal(operator, town, reason="other", note='=HYPERLINK("http://evil.example","x")')
    auditor = signed_in(Client(HTTP_HOST="kodaira.localhost"), auditor_a, clock)
    response = auditor.get("/console/trail/export/", {"action": "callcentre."})
    [row] = [row for row in csv_rows(b"".join(response.streaming_content))[1:] if row[7]]
    assert row[7] == '\'=HYPERLINK("http://evil.example","x")'


def test_a_resident_acting_is_named_and_found_by_the_voucher_number(
    tenant_a: Municipality,
    client_a: Client,
    auditor_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """After a complaint ("someone cancelled my booking"), the auditor types the resident's
    voucher number as the one who acted; the trail names residents by it."""
    with schema_context(tenant_a.schema_name):
        record(action="booking.cancelled", actor=Actor.resident(town.hanako.pk), details={})
        record(action="booking.cancelled", actor=Actor.system("tests"), details={})
    auditor = signed_in(client_a, auditor_a, clock)
    number = town.hanako.voucher_number
    page = auditor.get(TRAIL, {"actor_id": f"{number[:4]}-{number[4:]}"}).content.decode()
    assert f"resident:{town.hanako.pk} (接種券 {number})" in page
    assert "system:tests" not in page
    # A number nobody holds finds nothing.
    nobody = auditor.get(TRAIL, {"actor_id": "9999999999"}).content.decode()
    assert "条件に合う記録はありません" in nobody
