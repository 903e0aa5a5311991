"""Which vaccination records a VRS export holds: the export (booking.console.planning.vrs)
and the bulk-read report of an export (booking.services.bulk_reads) ask the same query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet

from booking.models import VaccinationRecord

JAPAN = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True)
class VrsQuery:
    first_day: date
    last_day: date
    basis: str  # "vaccinated_on" or "recorded_at"
    as_of: datetime

    def records(self) -> QuerySet[VaccinationRecord]:
        """The records as they stood at ``as_of``: a record withdrawn since then was in the
        export, and is named by the same query later."""
        records = VaccinationRecord.every_record.filter(recorded_at__lte=self.as_of).filter(
            Q(voided_at__isnull=True) | Q(voided_at__gt=self.as_of)
        )
        if self.basis == "recorded_at":
            start = datetime.combine(self.first_day, clock.min, tzinfo=JAPAN)
            end = datetime.combine(self.last_day + timedelta(days=1), clock.min, tzinfo=JAPAN)
            return records.filter(recorded_at__gte=start, recorded_at__lt=end)
        if self.basis != "vaccinated_on":
            raise ValueError(f"unknown basis {self.basis!r}")
        return records.filter(vaccinated_on__gte=self.first_day, vaccinated_on__lte=self.last_day)
