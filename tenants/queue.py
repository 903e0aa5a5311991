"""Queueing a tenant's task after commit, with the tenant fixed at the time of queueing.

``transaction.on_commit`` runs its callback when the outermost transaction commits, which
may be after the code that queued it has left the municipality's context (a control-plane
view, a test, a command). tenant-schemas-celery reads the schema when the message is sent,
so the schema is captured here, when the work is asked for, and sent as the header.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from tenants.db import current_schema


def enqueue_on_commit(task: Any, *args: Any, **kwargs: Any) -> None:
    headers = {"_schema_name": current_schema()}
    transaction.on_commit(lambda: task.apply_async(args=args, kwargs=kwargs, headers=headers))
