"""Incident mode: one confirmed action by an admin; resident logins stop, the console goes on."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.db import DatabaseError, transaction
from django.test import Client
from django_tenants.utils import schema_context, tenant_context

from audit.chain import Actor
from audit.platform.models import PlatformEvent
from booking.models import Incident, Notification, ResidentCredential, ResidentSession
from booking.resident.services import SiteClosed, resident_login_birth_date
from booking.services.notifications import contact_preferences_update
from tenants.models import Municipality
from tests.booking.booking.conftest import years_ago
from tests.booking.console.callcentre.cast import (
    CALL_CENTRE_HOME,
    Town,
    confirm_identity,
    give_password,
    live_bookings,
    resident_session,
    set_login_mode,
    signed_in,
    signed_in_as_role,
    status_of,
)
from tests.booking.console.conftest import StaffAccount, events
from tests.booking.console.incident.conftest import NOTICE, SECURITY, signed_in_in_mode, start


def consent_by_email(tenant: Municipality, town: Town) -> None:
    with tenant_context(tenant):
        contact_preferences_update(
            voucher=town.hanako,
            email="hanako@example.jp",
            phone=None,
            channels=["email"],
            language="ja",
            actor=Actor.resident(town.hanako.pk),
            ip=None,
        )


def test_the_admin_starts_incident_mode_in_one_action(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    set_login_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB_THEN_PASSWORD)
    give_password(tenant_a, town.hanako)
    give_password(tenant_a, town.namesake)
    session_key = resident_session(tenant_a, town.hanako)
    consent_by_email(tenant_a, town)
    signed_in(client_a, admin_a, clock)
    assert "インシデントモードを開始する" in client_a.get(SECURITY).content.decode()

    response = start(client_a)
    assert response.status_code == 302
    assert status_of(tenant_a) == Municipality.Status.INCIDENT
    with schema_context(tenant_a.schema_name):
        incident = Incident.objects.get()
        assert incident.notice == NOTICE and incident.ended_at is None
        assert Incident.current_notice() == NOTICE
        assert not ResidentCredential.objects.exclude(password="").exists()
        assert not Session.objects.filter(session_key=session_key).exists()
        assert not ResidentSession.objects.exists()
        [notice] = Notification.objects.filter(kind="incident_notice")
        assert notice.voucher_id == town.hanako.pk and notice.booking_id is None
        assert notice.channel == "email" and notice.context == {"notice": NOTICE}
    assert (incident.passwords_reset, incident.sessions_ended, incident.notices_queued) == (2, 1, 1)
    started = events(tenant_a, "incident.started")[-1]
    assert started.actor_id == str(admin_a.user_id)
    assert started.details["passwords_reset"] == 2 and started.details["notices_queued"] == 1
    assert started.details["notice"] == NOTICE  # what residents were told, in the trail
    with schema_context("public"):
        platform = PlatformEvent.objects.filter(action="municipality.incident_started").last()
        assert platform is not None and platform.target_id == str(tenant_a.pk)
        # The vendor's trail names the municipality's staff member who started it.
        assert platform.actor_id == f"municipal-console staff:{admin_a.user_id}"
    page = client_a.get(SECURITY).content.decode()
    assert "インシデントモード中" in page and NOTICE in page
    assert 'id="notifications-paused"' not in page
    # A resident reading English is told what matters in English, then given the notice
    # as the municipality wrote it, marked as Japanese.
    english = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    english.cookies["django_language"] = "en"
    top = english.get("/").content.decode().split('id="incident-notice"')[1].split("</div>")[0]
    assert "Logging in to this site is stopped for now. The call centre can" in top
    assert f'<span lang="ja">{NOTICE}</span>' in top
    # Messages paused meanwhile hold the incident's notice too: the page says so.
    client_a.post("/console/notifications/pause/", {"action": "pause"})
    page = client_a.get(SECURITY).content.decode()
    assert "インシデントのお知らせも、送信待ちのまま住民には届いていません" in page


def test_incident_mode_stops_resident_logins_and_the_console_keeps_working(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    operator_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in_in_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB, client_a, admin_a, clock)
    start(client_a)

    with tenant_context(Municipality.objects.get(pk=tenant_a.pk)), pytest.raises(SiteClosed):
        resident_login_birth_date(
            voucher_number="2000000001", birth_date=years_ago(70), ip="192.0.2.1"
        )
    # Whose letter was tried is in the trail (nothing secret was checked).
    tried = events(tenant_a, "resident.login_failed")[-1]
    assert tried.details["reason"] == "site_closed"
    assert tried.target_id == str(town.hanako.pk)
    home = client_a.get("/console/")
    assert home.status_code == 200
    # Every page says residents are shut out; the home page does not say they can book.
    page = home.content.decode()
    assert 'id="incident-banner"' in page and "住民が予約できる状態です" not in page
    assert "インシデントモード中のため、住民はいまログイン・予約ができません" in page

    operator = signed_in(Client(HTTP_HOST="kodaira.localhost"), operator_a, clock)
    search = operator.get(CALL_CENTRE_HOME).content.decode()
    assert 'id="incident-banner"' in search and "インシデント対応の画面へ" not in search
    confirm_identity(operator, town.hanako)
    booked = operator.post(
        f"{CALL_CENTRE_HOME}residents/{town.hanako.pk}/book/", {"slot": town.call_slot.pk}
    )
    assert booked.status_code == 302
    assert len(live_bookings(tenant_a, town.hanako)) == 1


def test_ending_incident_mode_reopens_the_resident_site(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in_in_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB, client_a, admin_a, clock)
    start(client_a)
    assert client_a.post(SECURITY + "incident/end/", {}).status_code == 400
    assert status_of(tenant_a) == Municipality.Status.INCIDENT

    assert client_a.post(SECURITY + "incident/end/", {"confirm": "on"}).status_code == 302
    assert status_of(tenant_a) == Municipality.Status.ACTIVE
    assert 'id="incident-banner"' not in client_a.get("/console/").content.decode()
    with schema_context(tenant_a.schema_name):
        assert Incident.objects.get().ended_at is not None
        assert Incident.current_notice() == ""
    ended = events(tenant_a, "incident.ended")[-1]
    assert ended.actor_id == str(admin_a.user_id) and ended.details["status_reopened"] is True
    with tenant_context(Municipality.objects.get(pk=tenant_a.pk)):
        result = resident_login_birth_date(
            voucher_number="2000000001", birth_date=years_ago(70), ip="192.0.2.1"
        )
    assert result.voucher.pk == town.hanako.pk


def test_starting_needs_the_confirmation_and_a_notice(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, admin_a, clock)
    unconfirmed = start(client_a, confirm=False)
    assert unconfirmed.status_code == 400
    assert "確認のチェックを入れてください" in unconfirmed.content.decode()
    assert "この項目を入力してください" not in unconfirmed.content.decode()
    assert start(client_a, notice="").status_code == 400
    assert start(client_a, notice="あ" * 401).status_code == 400
    assert status_of(tenant_a) == Municipality.Status.ACTIVE
    assert events(tenant_a, "incident.started") == []


def test_starting_twice_is_refused(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_a, admin_a, clock)
    start(client_a)
    response = start(client_a)
    assert response.status_code == 302
    assert "開始できません" in client_a.get(SECURITY).content.decode()
    with schema_context(tenant_a.schema_name):
        assert Incident.objects.count() == 1


@pytest.mark.parametrize("role_fixture", ["operator_a", "auditor_a", "venue_a"])
def test_only_an_admin_can_enter_incident_mode(
    request: pytest.FixtureRequest,
    tenant_a: Municipality,
    client_a: Client,
    town: Town,
    clock: time_machine.Coordinates,
    role_fixture: str,
) -> None:
    account = signed_in_as_role(request, role_fixture, client_a, clock)
    assert client_a.get(SECURITY).status_code == 403
    assert start(client_a).status_code == 403
    assert client_a.post(SECURITY + "incident/end/", {"confirm": "on"}).status_code == 403
    assert status_of(tenant_a) == Municipality.Status.ACTIVE
    refused = events(tenant_a, "console.access_refused")[-1]
    assert refused.details["reason"] == "role" and refused.actor_id == str(account.user_id)


def test_the_municipality_row_is_written_from_the_public_role_only(
    tenant_a: Municipality, town: Town
) -> None:
    """Why the service leaves the tenant context for the status: the tenant role cannot."""
    with tenant_context(tenant_a), pytest.raises(DatabaseError), transaction.atomic():
        Municipality.objects.filter(pk=tenant_a.pk).update(status="incident")
    assert status_of(tenant_a) == Municipality.Status.ACTIVE


def test_the_admin_of_b_cannot_touch_a(
    tenant_a: Municipality,
    tenant_b: Municipality,
    client_b: Client,
    admin_b: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in(client_b, admin_b, clock)
    start(client_b)
    assert status_of(tenant_b) == Municipality.Status.INCIDENT
    assert status_of(tenant_a) == Municipality.Status.ACTIVE
    with schema_context(tenant_a.schema_name):
        assert not Incident.objects.exists()
    foreign = Client(HTTP_HOST="kodaira.localhost")
    foreign.cookies = client_b.cookies
    response = foreign.post(SECURITY + "incident/start/", {"notice": NOTICE, "confirm": "on"})
    assert response.status_code in (302, 403)
    assert status_of(tenant_a) == Municipality.Status.ACTIVE


def test_a_suspension_in_incident_mode_resumes_into_incident_mode(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    """The platform suspends a municipality in incident mode and resumes it: the resident
    site stays closed until the municipality ends its incident, and ending it while
    suspended makes the resumption reopen the site."""
    from booking.models import StaffMember
    from booking.services.incident import incident_end
    from tenants.services import municipality_resume, municipality_suspend

    operator = Actor.system("tests")
    signed_in_in_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB, client_a, admin_a, clock)
    start(client_a)
    suspended = municipality_suspend(municipality=tenant_a, actor=operator, reason="調査のため")
    assert suspended.suspended_from == Municipality.Status.INCIDENT
    assert suspended.suspension_reason == "調査のため" and suspended.suspended_at is not None
    resumed = municipality_resume(municipality=suspended, actor=operator)
    assert resumed.status == Municipality.Status.INCIDENT
    assert (resumed.suspended_from, resumed.suspension_reason) == ("", "")
    with tenant_context(Municipality.objects.get(pk=tenant_a.pk)), pytest.raises(SiteClosed):
        resident_login_birth_date(
            voucher_number="2000000001", birth_date=years_ago(70), ip="192.0.2.1"
        )

    suspended = municipality_suspend(municipality=resumed, actor=operator)
    with tenant_context(Municipality.objects.get(pk=tenant_a.pk)):
        incident_end(staff=StaffMember.objects.get(user_id=admin_a.user_id), ip=None)
    assert status_of(tenant_a) == Municipality.Status.SUSPENDED  # the platform's to lift
    resumed = municipality_resume(municipality=suspended, actor=operator)
    assert resumed.status == Municipality.Status.ACTIVE


def test_ending_tells_the_residents_who_were_told_of_the_incident(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in_in_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB, client_a, admin_a, clock)
    consent_by_email(tenant_a, town)
    start(client_a)
    page = client_a.get(SECURITY).content.decode()
    assert "受付を再開しました" in page  # the reopening notice, offered to be sent
    response = client_a.post(
        SECURITY + "incident/end/", {"confirm": "on", "notice": "再開しました。"}, follow=True
    )
    assert "再開のお知らせ1件を送信待ちにしました" in response.content.decode()
    with schema_context(tenant_a.schema_name):
        stopped, reopened = Notification.objects.filter(kind="incident_notice").order_by("id")
        assert reopened.voucher_id == town.hanako.pk and reopened.context == {
            "notice": "再開しました。"
        }
        assert stopped.dedupe_key != reopened.dedupe_key
    ended = events(tenant_a, "incident.ended")[-1]
    assert ended.details["notices_queued"] == 1
    assert ended.details["reopening_notice"] == "再開しました。"


def test_ending_without_a_reopening_notice_sends_none(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    signed_in_in_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB, client_a, admin_a, clock)
    consent_by_email(tenant_a, town)
    start(client_a)
    client_a.post(SECURITY + "incident/end/", {"confirm": "on", "notice": "  "})
    assert status_of(tenant_a) == Municipality.Status.ACTIVE
    with schema_context(tenant_a.schema_name):
        assert Notification.objects.filter(kind="incident_notice").count() == 1


def test_without_passwords_the_pages_do_not_speak_of_them(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    """Voucher number and birth date: residents have no password to forget or reset."""
    signed_in_in_mode(tenant_a, Municipality.LoginMode.VOUCHER_DOB, client_a, admin_a, clock)
    before = client_a.get(SECURITY).content.decode()
    start_section = before.split('id="start-heading"')[1].split("</form>")[0]
    assert "パスワードを無効" not in start_section and "パスワードの再設定" not in start_section
    assert "住民のパスワードはありません" in start_section
    done = start(client_a)
    page = client_a.get(done["Location"]).content.decode()
    assert "セッション" in page and "パスワード0件" not in page
    assert "無効にしたパスワード" not in page


def test_the_page_warns_when_residents_would_be_sent_to_a_call_centre_without_a_number(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    town: Town,
    clock: time_machine.Coordinates,
) -> None:
    from booking.models import BookingPolicy

    signed_in(client_a, admin_a, clock)
    with schema_context(tenant_a.schema_name):
        assert BookingPolicy.current().call_centre_phone  # the town's
    assert 'id="no-call-centre-phone"' not in client_a.get(SECURITY).content.decode()
    with schema_context(tenant_a.schema_name):
        BookingPolicy.objects.update(call_centre_phone="")
    page = client_a.get(SECURITY).content.decode()
    warning = page.split('id="no-call-centre-phone"')[1]
    assert "コールセンターの電話番号が設定されていません" in warning
