"""Which municipality a host names, remembered for a few seconds in each process.

Every request begins by resolving its host. Asked of the database each time, that lookup (a
switch to the public role and a join of domain and municipality) was one of the dearest parts
of a resident's page under a booking rush, for an answer that changes a few times a year.
So each process keeps it briefly (sesshu.brief_cache): a change of a municipality's row or
domains (suspension, incident mode, decommissioning, login mode, a rewrapped key) reaches the
other processes within ``SESSHU_TENANT_CACHE_SECONDS``; the process that makes it forgets at
once, on ``save``/``delete`` (signals below) and where a service updates the row in bulk
(:func:`municipality_hosts_forget`). Unknown hosts are never remembered, so probing names
cannot fill the memory.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from sesshu.brief_cache import BriefCache
from tenants.models import Domain, Municipality

_remembered: BriefCache[Municipality] = BriefCache()


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


@receiver(post_save, sender=Municipality)
@receiver(post_delete, sender=Municipality)
@receiver(post_save, sender=Domain)
@receiver(post_delete, sender=Domain)
def _forget_on_change(sender: Any, **kwargs: Any) -> None:
    municipality_hosts_forget()
    # A request in between may have remembered the row as it was before the commit.
    transaction.on_commit(municipality_hosts_forget)
