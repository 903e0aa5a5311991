"""Which municipality a host names, remembered for a few seconds in each process.

Every request begins by resolving its host. Asked of the database each time, that lookup (a
switch to the public role and a join of domain and municipality) was one of the dearest parts
of a resident's page under a booking rush, for an answer that changes a few times a year.

So each process keeps the answer for ``SESSHU_TENANT_CACHE_SECONDS`` (5 by default; 0 turns
the cache off). A change of a municipality's row or domains (suspension, incident mode,
decommissioning, login mode, a rewrapped key) reaches the other processes within that time;
the process that makes it forgets at once: on ``save``/``delete`` (signals below) and where a
service updates the row in bulk (:func:`municipality_hosts_forget`). Unknown hosts are never
remembered, so probing names cannot fill the memory.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tenants.models import Domain, Municipality

MAX_HOSTS = 4096  # more than the country has municipalities, each with a few names

_remembered: dict[str, tuple[float, Municipality]] = {}


def municipality_for_host(host: str) -> Municipality | None:
    """The live (not decommissioned) municipality serving ``host``, or None.

    A private copy each time: a request may set attributes on its municipality."""
    seconds = settings.SESSHU_TENANT_CACHE_SECONDS
    if seconds > 0:
        entry = _remembered.get(host)
        if entry is not None and entry[0] > time.monotonic():
            return copy.copy(entry[1])
    domain = (
        Domain.objects.select_related("tenant")
        .filter(domain=host)
        .exclude(tenant__status=Municipality.Status.DECOMMISSIONED)
        .first()
    )
    if domain is None:
        return None
    if seconds > 0:
        if len(_remembered) >= MAX_HOSTS:
            _remembered.clear()
        _remembered[host] = (time.monotonic() + seconds, copy.copy(domain.tenant))
    return domain.tenant


def municipality_hosts_forget() -> None:
    """Forget every remembered host (this process only)."""
    _remembered.clear()


@receiver(post_save, sender=Municipality)
@receiver(post_delete, sender=Municipality)
@receiver(post_save, sender=Domain)
@receiver(post_delete, sender=Domain)
def _forget_on_change(sender: Any, **kwargs: Any) -> None:
    municipality_hosts_forget()
    # A request in between may have remembered the row as it was before the commit.
    transaction.on_commit(municipality_hosts_forget)
