"""Audit anchors through real boto3 calls against the local moto server: the beat task writes
each chain's head into an Object Lock bucket, never twice, never anything personal; and
`audit_verify` finds a chain rewritten (and re-sealed so that it verifies) or truncated after
its anchor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from audit import record
from audit.anchors import FIELDS, Anchor, anchor_all, anchor_key, latest_anchor
from audit.chain import Actor, event_hash, genesis_hash
from audit.services import audit_seal_pending, audit_verify
from audit.tasks import audit_anchor_all
from tenants.db.roles import owner_mode
from tenants.models import Municipality
from tests.aws_fixtures import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, REGION

BUCKET = "sesshu-test-audit-anchors-111122223333"


@pytest.fixture
def anchor_bucket(local_aws: str) -> Iterator[Any]:
    s3 = boto3.client(
        "s3",
        endpoint_url=local_aws,
        region_name=REGION,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
    )
    s3.create_bucket(
        Bucket=BUCKET,
        CreateBucketConfiguration={"LocationConstraint": REGION},
        ObjectLockEnabledForBucket=True,
    )
    s3.put_object_lock_configuration(
        Bucket=BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 3}},
        },
    )
    with override_settings(SESSHU_AUDIT_ANCHOR_BUCKET=BUCKET):
        yield s3


def _versions(s3: Any, prefix: str = "anchors/") -> list[dict[str, Any]]:
    return s3.list_object_versions(Bucket=BUCKET, Prefix=prefix).get("Versions", [])


def _anchor_of(s3: Any, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _verify(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


def _resident_event(tenant: Municipality) -> None:
    with schema_context(tenant.schema_name):
        record(
            action="test.resident_read",
            actor=Actor.resident(4242),
            target=("resident", "4242"),
            ip="192.0.2.10",
            details={"fields": ["name", "phone"]},
        )
        audit_seal_pending()


def _reseal_rewritten(schema: str, seq: int, action: str) -> None:
    """A rewrite the chain alone cannot reveal: change an event, then recompute every seal
    from it on (as someone with the owner's password could), so audit_verify() passes."""
    with schema_context(schema), owner_mode(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in ("audit_event", "audit_event_seal"):
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_update_delete")
        cursor.execute("UPDATE audit_event SET action = %s WHERE seq = %s", [action, seq])
        from audit.models import EventSeal

        prev = genesis_hash(schema)
        for seal in EventSeal.objects.select_related("event").order_by("chain_seq"):
            digest = event_hash(prev, seal.chain_seq, seal.event.payload())
            cursor.execute(
                "UPDATE audit_event_seal SET prev_hash = %s, hash = %s WHERE chain_seq = %s",
                [prev, digest, seal.chain_seq],
            )
            prev = digest
        for table in ("audit_event", "audit_event_seal"):
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_no_update_delete")


def test_every_chain_is_anchored_once_per_head(
    anchor_bucket: Any, tenant_a: Municipality, tenant_b: Municipality
) -> None:
    record(action="test.platform", actor=Actor.system("tests"))
    audit_seal_pending()
    _resident_event(tenant_a)
    _resident_event(tenant_b)

    written = audit_anchor_all.apply().get()
    chains = {key["Key"].split("/")[1] for key in _versions(anchor_bucket)}
    assert {"platform", tenant_a.schema_name, tenant_b.schema_name} <= chains
    assert written == len(chains)

    with schema_context(tenant_a.schema_name):
        report = audit_verify()
    anchor = latest_anchor(tenant_a.schema_name)
    assert anchor is not None
    assert (anchor.chain, anchor.seq, anchor.hash) == (
        tenant_a.schema_name,
        report.events,
        report.head,
    )

    # Nothing changed: nothing written (no second version either: If-None-Match).
    before = len(_versions(anchor_bucket))
    assert anchor_all() == 0
    assert len(_versions(anchor_bucket)) == before

    _resident_event(tenant_a)
    assert anchor_all() == 1
    newer = latest_anchor(tenant_a.schema_name)
    assert newer is not None and newer.seq == anchor.seq + 1


def test_anchors_hold_no_personal_data_and_are_encrypted_under_the_storage_key(
    anchor_bucket: Any, tenant_a: Municipality
) -> None:
    kms = boto3.client(
        "kms",
        endpoint_url=settings.AWS_ENDPOINT_URL,
        region_name=REGION,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
    )
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    _resident_event(tenant_a)
    with override_settings(AWS_S3_SSE_KMS_KEY_ID=key_arn):
        anchor_all()
    anchor = latest_anchor(tenant_a.schema_name)
    assert anchor is not None
    key = anchor_key(tenant_a.schema_name, anchor.seq)
    body = _anchor_of(anchor_bucket, key)
    assert set(body) == set(FIELDS)
    assert body["chain"] == tenant_a.schema_name and len(body["hash"]) == 64
    raw = json.dumps(body)
    for personal in ("4242", "192.0.2.10", "resident", "name", "phone"):
        assert personal not in raw.replace(tenant_a.schema_name, "")
    head = anchor_bucket.head_object(Bucket=BUCKET, Key=key)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key_arn)
    assert head.get("ObjectLockMode") in (None, "COMPLIANCE")  # moto may leave it implicit


def test_audit_verify_checks_the_chain_against_its_latest_anchor(
    anchor_bucket: Any, tenant_a: Municipality
) -> None:
    out = _verify("--tenant", tenant_a.code)
    assert "Anchor: none yet" in out
    _resident_event(tenant_a)
    _resident_event(tenant_a)
    anchor_all()
    out = _verify("--tenant", tenant_a.code)
    assert "OK" in out and "Anchor: matches event #" in out

    with schema_context(tenant_a.schema_name):
        from audit.models import Event

        first = Event.objects.order_by("seq").values_list("seq", flat=True).first()
    assert first is not None
    _reseal_rewritten(tenant_a.schema_name, first, "test.innocent")
    with schema_context(tenant_a.schema_name):
        assert audit_verify().ok  # the chain alone looks fine
    with pytest.raises(CommandError, match="does NOT match its latest anchor.*rewritten"):
        _verify("--tenant", tenant_a.code)
    assert "not checked" in _verify("--tenant", tenant_a.code, "--no-anchor")


def test_audit_verify_finds_a_chain_shorter_than_its_anchor(
    anchor_bucket: Any, tenant_a: Municipality
) -> None:
    _resident_event(tenant_a)
    anchor_all()
    anchor = latest_anchor(tenant_a.schema_name)
    assert anchor is not None
    # An anchor further on than the chain (as after events were cut off its end).
    ahead = Anchor(
        chain=anchor.chain,
        seq=anchor.seq + 5,
        hash="0" * 64,
        sealed_at=anchor.sealed_at,
        anchored_at=anchor.anchored_at,
    )
    anchor_bucket.put_object(
        Bucket=BUCKET, Key=anchor_key(ahead.chain, ahead.seq), Body=ahead.to_json()
    )
    with pytest.raises(CommandError, match="events were removed"):
        _verify("--tenant", tenant_a.code)


def test_the_platform_chain_is_checked_too(anchor_bucket: Any, db: None) -> None:
    record(action="test.platform", actor=Actor.system("tests"))
    audit_seal_pending()
    anchor_all()
    assert "Anchor: matches" in _verify("--platform")


def test_anchoring_without_a_bucket_fails_loudly(db: None) -> None:
    with override_settings(SESSHU_AUDIT_ANCHOR_BUCKET=None), pytest.raises(ImproperlyConfigured):
        anchor_all()


def test_anchoring_runs_on_the_beat_schedule() -> None:
    entries = {e["task"]: e for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "audit.anchor_all" in entries
    assert entries["audit.anchor_all"]["schedule"] <= 3600


def test_only_the_worker_may_write_and_list_anchors() -> None:
    from tests.infra.iam_policies import BUCKET_ARNS, allowed, policy_documents

    policies = policy_documents()
    bucket = BUCKET_ARNS["module.audit_anchor_bucket.arn"]
    key = f"{bucket}/{anchor_key('m131016', 42)}"
    listing = {"s3:prefix": "anchors/m131016/"}
    for action in ("s3:PutObject", "s3:GetObject"):
        assert allowed(policies["worker"], action, key), action
        assert not allowed(policies["web"], action, key), action
    assert allowed(policies["worker"], "s3:ListBucket", bucket, listing)
    assert not allowed(policies["web"], "s3:ListBucket", bucket, listing)
    for action in ("s3:DeleteObject", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"):
        assert not allowed(policies["worker"], action, key), action
