"""The console's 通知 section: what needs a person, resending, the pause switch, the reminder
time, the municipality's wording and its LINE channel. Admins only, their municipality only."""

from __future__ import annotations

from datetime import time

import pytest
import time_machine
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from booking.models import (
    LineChannel,
    Notification,
    NotificationSettings,
    NotificationTemplate,
)
from booking.models.bookings import booking_number_display
from booking.notifications.line_channel import line_credentials
from booking.notifications.rendering import render_message
from booking.services.notifications import notification_enqueue
from tenants.models import Municipality
from tests.booking.console.callcentre.cast import signed_in, signed_in_as_role
from tests.booking.console.conftest import StaffAccount, events
from tests.booking.notifications.factories import (
    make_booking,
    make_slot,
    make_voucher,
    set_contacts,
)

pytestmark = pytest.mark.django_db

HOME = "/console/notifications/"
SETTINGS = HOME + "settings/"
LINE = HOME + "line/"
REMINDER_LINE_JA = HOME + "templates/reminder/line/ja/"
TOKEN = "line-long-lived-token-of-kodaira-0123456789"
SECRET = "line-login-secret-of-kodaira"
EMAIL = "hanako@example.jp"


def _messages(tenant: Municipality) -> dict[str, Notification]:
    """A failed LINE message, an unconfirmed email and a sent SMS about one booking."""
    with tenant_context(tenant):
        resident = make_voucher()
        set_contacts(resident, email=EMAIL, phone="090-1234-5678", line_user_id="U" + "a" * 32)
        booking = make_booking(resident, make_slot())
        rows = {
            row.channel: row
            for row in notification_enqueue(kind="booking_created", booking=booking)
        }
        Notification.objects.filter(pk=rows["line"].pk).update(
            status="failed", attempts=1, last_error="line.http_400"
        )
        Notification.objects.filter(pk=rows["email"].pk).update(
            status="unconfirmed",
            attempts=1,
            last_error="aws.connection: ReadTimeoutError; may have been sent",
        )
        Notification.objects.filter(pk=rows["sms"].pk).update(
            status="sent", sent_at=booking.created_at
        )
        return {key: Notification.objects.get(pk=row.pk) for key, row in rows.items()}


@pytest.fixture
def rows(tenant_a: Municipality, clock: time_machine.Coordinates) -> dict[str, Notification]:
    """The messages of `_messages`, in A; ask for it before `as_admin` to make them first."""
    return _messages(tenant_a)


def _status(tenant: Municipality, row: Notification) -> str:
    with schema_context(tenant.schema_name):
        return Notification.objects.get(pk=row.pk).status


def _settings(tenant: Municipality) -> NotificationSettings | None:
    with schema_context(tenant.schema_name):
        return NotificationSettings.objects.filter(pk=1).first()


# --- What needs a person -------------------------------------------------------------------


def test_the_admin_sees_counts_and_what_needs_attention_with_reasons_and_no_address(
    client_a: Client,
    rows: dict[str, Notification],
    as_admin: Client,
) -> None:
    page = client_a.get(HOME).content.decode()
    assert '<a href="/console/notifications/">通知</a>' in page  # in the console's menu
    number = booking_number_display(rows["line"].context["booking_number"])
    assert page.count(f'<td class="mono">{number}</td>') == 2
    assert "line.http_400" in page and "ReadTimeoutError" in page
    # Said in words first, the code beside it for the vendor's support.
    assert "LINEが受け付けませんでした。<br><small" in page
    assert "送信サービスにつながりませんでした。<br><small" in page
    assert "送信失敗" in page and "送信結果不明" in page and "予約完了" in page
    assert "再送する（二重に届くことがあります）" in page
    assert f'id="notification-{rows["sms"].pk}"' not in page  # sent: nothing to do
    assert '<tr id="count-sent"><td>送信済み</td><td>1</td></tr>' in page
    assert '<tr id="count-failed"><td>送信失敗</td><td>1</td></tr>' in page
    assert EMAIL not in page and "1234-5678" not in page and "小平 花子" not in page


def test_resending_queues_the_message_again_and_is_audited(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    rows: dict[str, Notification],
    as_admin: Client,
) -> None:
    assert client_a.get(HOME + f"{rows['email'].pk}/resend/").status_code == 405
    response = client_a.post(HOME + f"{rows['email'].pk}/resend/")
    assert response.status_code == 302 and response["Location"] == HOME
    assert _status(tenant_a, rows["email"]) == "pending"
    (event,) = events(tenant_a, "notification.resent")
    assert event.actor_id == str(admin_a.user_id)
    assert event.details["previous_status"] == "unconfirmed"
    assert "送信待ちに戻しました" in client_a.get(HOME).content.decode()

    # A sent message is not sent again.
    refused = client_a.post(HOME + f"{rows['sms'].pk}/resend/", follow=True)
    assert "このお知らせは再送できません" in refused.content.decode()
    assert _status(tenant_a, rows["sms"]) == "sent"
    assert len(events(tenant_a, "notification.resent")) == 1


