"""Terraform stays in ap-northeast-1: every provider, resource, data source and module call.

The same guard is run on tests/infra/fixtures/bad_region, a small configuration that breaks
the rule in every way it knows, to prove the guard fails when it should.
"""

from __future__ import annotations

from pathlib import Path

from tests.infra.tokyo_guard import ALLOWED_REGION, Finding, region_variables, scalar, scan

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
BAD_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "bad_region"


def test_terraform_names_no_region_but_tokyo() -> None:
    assert scan(TERRAFORM) == []


def test_every_root_module_pins_its_provider_through_a_validated_variable() -> None:
    roots = region_variables(TERRAFORM)
    assert {p.relative_to(TERRAFORM).as_posix() for p in roots} == {".", "bootstrap"}
    for directory, variable in roots.items():
        assert scalar(variable.get("default")) == ALLOWED_REGION, directory
        validations = variable.get("validation") or []
        conditions = [str(scalar(v.get("condition"))) for v in validations]
        assert any("var.aws_region" in c and f'"{ALLOWED_REGION}"' in c for c in conditions), (
            f"{directory}: aws_region has no validation refusing other regions"
        )


def test_guard_rejects_every_violation_in_the_bad_fixture() -> None:
    findings = scan(BAD_FIXTURE)
    by_address = {(f.address, f.problem) for f in findings}
    expected = {
        ("provider.aws.default", "region is 'us-east-1', not 'ap-northeast-1'"),
        ("provider.aws.default", "names us-east-1"),
        ("provider.aws.osaka", "region is 'ap-northeast-3', not 'ap-northeast-1'"),
        ("provider.aws.osaka", "names ap-northeast-3"),
        ("aws_s3_bucket.abroad", "names eu-west-1"),
        ("aws_iam_role_policy.abroad", "names us-west-2"),
        ("aws_subnet.abroad", "names ap-southeast-1"),
        ("module.replica", "names eu-central-1"),
        ("data.aws_ami.abroad", "names us-east-2"),
        ("var.region", "default names us-east-1"),
    }
    assert by_address == expected, sorted(findings)


def test_guard_accepts_tokyo_and_its_availability_zones(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        'variable "aws_region" {\n  default = "ap-northeast-1"\n}\n'
        'provider "aws" {\n  region = var.aws_region\n}\n'
        'resource "aws_subnet" "a" {\n  availability_zone = "ap-northeast-1a"\n'
        '  tags = { arn = "arn:aws:kms:ap-northeast-1:111122223333:key/x" }\n}\n',
        encoding="utf-8",
    )
    assert scan(tmp_path) == []


def test_guard_catches_a_provider_without_region(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('provider "aws" {\n}\n', encoding="utf-8")
    assert scan(tmp_path) == [
        Finding("main.tf", "provider.aws.default", "region is None, not 'ap-northeast-1'")
    ]
