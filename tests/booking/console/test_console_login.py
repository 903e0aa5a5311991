"""Console login: one form (address, password, TOTP code), one answer for every failure."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.contrib.sessions.models import Session
from django.test import Client, override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tenants.utils import schema_context

from booking.models import StaffSession
from booking.services import staff
from booking.services.staff import LOGIN_ACCOUNT_LIMIT, LOGIN_IP_LIMIT
from sesshu.devices import CONSOLE
from sesshu.outages import ProcessCounters
from tenants.models import Municipality
from tests.conftest import host_of
from tests.redis_outage import closed_port, redis_at

from .conftest import (
    PASSWORD,
    StaffAccount,
    code_for,
    events,
    login,
    make_plain_user,
    make_staff,
    same_page,
)


class CountingHasher(MD5PasswordHasher):
    """A real (fast) hasher that counts how often a password is hashed or checked."""

    algorithm = "counting_md5"
    calls = 0

    def encode(self, password: str, salt: str) -> str:
        type(self).calls += 1
        return super().encode(password, salt)


COUNTING = [f"{CountingHasher.__module__}.CountingHasher"]


def test_a_staff_member_logs_in_with_a_new_session_id(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    with schema_context(tenant_a.schema_name):
        from sesshu.session_store import SessionStore

        before = SessionStore()
        before["planted"] = True
        before.create()
    client_a.cookies["sessionid"] = before.session_key
    clock.shift(30)

    response = login(client_a, admin_a)

    assert response.status_code == 302 and response["Location"] == "/console/"
    after = client_a.cookies["sessionid"].value
    assert after != before.session_key
    with schema_context(tenant_a.schema_name):
        assert not Session.objects.filter(session_key=before.session_key).exists()
        assert StaffSession.objects.filter(session_key=after, user_id=admin_a.user_id).exists()
    [succeeded] = events(tenant_a, "console.login_succeeded")
    assert succeeded.actor_kind == "staff" and succeeded.actor_id == str(admin_a.user_id)
    assert client_a.get("/console/").status_code == 200


def test_login_returns_to_the_page_asked_for_but_never_elsewhere(
    client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    clock.shift(30)
    data = {"next": "https://evil.example/console/"}
    response = login(client_a, admin_a, **data)
    assert response["Location"] == "/console/"


def test_each_role_signs_in_to_its_own_work_page_unless_another_was_asked_for(
    tenant_a: Municipality, clock: time_machine.Coordinates
) -> None:
    """An operator starts at the search (the caller is on the line), venue staff at
    reception; a page asked for (a link from before the sign-in) comes first."""
    for email, role, landing in (
        ("desk@kodaira.example.jp", "call_centre", "/console/callcentre/"),
        ("door@kodaira.example.jp", "venue", "/console/reception/"),
        ("boss@kodaira.example.jp", "admin", "/console/"),
    ):
        account = make_staff(tenant_a, email, role)
        clock.shift(30)
        response = login(Client(HTTP_HOST="kodaira.localhost"), account)
        assert response["Location"] == landing, role
    clock.shift(30)
    asked = login(Client(HTTP_HOST="kodaira.localhost"), account, next="/console/planning/reports/")
    assert asked["Location"] == "/console/planning/reports/"


def test_every_failure_gives_the_same_page_and_status(
    tenant_a: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    clock.shift(30)
    no_device = make_staff(tenant_a, "nodevice@kodaira.example.jp", "venue")
    with schema_context(tenant_a.schema_name):
        TOTPDevice.objects.filter(user_id=no_device.user_id).update(confirmed=False)
    not_staff = make_plain_user(tenant_a, "resident-like@kodaira.example.jp")
    inactive = make_staff(tenant_a, "left@kodaira.example.jp", "venue")
    with schema_context(tenant_a.schema_name):
        get_user_model().objects.filter(pk=inactive.user_id).update(is_active=False)
    wrong_code = f"{(int(code_for(admin_a.key)) + 500000) % 1000000:06d}"

    attempts = {
        "unknown_account": {"email": "nobody@kodaira.example.jp"},
        "wrong_password": {"password": "not-the-password-1"},
        "wrong_code": {"code": wrong_code},
        "no_device": {"email": no_device.email},
        "not_staff": {"email": not_staff.username},
        "inactive": {"email": inactive.email, "code": code_for(inactive.key)},
        "malformed": {"email": "not an address", "code": "12"},
    }
    pages = {kind: login(client_a, admin_a, **data) for kind, data in attempts.items()}

    assert {page.status_code for page in pages.values()} == {400}
    bodies = {same_page(page.content) for page in pages.values()}
    assert len(bodies) == 1
    body = bodies.pop()
    assert "メールアドレス、パスワード、認証コードのいずれかが正しくありません。" in body
    assert admin_a.email not in body  # nothing typed is echoed back
    assert "sessionid" not in client_a.cookies

    failed = events(tenant_a, "console.login_failed")
    assert [event.details["reason"] for event in failed] == [
        "unknown_account",
        "wrong_password",
        "wrong_code",
        "no_device",
        "not_staff",
        "inactive",
        "unknown_account",
    ]
    assert failed[1].target_id == str(admin_a.user_id)
    for event in failed:
        assert event.actor_kind == "anonymous"
        flat = repr(event.details) + event.target_id
        assert "@" not in flat and PASSWORD not in flat


def test_a_code_is_accepted_only_once(
    client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    clock.shift(30)
    assert login(client_a, admin_a).status_code == 302
    replay = login(Client(HTTP_HOST="kodaira.localhost"), admin_a)
    assert replay.status_code == 400


def test_the_account_throttle_stops_attempts_before_the_password_is_hashed(
    tenant_a: Municipality, client_a: Client, clock: time_machine.Coordinates
) -> None:
    with override_settings(PASSWORD_HASHERS=COUNTING):
        account = make_staff(tenant_a, "target@kodaira.example.jp", "admin")
        clock.shift(30)
        CountingHasher.calls = 0
        for _attempt in range(LOGIN_ACCOUNT_LIMIT):
            assert login(client_a, account, password="guess-guess-1").status_code == 400
        assert CountingHasher.calls == LOGIN_ACCOUNT_LIMIT

        # Even the right password and code are not checked now: no hash, same refusal.
        throttled = login(client_a, account)
        assert throttled.status_code == 429
        assert "15分ほど止めています" in throttled.content.decode()
        assert CountingHasher.calls == LOGIN_ACCOUNT_LIMIT
        assert "sessionid" not in client_a.cookies
        assert events(tenant_a, "console.login_failed")[-1].details == {
            "reason": "throttled",
            "limit": "account",
        }

        # An unknown address is throttled exactly like a real one (no enumeration).
        for _attempt in range(LOGIN_ACCOUNT_LIMIT):
            login(client_a, account, email="ghost@kodaira.example.jp")
        assert login(client_a, account, email="ghost@kodaira.example.jp").status_code == 429


def test_the_ip_throttle_stops_a_walk_over_many_addresses(
    tenant_a: Municipality, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    clock.shift(30)
    attacker = Client(HTTP_HOST="kodaira.localhost", REMOTE_ADDR="203.0.113.7")
    with override_settings(PASSWORD_HASHERS=COUNTING):
        CountingHasher.calls = 0
        for number in range(LOGIN_IP_LIMIT):
            response = login(attacker, admin_a, email=f"guess{number}@kodaira.example.jp")
            assert response.status_code == 400
        hashed = CountingHasher.calls
        assert login(attacker, admin_a).status_code == 429
        assert CountingHasher.calls == hashed
    # Someone else, elsewhere, still gets in.
    elsewhere = Client(HTTP_HOST="kodaira.localhost", REMOTE_ADDR="198.51.100.20")
    assert login(elsewhere, admin_a).status_code == 302


def test_a_success_gives_its_attempt_back(
    client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    for _round in range(LOGIN_ACCOUNT_LIMIT + 2):
        clock.shift(30)
        assert login(Client(HTTP_HOST="kodaira.localhost"), admin_a).status_code == 302


@pytest.mark.parametrize("method", ["get", "head"])
def test_logout_is_only_by_post(
    method: str, client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    clock.shift(30)
    login(client_a, admin_a)
    assert getattr(client_a, method)("/console/logout/").status_code == 405
    assert client_a.get("/console/").status_code == 200


def test_logout_ends_the_session(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    clock.shift(30)
    login(client_a, admin_a)
    key = client_a.cookies["sessionid"].value
    response = client_a.post("/console/logout/")
    assert response.status_code == 302 and response["Location"] == "/console/login/"
    with schema_context(tenant_a.schema_name):
        assert not Session.objects.filter(session_key=key).exists()
        assert not StaffSession.objects.filter(session_key=key).exists()
    assert events(tenant_a, "console.logout")[-1].actor_id == str(admin_a.user_id)
    assert client_a.get("/console/").status_code == 302


def test_with_redis_unreachable_staff_still_sign_in_counted_in_this_process(
    settings,
    monkeypatch: pytest.MonkeyPatch,
    tenant_a: Municipality,
    admin_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    """The call centre books by phone when the resident site is in trouble: a Redis outage
    must not keep an operator starting their shift out of the console."""
    monkeypatch.setattr(staff, "_process_counters", ProcessCounters())
    redis_at(settings, closed_port())
    clock.shift(30)
    browser = Client(HTTP_HOST=host_of(tenant_a), raise_request_exception=False)
    assert browser.get("/console/login/").status_code == 200
    signed_in = login(browser, admin_a)
    assert signed_in.status_code == 302 and "sessionid" in browser.cookies
    assert browser.get("/console/").status_code == 200
    assert len(events(tenant_a, "console.login_succeeded")) == 1
    # Failures are still counted, by this process, to the same limit.
    guesser = Client(HTTP_HOST=host_of(tenant_a), raise_request_exception=False)
    for _attempt in range(LOGIN_ACCOUNT_LIMIT):
        clock.shift(31)  # a new code each time: a spent one would be refused anyway
        assert login(guesser, admin_a, password="guess-guess-1").status_code == 400
    clock.shift(31)
    throttled = login(guesser, admin_a)
    assert throttled.status_code == 429 and "sessionid" not in guesser.cookies
    assert events(tenant_a, "console.login_failed")[-1].details == {
        "reason": "throttled",
        "limit": "account",
    }


def test_with_redis_unreachable_each_municipality_counts_its_own_console_logins(
    settings,
    monkeypatch: pytest.MonkeyPatch,
    tenant_a: Municipality,
    tenant_b: Municipality,
    clock: time_machine.Coordinates,
) -> None:
    """The same address at two municipalities' consoles: guesses at one do not lock the
    other out, in this process's counters as in Redis."""
    monkeypatch.setattr(staff, "_process_counters", ProcessCounters())
    shared = "clerk@example.jp"
    in_a, in_b = make_staff(tenant_a, shared, "admin"), make_staff(tenant_b, shared, "admin")
    redis_at(settings, closed_port())
    clock.shift(30)
    guesser = Client(HTTP_HOST=host_of(tenant_a), raise_request_exception=False)
    for _attempt in range(LOGIN_ACCOUNT_LIMIT):
        assert login(guesser, in_a, password="guess-guess-1").status_code == 400
    assert login(guesser, in_a).status_code == 429
    clerk_b = Client(HTTP_HOST=host_of(tenant_b), raise_request_exception=False)
    assert login(clerk_b, in_b).status_code == 302


