"""The append-only, hash-chained audit trail: one chain per municipality, one for the platform.

Services call :func:`audit.record`; it writes into whichever schema the connection is in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit.models import Actor


def record(
    *,
    action: str,
    actor: Actor,
    target: Any = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> Any:
    from audit.services import audit_record

    return audit_record(action=action, actor=actor, target=target, ip=ip, details=details)
