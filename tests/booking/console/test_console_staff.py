"""Staff accounts from the admin's home page: invitations sent by e-mail (the link still
shown once), withdrawn invitations, and deactivating a staff member who leaves."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client
from django_tenants.utils import schema_context

from audit.chain import Actor
from booking.models import StaffInvitation, StaffMember, StaffSession
from booking.services.staff import StaffRefused, staff_deactivate, staff_invite
from tenants.models import Municipality

from .conftest import StaffAccount, events, login, make_staff

HOST = "kodaira.localhost"


def logged_in(client: Client, account: StaffAccount, clock: time_machine.Coordinates) -> Client:
    clock.shift(30)  # a new TOTP step: the code of the setup (or a previous login) is spent
    assert login(client, account).status_code == 302
    return client


def invite(client: Client, email: str = "venue@kodaira.example.jp", role: str = "venue") -> str:
    response = client.post("/console/staff/invite/", {"email": email, "role": role})
    assert response.status_code == 302, response.content.decode()[:500]
    return client.get(response["Location"]).content.decode()


def shown_link(page: str) -> str:
    return page.split('<code id="invitation-link">', 1)[1].split("</code>", 1)[0]


def pending(tenant: Municipality, email: str) -> StaffInvitation:
    with schema_context(tenant.schema_name):
        return StaffInvitation.objects.get(email=email)


def staff_of(tenant: Municipality, account: StaffAccount) -> StaffMember:
    with schema_context(tenant.schema_name):
        return StaffMember.objects.select_related("user").get(pk=account.staff_id)


def is_active(tenant: Municipality, account: StaffAccount) -> bool:
    with schema_context(tenant.schema_name):
        return get_user_model().objects.get(pk=account.user_id).is_active


# --- Invitations by e-mail ---------------------------------------------------------------------


def test_the_invitation_is_emailed_in_japanese_with_the_link_and_its_expiry(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    mail.outbox.clear()
    page = invite(client_a)
    link = shown_link(page)
    assert link.startswith("http://kodaira.localhost/console/setup/")
    assert "venue@kodaira.example.jp さんに、登録リンクをメールで送りました" in page
    assert "メールでの自動送信はまだ行っていない" not in page

    (message,) = mail.outbox
    assert message.to == ["venue@kodaira.example.jp"]
    assert "小平市" in message.subject and "招待" in message.subject
    assert link in message.body
    assert "会場スタッフ" in message.body
    # Three days from 09:30 on 11 May 2026, Tokyo time.
    assert "2026年5月14日 09:30（日本時間）まで有効です" in message.body
    emailed = events(tenant_a, "staff.invitation_emailed")[-1]
    assert emailed.details == {"sent": True}
    assert emailed.target_id == str(pending(tenant_a, "venue@kodaira.example.jp").pk)
    assert "venue@" not in str(emailed.details)


def test_when_the_mail_cannot_be_sent_the_admin_still_gets_the_link(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock, settings
) -> None:
    logged_in(client_a, admin_a, clock)
    # A real SMTP connection to a port nobody listens on.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    page = invite(client_a)
    assert "メールを送信できませんでした" in page
    assert shown_link(page).startswith("http://kodaira.localhost/console/setup/")
    assert events(tenant_a, "staff.invitation_emailed")[-1].details == {"sent": False}


# --- Withdrawing an invitation -------------------------------------------------------------------


def test_an_admin_withdraws_a_pending_invitation_and_its_link_stops_working(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    link = shown_link(invite(client_a))
    invitation = pending(tenant_a, "venue@kodaira.example.jp")
    assert "招待を取り消す" in client_a.get("/console/").content.decode()

    response = client_a.post(f"/console/staff/invitations/{invitation.pk}/withdraw/")
    assert response.status_code == 302 and response["Location"] == "/console/"
    home = client_a.get("/console/").content.decode()
    assert "venue@kodaira.example.jp さんへの招待を取り消しました" in home
    assert '<td class="mono">venue@kodaira.example.jp</td>' not in home  # no longer pending

    newcomer = Client(HTTP_HOST=HOST)
    assert newcomer.get(link.split("localhost", 1)[1]).status_code == 410
    withdrawn = events(tenant_a, "staff.invitation_withdrawn")[-1]
    assert withdrawn.actor_id == str(admin_a.user_id)
    assert withdrawn.target_id == str(invitation.pk) and withdrawn.details == {"role": "venue"}

    again = client_a.post(f"/console/staff/invitations/{invitation.pk}/withdraw/", follow=True)
    assert "この招待は既に使われたか、有効期限が切れています。" in again.content.decode()
    assert len(events(tenant_a, "staff.invitation_withdrawn")) == 1


def test_an_accepted_invitation_cannot_be_withdrawn(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, operator_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    with schema_context(tenant_a.schema_name):
        used = StaffInvitation.objects.get(email=operator_a.email)
    page = client_a.post(f"/console/staff/invitations/{used.pk}/withdraw/", follow=True)
    assert "この招待は既に使われたか、有効期限が切れています。" in page.content.decode()
    assert events(tenant_a, "staff.invitation_withdrawn") == []


@pytest.mark.parametrize("role", ["call_centre", "venue", "auditor"])
def test_only_an_admin_withdraws_invitations_or_deactivates_staff(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
    role: str,
) -> None:
    member = make_staff(tenant_a, f"{role}@kodaira.example.jp", role)
    with schema_context(tenant_a.schema_name):
        issued = staff_invite(
            email="next@kodaira.example.jp", role="venue", invited_by=None, actor=Actor.system("t")
        )
    logged_in(client_a, member, clock)
    withdraw = client_a.post(f"/console/staff/invitations/{issued.invitation.pk}/withdraw/")
    assert withdraw.status_code == 403
    assert "この画面を表示する権限がありません" in withdraw.content.decode()
    deactivate = client_a.post(f"/console/staff/{admin_a.staff_id}/deactivate/", {"confirm": "1"})
    assert deactivate.status_code == 403
    refused = [event.details["path"] for event in events(tenant_a, "console.access_refused")]
    assert refused[-2:] == [
        f"/console/staff/invitations/{issued.invitation.pk}/withdraw/",
        f"/console/staff/{admin_a.staff_id}/deactivate/",
    ]
    assert is_active(tenant_a, admin_a)
    with schema_context(tenant_a.schema_name):
        assert (
            StaffInvitation.objects.get(pk=issued.invitation.pk).expires_at
            > issued.invitation.created_at
        )
    assert events(tenant_a, "staff.invitation_withdrawn") == []
    assert events(tenant_a, "staff.deactivated") == []


# --- Deactivating a staff member who leaves ------------------------------------------------------


def test_an_admin_deactivates_a_leaver_who_is_logged_out_everywhere_and_cannot_log_in(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    operator_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    logged_in(client_a, admin_a, clock)
    desk = logged_in(Client(HTTP_HOST=HOST), operator_a, clock)
    laptop = logged_in(Client(HTTP_HOST=HOST), operator_a, clock)

    # Asked first, on a page of the console like the others (its name, its menu).
    asked = client_a.get(f"/console/staff/{operator_a.staff_id}/deactivate/").content.decode()
    assert "<title>アカウントを無効にする | " in asked and 'class="console-nav"' in asked
    response = client_a.post(f"/console/staff/{operator_a.staff_id}/deactivate/", {"confirm": "1"})
    assert response.status_code == 302 and response["Location"] == "/console/"
    home = client_a.get("/console/").content.decode()
    assert "call@kodaira.example.jp のアカウントを無効にしました" in home
    assert "無効（退職・異動）" in home

    assert laptop.get("/console/").status_code == 302
    # The next click says the login has ended (not a bare login page).
    told = desk.get("/console/", follow=True).content.decode()
    assert "このログインは終了しています" in told
    assert not is_active(tenant_a, operator_a)
    with schema_context(tenant_a.schema_name):
        assert not StaffSession.objects.filter(user_id=operator_a.user_id).exists()
    clock.shift(30)
    again = login(Client(HTTP_HOST=HOST), operator_a)
    assert again.status_code == 400
    assert events(tenant_a, "console.login_failed")[-1].details == {"reason": "inactive"}

    deactivated = events(tenant_a, "staff.deactivated")[-1]
    assert deactivated.actor_id == str(admin_a.user_id)
    assert deactivated.target_id == str(operator_a.user_id)
    assert deactivated.details == {"role": "call_centre", "sessions": 2}
    assert client_a.get("/console/").status_code == 200  # the admin's own session stays


def test_an_admin_cannot_deactivate_themselves(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    page = client_a.post(
        f"/console/staff/{admin_a.staff_id}/deactivate/", {"confirm": "1"}, follow=True
    )
    assert "自分自身のアカウントを無効にすることはできません。" in page.content.decode()
    assert is_active(tenant_a, admin_a)
    assert client_a.get("/console/").status_code == 200
    assert events(tenant_a, "staff.deactivated") == []


def test_the_last_active_admin_cannot_be_deactivated(
    tenant_a: Municipality, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    second = make_staff(tenant_a, "kanri2@kodaira.example.jp", StaffMember.Role.ADMIN)
    first_admin = staff_of(tenant_a, admin_a)
    second_admin = staff_of(tenant_a, second)
    with schema_context(tenant_a.schema_name):
        # Two admins remove each other at the same moment: the second request, made by an
        # admin who is already deactivated, would leave nobody.
        staff_deactivate(staff=first_admin, by=second_admin)
        with pytest.raises(StaffRefused) as refused:
            staff_deactivate(staff=second_admin, by=first_admin)
    assert refused.value.code == "last_admin"
    assert refused.value.message == "最後の管理者のアカウントは無効にできません。"
    assert is_active(tenant_a, second) and not is_active(tenant_a, admin_a)


def test_a_deactivated_admin_can_no_longer_deactivate_anyone(
    tenant_a: Municipality,
    admin_a: StaffAccount,
    operator_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    second = make_staff(tenant_a, "kanri2@kodaira.example.jp", StaffMember.Role.ADMIN)
    first_admin = staff_of(tenant_a, admin_a)
    with schema_context(tenant_a.schema_name):
        staff_deactivate(staff=first_admin, by=staff_of(tenant_a, second))
        with pytest.raises(PermissionDenied):
            staff_deactivate(staff=staff_of(tenant_a, operator_a), by=first_admin)
    assert is_active(tenant_a, operator_a)


def test_deactivating_asks_first(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, operator_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    home = client_a.get("/console/").content.decode()
    assert (
        f'href="/console/staff/{operator_a.staff_id}/deactivate/"' in home
    )  # a link, not a button
    ask = client_a.get(f"/console/staff/{operator_a.staff_id}/deactivate/").content.decode()
    assert "のアカウントを無効にしますか" in ask and 'name="confirm"' in ask
    unconfirmed = client_a.post(f"/console/staff/{operator_a.staff_id}/deactivate/")
    assert unconfirmed.status_code == 400 and is_active(tenant_a, operator_a)


def test_a_colleague_locked_out_is_set_up_again_with_a_reset_link(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    operator_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    """A forgotten password or a lost phone, or an account disabled by mistake: the admin
    issues a single-use link; with it the colleague sets a new password and authenticator,
    the old ones stop working and the account is enabled again."""
    from tests.booking.console.test_console_setup import GOOD_PASSWORD, walk_to_device_step

    from .conftest import code_for

    logged_in(client_a, admin_a, clock)
    client_a.post(f"/console/staff/{operator_a.staff_id}/deactivate/", {"confirm": "1"})
    assert not is_active(tenant_a, operator_a)
    home = client_a.get("/console/").content.decode()
    assert "再設定して有効に戻す" in home
    reset_url = f"/console/staff/{operator_a.staff_id}/reset/"
    issued = client_a.post(reset_url)
    assert issued.status_code == 302 and issued["Location"] == reset_url
    first = client_a.get(reset_url).content.decode()
    # Reloading the page that showed the link neither shows it again nor issues another
    # (which would withdraw the one just handed over).
    reloaded = client_a.get(reset_url).content.decode()
    assert 'id="reset-link"' not in reloaded
    assert len(events(tenant_a, "staff.reset_issued")) == 1
    second = client_a.post(reset_url, follow=True).content.decode()
    links = [shown_link_of_reset(page) for page in (first, second)]
    assert "一度だけ表示されます" in second
    # The link not yet used is listed, and can be withdrawn, as an invitation is.
    unused = client_a.get("/console/").content.decode().split("使われていない招待")[-1]
    assert unused.count("（パスワード・認証アプリの再設定）") == 1

    colleague = Client(HTTP_HOST=HOST)
    assert colleague.get(links[0]).status_code == 410  # the earlier link stopped working
    page = colleague.get(links[1]).content.decode()
    assert "職員アカウントの再設定" in page and "call@kodaira.example.jp" in page
    key = walk_to_device_step(colleague, links[1])
    clock.shift(30)
    done = colleague.post(links[1], {"code": code_for(key)})
    assert done.status_code == 302 and done["Location"] == "/console/"
    assert is_active(tenant_a, operator_a)
    with schema_context(tenant_a.schema_name):
        user = get_user_model().objects.get(pk=operator_a.user_id)
        assert user.check_password(GOOD_PASSWORD)
        from django_otp.plugins.otp_totp.models import TOTPDevice

        assert [device.key for device in TOTPDevice.objects.filter(user=user)] == [key]
        assert StaffMember.objects.filter(user=user).count() == 1
    assert len(events(tenant_a, "staff.reset_issued")) == 2
    assert events(tenant_a, "staff.invitation_accepted")[-1].details["reset"] is True
    # An admin does not reset their own account (another admin does).
    own = client_a.post(f"/console/staff/{admin_a.staff_id}/reset/", follow=True)
    assert "自分自身の再設定リンクは発行できません" in own.content.decode()


def shown_link_of_reset(page: str) -> str:
    import re

    match = re.search(r'<code id="reset-link">https?://[^/]+(/console/setup/[^/<]+/)</code>', page)
    assert match, page[:2000]
    return match.group(1)


def test_disabling_an_account_withdraws_its_reset_link(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, operator_a: StaffAccount, clock
) -> None:
    logged_in(client_a, admin_a, clock)
    page = client_a.post(f"/console/staff/{operator_a.staff_id}/reset/", follow=True)
    link = shown_link_of_reset(page.content.decode())
    client_a.post(f"/console/staff/{operator_a.staff_id}/deactivate/", {"confirm": "1"})
    assert Client(HTTP_HOST=HOST).get(link).status_code == 410  # it would enable it again


def test_an_admin_changes_a_colleague_s_role_and_not_their_own(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    """Moved from a venue to the call centre: the role changes (no new address, no second
    account); the venues assigned go with the old role; one's own role is not changed."""
    from booking.models import Venue

    venue_a = make_staff(tenant_a, "kaijo@kodaira.example.jp", "venue")
    with schema_context(tenant_a.schema_name):
        gym = Venue.objects.create(name="小平市民総合体育館", area="南地区", address="小平市")
        StaffMember.objects.get(pk=venue_a.staff_id).venues.set([gym])
    logged_in(client_a, admin_a, clock)
    url = f"/console/staff/{venue_a.staff_id}/role/"
    page = client_a.get(url).content.decode()
    assert "いまの役割：会場スタッフ" in page and 'name="role"' in page
    changed = client_a.post(url, {"role": "call_centre"})
    assert changed.status_code == 302
    assert "の役割を「コールセンター」にしました" in client_a.get("/console/").content.decode()
    with schema_context(tenant_a.schema_name):
        member = StaffMember.objects.get(pk=venue_a.staff_id)
        assert member.role == "call_centre" and not member.venues.exists()
    (event,) = events(tenant_a, "staff.role_changed")
    assert event.details == {"previous_role": "venue", "role": "call_centre", "venues_cleared": 1}
    trail = client_a.get("/console/trail/").content.decode()
    assert (
        "職員の役割の変更" in trail
        and "変更前の役割（previous_role）: 会場スタッフ（venue）" in trail
    )
    assert event.target_id == str(venue_a.user_id)
    own = client_a.post(f"/console/staff/{admin_a.staff_id}/role/", {"role": "auditor"})
    assert "自分自身の役割は変更できません" in client_a.get(own["Location"]).content.decode()
    with schema_context(tenant_a.schema_name):
        assert StaffMember.objects.get(pk=admin_a.staff_id).role == "admin"
    assert client_a.post(url, {"role": "owner"}).status_code == 400
