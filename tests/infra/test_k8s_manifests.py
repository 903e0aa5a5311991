"""The rendered overlays keep the promises of k8s/base: hardened pods in Tokyo, secrets only
by reference, one beat, autoscaled and disruption-budgeted web and worker, default-deny
networking, IRSA on every workload that calls AWS. Needs kubectl (kustomize) on PATH."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.manifests import OVERLAYS, custom_errors, render
from tests.infra.regions import ALLOWED_REGION, foreign_regions_in

WORKLOADS = {"sesshu-web", "sesshu-worker", "sesshu-beat", "sesshu-migrate"}
# Fluent Bit (k8s/log-shipper, tests/infra/test_log_shipper.py): a DaemonSet of its own
# namespace, hardened like the rest with the exceptions listed in
# test_every_pod_is_hardened_and_scheduled_in_tokyo.
LOG_SHIPPER = "sesshu-log-shipper"
LOG_SHIPPER_IMAGE = r"public\.ecr\.aws/aws-observability/aws-for-fluent-bit:\d+(\.\d+){2,3}"
IRSA = {
    "sesshu-web": "web",
    "sesshu-worker": "worker",
    "sesshu-migrate": "migrate",
    LOG_SHIPPER: "log-shipper",
}


@pytest.fixture(scope="module", params=OVERLAYS, ids=[p.name for p in OVERLAYS])
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    path: Path = request.param
    return path.name, render(path)


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _pod_templates(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    }


def test_both_environments_are_rendered() -> None:
    assert {p.name for p in OVERLAYS} == {"staging", "production"}


def test_every_workload_is_present(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    assert set(_pod_templates(docs)) == WORKLOADS | {LOG_SHIPPER}


def test_no_secret_values_and_no_placeholders(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == []
    text = json.dumps(docs)
    assert "set-by-overlay" not in text
    assert "example.invalid" not in text
    assert "10.255." not in text


def test_every_region_named_is_tokyo(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    text = json.dumps(docs)
    assert foreign_regions_in(text) == set()
    assert ALLOWED_REGION in text


def test_every_pod_is_hardened_and_scheduled_in_tokyo(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay
    for name, pod in _pod_templates(docs).items():
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"] not in ("", "default"), name
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] >= 10000, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        expressions = [e for t in terms["nodeSelectorTerms"] for e in t["matchExpressions"]]
        assert {
            "key": "topology.kubernetes.io/region",
            "operator": "In",
            "values": [ALLOWED_REGION],
        } in expressions, name
        # Exception: a DaemonSet is one pod per node by definition, spread with the nodes.
        if name != LOG_SHIPPER:
            spread = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
            assert "topology.kubernetes.io/zone" in spread, name
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), name
        assert not pod.get("hostIPC"), name
        # Exception: the log shipper reads the node's container logs, read-only (and only
        # /var/log/containers and /var/log/pods); no other pod mounts anything of the host.
        host_volumes = {v["name"] for v in pod["volumes"] if "hostPath" in v}
        if name == LOG_SHIPPER:
            assert {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v} == {
                "/var/log/containers",
                "/var/log/pods",
            }, name
        else:
            assert host_volumes == set(), name
        for container in pod["containers"] + pod.get("initContainers", []):
            where = f"{name}/{container['name']}"
            csc = container["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, where
            assert csc["readOnlyRootFilesystem"] is True, where
            assert csc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in csc["capabilities"], where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, where
            assert "livenessProbe" in container and "readinessProbe" in container, where
            for mount in container.get("volumeMounts", []):
                if mount["name"] in host_volumes:
                    assert mount.get("readOnly") is True, where
            image = container["image"]
            if name == LOG_SHIPPER:
                # Exception: the AWS-published Fluent Bit image, at a fixed version.
                assert re.fullmatch(LOG_SHIPPER_IMAGE, image), where
                continue
            assert re.fullmatch(
                r"\d{12}\.dkr\.ecr\.ap-northeast-1\.amazonaws\.com/sesshu"
                r"(:[A-Za-z0-9][A-Za-z0-9._-]*)?(@sha256:[0-9a-f]{64})?",
                image,
            ), where
            assert ":" in image.split("/")[-1] and not image.endswith(":latest"), where


def test_web_and_worker_scale_and_have_budgets(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in _by_kind(docs, "HorizontalPodAutoscaler").values()
    }
    assert set(hpas) == {"sesshu-web", "sesshu-worker"}
    pdbs = _by_kind(docs, "PodDisruptionBudget")
    assert set(pdbs) == {"sesshu-web", "sesshu-worker"}
    deployments = _by_kind(docs, "Deployment")
    for name in hpas:
        assert "replicas" not in deployments[name]["spec"], f"{name}: the HPA owns replicas"


def test_exactly_one_beat(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    beat = _by_kind(docs, "Deployment")["sesshu-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"


def test_migration_job_runs_migrate_schemas_in_parallel_as_owner(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay
    job = _by_kind(docs, "Job")["sesshu-migrate"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    command = container["command"] + container.get("args", [])
    assert command[:3] == ["python", "manage.py", "migrate_schemas"]
    assert "--executor=multiprocessing" in command
    assert {"name": "SESSHU_DB_OWNER_MODE", "value": "1"} in container["env"]
    assert job["spec"]["backoffLimit"] == 0


def test_service_accounts_carry_their_own_iam_role(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    env, docs = overlay
    accounts = _by_kind(docs, "ServiceAccount")
    pods = _pod_templates(docs)
    for workload, role in IRSA.items():
        sa = accounts[pods[workload]["serviceAccountName"]]
        arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert re.fullmatch(rf"arn:aws:iam::\d{{12}}:role/sesshu-{env}-{role}", arn), arn
    beat_sa = accounts[pods["sesshu-beat"]["serviceAccountName"]]
    assert "eks.amazonaws.com/role-arn" not in beat_sa["metadata"].get("annotations", {})


def test_network_is_default_deny(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = overlay
    policies = _by_kind(docs, "NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for name, policy in policies.items():
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                if peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0":
                    assert "169.254.0.0/16" in peer["ipBlock"]["except"], name
                    assert [p["port"] for p in rule["ports"]] == [443], name


def test_ingress_serves_municipalities_and_the_control_plane(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay
    ingresses = _by_kind(docs, "Ingress")
    hosts = {r["host"] for i in ingresses.values() for r in i["spec"]["rules"]}
    wildcard = [h for h in hosts if h.startswith("*.")]
    assert len(wildcard) == 1
    assert hosts == {wildcard[0], "platform." + wildcard[0][2:]}
    for ingress in ingresses.values():
        annotations = ingress["metadata"]["annotations"]
        assert annotations["alb.ingress.kubernetes.io/wafv2-acl-arn"].startswith(
            f"arn:aws:wafv2:{ALLOWED_REGION}:"
        )
        assert "ssl-redirect" in " ".join(annotations)
    platform = ingresses["sesshu-platform"]["metadata"]["annotations"]
    assert "source-ip" in platform["alb.ingress.kubernetes.io/conditions.sesshu-web"]


def test_the_client_address_is_read_behind_the_one_load_balancer(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    """The ALB is the one proxy in front of the pods, and appends the client's address to
    X-Forwarded-For: the application trusts exactly that one entry (sesshu/proxy.py). With
    none trusted, every resident would share the ALB's address for the login limits."""
    _, docs = overlay
    config = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("sesshu-config-")
    )["data"]
    assert config["SESSHU_TRUSTED_PROXY_COUNT"] == "1"
    for ingress in _by_kind(docs, "Ingress").values():
        annotations = ingress["metadata"]["annotations"]
        assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
        attributes = annotations["alb.ingress.kubernetes.io/load-balancer-attributes"]
        assert "routing.http.xff_header_processing.mode=append" in attributes.split(",")


