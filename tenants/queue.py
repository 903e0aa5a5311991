"""Queueing a tenant's task after commit, with the tenant fixed at the time of queueing.

``transaction.on_commit`` runs its callback when the outermost transaction commits, which
may be after the code that queued it has left the municipality's context (a control-plane
view, a test, a command). tenant-schemas-celery reads the schema when the message is sent,
so the schema is captured here, when the work is asked for, and sent as the header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from sesshu.outages import NOT_PUBLISHED, broker_down
from tenants.db import current_schema

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from tenants.models import Municipality


def enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    """Queue ``task`` once the current transaction commits. A publish the broker does not
    take is logged, not raised: what the task is for is committed, and its sweep queues it
    again (``booking.services.registry_upkeep``: an upload waiting for its preview, a
    confirmed preview waiting for its apply), so the operator is shown the import waiting,
    not an error page."""
    headers = {"_schema_name": current_schema()}

    def publish() -> None:
        try:
            task.apply_async(args=args, kwargs=kwargs, headers=headers)
        except NOT_PUBLISHED as error:
            broker_down(f"task {task.name} (its sweep queues it again)", error)

    transaction.on_commit(publish)


def queue_in_each_municipality(task: Any, municipalities: QuerySet[Municipality]) -> int:
    """Queue ``task`` once in each of ``municipalities`` (a lazy queryset, read here in the
    public schema; the public tenant itself is left out), each in that municipality's
    context. For beat entries that run in the public schema. Returns how many."""
    from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

    with schema_context(get_public_schema_name()):
        chosen = list(municipalities.exclude(schema_name=get_public_schema_name()))
    for municipality in chosen:
        with tenant_context(municipality):
            task.delay()
    return len(chosen)
