"""Custom checkov policies: every AWS region named in the Terraform is ap-northeast-1.

Loaded with ``checkov --external-checks-dir terraform/policies`` (scripts/check_infra.sh).
Checkov renders variables and locals before these checks run, so ``region = var.aws_region``
is judged by the variable's value.

CKV_SESSHU_1  an ``aws`` provider sets ``region`` and it is ap-northeast-1
CKV_SESSHU_2  no resource argument names another region (AWS provider v6 has a per-resource
              ``region`` argument; ARNs, endpoints and availability zones count too)
CKV_SESSHU_3  no module call argument names another region
CKV_SESSHU_4  no data source argument names another region
CKV_SESSHU_5  no provider (of any kind) argument names another region
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.data.base_check import BaseDataCheck
from checkov.terraform.checks.module.base_module_check import BaseModuleCheck
from checkov.terraform.checks.provider.base_check import BaseProviderCheck
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

ALLOWED_REGION = "ap-northeast-1"

# AWS region codes (us-east-1, ap-northeast-3, us-gov-west-1, eu-central-2, ...), also when
# they are part of an ARN, an endpoint host name or an availability zone (us-east-1a).
REGION_RE = re.compile(
    r"(?<![a-z0-9])"
    r"((?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov|-iso[a-z]?)?"
    r"-(?:north|south|east|west|central)(?:east|west)?-[0-9]{1,2})"
    r"(?![0-9])"
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.startswith("__") and key.endswith("__"):
                continue  # checkov metadata (__start_line__, __address__, ...)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def foreign_regions(conf: Any) -> set[str]:
    """Every AWS region other than ap-northeast-1 named anywhere in ``conf``."""
    found: set[str] = set()
    for text in _strings(conf):
        found.update(r for r in REGION_RE.findall(text) if r != ALLOWED_REGION)
    return found


def _first(value: Any) -> Any:
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


class AwsProviderInTokyo(BaseProviderCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure the AWS provider is pinned to ap-northeast-1",
            id="CKV_SESSHU_1",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_provider=["aws"],
        )

    def scan_provider_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        region = _first(conf.get("region"))
        if region != ALLOWED_REGION:
            return CheckResult.FAILED
        return CheckResult.FAILED if foreign_regions(conf) else CheckResult.PASSED


class NoForeignRegionInProvider(BaseProviderCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure no provider argument names an AWS region other than ap-northeast-1",
            id="CKV_SESSHU_5",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_provider=["*"],
        )

    def scan_provider_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        return CheckResult.FAILED if foreign_regions(conf) else CheckResult.PASSED


class NoForeignRegionInResource(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure no resource argument names an AWS region other than ap-northeast-1",
            id="CKV_SESSHU_2",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_resources=["*"],
        )

    def scan_resource_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        return CheckResult.FAILED if foreign_regions(conf) else CheckResult.PASSED


class NoForeignRegionInModule(BaseModuleCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure no module argument names an AWS region other than ap-northeast-1",
            id="CKV_SESSHU_3",
            categories=[CheckCategories.GENERAL_SECURITY],
        )

    def scan_module_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        return CheckResult.FAILED if foreign_regions(conf) else CheckResult.PASSED


class NoForeignRegionInData(BaseDataCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure no data source argument names an AWS region other than ap-northeast-1",
            id="CKV_SESSHU_4",
            categories=[CheckCategories.GENERAL_SECURITY],
            supported_data=["*"],
        )

    def scan_data_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        return CheckResult.FAILED if foreign_regions(conf) else CheckResult.PASSED


check_provider = AwsProviderInTokyo()
check_any_provider = NoForeignRegionInProvider()
check_resource = NoForeignRegionInResource()
check_module = NoForeignRegionInModule()
check_data = NoForeignRegionInData()
