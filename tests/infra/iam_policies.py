"""The IAM policy documents and S3 buckets of terraform/, read with python-hcl2, and a small
evaluator of their statements: enough to ask "may this role do this action on this object
key?" and "does this bucket policy deny this PutObject?" without AWS.

The evaluator knows what terraform/ uses: Allow/Deny, actions and resources with `*`
wildcards, and the condition operators Null, Bool, StringEquals, StringNotEquals and StringLike,
each condition block ANDed, values within one block ORed (the IAM rules). Terraform
references are replaced by fixed stand-ins (`BUCKET_ARNS`, `KMS_KEY_ARN`).
Works with python-hcl2 and checkov's fork (see tests.infra.tokyo_guard.normalise).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.infra.tokyo_guard import parse_directory, scalar

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
SECURE_BUCKET = TERRAFORM / "modules" / "secure_bucket"

# Stand-ins for what Terraform only knows after apply.
BUCKET_ARNS = {
    "module.files_bucket.arn": "arn:aws:s3:::files",
    "module.audit_anchor_bucket.arn": "arn:aws:s3:::anchors",
    "aws_s3_bucket.this.arn": "arn:aws:s3:::this",
}
KMS_KEY_ARN = "arn:aws:kms:ap-northeast-1:111122223333:key/00000000-0000-0000-0000-000000000001"
_REF_RE = re.compile(r"\$\{([^}]+)\}")


def as_list(value: Any) -> list[Any]:
    value = scalar(value)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _substitute(text: str, extra: Mapping[str, str] | None = None) -> str:
    refs = {**BUCKET_ARNS, "var.kms_key_arn": KMS_KEY_ARN, **(extra or {})}
    return _REF_RE.sub(lambda m: refs.get(m.group(1).strip(), m.group(0)), text)


def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob),
        re.IGNORECASE if glob.startswith(("s3:", "kms:")) else 0,
    )


@dataclass(frozen=True)
class Condition:
    test: str
    variable: str
    values: tuple[str, ...]

    def holds(self, context: Mapping[str, str]) -> bool:
        present = self.variable in context
        if self.test == "Null":
            return (not present) == (self.values[0].lower() == "true")
        if self.test == "Bool":
            return present and context[self.variable].lower() in {v.lower() for v in self.values}
        if self.test == "StringEquals":
            return present and context[self.variable] in self.values
        if self.test == "StringNotEquals":
            # Missing key: IAM treats the negated operator as true.
            return not present or context[self.variable] not in self.values
        if self.test == "StringLike":
            return present and any(
                _pattern(v).fullmatch(context[self.variable]) for v in self.values
            )
        raise NotImplementedError(f"condition operator {self.test}")


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...]

    def applies(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        return (
            any(_pattern(a).fullmatch(action) for a in self.actions)
            and any(_pattern(r).fullmatch(resource) for r in self.resources)
            and all(c.holds(context) for c in self.conditions)
        )


def statements(body: Mapping[str, Any], extra: Mapping[str, str] | None = None) -> list[Statement]:
    """The statements of one `aws_iam_policy_document` data source body."""
    result = []
    for raw in as_list(body.get("statement")):
        conditions = tuple(
            Condition(
                test=str(scalar(c["test"])),
                variable=str(scalar(c["variable"])),
                values=tuple(_substitute(str(v), extra) for v in as_list(c["values"])),
            )
            for c in as_list(raw.get("condition"))
        )
        result.append(
            Statement(
                sid=str(scalar(raw.get("sid")) or ""),
                effect=str(scalar(raw.get("effect")) or "Allow"),
                actions=tuple(str(a) for a in as_list(raw.get("actions"))),
                resources=tuple(_substitute(str(r), extra) for r in as_list(raw.get("resources"))),
                conditions=conditions,
            )
        )
    return result


def policy_documents(directory: Path = TERRAFORM) -> dict[str, list[Statement]]:
    """Every `data "aws_iam_policy_document" NAME` in `directory`, by NAME."""
    documents = {}
    for doc in parse_directory(directory).values():
        for entry in doc.get("data", []):
            for name, body in (entry.get("aws_iam_policy_document") or {}).items():
                documents[name] = statements(scalar(body))
    return documents


def allowed(
    policy: Iterable[Statement],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> bool:
    """IAM's answer for one identity policy: some Allow applies and no Deny does."""
    context = context or {}
    policy = list(policy)
    if any(s.effect == "Deny" and s.applies(action, resource, context) for s in policy):
        return False
    return any(s.effect == "Allow" and s.applies(action, resource, context) for s in policy)


def denied(
    policy: Iterable[Statement], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    """Whether an explicit Deny of a (bucket) policy applies."""
    return any(s.effect == "Deny" and s.applies(action, resource, context) for s in policy)


def granted_actions(policy: Iterable[Statement], resource_prefix: str) -> dict[str, set[str]]:
    """Allowed actions per resource pattern whose pattern starts with `resource_prefix`."""
    granted: dict[str, set[str]] = {}
    for statement in policy:
        if statement.effect != "Allow":
            continue
        for resource in statement.resources:
            if resource.startswith(resource_prefix):
                granted.setdefault(resource, set()).update(statement.actions)
    return granted


def module_call(name: str, directory: Path = TERRAFORM) -> dict[str, Any]:
    for doc in parse_directory(directory).values():
        for entry in doc.get("module", []):
            if name in entry:
                return dict(scalar(entry[name]))
    raise KeyError(name)


def number_defaults(directory: Path = TERRAFORM) -> dict[str, Any]:
    """Variable defaults (any type) of a root module."""
    defaults = {}
    for doc in parse_directory(directory).values():
        for entry in doc.get("variable", []):
            for name, body in entry.items():
                defaults[name] = scalar(scalar(body).get("default"))
    return defaults


def resolve_number(value: Any, defaults: Mapping[str, Any]) -> int:
    value = scalar(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\$\{var\.([A-Za-z0-9_-]+)\}", value)
        if match:
            value = defaults[match.group(1)]
    return int(value)
