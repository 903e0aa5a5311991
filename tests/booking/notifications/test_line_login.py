"""LINE Login: the ID token is verified before a LINE user id is stored; unlinking forgets it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any

import pytest
from django.test import override_settings
from django_tenants.utils import tenant_context

from audit.chain import Actor
from audit.models import Event
from booking.models import ContactPreference
from booking.notifications.line_login import (
    IdTokenInvalid,
    line_login_begin,
    verify_line_id_token,
)
from booking.services.notifications import (
    LineLinkRefused,
    contact_preferences_update,
    contact_value,
    line_account_link,
    line_account_unlink,
)
from tenants.models import Municipality
from tests.booking.notifications.conftest import LINE_CHANNEL_A, LINE_SECRET_A, LINE_USER
from tests.booking.notifications.factories import make_voucher
from tests.booking.notifications.line_fake import LineFake

NONCE = "n-0S6_WzA2Mj"
REDIRECT = "https://kodaira.example.jp/my/line/callback/"
RESIDENT = Actor.resident("tests")


def _segment(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def id_token(
    secret: str = LINE_SECRET_A, header: dict[str, Any] | None = None, **claims: Any
) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://access.line.me",
        "sub": LINE_USER,
        "aud": LINE_CHANNEL_A,
        "exp": now + 3600,
        "iat": now,
        "nonce": NONCE,
        "amr": ["linesso"],
    } | claims
    signing_input = f"{_segment(header or {'typ': 'JWT', 'alg': 'HS256'})}.{_segment(payload)}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _verify(token: str, nonce: str = NONCE) -> str:
    return verify_line_id_token(
        token, channel_id=LINE_CHANNEL_A, channel_secret=LINE_SECRET_A, nonce=nonce
    )


def test_a_valid_id_token_gives_the_line_user_id() -> None:
    assert _verify(id_token()) == LINE_USER


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (lambda: id_token(secret="another-channel-secret"), "signature"),
        (lambda: id_token(aud="1650009999"), "audience"),
        (lambda: id_token(exp=int(time.time()) - 120), "expired"),
        (lambda: id_token(nonce="replayed-from-another-login"), "nonce"),
        (lambda: id_token(iss="https://evil.example"), "issuer"),
        (lambda: id_token(header={"alg": "none"}), "algorithm"),
        (lambda: id_token(header={"alg": "RS256"}), "algorithm"),
        (lambda: id_token(sub="not-a-line-user"), "subject"),
        (lambda: id_token(nonce=None), "nonce"),
        (lambda: id_token().rsplit(".", 1)[0] + ".", "malformed"),
        (lambda: "a.b", "malformed"),
    ],
    ids=[
        "bad-signature",
        "wrong-audience",
        "expired",
        "wrong-nonce",
        "wrong-issuer",
        "alg-none",
        "alg-swap",
        "bad-subject",
        "no-nonce",
        "no-signature",
        "not-a-jwt",
    ],
)
def test_it_refuses_an_id_token_that_does_not_verify(token: Any, code: str) -> None:
    with pytest.raises(IdTokenInvalid) as refused:
        _verify(token())
    assert refused.value.code == code


def test_a_tampered_payload_fails_the_signature() -> None:
    header, _payload, signature = id_token().split(".")
    forged = _segment(
        {
            "iss": "https://access.line.me",
            "sub": "U" + "0" * 32,
            "aud": LINE_CHANNEL_A,
            "exp": int(time.time()) + 60,
            "nonce": NONCE,
        }
    )
    with pytest.raises(IdTokenInvalid) as refused:
        _verify(f"{header}.{forged}.{signature}")
    assert refused.value.code == "signature"


def test_the_authorization_url_carries_a_fresh_state_and_nonce() -> None:
    first = line_login_begin(channel_id=LINE_CHANNEL_A, redirect_uri=REDIRECT)
    second = line_login_begin(channel_id=LINE_CHANNEL_A, redirect_uri=REDIRECT)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(first.url).query))
    assert first.url.startswith("https://access.line.me/oauth2/v2.1/authorize?")
    assert query["client_id"] == LINE_CHANNEL_A and query["redirect_uri"] == REDIRECT
    assert query["scope"] == "openid" and query["response_type"] == "code"
    assert query["state"] == first.state and query["nonce"] == first.nonce
    assert len(first.nonce) >= 32 and first.nonce != second.nonce and first.state != second.state


@pytest.mark.django_db
def test_linking_stores_the_verified_user_id_encrypted_and_unlinking_deletes_it(
    tenant_a: Municipality, line_fake: LineFake, line_channel_a: None
) -> None:
    line_fake.code = "auth-code-1"
    line_fake.redirect_uri = REDIRECT
    line_fake.id_token = id_token()
    with tenant_context(tenant_a):
        resident = make_voucher()
        preference = line_account_link(
            voucher=resident.voucher,
            code="auth-code-1",
            redirect_uri=REDIRECT,
            nonce=NONCE,
            actor=RESIDENT,
            ip="192.0.2.1",
        )
        stored = ContactPreference.objects.get(pk=preference.pk)
        assert LINE_USER.encode() not in bytes(stored.line_user_id)
        assert contact_value(preference, "line_user_id") == LINE_USER
        assert stored.consented_channels() == ["line"]
        # Keeping LINE on the preferences form keeps it; the form never shows the id.
        contact_preferences_update(
            voucher=resident.voucher,
            email=None,
            phone=None,
            channels=["line"],
            language="ja",
            actor=RESIDENT,
            ip=None,
        )
        line_account_unlink(voucher=resident.voucher, actor=RESIDENT, ip="192.0.2.1")
        stored.refresh_from_db()
        assert stored.line_user_id is None and stored.line_consented_at is None
        assert stored.consented_channels() == []
        actions = list(
            Event.objects.filter(action__startswith="notification.line_").values_list(
                "action", "details"
            )
        )
        assert [a for a, _ in actions][-2:] == [
            "notification.line_linked",
            "notification.line_unlinked",
        ]
        assert LINE_USER not in str(actions)


@pytest.mark.django_db
def test_a_token_for_another_login_attempt_links_nothing(
    tenant_a: Municipality, line_fake: LineFake, line_channel_a: None
) -> None:
    line_fake.code = "auth-code-2"
    line_fake.redirect_uri = REDIRECT
    line_fake.id_token = id_token(nonce="someone-elses-nonce")
    with tenant_context(tenant_a):
        resident = make_voucher()
        with pytest.raises(LineLinkRefused) as refused:
            line_account_link(
                voucher=resident.voucher,
                code="auth-code-2",
                redirect_uri=REDIRECT,
                nonce=NONCE,
                actor=RESIDENT,
                ip="192.0.2.1",
            )
        assert refused.value.code == "nonce"
        assert not ContactPreference.objects.filter(
            voucher=resident.voucher, line_user_id__isnull=False
        ).exists()
        event = Event.objects.filter(action="notification.line_link_refused").last()
        assert event is not None and event.details == {"reason": "nonce"}


@pytest.mark.django_db
def test_a_code_line_does_not_accept_links_nothing(
    tenant_a: Municipality, line_fake: LineFake, line_channel_a: None
) -> None:
    line_fake.code = "the-real-code"
    line_fake.redirect_uri = REDIRECT
    line_fake.id_token = id_token()
    with tenant_context(tenant_a), override_settings():
        resident = make_voucher()
        with pytest.raises(LineLinkRefused) as refused:
            line_account_link(
                voucher=resident.voucher,
                code="a-guessed-code",
                redirect_uri=REDIRECT,
                nonce=NONCE,
                actor=RESIDENT,
                ip=None,
            )
        assert refused.value.code == "line.token_http_400"
