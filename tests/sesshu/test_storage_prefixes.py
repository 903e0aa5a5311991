"""Every object key the application writes is one the IAM roles may use and the bucket
lifecycle expires — derived from the application's own name and storage functions and checked
against terraform/iam.tf and terraform/s3.tf (python-hcl2).

A registry CSV holds residents' personal data in plaintext until it is imported: a key outside
the lifecycle's prefixes would keep it for ever, a key outside IAM's would fail in production
only. And each role gets exactly the S3 actions listed here, no more (least privilege).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.core.exceptions import SuspiciousFileOperation

from booking.services import registry_import
from tenants import storage
from tenants.storage import AREAS, TenantS3Storage, storage_key
from tests.infra.iam_policies import (
    BUCKET_ARNS,
    allowed,
    granted_actions,
    module_call,
    number_defaults,
    policy_documents,
    resolve_number,
)

BUCKET = BUCKET_ARNS["module.files_bucket.arn"]
TENANT_SCHEMA = "m131016"
PUT = {"s3:PutObject", "s3:AbortMultipartUpload"}  # a large file goes up in parts

# (what, stored name, role -> the S3 actions that role needs on it)
WRITTEN: list[tuple[str, Callable[[], str], dict[str, set[str]]]] = [
    (
        "registry upload",
        registry_import.upload_file_name,
        {
            # web: staff upload, staff cancel; worker: import reads and deletes it, and
            # `manage.py vouchers_import` (run in a worker pod) uploads it.
            "web": PUT | {"s3:DeleteObject"},
            "worker": PUT | {"s3:GetObject", "s3:DeleteObject"},
        },
    ),
    (
        "registry error file",
        lambda: registry_import.error_file_name(7),
        {"worker": PUT, "web": {"s3:GetObject"}},
    ),
    (
        "activation codes file",
        lambda: registry_import.codes_file_name(7),
        # Downloadable once: web deletes it as it is read.
        {"worker": PUT, "web": {"s3:GetObject", "s3:DeleteObject"}},
    ),
]
ROLES = ("web", "worker")


@pytest.fixture(params=[TENANT_SCHEMA, "public"], ids=["municipality", "platform"])
def schema(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(storage, "current_schema", lambda: request.param)
    yield request.param


def _s3_key(name: str) -> str:
    # The key django-storages really sends (location, normalisation and the tenant prefix).
    return TenantS3Storage(bucket_name="files")._normalize_name(name)


@pytest.fixture(scope="module")
def policies() -> dict[str, list]:
    return policy_documents()


@pytest.mark.parametrize(("what", "name", "needs"), WRITTEN, ids=[w[0] for w in WRITTEN])
def test_each_key_written_is_allowed_for_the_roles_that_use_it(
    schema: str, policies: dict[str, list], what: str, name: Callable[[], str], needs: dict
) -> None:
    key = _s3_key(name())
    prefix = "platform" if schema == "public" else f"tenants/{schema}"
    assert key.split("/", 1)[1].startswith(prefix + "/"), key
    for role, actions in needs.items():
        for action in sorted(actions):
            assert allowed(policies[role], action, f"{BUCKET}/{key}"), (
                f"{what}: role {role} may not {action} on {key}"
            )


@pytest.mark.parametrize(("what", "name", "needs"), WRITTEN, ids=[w[0] for w in WRITTEN])
def test_each_key_written_expires(
    schema: str, what: str, name: Callable[[], str], needs: dict
) -> None:
    key = _s3_key(name())
    defaults = number_defaults()
    rules = [
        rule
        for rule in module_call("files_bucket")["expiry_rules"]
        if key.startswith(str(rule["prefix"]))
    ]
    assert rules, f"{what}: no lifecycle rule of the files bucket expires {key}"
    for rule in rules:
        assert 0 < resolve_number(rule["expiration_days"], defaults) <= 31, rule


def test_the_error_file_outlives_the_console_offer() -> None:
    defaults = number_defaults()
    key = _s3_key(registry_import.error_file_name(1))
    (rule,) = [
        r for r in module_call("files_bucket")["expiry_rules"] if key.startswith(str(r["prefix"]))
    ]
    assert resolve_number(rule["expiration_days"], defaults) >= registry_import.ERROR_FILE_DAYS


def test_every_storage_area_has_a_lifecycle_rule_and_nothing_else_is_written() -> None:
    prefixes = {str(r["prefix"]) for r in module_call("files_bucket")["expiry_rules"]}
    assert {f"{area}/" for area in AREAS} <= prefixes


def test_roles_get_exactly_the_s3_actions_the_application_needs(
    policies: dict[str, list],
) -> None:
    for role in ROLES:
        needed: dict[str, set[str]] = {}
        for _what, name, needs in WRITTEN:
            area = name().split("/", 1)[0]
            needed.setdefault(f"{BUCKET}/{area}/*", set()).update(needs.get(role, set()))
        granted = {
            resource: actions
            for resource, actions in granted_actions(policies[role], f"{BUCKET}/").items()
        }
        assert granted == {r: a for r, a in needed.items() if a}, role


def test_the_web_role_cannot_reach_beyond_its_areas(policies: dict[str, list]) -> None:
    for key in ("tenants/m131016/x.csv", "platform/x", "anchors/x", "uploads"):
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert not allowed(policies["web"], action, f"{BUCKET}/{key}"), (action, key)
    assert not allowed(policies["web"], "s3:GetObject", f"{BUCKET}/uploads/tenants/m1/a.csv")


def test_names_outside_the_areas_are_refused(schema: str) -> None:
    for name in ("registry-imports/x.csv", "tenants/m131016/x.csv", "uploads", "uploads/", "../x"):
        with pytest.raises(SuspiciousFileOperation):
            storage_key(name)


def test_keys_carry_the_tenant_once_and_never_another_tenants(schema: str) -> None:
    prefix = "platform" if schema == "public" else f"tenants/{schema}"
    key = storage_key("uploads/registry-imports/a.csv")
    assert key == f"uploads/{prefix}/registry-imports/a.csv"
    assert storage_key(key) == key
    assert storage_key("/exports/b.bin") == f"exports/{prefix}/b.bin"
    foreign = storage_key("uploads/tenants/m999999/a.csv")
    assert foreign == f"uploads/{prefix}/tenants/m999999/a.csv"