def test_external_secrets_objects_match_their_schema(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay
    custom = [d for d in docs if d["apiVersion"].startswith("external-secrets.io/")]
    assert {d["kind"] for d in custom} == {"SecretStore", "ExternalSecret"}
    for doc in custom:
        assert custom_errors(doc) == []


def test_external_secret_feeds_every_mounted_secret(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    env, docs = overlay
    external = _by_kind(docs, "ExternalSecret")["sesshu-app"]["spec"]
    stores = _by_kind(docs, "SecretStore")
    store = stores[external["secretStoreRef"]["name"]]["spec"]["provider"]["aws"]
    assert store["region"] == ALLOWED_REGION
    assert store["auth"]["jwt"]["serviceAccountRef"]["name"] in _by_kind(docs, "ServiceAccount")
    keys = {d["secretKey"] for d in external["data"]}
    template = external["target"]["template"]["data"]
    used = {m for value in template.values() for m in re.findall(r"\{\{\s*\.(\w+)", value)}
    assert used <= keys
    assert all(d["remoteRef"]["key"].startswith(f"sesshu/{env}/") for d in external["data"])
    config = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("sesshu-config-")
    )["data"]
    files = {v.rsplit("/", 1)[1] for k, v in config.items() if k.endswith("_FILE")}
    assert files <= set(template)
    for name, pod in _pod_templates(docs).items():
        secret_volumes = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
        if name == LOG_SHIPPER:  # reads no secret at all
            assert secret_volumes == [], name
            continue
        assert secret_volumes == [external["target"]["name"]], name


def test_the_schema_check_rejects_bad_external_secrets_objects(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = overlay
    store = copy.deepcopy(_by_kind(docs, "SecretStore")["aws-secrets-manager"])
    store["spec"]["provider"]["aws"]["region"] = "us-east-1"
    assert custom_errors(store)
    external = copy.deepcopy(_by_kind(docs, "ExternalSecret")["sesshu-app"])
    external["spec"]["data"][0]["remoteRef"]["kee"] = external["spec"]["data"][0]["remoteRef"].pop(
        "key"
    )
    assert custom_errors(external)
    unknown = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}}
    assert custom_errors(unknown)


