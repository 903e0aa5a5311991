"""The authenticator-app secret during first setup: generate, show (text and QR), check."""

from __future__ import annotations

import time
import unicodedata
from base64 import b32encode
from binascii import unhexlify
from urllib.parse import quote, urlencode

import segno
from django.conf import settings
from django_otp.oath import TOTP
from django_otp.util import random_hex

STEP = 30
DIGITS = 6
TOLERANCE = 1  # the previous, current and next 30-second codes


def new_totp_key() -> str:
    """A random 20-byte secret, hex-encoded as django-otp's TOTPDevice stores it."""
    return random_hex(20)


def totp_secret_text(key: str) -> str:
    """The secret in base32, in groups of four, for typing into an app by hand."""
    secret = b32encode(unhexlify(key)).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def totp_config_uri(*, key: str, account: str, issuer: str) -> str:
    issuer = issuer.replace(":", "")
    label = quote(f"{issuer}:{account}")
    params = urlencode(
        {
            "secret": b32encode(unhexlify(key)).decode().rstrip("="),
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP,
        }
    )
    return f"otpauth://totp/{label}?{params}&issuer={quote(issuer)}"


def totp_issuer(municipality_name: str) -> str:
    return f"{getattr(settings, 'OTP_TOTP_ISSUER', 'Sesshu')} {municipality_name}"


def qr_data_uri(text: str) -> str:
    """The QR code as an SVG ``data:`` URI: rendered here, no script, allowed by the CSP."""
    return segno.make(text, error="m").svg_data_uri(scale=5, border=4)


def normalize_code(code: str) -> str:
    """Full-width digits (typed with a Japanese IME) and spaces are accepted."""
    return "".join(unicodedata.normalize("NFKC", code).split())


def totp_match(*, key: str, code: str) -> int | None:
    """The time step ``code`` belongs to for ``key``, or None if it is not a current code."""
    code = normalize_code(code)
    if not (code.isascii() and code.isdigit() and len(code) == DIGITS):
        return None
    totp = TOTP(unhexlify(key), step=STEP, digits=DIGITS)
    totp.time = time.time()
    if not totp.verify(int(code), tolerance=TOLERANCE):
        return None
    return totp.t()
