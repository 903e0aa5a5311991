"""How far an import has got: the callback the parse and the apply report to, and the
report the pages show (phase, fraction, rate, time left)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from booking.models import RegistryImport

Progress = Callable[[RegistryImport], None]


@dataclass(frozen=True)
class ProgressReport:
    phase: str
    fraction: float
    rows_done: int
    rows_per_second: float
    seconds_left: float | None


def registry_import_progress(registry_import: RegistryImport) -> ProgressReport:
    now = timezone.now()
    elapsed = max((now - (registry_import.phase_started_at or now)).total_seconds(), 1e-6)
    if registry_import.status == RegistryImport.Status.APPLYING:
        total = max(registry_import.rows_total - registry_import.counts.get("invalid", 0), 1)
        done = registry_import.rows_applied
        fraction = min(done / total, 1.0)
    elif registry_import.status == RegistryImport.Status.PARSING:
        done = registry_import.rows_total
        fraction = min(registry_import.bytes_done / max(registry_import.size, 1), 1.0)
    else:
        done = registry_import.rows_total
        fraction = (
            1.0
            if registry_import.status
            in (RegistryImport.Status.PREVIEWED, RegistryImport.Status.DONE)
            else 0.0
        )
    rate = done / elapsed
    left = elapsed * (1 - fraction) / fraction if 0 < fraction < 1 else None
    return ProgressReport(registry_import.status, fraction, done, rate, left)
