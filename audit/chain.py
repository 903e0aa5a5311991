"""The event model and the hash chain that both audit trails share."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import models


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: a kind and an id, never a name or anything personal."""

    kind: str
    id: str = ""

    VENDOR = "vendor"
    STAFF = "staff"
    RESIDENT = "resident"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"

    @classmethod
    def vendor(cls, user: Any) -> Actor:
        return cls(cls.VENDOR, str(user.pk))

    @classmethod
    def staff(cls, user: Any) -> Actor:
        return cls(cls.STAFF, str(user.pk))

    @classmethod
    def resident(cls, resident_id: Any) -> Actor:
        return cls(cls.RESIDENT, str(resident_id))

    @classmethod
    def system(cls, component: str) -> Actor:
        return cls(cls.SYSTEM, component)

    @classmethod
    def anonymous(cls) -> Actor:
        return cls(cls.ANONYMOUS, "")

    @classmethod
    def from_user(cls, user: Any, *, public: bool) -> Actor:
        if user is None or not getattr(user, "is_authenticated", False):
            return cls.anonymous()
        return cls.vendor(user) if public else cls.staff(user)


class ChainedEvent(models.Model):
    """One audit event. Written without any lock (``seq`` comes from a sequence), never
    changed; the hash chain is built over committed events by :class:`ChainSeal` rows."""

    append_only = True  # tenants.db.roles revokes UPDATE/DELETE/TRUNCATE from the app role

    seq = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=20)
    actor_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=60, blank=True)
    target_id = models.CharField(max_length=64, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"

    def payload(self) -> list[Any]:
        return [
            self.seq,
            self.occurred_at.isoformat(),
            self.actor_kind,
            self.actor_id,
            self.action,
            self.target_type,
            self.target_id,
            self.ip,
            self.details,
        ]


class ChainSeal(models.Model):
    """The event's place in the hash chain, added after it committed.

    Chaining at write time would make every transaction that records an event wait for the
    one before it (a booking rush queued behind one lock); sealing committed events in
    batches keeps writes lock-free, and the chain covers each event within seconds.
    """

    append_only = True

    chain_seq = models.BigIntegerField(unique=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()

    class Meta:
        abstract = True
        ordering = ["chain_seq"]

    def __str__(self) -> str:
        return f"seal {self.chain_seq}"


def genesis_hash(chain_name: str) -> str:
    # Each chain starts from its own name, so a chain copied into another municipality's
    # schema does not verify there.
    return hashlib.sha256(f"sesshu-audit-genesis:{chain_name}".encode()).hexdigest()


def event_hash(prev_hash: str, chain_seq: int, payload: list[Any]) -> str:
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{chain_seq}\n{canonical}".encode()).hexdigest()


APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""
