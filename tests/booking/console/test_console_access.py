"""Who may use the console: sessions, timeouts, roles, other municipalities, the vendor."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from booking.models import StaffInvitation, StaffSession
from tenants.models import Municipality

from .conftest import StaffAccount, events, login, make_staff

IDLE = timedelta(seconds=settings.SESSHU_SESSION_IDLE_SECONDS)
ABSOLUTE = timedelta(seconds=settings.SESSION_COOKIE_AGE)


def logged_in(client: Client, account: StaffAccount, clock: time_machine.Coordinates) -> Client:
    clock.shift(30)  # a new TOTP step: the code of the setup (or a previous login) is spent
    assert login(client, account).status_code == 302
    return client


def test_an_anonymous_visitor_is_sent_to_the_login_page_and_audited(
    tenant_a: Municipality, client_a: Client
) -> None:
    response = client_a.get("/console/")
    assert response.status_code == 302
    assert response["Location"] == "/console/login/?next=/console/"
    refused = events(tenant_a, "console.access_refused")[-1]
    assert refused.actor_kind == "anonymous" and refused.details["reason"] == "anonymous"


def test_a_staff_member_sees_the_municipality_and_their_role(
    tenant_a: Municipality,
    client_a: Client,
    operator_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    page = logged_in(client_a, operator_a, clock).get("/console/").content.decode()
    assert "小平市" in page and "コールセンター" in page
    assert "職員アカウント" not in page and "職員を招待する" not in page  # admin only
    # What the call centre does, in this municipality's login mode (no resident passwords).
    said = "ログイン制限の解除" if tenant_a.login_mode == "voucher_dob" else "パスワードの再設定"
    assert said in page


def test_the_wrong_role_gets_403_and_an_audit_event(
    tenant_a: Municipality, client_a: Client, operator_a: StaffAccount, clock
) -> None:
    logged_in(client_a, operator_a, clock)
    response = client_a.post(
        "/console/staff/invite/", {"email": "new@kodaira.example.jp", "role": "admin"}
    )
    assert response.status_code == 403
    assert "この画面を表示する権限がありません" in response.content.decode()
    refused = events(tenant_a, "console.access_refused")[-1]
    assert refused.actor_kind == "staff" and refused.actor_id == str(operator_a.user_id)
    assert refused.details == {
        "path": "/console/staff/invite/",
        "reason": "role",
        "required_roles": ["admin"],
    }
    with schema_context(tenant_a.schema_name):
        assert not StaffInvitation.objects.filter(email="new@kodaira.example.jp").exists()


def test_an_idle_session_is_logged_out_and_activity_keeps_it_alive(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    key = client_a.cookies["sessionid"].value
    for _visit in range(3):  # each visit restarts the idle clock
        clock.shift(IDLE - timedelta(seconds=5))
        assert client_a.get("/console/").status_code == 200

    clock.shift(IDLE + timedelta(seconds=1))
    response = client_a.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")
    refused = events(tenant_a, "console.access_refused")[-1]
    assert refused.actor_id == str(admin_a.user_id) and refused.details["reason"] == "idle"
    with schema_context(tenant_a.schema_name):
        assert not Session.objects.filter(session_key=key).exists()
        assert not StaffSession.objects.filter(session_key=key).exists()
    page = client_a.get(response["Location"]).content.decode()
    assert "一定時間操作がなかったため" in page
    assert client_a.get("/console/").status_code == 302


def test_the_session_row_itself_expires_just_after_the_absolute_limit(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    key = client_a.cookies["sessionid"].value
    with schema_context(tenant_a.schema_name):
        expires = Session.objects.get(session_key=key).expire_date
    assert expires - timezone.now() <= ABSOLUTE + timedelta(minutes=1)
    client_a.get("/console/")  # activity does not push it further
    with schema_context(tenant_a.schema_name):
        assert Session.objects.get(session_key=key).expire_date == expires


def test_an_active_session_still_ends_at_the_absolute_limit(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    key = client_a.cookies["sessionid"].value
    elapsed = timedelta(0)
    step = IDLE - timedelta(seconds=60)
    while elapsed + step < ABSOLUTE:
        clock.shift(step)
        elapsed += step
        assert client_a.get("/console/").status_code == 200
    clock.shift(ABSOLUTE - elapsed)
    response = client_a.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")
    assert events(tenant_a, "console.access_refused")[-1].details["reason"] == "absolute"
    with schema_context(tenant_a.schema_name):
        assert not Session.objects.filter(session_key=key).exists()
    # The message says why, on the login page.
    page = client_a.get(response["Location"]).content.decode()
    assert "ログインしてから時間が経ったため" in page


def test_a_session_of_municipality_a_is_nothing_on_municipality_b(
    tenant_a: Municipality,
    tenant_b: Municipality,
    client_a: Client,
    client_b: Client,
    admin_a: StaffAccount,
    admin_b: StaffAccount,
    clock,
) -> None:
    logged_in(client_a, admin_a, clock)
    client_b.cookies["sessionid"] = client_a.cookies["sessionid"].value
    response = client_b.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith("/console/login/")
    # A's staff cannot log in on B with A's credentials either.
    clock.shift(30)
    assert login(Client(HTTP_HOST="chiyoda.localhost"), admin_a).status_code == 400
    with schema_context(tenant_b.schema_name):
        assert not Session.objects.filter(session_key=client_a.cookies["sessionid"].value).exists()


def test_a_vendor_operator_cannot_use_the_console(
    tenant_a: Municipality, client_a: Client, clock: time_machine.Coordinates
) -> None:
    # A vendor operator is an auth user of the public schema (the control plane).
    vendor = get_user_model().objects.create_user(
        username="operator@vendor.example", email="operator@vendor.example", password="x" * 12
    )
    platform = Client(HTTP_HOST=settings.SESSHU_PLATFORM_HOST)
    platform.force_login(vendor)  # a session in the public schema
    client_a.cookies["sessionid"] = platform.cookies["sessionid"].value
    assert client_a.get("/console/").status_code == 302
    # The console does not exist on the platform host at all.
    assert platform.get("/console/").status_code == 404
    # Nor do the vendor's credentials open it.
    response = client_a.post(
        "/console/login/",
        {"email": "operator@vendor.example", "password": "x" * 12, "code": "123456"},
    )
    assert response.status_code == 400
    assert events(tenant_a, "console.login_failed")[-1].details == {"reason": "unknown_account"}


def test_an_admin_ends_another_staff_members_sessions(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    operator_a: StaffAccount,
    clock,
) -> None:
    logged_in(client_a, admin_a, clock)
    desk = logged_in(Client(HTTP_HOST="kodaira.localhost"), operator_a, clock)
    laptop = logged_in(Client(HTTP_HOST="kodaira.localhost"), operator_a, clock)
    assert desk.get("/console/").status_code == 200 and laptop.get("/console/").status_code == 200

    page = client_a.get("/console/").content.decode()
    assert operator_a.email in page
    response = client_a.post(f"/console/staff/{operator_a.staff_id}/end-sessions/")
    assert response.status_code == 302 and response["Location"] == "/console/"

    assert desk.get("/console/").status_code == 302
    assert laptop.get("/console/").status_code == 302
    assert client_a.get("/console/").status_code == 200  # the admin's own session stays
    with schema_context(tenant_a.schema_name):
        assert not StaffSession.objects.filter(user_id=operator_a.user_id).exists()
    ended = events(tenant_a, "staff.sessions_ended")[-1]
    assert ended.actor_id == str(admin_a.user_id)
    assert ended.target_id == str(operator_a.user_id) and ended.details == {"sessions": 2}


def test_only_an_admin_ends_sessions(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    operator_a: StaffAccount,
    clock,
) -> None:
    admin_browser = logged_in(Client(HTTP_HOST="kodaira.localhost"), admin_a, clock)
    logged_in(client_a, operator_a, clock)
    response = client_a.post(f"/console/staff/{admin_a.staff_id}/end-sessions/")
    assert response.status_code == 403
    assert admin_browser.get("/console/").status_code == 200


def test_an_admin_invites_a_staff_member_and_the_link_is_shown_once(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    response = client_a.post(
        "/console/staff/invite/", {"email": "Venue@Kodaira.example.jp", "role": "venue"}
    )
    # Redirected (a reload of the page invites nobody twice), the link shown there once.
    assert response.status_code == 302 and response["Location"] == "/console/#invite-heading"
    page = client_a.get(response["Location"]).content.decode()
    assert "登録リンクをメールで送りました" in page  # and shown once, in case it does not arrive
    link = page.split('<code id="invitation-link">', 1)[1].split("</code>", 1)[0]
    assert link.startswith("http://kodaira.localhost/console/setup/")
    with schema_context(tenant_a.schema_name):
        invitation = StaffInvitation.objects.get(email="venue@kodaira.example.jp")
        assert invitation.role == "venue" and invitation.invited_by_id == admin_a.user_id
    # The home page lists the invitation, but never the link again (a reload included).
    home = client_a.get("/console/").content.decode()
    assert "venue@kodaira.example.jp" in home and link not in home
    with schema_context(tenant_a.schema_name):
        assert StaffInvitation.objects.filter(email="venue@kodaira.example.jp").count() == 1

    newcomer = Client(HTTP_HOST="kodaira.localhost")
    assert (
        "venue@kodaira.example.jp" in newcomer.get(link.split("localhost", 1)[1]).content.decode()
    )


def test_a_lone_admin_is_told_to_invite_a_second_one(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock
) -> None:
    """With one admin, a forgotten password leaves nobody to issue a reset link."""
    logged_in(client_a, admin_a, clock)
    assert 'id="lone-admin"' in client_a.get("/console/").content.decode()
    make_staff(tenant_a, "deputy@kodaira.example.jp", "admin")
    assert 'id="lone-admin"' not in client_a.get("/console/").content.decode()


def test_an_invitation_needs_a_role_chosen_on_purpose(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    response = client_a.post("/console/staff/invite/", {"email": "new@kodaira.example.jp"})
    assert response.status_code == 400
    assert 'id="id_role_error"' in response.content.decode()
    assert "役割を選んでください" in response.content.decode()
    with schema_context(tenant_a.schema_name):
        assert not StaffInvitation.objects.filter(email="new@kodaira.example.jp").exists()


def test_an_invitation_for_an_existing_account_is_refused(
    client_a: Client, admin_a: StaffAccount, operator_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    response = client_a.post("/console/staff/invite/", {"email": operator_a.email, "role": "venue"})
    assert response.status_code == 400
    assert "既にあります" in response.content.decode()


def test_a_second_invitation_to_an_address_already_invited_is_refused_until_withdrawn(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock
) -> None:
    """Two open links for one address would let whichever is opened first decide the role."""
    logged_in(client_a, admin_a, clock)
    email = "new@kodaira.example.jp"
    client_a.post("/console/staff/invite/", {"email": email, "role": "auditor"})
    again = client_a.post("/console/staff/invite/", {"email": email, "role": "admin"})
    assert again.status_code == 400
    assert "まだ使われていない招待があります（役割：監査担当）" in again.content.decode()
    with schema_context(tenant_a.schema_name):
        (invitation,) = StaffInvitation.objects.filter(email=email)
    client_a.post(f"/console/staff/invitations/{invitation.pk}/withdraw/")
    assert (
        client_a.post("/console/staff/invite/", {"email": email, "role": "admin"}).status_code
        == 302
    )
    with schema_context(tenant_a.schema_name):
        assert StaffInvitation.objects.filter(email=email).count() == 2


def test_the_residents_top_page_names_the_municipality_and_hides_the_console(
    client_a: Client, client_b: Client
) -> None:
    page_a = client_a.get("/")
    assert page_a.status_code == 200
    text = page_a.content.decode()
    assert "小平市" in text and "接種券" in text
    assert "/console" not in text
    assert "千代田区" in client_b.get("/").content.decode()
