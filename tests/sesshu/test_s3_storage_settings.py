"""S3 storage is configured completely or the process refuses to start: the customer-managed
key's ARN is required (without it "aws:kms" means the AWS-managed key), and django-storages'
own boto3 client is pinned to Tokyo even when AWS_S3_REGION_NAME is not set.

Settings are read once per process, so each case runs in a fresh interpreter; the last one
stores a file through the real storage into the local moto server and reads back how S3
encrypted it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY_ARN = "arn:aws:kms:ap-northeast-1:111122223333:key/0b5f7a5e-1111-2222-3333-444455556666"

PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
result = {
    "region": settings.AWS_S3_REGION_NAME,
    "params": settings.AWS_S3_OBJECT_PARAMETERS,
    "client_region": default_storage.connection.meta.client.meta.region_name,
}
if settings.AWS_S3_ENDPOINT_URL:
    name = default_storage.save("exports/probe.bin", ContentFile(b"x"))
    head = default_storage.connection.meta.client.head_object(
        Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=name
    )
    result["key"] = name
    result["sse"] = [head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")]
print(json.dumps(result))
"""


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full_env = {
        **base,
        "PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}",
        "DJANGO_SETTINGS_MODULE": "sesshu.settings",
        "SESSHU_TESTING": "1",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_s3_storage_without_the_key_id_refuses_to_start() -> None:
    result = _run("import sesshu.wsgi", AWS_STORAGE_BUCKET_NAME="files")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "AWS_S3_SSE_KMS_KEY_ID" in result.stderr


@pytest.mark.parametrize(
    "value",
    [
        "alias/sesshu-production-storage",
        "arn:aws:kms:ap-northeast-1:111122223333:alias/sesshu-production-storage",
        "0b5f7a5e-1111-2222-3333-444455556666",
    ],
)
def test_the_key_id_must_be_a_key_arn(value: str) -> None:
    result = _run(
        "import sesshu.wsgi", AWS_STORAGE_BUCKET_NAME="files", AWS_S3_SSE_KMS_KEY_ID=value
    )
    assert result.returncode != 0
    assert "is not a KMS key ARN" in result.stderr


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("AWS_S3_SSE_KMS_KEY_ID", KEY_ARN.replace("ap-northeast-1", "us-east-1")),
        ("AWS_S3_REGION_NAME", "ap-northeast-3"),
    ],
)
def test_s3_storage_outside_tokyo_refuses_to_start(setting: str, value: str) -> None:
    env = {"AWS_STORAGE_BUCKET_NAME": "files", "AWS_S3_SSE_KMS_KEY_ID": KEY_ARN, setting: value}
    result = _run("import sesshu.wsgi", **env)
    assert result.returncode != 0
    assert setting in result.stderr and value in result.stderr


def test_without_a_region_setting_the_storage_client_is_in_tokyo() -> None:
    # No AWS_S3_REGION_NAME, no AWS_REGION, no AWS_DEFAULT_REGION: boto3 alone would have no
    # region (or take one from ~/.aws/config).
    result = _run(PROBE, AWS_STORAGE_BUCKET_NAME="files", AWS_S3_SSE_KMS_KEY_ID=KEY_ARN)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["region"] == probe["client_region"] == "ap-northeast-1"
    assert probe["params"] == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY_ARN}


def test_files_are_stored_under_the_customer_key(moto_server: str) -> None:
    from tests.aws_fixtures import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, REGION, reset_moto

    reset_moto(moto_server)
    session = boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        region_name=REGION,
    )
    key_arn = session.client("kms", endpoint_url=moto_server).create_key()["KeyMetadata"]["Arn"]
    session.client("s3", endpoint_url=moto_server).create_bucket(
        Bucket="files", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    result = _run(
        PROBE,
        AWS_STORAGE_BUCKET_NAME="files",
        AWS_S3_SSE_KMS_KEY_ID=key_arn,
        AWS_ENDPOINT_URL=moto_server,
        AWS_ACCESS_KEY_ID=FAKE_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET_ACCESS_KEY,
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["key"] == "exports/platform/probe.bin"
    assert probe["sse"] == ["aws:kms", key_arn]
