"""First admin / invitation acceptance at /console/setup/<token>/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tenants.utils import schema_context

from audit.chain import Actor
from booking.console.totp import new_totp_key
from booking.models import StaffInvitation, StaffMember, StaffSession
from booking.services.staff import (
    InvitationRefused,
    IssuedInvitation,
    staff_invitation_accept,
    staff_invite,
)
from sesshu.devices import CONSOLE
from tenants.models import Municipality

from .conftest import code_for, events, same_page

GOOD_PASSWORD = "hinata-clinic-7430"
SECRET = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')


def invite(
    tenant: Municipality, email: str = "first@kodaira.example.jp", **kwargs
) -> IssuedInvitation:
    with schema_context(tenant.schema_name):
        return staff_invite(
            email=email, role="admin", invited_by=None, actor=Actor.system("tests"), **kwargs
        )


def key_from_page(body: str) -> str:
    """The hex key behind the base32 secret the page shows (what the person types in)."""
    from base64 import b32decode

    secret = SECRET.search(body).group(1).replace(" ", "")  # type: ignore[union-attr]
    padding = "=" * (-len(secret) % 8)
    return b32decode(secret + padding).hex()


def walk_to_device_step(client: Client, url: str) -> str:
    response = client.post(url, {"password1": GOOD_PASSWORD, "password2": GOOD_PASSWORD})
    assert response.status_code == 302 and response["Location"] == url
    page = client.get(url)
    assert page.status_code == 200
    return key_from_page(page.content.decode())


def test_the_first_admin_sets_a_password_registers_an_app_and_lands_on_the_console(
    tenant_a: Municipality, client_a: Client, clock: time_machine.Coordinates
) -> None:
    issued = invite(tenant_a)
    url = f"/console/setup/{issued.token}/"

    page = client_a.get(url)
    assert page.status_code == 200
    assert "first@kodaira.example.jp" in page.content.decode()
    assert "小平市" in page.content.decode()

    # Step 1: Django's password validators apply, with the error tied to the field.
    weak = client_a.post(url, {"password1": "1234567890", "password2": "1234567890"})
    assert weak.status_code == 400
    assert 'aria-describedby="id_password1_helptext id_password1_error"' in weak.content.decode()
    assert 'id="id_password1_error"' in weak.content.decode()

    # Step 2: the secret as text and as a QR image rendered on the server; no script.
    key = walk_to_device_step(client_a, url)
    body = client_a.get(url).content.decode()
    assert re.search(r'<img src="data:image/svg\+xml[^"]+" alt="[^"]+">', body)
    assert "<script" not in body and "style=" not in body
    assert (
        key not in body and 'type="hidden" name="key"' not in body
    )  # the secret stays server-side

    wrong = client_a.post(url, {"code": "000000" if code_for(key) != "000000" else "111111"})
    assert wrong.status_code == 400
    with schema_context(tenant_a.schema_name):
        assert (
            not StaffMember.objects.exists()
            or not StaffMember.objects.filter(user__username="first@kodaira.example.jp").exists()
        )

    done = client_a.post(url, {"code": code_for(key)})
    assert done.status_code == 302 and done["Location"] == "/console/"
    # The browser the account was set up in is one it has signed in from (the login
    # throttle's own allowance there).
    with schema_context(tenant_a.schema_name):
        assert CONSOLE.token(done.wsgi_request, "first@kodaira.example.jp") is None
        done.wsgi_request.COOKIES[CONSOLE.cookie] = done.cookies[CONSOLE.cookie].value
        assert CONSOLE.token(done.wsgi_request, "first@kodaira.example.jp")

    with schema_context(tenant_a.schema_name):
        invitation = StaffInvitation.objects.get(pk=issued.invitation.pk)
        staff = StaffMember.objects.select_related("user").get(
            user__username="first@kodaira.example.jp"
        )
        assert invitation.accepted_at is not None and invitation.accepted_user_id == staff.user_id
        assert staff.role == StaffMember.Role.ADMIN
        assert staff.user.check_password(GOOD_PASSWORD)
        assert TOTPDevice.objects.get(user=staff.user).confirmed
        assert StaffSession.objects.filter(user=staff.user).count() == 1
    [accepted] = events(tenant_a, "staff.invitation_accepted")
    assert accepted.actor_id == str(staff.user_id) and accepted.details["role"] == "admin"

    home = client_a.get("/console/")
    assert home.status_code == 200
    text = home.content.decode()
    assert "小平市" in text and "管理者" in text


def test_the_link_works_only_once(
    tenant_a: Municipality, client_a: Client, clock: time_machine.Coordinates
) -> None:
    issued = invite(tenant_a)
    url = f"/console/setup/{issued.token}/"
    key = walk_to_device_step(client_a, url)
    assert client_a.post(url, {"code": code_for(key)}).status_code == 302

    again = Client(HTTP_HOST="kodaira.localhost").get(url)
    assert again.status_code == 410
    assert "この招待リンクは使用できません" in again.content.decode()
    assert 'href="/console/login/"' in again.content.decode()  # the way on, once registered
    assert events(tenant_a, "staff.invitation_refused")[-1].details == {"reason": "used"}


def test_a_second_tab_cannot_finish_an_invitation_already_accepted(
    tenant_a: Municipality, client_a: Client, clock: time_machine.Coordinates
) -> None:
    issued = invite(tenant_a)
    url = f"/console/setup/{issued.token}/"
    other_tab = Client(HTTP_HOST="kodaira.localhost")
    key_first = walk_to_device_step(client_a, url)
    key_second = walk_to_device_step(other_tab, url)
    assert key_first != key_second

    assert client_a.post(url, {"code": code_for(key_first)}).status_code == 302
    late = other_tab.post(url, {"code": code_for(key_second)})
    assert late.status_code == 410
    with schema_context(tenant_a.schema_name):
        assert get_user_model().objects.filter(username="first@kodaira.example.jp").count() == 1
        assert TOTPDevice.objects.filter(user__username="first@kodaira.example.jp").count() == 1


def test_the_claim_lets_only_one_acceptance_through(
    tenant_a: Municipality, clock: time_machine.Coordinates
) -> None:
    issued = invite(tenant_a)
    with schema_context(tenant_a.schema_name):
        first = staff_invitation_accept(
            token=issued.token, password_hash=make_password(GOOD_PASSWORD), totp_key=new_totp_key()
        )
        with pytest.raises(InvitationRefused):
            staff_invitation_accept(
                token=issued.token,
                password_hash=make_password("another-password-9"),
                totp_key=new_totp_key(),
            )
        assert list(StaffMember.objects.values_list("pk", flat=True)) == [first.pk]
        assert TOTPDevice.objects.filter(user=first.user).count() == 1
    assert events(tenant_a, "staff.invitation_refused")[-1].details == {"reason": "used"}


def test_expired_used_and_unknown_links_get_the_same_page_and_status(
    tenant_a: Municipality, client_a: Client, clock: time_machine.Coordinates
) -> None:
    expiring = invite(tenant_a, email="late@kodaira.example.jp", ttl=timedelta(hours=1))
    used = invite(tenant_a, email="used@kodaira.example.jp")
    key = walk_to_device_step(client_a, f"/console/setup/{used.token}/")
    client_a.post(f"/console/setup/{used.token}/", {"code": code_for(key)})
    clock.shift(timedelta(hours=1, seconds=1))

    visitor = Client(HTTP_HOST="kodaira.localhost")
    pages = [
        visitor.get(f"/console/setup/{expiring.token}/"),
        visitor.get(f"/console/setup/{used.token}/"),
        visitor.get("/console/setup/not-a-real-token/"),
        visitor.post(f"/console/setup/{expiring.token}/", {"password1": GOOD_PASSWORD}),
    ]
    assert {page.status_code for page in pages} == {410}
    # The language switch in the header echoes the page's own address; the rest is equal.
    bodies = {same_page(page.content).replace(page.request["PATH_INFO"], "") for page in pages}
    assert len(bodies) == 1
    reasons = [event.details["reason"] for event in events(tenant_a, "staff.invitation_refused")]
    assert reasons[-4:] == ["expired", "used", "unknown", "expired"]


def test_an_invitation_of_one_municipality_means_nothing_in_another(
    tenant_a: Municipality, client_b: Client, clock: time_machine.Coordinates
) -> None:
    issued = invite(tenant_a)
    assert client_b.get(f"/console/setup/{issued.token}/").status_code == 410


def test_the_setup_state_of_one_invitation_does_not_carry_over_to_another(
    tenant_a: Municipality, client_a: Client, clock: time_machine.Coordinates
) -> None:
    first = invite(tenant_a, email="one@kodaira.example.jp")
    second = invite(tenant_a, email="two@kodaira.example.jp")
    walk_to_device_step(client_a, f"/console/setup/{first.token}/")
    # The same browser opening another link starts at the password again.
    page = client_a.get(f"/console/setup/{second.token}/")
    assert 'name="password1"' in page.content.decode()


def test_starting_over_discards_the_password_and_the_secret(
    tenant_a: Municipality, client_a: Client, clock: time_machine.Coordinates
) -> None:
    issued = invite(tenant_a)
    url = f"/console/setup/{issued.token}/"
    walk_to_device_step(client_a, url)
    assert client_a.post(url, {"action": "restart"}).status_code == 302
    assert 'name="password1"' in client_a.get(url).content.decode()
