"""Which municipality a host names, remembered for a few seconds in each process.

Every request begins by resolving its host. Asked of the database each time, that lookup (a
switch to the public role and a join of domain and municipality) was one of the dearest parts
of a resident's page under a booking rush, for an answer that changes a few times a year.
So each process keeps it briefly (sesshu.brief_cache): a change of a municipality's row or
domains (suspension, incident mode, decommissioning, login mode, a rewrapped key) reaches the
other processes within ``SESSHU_TENANT_CACHE_SECONDS``; the process that makes it forgets at
once, on ``save``/``delete`` and where a service updates the row in bulk
(:func:`municipality_hosts_forget`). Unknown hosts are never remembered, so probing names
cannot fill the memory.
"""

from __future__ import annotations

from sesshu.brief_cache import BriefCache
from tenants.models import Domain, Municipality

_remembered: BriefCache[Municipality] = BriefCache()
_remembered.forget_on_changes_to(Municipality, Domain)


def municipality_for_host(host: str) -> Municipality | None:
    """The live (not decommissioned) municipality serving ``host``, or None."""

    def load() -> Municipality | None:
        domain = (
            Domain.objects.select_related("tenant")
            .filter(domain=host)
            .exclude(tenant__status=Municipality.Status.DECOMMISSIONED)
            .first()
        )
        return domain.tenant if domain is not None else None

    return _remembered.get(host, load)


def municipality_hosts_forget() -> None:
    """Forget every remembered host (this process only)."""
    _remembered.forget()
