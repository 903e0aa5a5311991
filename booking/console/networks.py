"""Where the console may be used from.

SECURITY.md: staff log in "from the municipality's allowed networks". Each municipality keeps
its list in its own schema (:class:`booking.models.ConsoleNetwork`, edited by its admin with
``booking.services.incident.console_networks_replace``). The login view and
:func:`booking.console.access.staff_required` both ask :func:`console_network_allowed`, so the
list is enforced on the login form and on every console request alike.

An empty list means no restriction: a newly provisioned municipality must be able to reach
its console to write the list at all. The network page says so in red.

The list is read from the database on every console request (one query on a table of a few
rows), not cached: taking a network off the list must shut it out at once, on every pod.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django_tenants.utils import tenant_context

import audit
from audit.chain import Actor
from booking.models import ConsoleNetwork
from booking.services.incident import address_in
from tenants.models import Municipality


@contextmanager
def _inside(municipality: Municipality) -> Iterator[None]:
    """The municipality's schema: the request's already, or switched to for the call."""
    if getattr(connection, "schema_name", None) == municipality.schema_name:
        yield
    else:
        with tenant_context(municipality):
            yield


def console_network_allowed(*, municipality: Municipality, ip: str | None) -> bool:
    """Whether ``ip`` may use ``municipality``'s console; a refusal is audited
    (``console.network_refused``) in the municipality's trail."""
    with _inside(municipality):
        networks = list(ConsoleNetwork.objects.values_list("network", flat=True))
        if not networks or address_in(ip, networks):
            return True
        audit.record(
            action="console.network_refused",
            actor=Actor.anonymous(),
            ip=ip,
            details={"allowed_networks": len(networks)},
        )
    return False