def test_the_pause_switch_stops_and_resumes_sending(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
) -> None:
    assert client_a.post(HOME + "pause/", {"action": "pause"}).status_code == 302
    settings_row = _settings(tenant_a)
    assert settings_row is not None and settings_row.paused
    assert "送信を一時停止しています" in client_a.get(HOME).content.decode()
    assert client_a.post(HOME + "pause/", {"action": "resume"}).status_code == 302
    settings_row = _settings(tenant_a)
    assert settings_row is not None and not settings_row.paused
    actions = [e.action for e in events(tenant_a, "notification.paused")] + [
        e.action for e in events(tenant_a, "notification.resumed")
    ]
    assert actions == ["notification.paused", "notification.resumed"]
    # Anything else is not a switch.
    client_a.post(HOME + "pause/", {"action": "off"})
    settings_row = _settings(tenant_a)
    assert settings_row is not None and not settings_row.paused


# --- Reminder time and senders -------------------------------------------------------------


def _settings_form(**changes: str) -> dict[str, str]:
    data = {
        "reminder_time": "07:30",
        "reminders_enabled": "on",
        "email_from": "no-reply@city.kodaira.example.jp",
        "sms_sender_id": "Kodaira",
        "contact_phone": "０４２－０００－００００",
    }
    data.update(changes)
    return data


def test_the_admin_sets_the_reminder_time_and_senders(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
) -> None:
    assert 'value="09:00"' in client_a.get(SETTINGS).content.decode()
    response = client_a.post(SETTINGS, _settings_form())
    assert response.status_code == 302
    row = _settings(tenant_a)
    assert row is not None
    assert (row.reminder_time, row.reminders_enabled) == (time(7, 30), True)
    assert (row.sms_sender_id, row.contact_phone) == ("Kodaira", "042-000-0000")
    (event,) = events(tenant_a, "notification.settings_updated")
    assert event.details["reminder_time"] == "07:30"
    assert "reminder_time" in event.details["changed"]
    assert "前日の 07:30 から送ります" in client_a.get(HOME).content.decode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"reminder_time": "25:00"},
            "前日通知の時刻は「09:00」のように、時と分で入力してください。",
        ),
        ({"reminder_time": ""}, "前日通知の時刻を入力してください。"),
        ({"reminder_time": "23:30"}, "6:00から21:00の間で指定してください"),
        ({"sms_sender_id": "小平市"}, "SMS送信者IDは半角英数字11文字以内で"),
        ({"email_from": "not-an-address"}, "送信元メールアドレスの形式が正しくありません。"),
        ({"contact_phone": "call us"}, "問い合わせ電話番号は、数字とハイフンで入力してください"),
    ],
)
def test_bad_settings_are_refused_in_japanese_and_nothing_is_saved(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
    changes: dict[str, str],
    message: str,
) -> None:
    response = client_a.post(SETTINGS, _settings_form(**changes))
    assert response.status_code == 400
    assert message in response.content.decode()
    row = _settings(tenant_a)
    assert row is None or row.reminder_time == time(9, 0)
    assert events(tenant_a, "notification.settings_updated") == []


# --- The municipality's wording ------------------------------------------------------------


