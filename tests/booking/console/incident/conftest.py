from __future__ import annotations

from typing import Any

import time_machine
from django.test import Client

from tenants.models import Municipality
from tests.booking.console.callcentre.cast import (  # noqa: F401  (fixtures)
    auditor_a,
    operator_b,
    set_login_mode,
    signed_in,
    town,
    venue_a,
)
from tests.booking.console.conftest import StaffAccount

SECURITY = "/console/security/"
NOTICE = "不正アクセスの疑いがあるため、予約サイトを停止しています。お電話でご予約ください。"


def start(client: Client, notice: str = NOTICE, confirm: bool = True) -> Any:
    data = {"notice": notice}
    if confirm:
        data["confirm"] = "on"
    return client.post(SECURITY + "incident/start/", data)


def signed_in_in_mode(
    tenant: Municipality,
    mode: str,
    client: Client,
    account: StaffAccount,
    clock: time_machine.Coordinates,
) -> Client:
    """Set the municipality's login mode, then sign the staff member in."""
    set_login_mode(tenant, mode)
    return signed_in(client, account, clock)
