"""Audit anchors: the head of each hash chain, written where nobody can rewrite it.

The chains live in the database, and whoever can rewrite the database (a DBA, a stolen owner
password, a restore from a doctored dump) could rewrite a chain and re-seal it so that it
verifies again. So the worker periodically copies each chain's head — chain name, last
sequence number, last hash, times — into the audit-anchor bucket (terraform/s3.tf: Object
Lock in compliance mode, three years: not even the account root can delete or shorten an
anchor). A chain whose event #N no longer has the hash anchored for #N was rewritten.

Objects: ``anchors/<chain>/<10**16 - seq, 16 digits>.json`` — one per head ever anchored,
newest first in a listing, so the latest anchor is one ListObjectsV2 call away. An anchor
holds only the chain's name (``platform`` or the municipality's schema, e.g. ``m131016``),
numbers, hashes and times: never anything about a person.

Written with If-None-Match, so an unchanged head is not written twice, and a second writer
(two beats, a retry) never replaces an anchor.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from audit.services import _models, chain_name
from sesshu import aws
from tenants.db import current_schema

logger = logging.getLogger("sesshu.audit")

FORMAT = "sesshu-audit-anchor/1"
PREFIX = "anchors"
_SEQ_SPACE = 10**16
# Exactly these fields, nothing else (tests assert it): nothing personal can slip in.
FIELDS = ("format", "chain", "seq", "hash", "sealed_at", "anchored_at")


class AnchorMismatch(Exception):
    """The chain does not contain what its latest anchor says it contained."""


@dataclass(frozen=True)
class Anchor:
    chain: str
    seq: int
    hash: str
    sealed_at: str
    anchored_at: str

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT,
            "chain": self.chain,
            "seq": self.seq,
            "hash": self.hash,
            "sealed_at": self.sealed_at,
            "anchored_at": self.anchored_at,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Anchor:
        body = json.loads(data)
        if body.get("format") != FORMAT or set(body) != set(FIELDS):
            raise ValueError(f"not a {FORMAT} anchor")
        return cls(
            chain=str(body["chain"]),
            seq=int(body["seq"]),
            hash=str(body["hash"]),
            sealed_at=str(body["sealed_at"]),
            anchored_at=str(body["anchored_at"]),
        )


def anchor_bucket() -> str:
    bucket = getattr(settings, "SESSHU_AUDIT_ANCHOR_BUCKET", None)
    if not bucket:
        raise ImproperlyConfigured(
            "SESSHU_AUDIT_ANCHOR_BUCKET is not set: audit chains cannot be anchored or checked"
            " against their anchors (terraform output AUDIT_ANCHOR_BUCKET)."
        )
    return str(bucket)


def anchors_configured() -> bool:
    return bool(getattr(settings, "SESSHU_AUDIT_ANCHOR_BUCKET", None))


def anchor_key(chain: str, seq: int) -> str:
    if not 0 < seq < _SEQ_SPACE:
        raise ValueError(f"sequence number out of range: {seq}")
    return f"{PREFIX}/{chain}/{_SEQ_SPACE - seq:016d}.json"


def _encryption() -> dict[str, str]:
    # The bucket's default encryption is the storage key; name it when it is configured (the
    # bucket policy refuses aws:kms without a key id, and any other key).
    key_id = getattr(settings, "AWS_S3_SSE_KMS_KEY_ID", None)
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id} if key_id else {}


def chain_head() -> Anchor | None:
    """The current schema's sealed head, as an anchor to write (None: nothing sealed yet)."""
    schema = current_schema()
    _event_model, seal_model = _models(schema)
    last = (
        seal_model._default_manager.order_by("-chain_seq")
        .values_list("chain_seq", "hash", "sealed_at")
        .first()
    )
    if last is None:
        return None
    seq, digest, sealed_at = last
    return Anchor(
        chain=chain_name(schema),
        seq=int(seq),
        hash=str(digest),
        sealed_at=_iso(sealed_at),
        anchored_at=_iso(timezone.now()),
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write_anchor(anchor: Anchor) -> bool:
    """Put the anchor unless one for that head exists; whether it was written."""
    s3: Any = aws.client("s3")
    try:
        s3.put_object(
            Bucket=anchor_bucket(),
            Key=anchor_key(anchor.chain, anchor.seq),
            Body=anchor.to_json(),
            ContentType="application/json",
            IfNoneMatch="*",
            # Object Lock buckets want an integrity checksum on every PutObject.
            ChecksumAlgorithm="SHA256",
            **_encryption(),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
            return False  # this head is anchored already
        raise
    return True


def anchor_current_chain() -> Anchor | None:
    """Anchor the current schema's chain head; the anchor if a new one was written."""
    head = chain_head()
    if head is None:
        return None
    return head if write_anchor(head) else None


def anchor_all() -> int:
    """Anchor the platform's chain and every municipality's that still has one; how many new
    anchors were written. One chain's failure does not stop the others; it is re-raised at
    the end so the task fails visibly."""
    from tenants.models import Municipality

    anchor_bucket()  # refuse at once when not configured
    schemas = [get_public_schema_name()] + list(
        Municipality.objects.exclude(status=Municipality.Status.DECOMMISSIONED)
        .order_by("schema_name")
        .values_list("schema_name", flat=True)
    )
    written, failed = 0, []
    for schema in schemas:
        try:
            with schema_context(schema):
                anchor = anchor_current_chain()
        except Exception:
            logger.exception("anchoring the audit chain of %s failed", schema)
            failed.append(schema)
            continue
        if anchor is not None:
            written += 1
            logger.info(
                json.dumps({"event": "audit.anchored", "chain": anchor.chain, "seq": anchor.seq})
            )
    if failed:
        raise RuntimeError(f"audit anchoring failed for {len(failed)} chain(s): {failed[:10]}")
    return written


def latest_anchor(chain: str) -> Anchor | None:
    """The newest anchor of `chain` (keys sort newest first), or None."""
    s3: Any = aws.client("s3")
    listing = s3.list_objects_v2(Bucket=anchor_bucket(), Prefix=f"{PREFIX}/{chain}/", MaxKeys=1)
    contents = listing.get("Contents") or []
    if not contents:
        return None
    body = s3.get_object(Bucket=anchor_bucket(), Key=contents[0]["Key"])["Body"].read()
    anchor = Anchor.from_json(body)
    if anchor.chain != chain or contents[0]["Key"] != anchor_key(chain, anchor.seq):
        raise AnchorMismatch(f"anchor {contents[0]['Key']} names chain {anchor.chain!r}")
    return anchor


def check_against_latest_anchor() -> Anchor | None:
    """Check the current schema's (verified) chain against its latest anchor.

    Raises AnchorMismatch when the chain ends before the anchored event or the anchored
    event's seal has another hash: the chain was truncated or rewritten after the anchor.
    Returns the anchor checked, or None when the chain has none yet.
    """
    schema = current_schema()
    _event_model, seal_model = _models(schema)
    anchor = latest_anchor(chain_name(schema))
    if anchor is None:
        return None
    found = (
        seal_model._default_manager.filter(chain_seq=anchor.seq)
        .values_list("hash", flat=True)
        .first()
    )
    if found is None:
        last = (
            seal_model._default_manager.order_by("-chain_seq")
            .values_list("chain_seq", flat=True)
            .first()
            or 0
        )
        raise AnchorMismatch(
            f"the chain ends at #{last}, but event #{anchor.seq} was anchored at"
            f" {anchor.anchored_at}: events were removed"
        )
    if found != anchor.hash:
        raise AnchorMismatch(
            f"event #{anchor.seq} has hash {found[:16]}…, but {anchor.hash[:16]}… was anchored"
            f" at {anchor.anchored_at}: the chain was rewritten up to that event"
        )
    return anchor