def test_the_admin_writes_the_municipalitys_own_reminder_and_can_go_back(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
) -> None:
    listing = client_a.get(HOME + "templates/").content.decode()
    assert REMINDER_LINE_JA in listing
    form = client_a.get(REMINDER_LINE_JA).content.decode()
    assert "明日は接種の予約日です" in form  # the packaged wording, to start from
    assert 'name="subject"' not in form  # LINE messages have no subject
    # Each placeholder said in words, in the municipality's language.
    assert "<code>{{ venue_map_url }}</code> 会場の地図のURL" in form
    assert "<code>{{ start_time }}</code> 開始時刻" in form
    body = "【小平市】明日 {{ start_time }} {{ venue_name }}"
    body += "{% if venue_map_url %} {{ venue_map_url }}{% endif %}"
    assert client_a.post(REMINDER_LINE_JA, {"body": body}).status_code == 302
    with tenant_context(tenant_a):
        saved = NotificationTemplate.objects.get(kind="reminder", channel="line", language="ja")
        assert saved.body == body
        rendered = render_message(
            kind="reminder",
            channel="line",
            language="ja",
            context={"starts_at": "2026-05-12T10:00:00+09:00", "venue_name": "小平市役所"},
            municipality_name="小平市",
        )
        assert rendered.body == "【小平市】明日 10:00 小平市役所"
    (event,) = events(tenant_a, "notification.template_saved")
    assert event.details == {
        "kind": "reminder",
        "channel": "line",
        "language": "ja",
        "new": True,
        "body": body,  # the wording residents were sent, told afterwards
    }

    # Going back to the packaged wording asks first: one press would lose the wording.
    unasked = client_a.post(REMINDER_LINE_JA, {"action": "delete"})
    assert "確認のチェックを入れてください" in client_a.get(unasked["Location"]).content.decode()
    with schema_context(tenant_a.schema_name):
        assert NotificationTemplate.objects.exists()
    assert client_a.post(REMINDER_LINE_JA, {"action": "delete", "confirm": "1"}).status_code == 302
    with schema_context(tenant_a.schema_name):
        assert not NotificationTemplate.objects.exists()
    assert len(events(tenant_a, "notification.template_deleted")) == 1


def test_a_mail_is_never_saved_nor_sent_without_a_subject(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
) -> None:
    """An emptied subject is refused (a mail without one reads as spam); a mail's own body
    saved without a subject before that goes out under the packaged subject."""
    url = HOME + "templates/reminder/email/ja/"
    form = client_a.get(url).content.decode()
    assert 'name="subject"' in form and "required" in form.split('name="subject"')[1][:200]
    refused = client_a.post(url, {"subject": "  ", "body": "明日は {{ venue_name }} です"})
    assert refused.status_code == 400
    assert "メールの件名を入力してください" in refused.content.decode()
    with tenant_context(tenant_a):
        assert not NotificationTemplate.objects.exists()
        NotificationTemplate.objects.create(
            kind="reminder", channel="email", language="ja", subject="", body="明日です"
        )
        rendered = render_message(
            kind="reminder",
            channel="email",
            language="ja",
            context={"starts_at": "2026-05-12T10:00:00+09:00", "venue_name": "小平市役所"},
            municipality_name="小平市",
        )
    assert rendered.body == "明日です"
    assert rendered.subject and "{{" not in rendered.subject


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{{ name }}様、明日は接種日です", "「{{ name }}」は使えない差し込み項目です。"),
        (
            "{{ voucher.voucher_number }}",
            "「{{ voucher.voucher_number }}」は使えない差し込み項目です。",
        ),
        ("{% load static %}明日です", "「{% load static %}」は使えません。"),
        ("{% if venue_map_url %}明日です", "「if」と「endif」の組み合わせが正しくありません。"),
        ("", "本文を入力してください。"),
        (
            "予約番号 {{ booking_number",
            "「{{」と「}}」（または「{%」と「%}」）の組み合わせが正しくありません。",
        ),
        ("予約番号 ｛｛ booking_number ｝｝", "全角の「｛」「｝」は使えません。"),
    ],
)
def test_a_template_with_what_it_may_not_say_is_refused_in_japanese(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
    body: str,
    message: str,
) -> None:
    response = client_a.post(REMINDER_LINE_JA, {"body": body})
    assert response.status_code == 400
    assert message in response.content.decode()
    with schema_context(tenant_a.schema_name):
        assert not NotificationTemplate.objects.exists()


def test_a_text_is_previewed_as_a_resident_would_receive_it_and_nothing_is_saved(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
) -> None:
    body = "【{{ municipality_name }}】{{ date }} {{ start_time }} {{ venue_name }}"
    body += " 予約番号 {{ booking_number }}"
    body += "{% if venue_map_url %} {{ venue_map_url }}{% endif %}"
    response = client_a.post(REMINDER_LINE_JA, {"body": body, "action": "preview"})
    assert response.status_code == 200
    page = response.content.decode()
    shown = page.split('class="message-preview">')[1].split("</pre>")[0]
    assert shown.startswith("【小平市】") and "10:00" in shown and "予約番号 8VSU6-AGN34" in shown
    assert "{{" not in shown
    assert body in page  # the text stays in the box, to go on editing
    with schema_context(tenant_a.schema_name):
        assert not NotificationTemplate.objects.exists()
    assert events(tenant_a, "notification.template_saved") == []
    # What may not be saved is not previewed either, and says why.
    refused = client_a.post(REMINDER_LINE_JA, {"body": "{{ name }}様", "action": "preview"})
    assert refused.status_code == 400
    text = refused.content.decode()
    assert "「{{ name }}」は使えない差し込み項目です。" in text and 'id="preview"' not in text
    # An SMS says when it goes as several messages.
    long_sms = client_a.post(
        HOME + "templates/reminder/sms/ja/",
        {"body": "明日は接種日です。" * 10, "action": "preview"},
    ).content.decode()
    assert "（SMSでは2通に分かれて送られます）" in long_sms
    # In plain Latin letters, one SMS holds 160 characters.
    english = client_a.post(
        HOME + "templates/reminder/sms/en/", {"body": "Tomorrow. " * 12, "action": "preview"}
    ).content.decode()
    assert 'class="message-preview"' in english and "messages by SMS" not in english


