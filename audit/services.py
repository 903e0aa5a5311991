from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from audit.chain import Actor, ChainedEvent, event_hash, genesis_hash
from sesshu.observability import PERSONAL_FIELD_NAMES
from sesshu.rows import insert_of
from tenants.db import current_schema

logger = logging.getLogger("sesshu.audit")

PLATFORM_CHAIN = "platform"


def _models(schema_name: str) -> tuple[Any, Any]:
    # Two concrete pairs of the same shape (ChainedEvent, ChainSeal with ``event``/``seal``);
    # the abstract bases cannot declare the relation, so the pair is typed loosely here.
    if schema_name == get_public_schema_name():
        from audit.platform.models import PlatformEvent, PlatformEventSeal

        return PlatformEvent, PlatformEventSeal
    from audit.models import Event, EventSeal

    return Event, EventSeal


def chain_name(schema_name: str) -> str:
    return PLATFORM_CHAIN if schema_name == get_public_schema_name() else schema_name


def _check_details(details: dict[str, Any]) -> None:
    for key, value in details.items():
        if key.lower() in PERSONAL_FIELD_NAMES:
            raise ValueError(f"audit details must not hold personal values (key {key!r})")
        if not isinstance(value, str | int | float | bool | type(None) | list):
            raise TypeError(f"audit detail {key!r} must be a plain value")


def _target_of(target: Any) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, tuple):
        kind, ident = target
        return str(kind), str(ident)
    meta = getattr(target, "_meta", None)
    if meta is not None:
        return meta.label_lower, str(target.pk)
    raise TypeError("audit target must be a model instance or a (type, id) tuple")


def audit_record(
    *,
    action: str,
    actor: Actor,
    target: Any = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> ChainedEvent:
    """Append an event to the current schema's trail.

    Joins the caller's transaction: the event commits or rolls back with what it records.
    It takes no lock; once committed, it is sealed into the hash chain (right after the
    commit when this process has not just done so and no other sealing is running, else by
    the next one or the periodic sweep).
    """
    if "." not in action:
        raise ValueError("audit actions are namespaced, e.g. 'booking.created'")
    details = dict(details or {})
    _check_details(details)
    target_type, target_id = _target_of(target)
    schema = current_schema()
    event_model, _seal_model = _models(schema)
    # Every audited request writes one: without the ORM's compiler (sesshu.rows).
    event = insert_of(event_model)(
        event_model(
            occurred_at=timezone.now(),
            actor_kind=actor.kind,
            actor_id=actor.id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            ip=ip,
            details=details,
        )
    )
    _seal_after_commit(schema)
    # The database row is the record; this line ships a copy out of the database (to the
    # log pipeline), with nothing personal in it.
    logger.info(
        json.dumps(
            {
                "chain": chain_name(schema),
                "seq": event.seq,
                "action": action,
                "actor": actor.kind,
                "actor_id": actor.id,
                "target": f"{target_type}:{target_id}",
            },
            ensure_ascii=False,
        )
    )
    return event


# When this process last began sealing each chain after a commit (time.monotonic()).
_sealing_began: dict[str, float] = {}
SEAL_AFTER_COMMIT_EVERY = 1.0  # seconds


def _seal_after_commit(schema: str) -> None:
    """Seal the trail once this transaction commits, unless this process began sealing the
    same chain less than a second ago: then that sealer's next round, another request's or
    the periodic sweep (every 30 s) takes these events. Under a rush this keeps sealing to
    about one transaction a second per process and chain instead of one per audited request.
    """

    def seal() -> None:
        now = time.monotonic()
        if now - _sealing_began.get(schema, float("-inf")) < SEAL_AFTER_COMMIT_EVERY:
            return
        _sealing_began[schema] = now
        try:
            with schema_context(schema):
                audit_seal_pending(wait=False)
        except Exception:  # the periodic sweep seals what this could not
            logger.warning(
                "sealing the audit trail of %s after commit failed", schema, exc_info=True
            )

    transaction.on_commit(seal)


SEAL_BATCH = 5000


def audit_seal_pending(*, wait: bool = True, limit: int = SEAL_BATCH) -> int:
    """Seal the current schema's committed, unsealed events into its chain, oldest first.

    One sealer at a time per chain (an advisory lock); with ``wait=False`` it returns at once
    when another sealer is at work, since that one will take these events too. Returns how
    many events it sealed.
    """
    schema = current_schema()
    event_model, seal_model = _models(schema)
    sealed = 0
    with transaction.atomic():
        lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {lock}(hashtext(%s))", [f"sesshu.audit-seal:{schema}"])
            got = cursor.fetchone()[0] if not wait else True
        if not got:
            return 0
        last = (
            seal_model._default_manager.order_by("-chain_seq")
            .values_list("chain_seq", "hash")
            .first()
        )
        chain_seq, prev_hash = last if last else (0, genesis_hash(chain_name(schema)))
        pending = list(
            event_model._default_manager.filter(seal__isnull=True).order_by("seq")[:limit]
        )
        now = timezone.now()
        seals = []
        for event in pending:
            chain_seq += 1
            digest = event_hash(prev_hash, chain_seq, event.payload())
            seals.append(
                seal_model(
                    chain_seq=chain_seq,
                    event=event,
                    prev_hash=prev_hash,
                    hash=digest,
                    sealed_at=now,
                )
            )
            prev_hash = digest
        seal_model._default_manager.bulk_create(seals)
        sealed = len(seals)
    return sealed


@dataclass(frozen=True)
class ChainReport:
    chain: str
    events: int  # sealed and verified
    head: str
    broken_seq: int | None = None  # the event whose seal does not fit
    problem: str = ""
    pending: int = 0  # committed but not sealed yet

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def _seals(seal_model: Any, batch: int = 2000) -> Iterator[Any]:
    last = 0
    while True:
        page = list(
            seal_model._default_manager.select_related("event")
            .filter(chain_seq__gt=last)
            .order_by("chain_seq")[:batch]
        )
        if not page:
            return
        yield from page
        last = page[-1].chain_seq


def audit_verify() -> ChainReport:
    """Recompute the current schema's chain; name the first event that does not fit."""
    schema = current_schema()
    event_model, seal_model = _models(schema)
    name = chain_name(schema)
    expected_prev = genesis_hash(name)
    expected_seq = 1
    count = 0
    for seal in _seals(seal_model):
        event = seal.event
        problem = ""
        if seal.chain_seq != expected_seq:
            problem = f"the seal after #{expected_seq - 1} is missing (next is {seal.chain_seq})"
        elif seal.prev_hash != expected_prev:
            problem = "its link to the previous event does not match"
        elif event_hash(seal.prev_hash, seal.chain_seq, event.payload()) != seal.hash:
            problem = "its content does not match its hash (altered)"
        if problem:
            return ChainReport(name, count, expected_prev, broken_seq=event.seq, problem=problem)
        count += 1
        expected_prev = seal.hash
        expected_seq += 1
    pending = event_model._default_manager.filter(seal__isnull=True).count()
    return ChainReport(name, count, expected_prev, pending=pending)
