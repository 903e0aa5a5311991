"""Reads of the audit trail for the trail pages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.chain import Actor
from audit.models import Event
from booking.services.callcentre import reveal_note_open
from tenants.crypto import DecryptionFailed

PAGE_SIZE = 100
_HIDDEN_DETAILS = ("note_id", "note_sealed")


# What each family of actions is about, for an auditor who does not read the codes (the code
# is shown beside it: the filter takes its beginning).
ACTION_AREAS = {
    "booking": gettext_lazy("予約"),
    "callcentre": gettext_lazy("コールセンター"),
    "reception": gettext_lazy("受付・接種記録"),
    "resident": gettext_lazy("住民のログイン・アカウント"),
    "staff": gettext_lazy("職員アカウント"),
    "console": gettext_lazy("職員コンソール"),
    "registry_import": gettext_lazy("接種券名簿の取込"),
    "incident": gettext_lazy("インシデント対応"),
    "notification": gettext_lazy("お知らせの送信"),
    "slot": gettext_lazy("予約枠"),
    "slots": gettext_lazy("予約枠"),
    "venue": gettext_lazy("会場"),
    "booking_policy": gettext_lazy("予約の受付条件"),
    "age_phase": gettext_lazy("年齢区分"),
    "vaccine": gettext_lazy("ワクチン"),
    "export": gettext_lazy("データの出力"),
    "access": gettext_lazy("アクセスの拒否"),
    "demo": gettext_lazy("デモデータ"),
    "trail": gettext_lazy("監査記録"),
}


def action_area(action: str) -> str:
    return str(ACTION_AREAS.get(action.split(".", 1)[0], ""))


@dataclass(frozen=True)
class TrailRow:
    event: Event
    actor_label: str
    details_text: str
    note: str

    @property
    def area(self) -> str:
        return action_area(self.event.action)

    @property
    def details_lines(self) -> list[str]:
        return self.details_text.splitlines()


def _details_text(details: dict[str, Any]) -> str:
    """One ``key: value`` line per detail (lists and objects as JSON)."""
    lines = []
    for key in sorted(details):
        if key in _HIDDEN_DETAILS:
            continue
        value = details[key]
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def _note(details: dict[str, Any]) -> str:
    try:
        return reveal_note_open(details)
    except DecryptionFailed:
        return _("（復号できません）")


def trail_page(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    action: str | None = None,
    actor_kind: str | None = None,
    actor_id: str | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[TrailRow], int | None]:
    """Newest first; returns the rows and the ``before`` value of the next (older) page."""
    events = Event.objects.all()
    if start is not None:
        events = events.filter(occurred_at__gte=start)
    if end is not None:
        events = events.filter(occurred_at__lt=end)
    if action:
        events = events.filter(action__startswith=action)
    if actor_kind:
        events = events.filter(actor_kind=actor_kind)
    if actor_id:
        events = events.filter(actor_id=actor_id)
    if before is not None:
        events = events.filter(seq__lt=before)
    page = list(events.order_by("-seq")[: limit + 1])
    more = page[limit - 1].seq if len(page) > limit else None
    page = page[:limit]
    staff_ids = {
        int(event.actor_id)
        for event in page
        if event.actor_kind == Actor.STAFF and event.actor_id.isdigit()
    }
    emails = dict(get_user_model().objects.filter(pk__in=staff_ids).values_list("pk", "email"))
    rows = []
    for event in page:
        label = f"{event.actor_kind}:{event.actor_id}" if event.actor_id else event.actor_kind
        if event.actor_kind == Actor.STAFF and event.actor_id.isdigit():
            email = emails.get(int(event.actor_id))
            if email:
                label = f"{label} ({email})"
        details = event.details if isinstance(event.details, dict) else {}
        rows.append(TrailRow(event, label, _details_text(details), _note(details)))
    return rows, more