def _form_version(page: str) -> str:
    return page.split('name="version"')[1].split('value="')[1].split('"')[0]


def test_a_text_changed_by_another_admin_meanwhile_is_not_saved_over_nor_reset(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
) -> None:
    """Two admins with the same text open: the second save (or 標準に戻す) would lose the
    first's wording unseen. Refused in words; nothing saved or deleted."""
    standard = _form_version(client_a.get(REMINDER_LINE_JA).content.decode())
    with schema_context(tenant_a.schema_name):  # the other admin's save, meanwhile
        NotificationTemplate.objects.create(
            kind="reminder", channel="line", language="ja", subject="", body="明日です（A）"
        )
    refused = client_a.post(REMINDER_LINE_JA, {"body": "明日です（B）", "version": standard})
    assert refused.status_code == 400
    assert "ほかの職員がこの文面を変更しました。保存していません" in refused.content.decode()
    shown = _form_version(client_a.get(REMINDER_LINE_JA).content.decode())
    assert shown != standard
    with schema_context(tenant_a.schema_name):
        NotificationTemplate.objects.update(body="明日です（C）")
    reset = client_a.post(REMINDER_LINE_JA, {"action": "delete", "confirm": "1", "version": shown})
    assert "保存していません" in client_a.get(reset["Location"]).content.decode()
    with schema_context(tenant_a.schema_name):
        assert NotificationTemplate.objects.get().body == "明日です（C）"
    assert events(tenant_a, "notification.template_saved") == []
    assert events(tenant_a, "notification.template_deleted") == []
    # Opened again, the form saves.
    again = _form_version(client_a.get(REMINDER_LINE_JA).content.decode())
    saved = client_a.post(REMINDER_LINE_JA, {"body": "明日です（D）", "version": again})
    assert saved.status_code == 302


def test_an_unknown_template_is_not_found(client_a: Client, as_admin: Client) -> None:
    assert client_a.get(HOME + "templates/reminder/fax/ja/").status_code == 404


# --- LINE channel --------------------------------------------------------------------------


def _line_form(**changes: str) -> dict[str, str]:
    data = {
        "login_channel_id": "1650000001",
        "login_channel_secret": SECRET,
        "messaging_access_token": TOKEN,
    }
    data.update(changes)
    return data


def test_the_line_token_is_stored_encrypted_and_never_shown_again(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
) -> None:
    assert "まだ設定されていません" in client_a.get(LINE).content.decode()
    data = _line_form()
    assert client_a.post(LINE, data).status_code == 302
    with tenant_context(tenant_a):
        credentials = line_credentials()
        assert credentials is not None and credentials.messaging_access_token == TOKEN
        row = LineChannel.objects.get()
        assert TOKEN.encode() not in bytes(row.messaging_access_token)
    page = client_a.get(LINE).content.decode()
    assert "1650000001" in page and TOKEN not in page and SECRET not in page
    (event,) = events(tenant_a, "notification.line_channel_configured")
    assert TOKEN not in str(event.details) and SECRET not in str(event.details)


def test_a_bad_line_channel_is_refused_without_echoing_the_token(
    tenant_a: Municipality,
    client_a: Client,
    as_admin: Client,
) -> None:
    response = client_a.post(LINE, _line_form(login_channel_id="kodaira"))
    assert response.status_code == 400
    page = response.content.decode()
    assert "チャネルIDは数字です。" in page and TOKEN not in page and SECRET not in page
    missing = client_a.post(LINE, {"login_channel_id": "1650000001"})
    assert "チャネルアクセストークンを入力してください。" in missing.content.decode()
    with schema_context(tenant_a.schema_name):
        assert not LineChannel.objects.exists()


