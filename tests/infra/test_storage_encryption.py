"""Objects in Sesshu's buckets are encrypted under the customer-managed key, never the
AWS-managed aws/s3 key: the bucket policy of terraform/modules/secure_bucket refuses every
other PutObject, and the overlays give the application the key ARN it must send.

The policy is evaluated (tests.infra.iam_policies) on the requests S3 would see, including
the one django-storages sent before: `x-amz-server-side-encryption: aws:kms` with no key id.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.iam_policies import (
    KMS_KEY_ARN,
    SECURE_BUCKET,
    TERRAFORM,
    denied,
    policy_documents,
)
from tests.infra.manifests import OVERLAYS, render
from tests.infra.regions import ALLOWED_REGION
from tests.infra.tokyo_guard import parse_directory, scalar

OBJECT = "arn:aws:s3:::this/uploads/tenants/m131016/registry-imports/a.csv"
SSE = "s3:x-amz-server-side-encryption"
SSE_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"
OTHER_KEY = "arn:aws:kms:ap-northeast-1:111122223333:key/99999999-0000-0000-0000-000000000000"
SECURE_TRANSPORT = {"aws:SecureTransport": "true"}


@pytest.fixture(scope="module")
def bucket_policy() -> list[Any]:
    return policy_documents(SECURE_BUCKET)["this"]


@pytest.mark.parametrize(
    ("request_headers", "refused"),
    [
        ({SSE: "aws:kms", SSE_KEY: KMS_KEY_ARN}, False),  # what the application sends
        ({}, False),  # bucket default encryption: the customer key; also every UploadPart
        ({SSE: "aws:kms"}, True),  # the AWS-managed aws/s3 key
        ({SSE: "aws:kms", SSE_KEY: OTHER_KEY}, True),
        ({SSE_KEY: OTHER_KEY}, True),
        ({SSE: "AES256"}, True),
        ({SSE: "aws:kms:dsse"}, True),
    ],
    ids=[
        "customer-key",
        "bucket-default",
        "aws-managed-key",
        "other-key",
        "key-only",
        "sse-s3",
        "dsse",
    ],
)
def test_bucket_policy_accepts_only_the_customer_key(
    bucket_policy: list[Any], request_headers: dict[str, str], refused: bool
) -> None:
    context = {**SECURE_TRANSPORT, **request_headers}
    assert denied(bucket_policy, "s3:PutObject", OBJECT, context) is refused


def test_bucket_policy_refuses_plain_http(bucket_policy: list[Any]) -> None:
    context = {"aws:SecureTransport": "false", SSE: "aws:kms", SSE_KEY: KMS_KEY_ARN}
    assert denied(bucket_policy, "s3:GetObject", OBJECT, context)


def test_the_storage_key_arn_is_a_terraform_output() -> None:
    for doc in parse_directory(TERRAFORM).values():
        for entry in doc.get("output", []):
            if "k8s_overlay_values" in entry:
                values = scalar(scalar(entry["k8s_overlay_values"])["value"])
                assert scalar(values["STORAGE_KMS_KEY_ARN"]) == "${aws_kms_key.storage.arn}"
                return
    raise AssertionError("no k8s_overlay_values output")


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])
def test_overlays_give_the_application_the_storage_key_arn(overlay: Any) -> None:
    docs = render(overlay)
    (config,) = [
        d["data"]
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("sesshu-config")
    ]
    assert config["AWS_S3_REGION_NAME"] == ALLOWED_REGION
    bucket = config["AWS_STORAGE_BUCKET_NAME"]
    account = bucket.rsplit("-", 1)[1]
    assert re.fullmatch(
        rf"arn:aws:kms:{ALLOWED_REGION}:{account}:key/[0-9a-f-]{{36}}",
        config["AWS_S3_SSE_KMS_KEY_ID"],
    ), config["AWS_S3_SSE_KMS_KEY_ID"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])
def test_overlays_name_the_audit_anchor_bucket(overlay: Any) -> None:
    (config,) = [
        d["data"]
        for d in render(overlay)
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("sesshu-config")
    ]
    account = config["AWS_STORAGE_BUCKET_NAME"].rsplit("-", 1)[1]
    # terraform/s3.tf: "${local.name}-audit-anchors-${var.aws_account_id}"
    assert config["SESSHU_AUDIT_ANCHOR_BUCKET"] == f"sesshu-{overlay.name}-audit-anchors-{account}"
