"""`manage.py tenant_rewrap_keys`: every municipality's data key ends up wrapped under the
current master key (local) or KMS key (moto, real boto3 calls), unchanged in value, audited,
and a second run changes nothing."""

from __future__ import annotations

import base64
import json
import os
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from audit.platform.models import PlatformEvent
from sesshu import aws
from tenants.keys import KeyUnavailable, KmsKeyProvider, LocalKeyProvider, key_provider
from tenants.models import Municipality


def _run(*args: str) -> str:
    out = StringIO()
    call_command("tenant_rewrap_keys", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _live() -> list[Municipality]:
    return list(
        Municipality.objects.exclude(status=Municipality.Status.DECOMMISSIONED).order_by("code")
    )


def test_local_keys_are_rewrapped_under_the_new_master_key(
    tenant_a: Municipality, tmp_path: Path
) -> None:
    old_provider = key_provider()
    plain = {
        m.code: old_provider.unwrap_data_key(tenant_code=m.code, wrapped=bytes(m.wrapped_data_key))
        for m in _live()
    }
    old_file = tmp_path / "old-master-key"
    old_file.write_text(settings.SESSHU_LOCAL_MASTER_KEY)
    new_master = base64.b64encode(os.urandom(32)).decode()

    with override_settings(SESSHU_LOCAL_MASTER_KEY=new_master):
        dry = _run("--from-local-master-key-file", str(old_file), "--dry-run")
        assert f"{len(plain)} data key(s)" in dry and "(dry run)" in dry
        assert not PlatformEvent.objects.filter(action="tenant.data_key_rewrapped").exists()

        out = _run("--from-local-master-key-file", str(old_file))
        assert f"Done: {len(plain)} re-wrapped, 0 already current" in out
        assert f"[1/{len(plain)}]" in out
        new_provider = key_provider()
        for municipality in _live():
            wrapped = bytes(municipality.wrapped_data_key)
            assert (
                new_provider.unwrap_data_key(tenant_code=municipality.code, wrapped=wrapped)
                == (plain[municipality.code])
            )
            with pytest.raises(KeyUnavailable):
                old_provider.unwrap_data_key(tenant_code=municipality.code, wrapped=wrapped)

        # Idempotent: nothing left to do, nothing audited twice.
        again = _run("--from-local-master-key-file", str(old_file))
        assert f"Done: 0 re-wrapped, {len(plain)} already current" in again

    events = PlatformEvent.objects.filter(action="tenant.data_key_rewrapped")
    assert events.count() == len(plain)
    details = json.dumps([e.details for e in events])
    for secret in [settings.SESSHU_LOCAL_MASTER_KEY, new_master] + [
        base64.b64encode(k).decode() for k in plain.values()
    ]:
        assert secret not in details


def test_a_key_the_old_master_cannot_unwrap_fails_loudly(
    tenant_a: Municipality, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text(base64.b64encode(os.urandom(32)).decode())
    with override_settings(SESSHU_LOCAL_MASTER_KEY=base64.b64encode(os.urandom(32)).decode()):
        with pytest.raises(CommandError, match="not re-wrapped"):
            _run("--from-local-master-key-file", str(wrong), "--code", tenant_a.code)
    tenant_a.refresh_from_db()
    assert key_provider().unwrap_data_key(
        tenant_code=tenant_a.code, wrapped=bytes(tenant_a.wrapped_data_key)
    )


def test_kms_keys_are_reencrypted_under_the_new_kms_key(
    local_aws: str, tenant_a: Municipality
) -> None:
    kms: Any = aws.client("kms")
    old_key = kms.create_key()["KeyMetadata"]["Arn"]
    new_key = kms.create_key()["KeyMetadata"]["Arn"]
    old_provider = KmsKeyProvider(old_key, kms)
    data_key = old_provider.generate_data_key(tenant_code=tenant_a.code)
    Municipality.objects.filter(pk=tenant_a.pk).update(wrapped_data_key=data_key.wrapped)

    with override_settings(SESSHU_KEY_PROVIDER="aws-kms", SESSHU_KMS_KEY_ID=new_key):
        out = _run("--from-kms-key-id", old_key, "--code", tenant_a.code)
        assert "Done: 1 re-wrapped" in out
        tenant_a.refresh_from_db()
        wrapped = bytes(tenant_a.wrapped_data_key)
        assert wrapped != data_key.wrapped
        new_provider = KmsKeyProvider(new_key, kms)
        assert new_provider.unwrap_data_key(tenant_code=tenant_a.code, wrapped=wrapped) == (
            data_key.plaintext
        )
        with pytest.raises(KeyUnavailable):
            old_provider.unwrap_data_key(tenant_code=tenant_a.code, wrapped=wrapped)
        # Bound to its tenant still: another tenant's context does not unwrap it.
        with pytest.raises(KeyUnavailable):
            new_provider.unwrap_data_key(tenant_code="131016", wrapped=wrapped)

        assert "Done: 0 re-wrapped, 1 already current" in _run(
            "--from-kms-key-id", old_key, "--code", tenant_a.code
        )
        # New key material under the same key (rotation): --force re-encrypts in place.
        forced = _run("--force", "--code", tenant_a.code)
        assert "Done: 1 re-wrapped" in forced
    event = PlatformEvent.objects.filter(action="tenant.data_key_rewrapped").last()
    assert event is not None
    assert event.details["from"] == f"aws-kms {new_key}"


def test_a_decommissioned_or_unknown_municipality_is_not_touched(db: None) -> None:
    with pytest.raises(CommandError, match="No municipality"):
        _run("--code", "999999")


def test_the_local_provider_format_is_the_one_the_command_writes(tmp_path: Path) -> None:
    from tenants.management.commands.tenant_rewrap_keys import _wrap

    provider = LocalKeyProvider(os.urandom(32))
    key = os.urandom(32)
    wrapped = _wrap(provider, "132110", key)
    assert provider.unwrap_data_key(tenant_code="132110", wrapped=wrapped) == key
