"""What the control plane reads: public rows only, and counts — never a resident's data."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy
from django_tenants.utils import get_public_schema_name

from audit.chain import Actor
from audit.platform.models import PlatformEvent
from booking.registry.normalize import _HIRAGANA_TO_KATAKANA
from tenants.codes import reference_municipalities
from tenants.models import Municipality
from tenants.services import decommission_unfinished, site_url
from tenants.tasks import STAT_COUNTERS


@dataclass(frozen=True)
class SiteLink:
    host: str
    resident_url: str
    console_url: str


@dataclass(frozen=True)
class StatLine:
    label: str | Promise
    value: int | None
    attention: bool = False  # a value the vendor should look into (the counter says which)

    @property
    def text(self) -> str:
        """The count with thousands separators (200,000), or a dash when not counted."""
        return "—" if self.value is None else f"{self.value:,}"


@dataclass(frozen=True)
class MunicipalityRow:
    municipality: Municipality
    links: list[SiteLink]
    stats: list[StatLine]
    stats_refreshed_at: datetime | None
    # Read for one municipality's page only (a query each): see decommission_unfinished.
    decommission_unfinished: bool = False
    # In incident mode: when the municipality's console started it (from the platform's
    # trail), for the vendor's page; None otherwise.
    incident_since: datetime | None = None

    @property
    def can_suspend(self) -> bool:
        status = self.municipality.status
        return status in (Municipality.Status.ACTIVE, Municipality.Status.INCIDENT)

    @property
    def can_resume(self) -> bool:
        return self.municipality.status == Municipality.Status.SUSPENDED

    @property
    def can_decommission(self) -> bool:
        """Only once suspended: residents and staff have been told, and a municipality in
        use is never one press away from its data's destruction."""
        return self.municipality.status == Municipality.Status.SUSPENDED


def _municipalities() -> QuerySet[Municipality]:
    return Municipality.objects.exclude(schema_name=get_public_schema_name())


def _stat_lines(stats: dict[str, object]) -> list[StatLine]:
    lines = []
    for key, counter in STAT_COUNTERS.items():
        value = stats.get(key)
        counted = value if isinstance(value, int) else None
        attention = bool(counter.attention and counted is not None and counter.attention(counted))
        lines.append(StatLine(counter.label, counted, attention))
    return lines


def _row(municipality: Municipality) -> MunicipalityRow:
    links = [
        SiteLink(
            host=domain.domain,
            resident_url=site_url(domain.domain, "/"),
            console_url=site_url(domain.domain, "/console/"),
        )
        for domain in municipality.domains.all()
    ]
    return MunicipalityRow(
        municipality=municipality,
        links=links,
        stats=_stat_lines(municipality.stats or {}),
        stats_refreshed_at=municipality.stats_refreshed_at,
    )


def municipality_rows(*, query: str = "") -> list[MunicipalityRow]:
    """Municipalities whose code starts with, or whose name contains, ``query``; or whose
    reading does (こだいら finds 小平市). Typed in any width, in hiragana or katakana."""
    municipalities = (
        _municipalities().defer("wrapped_data_key").prefetch_related("domains").order_by("code")
    )
    query = unicodedata.normalize("NFKC", query).strip()
    if query:
        # Readings compared in katakana, as the registry's kana names are.
        katakana = query.translate(_HIRAGANA_TO_KATAKANA)
        read_as = [
            code
            for code, reference in reference_municipalities().items()
            if katakana in reference.name_kana.translate(_HIRAGANA_TO_KATAKANA)
        ]
        municipalities = municipalities.filter(
            Q(code__startswith=query)
            | Q(name__icontains=query)
            | Q(name__icontains=katakana)
            | Q(code__in=read_as)
        )
    return [_row(municipality) for municipality in municipalities]


def municipality_get(*, code: str) -> Municipality:
    municipality = _municipalities().filter(code=code).first()
    if municipality is None:
        raise Http404("no such municipality")
    return municipality


def municipality_row(*, code: str) -> MunicipalityRow:
    municipality = municipality_get(code=code)
    return replace(
        _row(municipality),
        decommission_unfinished=decommission_unfinished(municipality),
        incident_since=_incident_since(municipality),
    )


