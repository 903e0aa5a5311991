"""Browsers a person has signed in from (OWASP's "device cookies"), for the login throttles.

A login throttle counts failures per typed account name: anyone who knows a name can spend
its allowance and keep that person out for the window, on the morning booking opens as on
any other. A browser that has signed in to an account before carries a signed cookie naming
it (a keyed hash of the name, never the name) with a random token; a sign-in to that account
from that browser is counted against the token's own allowance instead of the name's, so
failures elsewhere do not lock it out, and failures in it spend nobody else's. The token is
new at each sign-in.

A call-centre desk is shared by several operators across shifts: the cookie keeps the most
recent accounts signed in from the browser (``KEPT``). It is scoped to the site's own host
and to the login's part of it, and bound to the schema (the municipality, or the control
plane's public schema) it was issued in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import salted_hmac

from tenants.db import current_schema

MAX_AGE = timedelta(days=180)
KEPT = 8


@dataclass(frozen=True)
class KnownDevices:
    """The cookie of one login: its name, the path it is sent to, and its signing salt."""

    cookie: str
    path: str
    salt: str

    def _account(self, name: str) -> str:
        """The account as the cookie names it: keyed, short, not reversible by a reader."""
        return salted_hmac(self.salt, f"{current_schema()}:{name.strip().casefold()}").hexdigest()[
            :24
        ]

    def _entries(self, request: HttpRequest) -> list[list[str]]:
        raw = request.COOKIES.get(self.cookie)
        if not raw:
            return []
        try:
            payload = signing.loads(raw, salt=self.salt, max_age=MAX_AGE)
        except signing.BadSignature:
            return []
        if not isinstance(payload, dict) or payload.get("s") != current_schema():
            return []
        entries = payload.get("d")
        if not isinstance(entries, list):
            return []
        return [
            entry
            for entry in entries
            if isinstance(entry, list)
            and len(entry) == 2
            and all(isinstance(v, str) for v in entry)
        ][:KEPT]

    def token(self, request: HttpRequest, name: str) -> str | None:
        """This browser's token for the typed account, if it has signed in to it before."""
        account = self._account(name)
        for known, token in self._entries(request):
            if known == account:
                return token
        return None

    def remember(self, request: HttpRequest, response: HttpResponse, name: str) -> None:
        """After a sign-in: this browser is known for the account, with a fresh token, first
        among the accounts it keeps."""
        account = self._account(name)
        entries = [[account, secrets.token_urlsafe(16)]]
        entries += [entry for entry in self._entries(request) if entry[0] != account]
        response.set_cookie(
            self.cookie,
            signing.dumps({"s": current_schema(), "d": entries[:KEPT]}, salt=self.salt),
            max_age=int(MAX_AGE.total_seconds()),
            path=self.path,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )


def _well_formed(entry: object) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 2
        and all(isinstance(value, str) for value in entry)
    )


# The municipal staff console's login.
CONSOLE = KnownDevices("sesshu_console_devices", "/console/", "sesshu.console.devices")
# The vendor's control plane's login (the platform's own host).
CONTROL_PLANE = KnownDevices("sesshu_platform_devices", "/", "sesshu.controlplane.devices")