# --- Who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role_fixture", ["operator_a", "auditor_a", "venue_a"])
def test_only_an_admin_may_see_or_change_notifications(
    request: pytest.FixtureRequest,
    tenant_a: Municipality,
    client_a: Client,
    clock: time_machine.Coordinates,
    role_fixture: str,
) -> None:
    rows = _messages(tenant_a)
    signed_in_as_role(request, role_fixture, client_a, clock)
    assert '<a href="/console/notifications/">' not in client_a.get("/console/").content.decode()
    for path in (HOME, SETTINGS, LINE, HOME + "templates/", REMINDER_LINE_JA):
        assert client_a.get(path).status_code == 403
    assert client_a.post(HOME + f"{rows['line'].pk}/resend/").status_code == 403
    assert client_a.post(HOME + "pause/", {"action": "pause"}).status_code == 403
    assert client_a.post(SETTINGS, _settings_form()).status_code == 403
    assert client_a.post(REMINDER_LINE_JA, {"body": "明日です"}).status_code == 403
    assert client_a.post(LINE, _line_form(login_channel_id="1")).status_code == 403
    assert _status(tenant_a, rows["line"]) == "failed"
    assert _settings(tenant_a) is None
    with schema_context(tenant_a.schema_name):
        assert not NotificationTemplate.objects.exists() and not LineChannel.objects.exists()
    refused = events(tenant_a, "console.access_refused")[-1]
    assert refused.details["reason"] == "role"


def test_anonymous_visitors_are_sent_to_the_login(tenant_a: Municipality, client_a: Client) -> None:
    response = client_a.post(HOME + "pause/", {"action": "pause"})
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")
    assert _settings(tenant_a) is None


def test_the_admin_of_b_neither_sees_nor_touches_a(
    tenant_a: Municipality,
    tenant_b: Municipality,
    client_b: Client,
    admin_b: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    rows = _messages(tenant_a)
    signed_in(client_b, admin_b, clock)
    page = client_b.get(HOME).content.decode()
    assert "対応が必要なお知らせはありません" in page and "line.http_400" not in page
    # B's own resend of A's message id finds nothing in B.
    client_b.post(HOME + f"{rows['line'].pk}/resend/")
    assert _status(tenant_a, rows["line"]) == "failed"
    foreign = Client(HTTP_HOST="kodaira.localhost")
    foreign.cookies = client_b.cookies
    for response in (
        foreign.post(HOME + f"{rows['line'].pk}/resend/"),
        foreign.post(HOME + "pause/", {"action": "pause"}),
        foreign.post(SETTINGS, _settings_form()),
    ):
        assert response.status_code in (302, 403)
    assert _status(tenant_a, rows["line"]) == "failed"
    assert _settings(tenant_a) is None
    assert events(tenant_a, "notification.resent") == []


def test_the_section_reads_in_english(client_a: Client, as_admin: Client) -> None:
    client_a.post("/i18n/setlang/", {"language": "en", "next": "/console/"})
    page = client_a.get(HOME).content.decode()
    assert "Notifications" in page and "Pause sending" in page
    assert "通知" not in page and "一時停止" not in page
    settings_page = client_a.post(SETTINGS, _settings_form(reminder_time="25:00"))
    assert "Enter the reminder time as hours and minutes" in settings_page.content.decode()


def test_every_placeholder_has_its_words() -> None:
    from booking.services.notification_settings import PLACEHOLDER_LABELS, PLACEHOLDERS

    used = {name for names in PLACEHOLDERS.values() for name in names}
    assert used <= set(PLACEHOLDER_LABELS)


def test_the_admin_sees_how_many_of_tomorrows_bookings_no_reminder_reaches(
    tenant_a: Municipality, client_a: Client, as_admin: Client
) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    japan = ZoneInfo("Asia/Tokyo")
    tomorrow = timezone.localdate(timezone=japan) + timedelta(days=1)
    at_ten = datetime.combine(tomorrow, time(10, 0), tzinfo=japan)
    with tenant_context(tenant_a):
        slot = make_slot(at_ten)
        reached = make_voucher()
        set_contacts(reached, email=EMAIL)
        make_booking(reached, slot)
        for _resident in range(2):  # no contact at all
            make_booking(make_voucher(), slot)
        no_consent = make_voucher()
        set_contacts(no_consent, email=EMAIL)
        from booking.models import ContactPreference

        ContactPreference.objects.filter(voucher=no_consent.voucher).update(email_consented_at=None)
        make_booking(no_consent, slot)
        make_booking(make_voucher(), make_slot(at_ten + timedelta(days=1)))  # the day after
    page = client_a.get(HOME).content.decode()
    section = page.split('id="reminder-coverage"')[1].split("</section>")[0]
    assert "予約 4件のうち" in section and "前日のお知らせが届かない方：3件" in section
