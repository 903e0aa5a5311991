from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from sesshu import aws
from sesshu.regions import (
    ALLOWED_REGION,
    REGION_SETTINGS,
    assert_tokyo,
    check_tokyo_region,
    region_violations,
)

TOKYO_KEY_ARN = "arn:aws:kms:ap-northeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VIRGINIA_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def tokyo_settings(**overrides: object) -> SimpleNamespace:
    values: dict[str, object] = {name: ALLOWED_REGION for name in REGION_SETTINGS}
    values["SESSHU_KMS_KEY_ID"] = TOKYO_KEY_ARN
    values.update(overrides)
    return SimpleNamespace(**values)


def test_tokyo_everywhere_is_accepted() -> None:
    assert region_violations(tokyo_settings(), environ={}) == []
    assert_tokyo(tokyo_settings(), environ={})


def test_unset_regions_are_not_violations() -> None:
    assert (
        region_violations(SimpleNamespace(AWS_REGION="", SESSHU_KMS_REGION=None), environ={}) == []
    )


@pytest.mark.parametrize("setting", REGION_SETTINGS)
def test_a_region_outside_tokyo_is_named_with_its_setting(setting: str) -> None:
    violations = region_violations(tokyo_settings(**{setting: "us-west-2"}), environ={})

    assert len(violations) == 1
    assert setting in violations[0]
    assert "us-west-2" in violations[0]


def test_a_near_miss_is_not_tokyo() -> None:
    violations = region_violations(tokyo_settings(AWS_REGION="ap-northeast-3"), environ={})

    assert violations and "ap-northeast-3" in violations[0]


def test_a_kms_key_arn_in_another_region_is_caught() -> None:
    violations = region_violations(tokyo_settings(SESSHU_KMS_KEY_ID=VIRGINIA_KEY_ARN), environ={})

    assert len(violations) == 1
    assert "SESSHU_KMS_KEY_ID" in violations[0]
    assert "us-east-1" in violations[0]


@pytest.mark.parametrize("key_id", ["1234abcd-12ab-34cd-56ef-1234567890ab", "alias/sesshu"])
def test_a_bare_key_id_or_alias_is_left_to_the_kms_region(key_id: str) -> None:
    assert region_violations(tokyo_settings(SESSHU_KMS_KEY_ID=key_id), environ={}) == []


def test_a_malformed_arn_is_refused() -> None:
    violations = region_violations(tokyo_settings(SESSHU_KMS_KEY_ID="arn:aws:kms"), environ={})

    assert violations and "SESSHU_KMS_KEY_ID" in violations[0]


@pytest.mark.parametrize(
    "endpoint",
    ["https://kms.us-east-1.amazonaws.com", "https://s3.amazonaws.com"],
)
def test_an_aws_endpoint_outside_tokyo_is_caught(endpoint: str) -> None:
    violations = region_violations(tokyo_settings(AWS_ENDPOINT_URL=endpoint), environ={})

    assert violations and "AWS_ENDPOINT_URL" in violations[0]


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:5000", "https://kms.ap-northeast-1.amazonaws.com"]
)
def test_a_local_or_tokyo_endpoint_is_accepted(endpoint: str) -> None:
    assert region_violations(tokyo_settings(AWS_ENDPOINT_URL=endpoint), environ={}) == []


def test_storage_options_are_inspected() -> None:
    storages = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "region_name": "eu-west-1",
                "object_parameters": {"SSEKMSKeyId": VIRGINIA_KEY_ARN},
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

    violations = region_violations(tokyo_settings(STORAGES=storages), environ={})

    assert len(violations) == 2
    assert "region_name" in violations[0] and "eu-west-1" in violations[0]
    assert "SSEKMSKeyId" in violations[1] and "us-east-1" in violations[1]


def test_the_s3_sse_kms_key_is_inspected() -> None:
    settings_obj = tokyo_settings(
        AWS_S3_OBJECT_PARAMETERS={
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": VIRGINIA_KEY_ARN,
        }
    )

    violations = region_violations(settings_obj, environ={})

    assert violations and "AWS_S3_OBJECT_PARAMETERS" in violations[0]


def test_boto3s_default_region_variable_is_inspected() -> None:
    violations = region_violations(tokyo_settings(), environ={"AWS_DEFAULT_REGION": "us-east-1"})

    assert violations == [
        "environment variable AWS_DEFAULT_REGION is 'us-east-1', not 'ap-northeast-1'"
    ]


def test_assert_tokyo_refuses_to_start_and_names_every_violation() -> None:
    settings_obj = tokyo_settings(AWS_S3_REGION_NAME="us-east-1", SESSHU_SES_REGION="us-west-2")

    with pytest.raises(ImproperlyConfigured) as raised:
        assert_tokyo(settings_obj, environ={})

    assert "AWS_S3_REGION_NAME" in str(raised.value)
    assert "SESSHU_SES_REGION" in str(raised.value)


def test_the_system_check_reports_each_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    with override_settings(
        AWS_REGION=ALLOWED_REGION,
        SESSHU_KMS_REGION="us-east-1",
        SESSHU_SNS_REGION="eu-central-1",
        SESSHU_KMS_KEY_ID=None,
        AWS_ENDPOINT_URL=None,
    ):
        errors = check_tokyo_region(None)

    assert [error.id for error in errors] == ["sesshu.E001", "sesshu.E001"]
    assert "SESSHU_KMS_REGION" in errors[0].msg
    assert "SESSHU_SNS_REGION" in errors[1].msg


def test_the_aws_client_refuses_another_region() -> None:
    with pytest.raises(ImproperlyConfigured, match="us-east-1"):
        aws.client("kms", region="us-east-1")


def test_the_aws_client_refuses_another_default_region() -> None:
    with override_settings(AWS_REGION="eu-west-1"):
        with pytest.raises(ImproperlyConfigured, match=r"eu-west-1.*settings\.AWS_REGION"):
            aws.client("s3")


def test_the_aws_client_is_built_for_tokyo_and_shared() -> None:
    aws.clear_clients()
    with override_settings(
        AWS_REGION=ALLOWED_REGION,
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    ):
        kms = aws.client("kms")
        assert aws.client("kms", region=ALLOWED_REGION) is kms
    aws.clear_clients()

    assert kms.meta.region_name == ALLOWED_REGION
    assert kms.meta.endpoint_url == "http://127.0.0.1:9"


def test_the_aws_client_refuses_half_set_credentials() -> None:
    with override_settings(
        AWS_REGION=ALLOWED_REGION, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY=""
    ):
        with pytest.raises(ImproperlyConfigured, match="AWS_SECRET_ACCESS_KEY"):
            aws.client("kms")


def test_the_s3_sse_kms_key_setting_is_inspected() -> None:
    violations = region_violations(
        tokyo_settings(AWS_S3_SSE_KMS_KEY_ID=VIRGINIA_KEY_ARN), environ={}
    )

    assert violations and "AWS_S3_SSE_KMS_KEY_ID" in violations[0]
