"""Exports leave a trace: one audit event per export, with its range and counts."""

from __future__ import annotations

from audit import record
from audit.chain import Actor

EXPORT_KINDS = ("vrs", "free_slots", "report")


def export_record(
    *, kind: str, actor: Actor, ip: str | None = None, details: dict[str, object]
) -> None:
    """An export is audited when it starts, with its range and counts, never its values."""
    if kind not in EXPORT_KINDS:
        raise ValueError(f"unknown export {kind!r}")
    record(action=f"export.{kind}", actor=actor, ip=ip, details=dict(details))
