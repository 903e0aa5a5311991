"""The platform's own trail, read by the operators: who logged in, registered, suspended."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.test.client import Client as ClientType

from audit import record
from audit.chain import Actor
from audit.platform.models import PlatformEvent
from controlplane import selectors
from controlplane.services import CreatedOperator
from tenants.models import Municipality

from .conftest import OPERATOR_USERNAME


def test_operators_read_the_platform_trail_newest_first_and_by_municipality(
    operator_client: ClientType,
    operator: CreatedOperator,
    tenant_a: Municipality,
    tenant_b: Municipality,
) -> None:
    operator_client.post(f"/municipalities/{tenant_b.code}/suspend/", {"reason": "契約手続き中"})
    page = operator_client.get("/trail/").content.decode()
    table = page.split('id="platform-trail"')[1]
    # The suspension, by this operator (named by user name), about B; the login before it.
    assert table.index("利用停止") < table.index("ログイン")
    row = table.split("利用停止")[1].split("</tr>")[0]
    assert OPERATOR_USERNAME in row and f"{tenant_b.name}（{tenant_b.code}）" in row
    assert "<code>municipality.suspended</code>" in table
    # One municipality's: B's suspension, not A's registration nor the logins.
    only_b = operator_client.get("/trail/", {"municipality": tenant_b.code}).content.decode()
    only_b_table = only_b.split('id="platform-trail"')[1]
    assert "利用停止" in only_b_table and "ログイン" not in only_b_table
    assert tenant_a.name not in only_b_table
    detail = operator_client.get(f"/municipalities/{tenant_b.code}/").content.decode()
    assert f'href="/trail/?municipality={tenant_b.code}"' in detail
    # Reading it is itself recorded.
    read = PlatformEvent.objects.filter(action="controlplane.trail_viewed").order_by("seq")
    assert [event.details["municipality"] for event in read] == ["", tenant_b.code]
    assert operator_client.get("/trail/", {"municipality": "999999"}).status_code == 404


def test_the_trail_pages_back_to_the_oldest(operator_client: ClientType, monkeypatch) -> None:
    monkeypatch.setattr(selectors, "TRAIL_PAGE", 3)
    for number in range(5):
        record(action="controlplane.stats_refresh_requested", actor=Actor.system(f"t{number}"))
    newest = list(PlatformEvent.objects.order_by("-seq").values_list("seq", flat=True))
    first = operator_client.get("/trail/").content.decode()
    older = first.split('id="older" href="?before=')[1].split('"')[0]
    assert int(older) == newest[2]
    second = operator_client.get("/trail/", {"before": older}).content.decode()
    assert f"<td>{newest[3]}</td>" in second and f"<td>{newest[2]}</td>" not in second


def test_only_operators_read_the_platform_trail(platform_client: ClientType) -> None:
    response = platform_client.get("/trail/")
    assert response.status_code in (302, 403)
    assert "platform-trail" not in response.content.decode()


PLATFORM_ACTION = re.compile(
    r'action="((?:controlplane|municipality|tenant_key|tenant|access)\.[a-z_]+)"'
)


def test_every_action_of_the_platform_chain_has_its_words() -> None:
    """The platform chain's actions, as the source writes them, each with its label (a new
    one without words would show as its code)."""
    root = Path(settings.BASE_DIR)
    found = {
        action
        for folder in ("platform", "tenants", "booking", "audit")
        for path in (root / folder).rglob("*.py")
        for action in PLATFORM_ACTION.findall(path.read_text(encoding="utf-8"))
    }
    assert {"municipality.incident_ended", "controlplane.login_succeeded"} <= found
    assert sorted(found - set(selectors.PLATFORM_ACTION_LABELS)) == []