def _signed_in_before(
    client: Client, account: StaffAccount, clock: time_machine.Coordinates
) -> None:
    """The account signs in from ``client`` and out again: the browser is now known."""
    clock.shift(31)
    assert login(client, account).status_code == 302
    assert client.post("/console/logout/").status_code == 302


def test_guesses_elsewhere_do_not_lock_a_staff_member_out_of_a_browser_used_before(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    """Anyone who knows an address can spend its allowance; the browser the person signed in
    from before keeps its own, so the call centre's morning does not wait 15 minutes."""
    _signed_in_before(client_a, admin_a, clock)
    cookie = client_a.cookies[CONSOLE.cookie]
    assert cookie["httponly"] and cookie["path"] == "/console/"
    assert admin_a.email not in cookie.value  # a keyed hash names the account

    attacker = Client(HTTP_HOST=host_of(tenant_a), REMOTE_ADDR="203.0.113.9")
    for _attempt in range(LOGIN_ACCOUNT_LIMIT):
        assert login(attacker, admin_a, password="guess-guess-1").status_code == 400
    clock.shift(31)
    refused = login(attacker, admin_a)
    assert refused.status_code == 429
    assert "以前にこのアカウントでログインしたことのある端末" in refused.content.decode()
    # A browser that never signed in to the account is stopped as before ...
    clock.shift(31)
    assert login(Client(HTTP_HOST=host_of(tenant_a)), admin_a).status_code == 429
    # ... the one that did is not.
    assert login(client_a, admin_a).status_code == 302
    assert client_a.get("/console/").status_code == 200


def test_a_known_browser_has_an_allowance_of_its_own(
    tenant_a: Municipality, client_a: Client, admin_a: StaffAccount, clock: time_machine.Coordinates
) -> None:
    _signed_in_before(client_a, admin_a, clock)
    for _attempt in range(LOGIN_ACCOUNT_LIMIT):
        assert login(client_a, admin_a, password="guess-guess-1").status_code == 400
    clock.shift(31)
    refused = login(client_a, admin_a)
    assert refused.status_code == 429
    page = refused.content.decode()
    assert "15分ほど時間をおいてから" in page and "ログインしたことのある端末" not in page
    assert events(tenant_a, "console.login_failed")[-1].details == {
        "reason": "throttled",
        "limit": "device",
    }
    # Its failures spent its own allowance, not the address's: elsewhere still signs in.
    assert login(Client(HTTP_HOST=host_of(tenant_a)), admin_a).status_code == 302


def test_a_known_browser_is_known_for_its_accounts_only_and_only_at_its_municipality(
    tenant_a: Municipality,
    tenant_b: Municipality,
    client_a: Client,
    admin_a: StaffAccount,
    operator_a: StaffAccount,
    clock: time_machine.Coordinates,
) -> None:
    """A shared call-centre desk keeps the accounts signed in from it; a cookie altered, or
    carried to another municipality's console, counts for nothing."""
    _signed_in_before(client_a, admin_a, clock)
    _signed_in_before(client_a, operator_a, clock)
    shared = "clerk@example.jp"
    clerk_a, clerk_b = make_staff(tenant_a, shared, "admin"), make_staff(tenant_b, shared, "admin")
    _signed_in_before(client_a, clerk_a, clock)
    kept = client_a.cookies[CONSOLE.cookie].value

    attacker = Client(HTTP_HOST=host_of(tenant_a), REMOTE_ADDR="203.0.113.9")
    for account in (admin_a, operator_a, clerk_a):
        for _attempt in range(LOGIN_ACCOUNT_LIMIT):
            login(attacker, account, password="guess-guess-1")
    other = make_staff(tenant_a, "other@kodaira.example.jp", "call_centre")
    for _attempt in range(LOGIN_ACCOUNT_LIMIT):
        login(attacker, other, password="guess-guess-1")
    clock.shift(31)
    # The three accounts of this desk, each in turn (a new code window each time) ...
    for account in (admin_a, operator_a, clerk_a):
        assert login(client_a, account).status_code == 302
        client_a.post("/console/logout/")
        clock.shift(31)
    # ... but not an account never signed in from it.
    assert login(client_a, other).status_code == 429

    tampered = Client(HTTP_HOST=host_of(tenant_a))
    tampered.cookies[CONSOLE.cookie] = kept[:-2] + ("AA" if not kept.endswith("AA") else "BB")
    assert login(tampered, admin_a).status_code == 429

    # The same address at another municipality, its allowance spent there: a cookie of A's
    # console carried to B's is not B's.
    guesser_b = Client(HTTP_HOST=host_of(tenant_b), REMOTE_ADDR="203.0.113.9")
    for _attempt in range(LOGIN_ACCOUNT_LIMIT):
        login(guesser_b, clerk_b, password="guess-guess-1")
    carried = Client(HTTP_HOST=host_of(tenant_b))
    carried.cookies[CONSOLE.cookie] = kept
    assert login(carried, clerk_b).status_code == 429