def _incident_since(municipality: Municipality) -> datetime | None:
    if municipality.status != Municipality.Status.INCIDENT:
        return None
    return (
        PlatformEvent.objects.filter(
            action="municipality.incident_started",
            target_type="tenants.municipality",
            target_id=str(municipality.pk),
        )
        .order_by("-seq")
        .values_list("occurred_at", flat=True)
        .first()
    )


# --- The platform's own trail ----------------------------------------------------------------

# What the operators' console and the platform's tasks record (the platform chain), in the
# operator's words. An action not here is shown by its code.
PLATFORM_ACTION_LABELS: dict[str, Promise] = {
    "controlplane.login_succeeded": gettext_lazy("ログイン"),
    "controlplane.login_failed": gettext_lazy("ログインの失敗"),
    "controlplane.logged_out": gettext_lazy("ログアウト"),
    "controlplane.access_refused": gettext_lazy("アクセスの拒否"),
    "controlplane.operator_created": gettext_lazy("運営者アカウントの作成"),
    "controlplane.stats_refresh_requested": gettext_lazy("件数の集計の開始"),
    "controlplane.trail_viewed": gettext_lazy("操作記録の閲覧"),
    "access.refused": gettext_lazy("アクセスの拒否"),
    "municipality.provisioned": gettext_lazy("市区町村の登録"),
    "municipality.admin_reinvited": gettext_lazy("管理者の再招待"),
    "municipality.admin_reset_sent": gettext_lazy("管理者の再設定の送信"),
    "municipality.suspended": gettext_lazy("利用停止"),
    "municipality.resumed": gettext_lazy("利用再開"),
    "municipality.incident_started": gettext_lazy("インシデント対応の開始"),
    "municipality.incident_ended": gettext_lazy("インシデント対応の終了"),
    "municipality.decommissioned": gettext_lazy("契約終了（データ削除）"),
    "municipality.waiting_room_changed": gettext_lazy("順番待ちの設定の変更"),
    "tenant_key.destroyed": gettext_lazy("データ鍵の破棄"),
    "tenant.data_key_rewrapped": gettext_lazy("データ鍵の再暗号化"),
}
TRAIL_PAGE = 100


@dataclass(frozen=True)
class PlatformTrailRow:
    event: PlatformEvent
    label: str
    actor: str  # the operator's user name, or the system component
    municipality: Municipality | None  # the one the event is about


def platform_trail(
    *, municipality: Municipality | None = None, before: int | None = None
) -> tuple[list[PlatformTrailRow], int | None]:
    """The platform chain, newest first, a page at a time (``before``: the seq the page
    starts below), of one municipality or of all; and the seq to ask the next page with
    (None on the last). Nothing in it is a resident's."""
    from django.contrib.auth import get_user_model

    events = PlatformEvent.objects.order_by("-seq")
    if municipality is not None:
        events = events.filter(target_type="tenants.municipality", target_id=str(municipality.pk))
    if before is not None:
        events = events.filter(seq__lt=before)
    page = list(events[: TRAIL_PAGE + 1])
    older = page[TRAIL_PAGE - 1].seq if len(page) > TRAIL_PAGE else None
    page = page[:TRAIL_PAGE]
    operator_ids = {
        int(event.actor_id)
        for event in page
        if event.actor_kind == Actor.VENDOR and event.actor_id.isdigit()
    }
    names = dict(get_user_model().objects.filter(pk__in=operator_ids).values_list("pk", "username"))
    municipality_ids = {
        int(event.target_id)
        for event in page
        if event.target_type == "tenants.municipality" and event.target_id.isdigit()
    }
    municipalities = Municipality.objects.in_bulk(municipality_ids)
    rows = []
    for event in page:
        if event.actor_kind == Actor.VENDOR:
            actor = (
                names.get(int(event.actor_id), event.actor_id) if event.actor_id.isdigit() else ""
            )
        else:
            actor = event.actor_id or event.actor_kind
        about = (
            municipalities.get(int(event.target_id))
            if event.target_type == "tenants.municipality" and event.target_id.isdigit()
            else None
        )
        label = PLATFORM_ACTION_LABELS.get(event.action)
        rows.append(PlatformTrailRow(event, str(label) if label else event.action, actor, about))
    return rows, older
