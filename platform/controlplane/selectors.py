"""What the control plane reads: public rows only, and counts — never a resident's data."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.functional import Promise
from django_tenants.utils import get_public_schema_name

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