FIRST_DEPLOYMENTS = sorted(
    p.parent
    for p in (Path(__file__).resolve().parents[2] / "k8s" / "first-deployment").glob(
        "*/kustomization.yaml"
    )
)


@pytest.mark.parametrize("path", FIRST_DEPLOYMENTS, ids=[p.name for p in FIRST_DEPLOYMENTS])
def test_first_deployment_bootstraps_the_database_once(path: Path) -> None:
    docs = render(path)
    assert "set-by-" not in json.dumps(docs)
    labelled = {
        (d["kind"], d["metadata"]["name"])
        for d in docs
        if d["metadata"].get("labels", {}).get("sesshu.jp/first-deployment") == "true"
    }
    assert labelled == {("Job", "sesshu-db-bootstrap"), ("ExternalSecret", "sesshu-db-admin")}
    job = _by_kind(docs, "Job")["sesshu-db-bootstrap"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "manage.py", "db_bootstrap"]
    assert {"name": "DATABASE_ADMIN_URL_FILE", "value": "/run/secrets/sesshu-admin/admin-url"} in (
        container["env"]
    )
    admin = _by_kind(docs, "ExternalSecret")["sesshu-db-admin"]
    assert custom_errors(admin) == []
    assert admin["spec"]["target"]["deletionPolicy"] == "Delete"


_QUANTITY = re.compile(r"(\d+)(Mi|Gi)")


def _registry_max_bytes() -> int:
    source = Path(__file__).resolve().parents[2] / "booking/services/registry_import/files.py"
    found = re.search(r"^REGISTRY_MAX_BYTES = (\d+) \* 1024 \* 1024$", source.read_text(), re.M)
    assert found, "REGISTRY_MAX_BYTES is no longer a plain number of MiB"
    return int(found.group(1)) * 1024 * 1024


@pytest.mark.parametrize("workload", ["sesshu-web", "sesshu-worker"])
def test_scratch_space_holds_two_of_the_largest_registry_files(
    overlay: tuple[str, list[dict[str, Any]]], workload: str
) -> None:
    """The web pod spools a console upload to /tmp; the worker spools the stored file and
    seals its error list there. An emptyDir over its sizeLimit gets the pod evicted."""
    _, docs = overlay
    spec = _pod_templates(docs)[workload]
    (mount,) = [
        m
        for container in spec["containers"]
        for m in container.get("volumeMounts", [])
        if m["mountPath"] == "/tmp"  # noqa: S108 (the manifests' path, not a file made here)
    ]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    size = _QUANTITY.fullmatch(volume["emptyDir"]["sizeLimit"])
    assert size, volume
    limit = int(size.group(1)) * 1024 ** (2 if size.group(2) == "Mi" else 3)
    assert limit >= 2 * _registry_max_bytes()
