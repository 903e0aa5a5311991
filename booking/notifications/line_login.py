"""LINE Login (OpenID Connect) for linking a resident's LINE account from my page.

The resident is sent to LINE's authorization page with a fresh ``state`` (CSRF for the
redirect) and ``nonce`` (binds the ID token to this attempt), both kept in their session.
Back at the callback, the code is exchanged for an ID token, which is verified before its
``sub`` (the LINE user id) is trusted: HS256 signature under the Login channel's secret (as
LINE signs ID tokens for web logins), issuer ``https://access.line.me``, audience = the
channel id, not expired, and the nonce of this attempt. Nothing else from LINE is kept.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from django.conf import settings

from booking.notifications.providers import line_api_base

LINE_ISSUER = "https://access.line.me"
LINE_ACCESS_BASE = "https://access.line.me"
CLOCK_LEEWAY_SECONDS = 30
LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")


class IdTokenInvalid(Exception):
    """The ID token is not one LINE issued for this channel and this login attempt."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class LineLoginFailed(Exception):
    """The code could not be exchanged (expired, reused, or LINE unreachable)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class LineLoginRequest:
    url: str
    state: str = field(repr=False)
    nonce: str = field(repr=False)


def _access_base() -> str:
    return str(getattr(settings, "SESSHU_LINE_ACCESS_BASE", "") or LINE_ACCESS_BASE).rstrip("/")


def line_login_begin(*, channel_id: str, redirect_uri: str) -> LineLoginRequest:
    """The authorization URL to send the resident to, with its state and nonce to remember."""
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": channel_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": "openid",
            "nonce": nonce,
            # Offers to add the municipality's official account as a friend: LINE delivers
            # push messages only to users who have.
            "bot_prompt": "aggressive",
        }
    )
    return LineLoginRequest(
        url=f"{_access_base()}/oauth2/v2.1/authorize?{query}", state=state, nonce=nonce
    )


def line_code_exchange(
    *, code: str, redirect_uri: str, channel_id: str, channel_secret: str
) -> str:
    """Exchange the authorization code for the ID token (``POST /oauth2/v2.1/token``)."""
    body = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": channel_id,
            "client_secret": channel_secret,
        }
    ).encode("ascii")
    request = urllib.request.Request(  # noqa: S310 - https (or a local fake in tests)
        f"{line_api_base()}/oauth2/v2.1/token",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            payload = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        exc.read()
        raise LineLoginFailed(f"line.token_http_{exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError):
        raise LineLoginFailed("line.token_unreachable") from None
    id_token = payload.get("id_token") if isinstance(payload, dict) else None
    if not isinstance(id_token, str):
        raise LineLoginFailed("line.token_without_id_token")
    return id_token


def _b64url_decode(segment: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", segment):
        raise IdTokenInvalid("malformed")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise IdTokenInvalid("malformed") from None


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url_decode(segment))
    except (UnicodeDecodeError, ValueError):
        raise IdTokenInvalid("malformed") from None
    if not isinstance(value, dict):
        raise IdTokenInvalid("malformed")
    return value


def verify_line_id_token(
    id_token: str,
    *,
    channel_id: str,
    channel_secret: str,
    nonce: str,
    now: float | None = None,
) -> str:
    """Return the LINE user id (``sub``) of a valid ID token; raise IdTokenInvalid otherwise.

    The algorithm is fixed to HS256 whatever the header says it is, so neither ``none`` nor
    an algorithm swap is accepted.
    """
    parts = id_token.split(".")
    if len(parts) != 3 or not all(parts):
        raise IdTokenInvalid("malformed")
    header_segment, payload_segment, signature_segment = parts
    header = _json_segment(header_segment)
    if header.get("alg") != "HS256":
        raise IdTokenInvalid("algorithm")
    expected = hmac.new(
        channel_secret.encode("utf-8"),
        f"{header_segment}.{payload_segment}".encode("ascii"),
        sha256,
    ).digest()
    if not hmac.compare_digest(expected, _b64url_decode(signature_segment)):
        raise IdTokenInvalid("signature")
    claims = _json_segment(payload_segment)
    if claims.get("iss") != LINE_ISSUER:
        raise IdTokenInvalid("issuer")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if channel_id not in audiences:
        raise IdTokenInvalid("audience")
    current = time.time() if now is None else now
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or expires + CLOCK_LEEWAY_SECONDS < current:
        raise IdTokenInvalid("expired")
    issued = claims.get("iat")
    if isinstance(issued, int | float) and issued - CLOCK_LEEWAY_SECONDS > current:
        raise IdTokenInvalid("issued_in_future")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not nonce:
        raise IdTokenInvalid("nonce")
    if not hmac.compare_digest(token_nonce.encode("utf-8"), nonce.encode("utf-8")):
        raise IdTokenInvalid("nonce")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not LINE_USER_ID.fullmatch(subject):
        raise IdTokenInvalid("subject")
    return subject
