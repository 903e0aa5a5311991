"""Find AWS regions other than ap-northeast-1 in Terraform, using python-hcl2.

Independent of the checkov policy in terraform/policies/tokyo_only.py (which sees checkov's
rendered graph): this one reads the HCL itself, resolves ``var.x`` to the variable's default,
and reports every provider, resource, data source, module call, variable default and local
value that names another region, and every ``aws`` provider that is not pinned to Tokyo.

Works with python-hcl2 (the app's dev dependency) and with checkov's fork of it, whose
output shapes differ (quoted keys and values vs. values wrapped in one-element lists).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

from tests.infra.regions import ALLOWED_REGION, REGION_RE

VAR_REF_RE = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    address: str
    problem: str


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def normalise(node: Any) -> Any:
    """Same shape for both parsers: no metadata keys, no quotes around keys and strings."""
    if isinstance(node, dict):
        return {
            _unquote(key): normalise(value)
            for key, value in node.items()
            if not (key.startswith("__") and key.endswith("__"))
        }
    if isinstance(node, list):
        return [normalise(item) for item in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


def scalar(value: Any) -> Any:
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def foreign_regions(node: Any, variables: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for text in strings(node):
        text = VAR_REF_RE.sub(lambda m: variables.get(m.group(1), m.group(0)), text)
        found.update(r for r in REGION_RE.findall(text) if r != ALLOWED_REGION)
    return found


def _blocks(doc: dict[str, Any], kind: str) -> Iterator[tuple[str, Any]]:
    """(label, body) for single-label blocks; ("type.name", body) for resources/data."""
    for entry in doc.get(kind, []):
        for label, body in entry.items():
            if kind in ("resource", "data"):
                for name, inner in scalar(body).items():
                    yield f"{label}.{name}", scalar(inner)
            else:
                yield label, scalar(body)


def parse_directory(directory: Path) -> dict[Path, dict[str, Any]]:
    docs = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            docs[path] = normalise(hcl2.load(handle))
    return docs


def module_directories(root: Path) -> list[Path]:
    dirs = {p.parent for p in root.rglob("*.tf") if ".terraform" not in p.parts}
    return sorted(dirs)


def variable_defaults(docs: Iterable[dict[str, Any]]) -> dict[str, str]:
    defaults = {}
    for doc in docs:
        for name, body in _blocks(doc, "variable"):
            default = scalar(body.get("default"))
            if isinstance(default, str):
                defaults[name] = default
    return defaults


def _resolved(value: Any, variables: dict[str, str]) -> Any:
    value = scalar(value)
    if not isinstance(value, str):
        return value
    value = VAR_REF_RE.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
    if value.startswith("${") and value.endswith("}"):
        value = value[2:-1]
    return value


def scan(root: Path) -> list[Finding]:
    """Every place under ``root`` that puts Terraform outside ap-northeast-1."""
    findings: list[Finding] = []
    for directory in module_directories(root):
        docs = parse_directory(directory)
        variables = variable_defaults(docs.values())
        for path, doc in docs.items():
            file = str(path.relative_to(root))

            def report(address: str, problem: str, file: str = file) -> None:
                findings.append(Finding(file, address, problem))

            for label, body in _blocks(doc, "provider"):
                alias = scalar(body.get("alias")) or "default"
                address = f"provider.{label}.{alias}"
                if label == "aws":
                    region = _resolved(body.get("region"), variables)
                    if region != ALLOWED_REGION:
                        report(address, f"region is {region!r}, not {ALLOWED_REGION!r}")
                for region in sorted(foreign_regions(body, variables)):
                    report(address, f"names {region}")

            for kind in ("resource", "data", "module"):
                for label, body in _blocks(doc, kind):
                    prefix = "" if kind == "resource" else f"{kind}."
                    for region in sorted(foreign_regions(body, variables)):
                        report(f"{prefix}{label}", f"names {region}")

            for name, body in _blocks(doc, "variable"):
                for region in sorted(foreign_regions(body.get("default"), {})):
                    report(f"var.{name}", f"default names {region}")

            for entry in doc.get("locals", []):
                for name, value in entry.items():
                    for region in sorted(foreign_regions(value, variables)):
                        report(f"local.{name}", f"names {region}")
    return sorted(findings)


def region_variables(root: Path) -> dict[Path, dict[str, Any]]:
    """The ``aws_region`` variable of every directory that configures an aws provider."""
    found: dict[Path, dict[str, Any]] = defaultdict(dict)
    for directory in module_directories(root):
        docs = parse_directory(directory)
        has_provider = any(
            label == "aws" for d in docs.values() for label, _ in _blocks(d, "provider")
        )
        if not has_provider:
            continue
        found[directory] = {}
        for doc in docs.values():
            for name, body in _blocks(doc, "variable"):
                if name == "aws_region":
                    found[directory] = body
    return dict(found)
