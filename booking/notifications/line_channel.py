"""The municipality's LINE channel credentials, decrypted only when a send or a login needs them."""

from __future__ import annotations

from dataclasses import dataclass, field

from booking.models import LineChannel
from sesshu.brief_cache import BriefCache
from tenants.crypto import cipher_for
from tenants.db import current_municipality, current_schema

ROW_ID = str(LineChannel.SINGLETON_ID)


@dataclass(frozen=True)
class LineCredentials:
    login_channel_id: str
    login_channel_secret: str = field(repr=False)
    messaging_access_token: str = field(repr=False)


def seal_line_secret(value: str, *, column: str) -> bytes:
    return cipher_for(current_municipality()).encrypt_field(
        value, table=LineChannel.TABLE, column=column, row_id=ROW_ID
    )


def line_offered() -> bool:
    """Whether this municipality sends notices by LINE (its channel set and switched on).
    Read by every done page: kept a few seconds per process, like the booking policy."""
    offered = _offered.get(
        current_schema(),
        lambda: LineChannel.objects.filter(pk=LineChannel.SINGLETON_ID, enabled=True).exists(),
    )
    return bool(offered)


_offered: BriefCache[bool] = BriefCache()
_offered.forget_on_changes_to(LineChannel)


def line_credentials() -> LineCredentials | None:
    """This municipality's LINE channel, or None if it has none (or it is switched off)."""
    row = LineChannel.objects.filter(pk=LineChannel.SINGLETON_ID, enabled=True).first()
    if row is None:
        return None
    cipher = cipher_for(current_municipality())
    return LineCredentials(
        login_channel_id=row.login_channel_id,
        login_channel_secret=cipher.decrypt_field(
            bytes(row.login_channel_secret),
            table=LineChannel.TABLE,
            column="login_channel_secret",
            row_id=ROW_ID,
        ),
        messaging_access_token=cipher.decrypt_field(
            bytes(row.messaging_access_token),
            table=LineChannel.TABLE,
            column="messaging_access_token",
            row_id=ROW_ID,
        ),
    )
