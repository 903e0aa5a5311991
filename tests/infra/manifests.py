"""Render the kustomize overlays and validate what kubernetes-validate cannot.

kubernetes-validate knows the built-in kinds only. The External Secrets objects
(external-secrets.io/v1 SecretStore and ExternalSecret) are checked here against a strict
schema of the fields this project uses, written from the operator's v1 API; anything else,
or any other unknown kind, is an error.

Command line (scripts/check_infra.sh):
    python -m tests.infra.manifests split RENDERED.yaml BUILTIN_OUT.yaml
        writes the built-in kinds to BUILTIN_OUT.yaml (for kubernetes-validate --strict),
        validates the External Secrets objects, fails on any other custom kind.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p.parent for p in (ROOT / "k8s" / "overlays").glob("*/kustomization.yaml"))

BUILTIN_GROUPS = {
    "v1",
    "apps/v1",
    "batch/v1",
    "policy/v1",
    "autoscaling/v2",
    "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
}

_NAME = {
    "type": "string",
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
_KEY = {"type": "string", "pattern": r"^[-._a-zA-Z0-9]+$", "minLength": 1, "maxLength": 253}
_STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _NAME,
        "namespace": _NAME,
        "labels": _STRMAP,
        "annotations": _STRMAP,
    },
    "additionalProperties": False,
}


def _strict(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


SECRET_STORE_SCHEMA = _strict(
    {
        "apiVersion": {"const": "external-secrets.io/v1"},
        "kind": {"const": "SecretStore"},
        "metadata": _METADATA,
        "spec": _strict(
            {
                "refreshInterval": {"type": "integer", "minimum": 0},
                "provider": _strict(
                    {
                        "aws": _strict(
                            {
                                "service": {"enum": ["SecretsManager", "ParameterStore"]},
                                # Data residency: the store itself may only read Tokyo.
                                "region": {"const": "ap-northeast-1"},
                                "role": {"type": "string"},
                                "auth": _strict(
                                    {
                                        "jwt": _strict(
                                            {
                                                "serviceAccountRef": _strict(
                                                    {
                                                        "name": _NAME,
                                                        "audiences": {
                                                            "type": "array",
                                                            "items": {"type": "string"},
                                                        },
                                                    },
                                                    ["name"],
                                                )
                                            },
                                            ["serviceAccountRef"],
                                        )
                                    },
                                    ["jwt"],
                                ),
                            },
                            ["service", "region", "auth"],
                        )
                    },
                    ["aws"],
                ),
            },
            ["provider"],
        ),
    },
    ["apiVersion", "kind", "metadata", "spec"],
)

_REMOTE_REF = _strict(
    {
        "key": {"type": "string", "minLength": 1},
        "property": {"type": "string"},
        "version": {"type": "string"},
        "conversionStrategy": {"enum": ["Default", "Unicode"]},
        "decodingStrategy": {"enum": ["Auto", "Base64", "Base64URL", "None"]},
        "metadataPolicy": {"enum": ["None", "Fetch"]},
    },
    ["key"],
)

EXTERNAL_SECRET_SCHEMA = _strict(
    {
        "apiVersion": {"const": "external-secrets.io/v1"},
        "kind": {"const": "ExternalSecret"},
        "metadata": _METADATA,
        "spec": _strict(
            {
                "refreshInterval": {
                    "type": "string",
                    "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$",
                },
                "secretStoreRef": _strict(
                    {"name": _NAME, "kind": {"enum": ["SecretStore", "ClusterSecretStore"]}},
                    ["name"],
                ),
                "target": _strict(
                    {
                        "name": _NAME,
                        "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                        "deletionPolicy": {"enum": ["Delete", "Merge", "Retain"]},
                        "immutable": {"type": "boolean"},
                        "template": _strict(
                            {
                                "engineVersion": {"enum": ["v2"]},
                                "type": {"type": "string"},
                                "mergePolicy": {"enum": ["Replace", "Merge"]},
                                "metadata": _strict({"labels": _STRMAP, "annotations": _STRMAP}),
                                "data": _STRMAP,
                            }
                        ),
                    },
                    ["name"],
                ),
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "items": _strict(
                        {"secretKey": _KEY, "remoteRef": _REMOTE_REF}, ["secretKey", "remoteRef"]
                    ),
                },
            },
            ["secretStoreRef", "target", "data"],
        ),
    },
    ["apiVersion", "kind", "metadata", "spec"],
)

CUSTOM_SCHEMAS = {
    ("external-secrets.io/v1", "SecretStore"): SECRET_STORE_SCHEMA,
    ("external-secrets.io/v1", "ExternalSecret"): EXTERNAL_SECRET_SCHEMA,
}


def render(overlay: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise FileNotFoundError("kubectl")
    out = subprocess.run(
        [kubectl, "kustomize", str(overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def custom_errors(doc: dict[str, Any]) -> list[str]:
    """Schema errors of a non-built-in object (an unknown kind is an error itself)."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    schema = CUSTOM_SCHEMAS.get(key)  # type: ignore[arg-type]
    name = f"{key[1]}/{doc.get('metadata', {}).get('name')}"
    if schema is None:
        return [f"{name}: no schema for {key[0]} {key[1]}"]
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{name}: {'/'.join(str(p) for p in e.absolute_path) or '.'}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


def split(rendered: Path, builtin_out: Path) -> int:
    docs = [d for d in yaml.safe_load_all(rendered.read_text(encoding="utf-8")) if d]
    builtin = [d for d in docs if d.get("apiVersion") in BUILTIN_GROUPS]
    custom = [d for d in docs if d.get("apiVersion") not in BUILTIN_GROUPS]
    builtin_out.write_text(yaml.safe_dump_all(builtin, sort_keys=False), encoding="utf-8")
    errors = [e for d in custom for e in custom_errors(d)]
    for error in errors:
        print(f"FAIL {rendered.name}: {error}")
    print(
        f"{rendered.name}: {len(builtin)} built-in objects for kubernetes-validate, "
        f"{len(custom)} External Secrets objects checked against their schema, "
        f"{len(errors)} error(s)"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "split":
        sys.exit(__doc__)
    sys.exit(split(Path(sys.argv[2]), Path(sys.argv[3])))
