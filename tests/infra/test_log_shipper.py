"""The log shipper (k8s/log-shipper): Fluent Bit on every node sends the Sesshu pods' lines,
and only theirs, to the log groups of terraform/logs.tf by their "log_type" field, with an
IAM role limited to those groups.

The routing is not restated here: the Fluent Bit configuration is read from the rendered
overlay and its rules (tail path and tag, parser filter, rewrite_tag rules, output matches,
log group variables) are replayed on lines as containerd writes them. With the application's
dependencies installed (.venv), the lines come from the application's own JsonFormatter, so a
renamed field or value on either side fails here. Needs kubectl (kustomize) on PATH.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.infra.iam_policies import TERRAFORM, allowed, as_list, statements
from tests.infra.manifests import OVERLAYS, render
from tests.infra.regions import ALLOWED_REGION
from tests.infra.tokyo_guard import parse_directory, scalar

ROOT = Path(__file__).resolve().parents[2]
SHIPPER = "sesshu-log-shipper"
APP_WORKLOAD = "sesshu-web"
LOG_TYPES = ("audit", "access", "application")
ACCOUNT = "111122223333"


@dataclass
class Overlay:
    env: str
    docs: list[dict[str, Any]]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
        return found[0]

    def in_namespace(self, kind: str, namespace: str) -> dict[str, dict[str, Any]]:
        return {
            d["metadata"]["name"]: d
            for d in self.docs
            if d["kind"] == kind and d["metadata"].get("namespace") == namespace
        }

    @property
    def daemonset(self) -> dict[str, Any]:
        return self.one("DaemonSet", SHIPPER)

    @property
    def pod(self) -> dict[str, Any]:
        return self.daemonset["spec"]["template"]["spec"]

    @property
    def namespace(self) -> str:
        return self.daemonset["metadata"]["namespace"]

    @property
    def app_namespace(self) -> str:
        return self.one("Deployment", APP_WORKLOAD)["metadata"]["namespace"]

    def config_map(self, prefix: str) -> dict[str, str]:
        """A generated ConfigMap of the shipper's namespace by its name before the hash."""
        maps = [
            d
            for d in self.in_namespace("ConfigMap", self.namespace).values()
            if d["metadata"]["name"].rsplit("-", 1)[0] == prefix
        ]
        assert len(maps) == 1, prefix
        return maps[0]["data"]

    @property
    def env_vars(self) -> dict[str, str]:
        (container,) = self.pod["containers"]
        names = [e["configMapRef"]["name"] for e in container["envFrom"]]
        maps = self.in_namespace("ConfigMap", self.namespace)
        values: dict[str, str] = {}
        for name in names:
            values.update(maps[name]["data"])
        return values

    @property
    def fluent_bit(self) -> FluentBit:
        data = self.config_map("sesshu-log-shipper-config")
        return FluentBit.parse(data["fluent-bit.conf"], data["parsers.conf"], self.env_vars)


@pytest.fixture(scope="module", params=OVERLAYS, ids=[p.name for p in OVERLAYS])
def overlay(request: pytest.FixtureRequest) -> Overlay:
    path: Path = request.param
    return Overlay(path.name, render(path))


# --- Fluent Bit's classic configuration, and a replay of its routing ------------------------


@dataclass
class Section:
    kind: str
    entries: list[tuple[str, str]] = field(default_factory=list)

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.entries if k == key.lower()]

    def get(self, key: str, default: str | None = None) -> str:
        values = self.all(key)
        assert len(values) <= 1, f"[{self.kind}] {key} given {len(values)} times"
        if not values:
            assert default is not None, f"[{self.kind}] has no {key}"
            return default
        return values[0]


def parse_sections(text: str) -> list[Section]:
    sections: list[Section] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = re.fullmatch(r"\[([A-Z_]+)\]", line)
        if header:
            sections.append(Section(header.group(1)))
            continue
        key, _, value = line.partition(" ")
        assert sections, f"entry outside a section: {line}"
        sections[-1].entries.append((key.lower(), value.strip()))
    return sections


def tag_matches(pattern: str, tag: str) -> bool:
    """Fluent Bit's Match: `*` is the only wildcard."""
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), tag) is not None


def onigmo_to_python(regex: str) -> str:
    return re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", regex)


# Fluent Bit's built-in "cri" multiline parser: <time> <stream> <P|F> <log>
CRI_LINE = re.compile(r"^(?P<time>.+?) (?P<stream>stdout|stderr) (?P<_p>F|P) (?P<log>.*)$")


@dataclass
class Delivery:
    output: str
    log_group: str
    event: str


@dataclass
class FluentBit:
    inputs: list[Section]
    filters: list[Section]
    outputs: list[Section]
    service: Section
    parsers: dict[str, Section]
    env: dict[str, str]

    @classmethod
    def parse(cls, config: str, parsers: str, env: dict[str, str]) -> FluentBit:
        sections = parse_sections(config)
        (service,) = [s for s in sections if s.kind == "SERVICE"]
        return cls(
            inputs=[s for s in sections if s.kind == "INPUT"],
            filters=[s for s in sections if s.kind == "FILTER"],
            outputs=[s for s in sections if s.kind == "OUTPUT"],
            service=service,
            parsers={s.get("Name"): s for s in parse_sections(parsers) if s.kind == "PARSER"},
            env=env,
        )

    def expand(self, value: str) -> str:
        """${VAR} from the pod's environment; an unknown variable is an error."""
        return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: self.env[m.group(1)], value)

    @property
    def tail(self) -> Section:
        (tail,) = self.inputs
        assert tail.get("Name") == "tail"
        return tail

    def read(self, path: str, line: str) -> list[Delivery]:
        """What becomes of one line of one container log file."""
        tail = self.tail
        if not fnmatch.fnmatchcase(path, tail.get("Path")):
            return []
        assert tail.get("multiline.parser") == "cri"
        found = re.search(onigmo_to_python(tail.get("Tag_Regex")), path)
        assert found, path
        tag = re.sub(r"<([a-z_]+)>", lambda m: found.group(m.group(1)), tail.get("Tag"))
        cri = CRI_LINE.match(line)
        assert cri, line
        return self.route(tag, {k: v for k, v in cri.groupdict().items() if k != "time"})

    def route(self, tag: str, record: dict[str, Any]) -> list[Delivery]:
        for position, section in enumerate(self.filters):
            if not tag_matches(section.get("Match"), tag):
                continue
            name = section.get("Name")
            if name == "parser":
                record = self._parse(section, record)
            elif name == "rewrite_tag":
                for rule in section.all("Rule"):
                    key, regex, new_tag, keep = rule.split()
                    assert key.startswith("$") and "[" not in key, rule
                    value = record.get(key[1:])
                    if isinstance(value, str) and re.search(onigmo_to_python(regex), value):
                        parts = tag.split(".")
                        new_tag = re.sub(
                            r"\$TAG\[(\d+)\]", lambda m, p=parts: p[int(m[1])], new_tag
                        )
                        new_tag = new_tag.replace("$TAG", tag)
                        # The emitter re-enters the pipeline with the new tag.
                        emitted = self.route(new_tag, dict(record))
                        if keep.lower() == "false":
                            return emitted
                        return emitted + self._deliver(tag, record, position + 1)
                    # first matching rule wins
            else:
                raise AssertionError(f"filter {name} is not replayed here: extend the test")
        return self._deliver(tag, record, len(self.filters))

    def _deliver(self, tag: str, record: dict[str, Any], start: int) -> list[Delivery]:
        if start < len(self.filters):
            rest = FluentBit(
                self.inputs,
                self.filters[start:],
                self.outputs,
                self.service,
                self.parsers,
                self.env,
            )
            return rest.route(tag, record)
        return [
            Delivery(
                output=o.get("Alias"),
                log_group=self.expand(o.get("log_group_name")),
                event=record[o.get("log_key")],
            )
            for o in self.outputs
            if tag_matches(o.get("Match"), tag)
        ]

    def _parse(self, section: Section, record: dict[str, Any]) -> dict[str, Any]:
        parser = self.parsers[section.get("Parser")]
        assert parser.get("Format") == "json"
        key = section.get("Key_Name")
        try:
            parsed = json.loads(record[key])
        except (KeyError, ValueError):
            return record
        if not isinstance(parsed, dict):
            return record
        kept = record if section.get("Reserve_Data", "Off").lower() == "on" else {}
        if section.get("Preserve_Key", "Off").lower() != "on":
            kept = {k: v for k, v in kept.items() if k != key}
        else:
            kept = {**kept, key: record[key]}
        return {**kept, **parsed}


def container_log_path(namespace: str, pod: str, container: str) -> str:
    return f"/var/log/containers/{pod}_{namespace}_{container}-{'ab12' * 16}.log"


def cri_line(text: str) -> str:
    return f"2026-12-05T10:00:00.123456789Z stdout F {text}"


# --- the DaemonSet --------------------------------------------------------------------------


def test_the_shipper_runs_on_every_node_of_every_overlay(overlay: Overlay) -> None:
    ds = overlay.daemonset
    assert ds["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert overlay.namespace != overlay.app_namespace
    assert overlay.one("Namespace", overlay.namespace)
    pod = overlay.pod
    assert not pod.get("nodeSelector")
    # Scheduled on every Tokyo node where the application may run; the priority class exists.
    overlay.one("PriorityClass", pod["priorityClassName"])
    (container,) = pod["containers"]
    image = container["image"]
    assert re.fullmatch(
        r"public\.ecr\.aws/aws-observability/aws-for-fluent-bit:\d+\.\d+\.\d+(\.\d+)?", image
    ), image
    assert container["command"][-1] == "--config=/fluent-bit/etc/sesshu/fluent-bit.conf"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config = next(v for v in pod["volumes"] if "configMap" in v)
    assert mounts["/fluent-bit/etc/sesshu"]["name"] == config["name"]
    assert overlay.fluent_bit.service.get("Parsers_File") == "/fluent-bit/etc/sesshu/parsers.conf"


def test_the_host_is_mounted_read_only_and_only_its_log_directories(overlay: Overlay) -> None:
    pod = overlay.pod
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert sorted(host.values()) == ["/var/log/containers", "/var/log/pods"]
    (container,) = pod["containers"]
    for mount in container["volumeMounts"]:
        if mount["name"] in host:
            assert mount["readOnly"] is True, mount
            assert mount["mountPath"] == host[mount["name"]], mount
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] >= 10000
    # Read through group 0 (containerd writes the files 0640 root:root), never as root.
    assert security["supplementalGroups"] == [0]
    # The namespace relaxes the Pod Security Standard for the hostPath only.
    labels = overlay.one("Namespace", overlay.namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_the_shipper_carries_its_own_iam_role_and_no_api_token(overlay: Overlay) -> None:
    pod = overlay.pod
    assert pod["automountServiceAccountToken"] is False
    sa = overlay.one("ServiceAccount", pod["serviceAccountName"])
    assert sa["metadata"]["namespace"] == overlay.namespace
    assert sa["automountServiceAccountToken"] is False
    arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(rf"arn:aws:iam::\d{{12}}:role/sesshu-{overlay.env}-log-shipper", arn)
    # No RBAC at all: the shipper never reads the Kubernetes API.
    assert not [d for d in overlay.docs if d["apiVersion"].startswith("rbac.")]


# --- Fluent Bit: input, routing, outputs ----------------------------------------------------


def test_it_tails_only_the_application_namespace(overlay: Overlay) -> None:
    fb = overlay.fluent_bit
    app = overlay.app_namespace
    assert fb.tail.get("Path") == f"/var/log/containers/*_{app}_*.log"
    line = cri_line('{"log_type": "app", "message": "x"}')
    assert fb.read(container_log_path(app, "sesshu-web-5d9c-x2x7q", "web"), line)
    for other in ("kube-system", "external-secrets", overlay.namespace, "monitoring", "sesshux"):
        assert fb.read(container_log_path(other, "sesshu-web-5d9c-x2x7q", "web"), line) == []
    # Nor a pod of another namespace whose name mentions the application's.
    assert fb.read(container_log_path("default", f"x-{app}-y", app), line) == []


def test_every_output_is_cloudwatch_in_tokyo_into_existing_groups(overlay: Overlay) -> None:
    fb = overlay.fluent_bit
    assert len(fb.outputs) == len(LOG_TYPES)
    for output in fb.outputs:
        assert output.get("Name") == "cloudwatch_logs"
        assert output.get("region") == ALLOWED_REGION
        assert output.get("auto_create_group") == "false"
        assert output.get("log_key") == "log"
        assert not output.all("log_retention_days")  # retention is Terraform's
    groups = sorted(fb.expand(o.get("log_group_name")) for o in fb.outputs)
    assert groups == sorted(f"/sesshu/{overlay.env}/{t}" for t in LOG_TYPES)


def terraform_log_group_names(environment: str) -> dict[str, str]:
    names = {}
    for doc in parse_directory(TERRAFORM).values():
        for entry in doc.get("resource", []):
            for name, body in (entry.get("aws_cloudwatch_log_group") or {}).items():
                names[name] = (
                    str(scalar(scalar(body)["name"]))
                    .replace("${var.environment}", environment)
                    .replace("${local.name}", f"sesshu-{environment}")
                )
    return names


def test_log_group_names_are_terraforms(overlay: Overlay) -> None:
    env = overlay.env_vars
    names = terraform_log_group_names(overlay.env)
    assert env["AUDIT_LOG_GROUP"] == names["audit"]
    assert env["ACCESS_LOG_GROUP"] == names["access"]
    assert env["APPLICATION_LOG_GROUP"] == names["application"]
    # ... and the overlay values Terraform prints are those resources' names.
    outputs = {
        name: scalar(body)
        for doc in parse_directory(TERRAFORM).values()
        for entry in doc.get("output", [])
        for name, body in entry.items()
    }
    values = scalar(outputs["k8s_overlay_values"]["value"])
    for key, resource in [
        ("AUDIT_LOG_GROUP", "audit"),
        ("ACCESS_LOG_GROUP", "access"),
        ("APPLICATION_LOG_GROUP", "application"),
    ]:
        assert values[key] == f"${{aws_cloudwatch_log_group.{resource}.name}}"
    assert values["LOG_SHIPPER_ROLE_ARN"] == '${aws_iam_role.irsa["log_shipper"].arn}'


def _application_lines() -> dict[str, str]:
    """One audit, one access and one application line from the application's formatter."""
    if str(ROOT / "platform") not in sys.path:
        sys.path.insert(0, str(ROOT / "platform"))
    logs = pytest.importorskip(
        "sesshu.logs", reason="the application's dependencies (.venv) are not installed"
    )
    formatter = logs.JsonFormatter()

    def line(logger: str, msg: str, args: tuple[Any, ...] = (), **extra: Any) -> str:
        record = logging.getLogger(logger).makeRecord(
            logger, logging.INFO, __file__, 1, msg, args, None, extra=extra or None
        )
        text = formatter.format(record)
        assert "\n" not in text
        return text

    audit = json.dumps({"chain": "m131016", "seq": 7, "action": "booking.cancel"})
    http = {"method": "GET", "path": "/", "status": 200, "duration_ms": 1.5, "host_kind": "x"}
    return {
        "audit": line(logs.AUDIT_LOGGER, audit),
        "access": line(logs.ACCESS_LOGGER, "%s %s %s", ("GET", "/", 200), http=http),
        "application": line("booking.services.booking", "reminders queued: %s", (3,)),
    }


def test_the_applications_own_lines_reach_their_log_groups(overlay: Overlay) -> None:
    fb = overlay.fluent_bit
    path = container_log_path(overlay.app_namespace, "sesshu-web-5d9c-x2x7q", "web")
    for log_type, text in _application_lines().items():
        deliveries = fb.read(path, cri_line(text))
        assert [(d.log_group, d.event) for d in deliveries] == [
            (f"/sesshu/{overlay.env}/{log_type}", text)
        ], log_type


def test_lines_that_are_not_the_applications_json_go_to_the_application_group(
    overlay: Overlay,
) -> None:
    fb = overlay.fluent_bit
    path = container_log_path(overlay.app_namespace, "sesshu-worker-7f-abcde", "worker")
    application = f"/sesshu/{overlay.env}/application"
    for text in [
        "[2026-12-05 10:00:00 +0000] [1] [INFO] Starting gunicorn",
        "Traceback (most recent call last):",
        '{"type": "audit", "message": "a field of another name"}',
        '{"log_type": "audits"}',
        '{"log_type": "not-access"}',
        '["audit"]',
    ]:
        deliveries = fb.read(path, cri_line(text))
        assert [(d.log_group, d.event) for d in deliveries] == [(application, text)], text


def test_the_replay_fails_when_the_rules_change(overlay: Overlay) -> None:
    """The replay reads the configuration: a broken rule changes its answer."""
    fb = overlay.fluent_bit
    path = container_log_path(overlay.app_namespace, "sesshu-web-5d9c-x2x7q", "web")
    line = cri_line('{"log_type": "audit", "message": "x"}')
    assert fb.read(path, line)[0].log_group == f"/sesshu/{overlay.env}/audit"
    (rewrite,) = [f for f in fb.filters if f.get("Name") == "rewrite_tag"]
    rewrite.entries = [
        (k, v.replace("$log_type", "$logtype") if k == "rule" else v) for k, v in rewrite.entries
    ]
    assert fb.read(path, line)[0].log_group == f"/sesshu/{overlay.env}/application"


# --- network --------------------------------------------------------------------------------


def _tfvars(env: str) -> dict[str, str]:
    text = (TERRAFORM / "environments" / f"{env}.tfvars").read_text(encoding="utf-8")
    return dict(re.findall(r'^\s*(\w+)\s*=\s*"([^"]*)"', text, re.MULTILINE))


def test_the_shipper_may_reach_dns_and_the_vpc_endpoints_only(overlay: Overlay) -> None:
    policies = overlay.in_namespace("NetworkPolicy", overlay.namespace)
    assert policies["default-deny-all"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    labels = overlay.daemonset["spec"]["template"]["metadata"]["labels"]
    rules = []
    for policy in policies.values():
        spec = policy["spec"]
        selector = spec["podSelector"].get("matchLabels", {})
        if selector.items() <= labels.items():
            assert not spec.get("ingress"), policy["metadata"]["name"]
            rules.extend(spec.get("egress", []))
    peers = []
    for rule in rules:
        for peer in rule["to"]:
            if "ipBlock" in peer:
                assert [(p["protocol"], p["port"]) for p in rule["ports"]] == [("TCP", 443)]
                peers.append(peer["ipBlock"])
            else:  # kube-dns only
                assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
                assert {p["port"] for p in rule["ports"]} == {53}
    assert peers == [{"cidr": _tfvars(overlay.env)["vpc_cidr"]}]


# --- IAM ------------------------------------------------------------------------------------


def _group_arn(name: str) -> str:
    return f"arn:aws:logs:{ALLOWED_REGION}:{ACCOUNT}:log-group:{name}"


@pytest.fixture(scope="module")
def log_shipper_policy() -> list[Any]:
    names = terraform_log_group_names("production")
    # The provider's log group `arn` attribute carries no trailing ":*".
    arns = {f"aws_cloudwatch_log_group.{k}.arn": _group_arn(v) for k, v in names.items()}
    for doc in parse_directory(TERRAFORM).values():
        for entry in doc.get("data", []):
            body = (entry.get("aws_iam_policy_document") or {}).get("log_shipper")
            if body is not None:
                return statements(scalar(body), arns)
    raise AssertionError("no aws_iam_policy_document.log_shipper in terraform/")


def test_the_role_writes_only_to_the_three_log_groups(log_shipper_policy: list[Any]) -> None:
    names = terraform_log_group_names("production")
    shipped = [names[t] for t in LOG_TYPES]
    others = [n for k, n in names.items() if k not in LOG_TYPES and "$" not in n]
    others += ["/sesshu/staging/audit", "/aws/containerinsights/sesshu-production/application"]
    assert len(others) >= 5
    for name in shipped:
        group = _group_arn(name)
        stream = f"{group}:log-stream:eks.app.sesshu.sesshu-web-5d9c-x2x7q.web"
        assert allowed(log_shipper_policy, "logs:CreateLogStream", group), name
        assert allowed(log_shipper_policy, "logs:DescribeLogStreams", group), name
        assert allowed(log_shipper_policy, "logs:PutLogEvents", stream), name
        for action in ("logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:DeleteLogGroup"):
            assert not allowed(log_shipper_policy, action, group), (action, name)
        assert not allowed(log_shipper_policy, "logs:DeleteLogStream", stream), name
    for name in others:
        group = _group_arn(name)
        assert not allowed(log_shipper_policy, "logs:CreateLogStream", group), name
        assert not allowed(log_shipper_policy, "logs:PutLogEvents", f"{group}:log-stream:x"), name


def test_the_role_has_exactly_three_actions_and_no_wildcard(
    log_shipper_policy: list[Any],
) -> None:
    assert {s.effect for s in log_shipper_policy} == {"Allow"}
    actions = {a for s in log_shipper_policy for a in s.actions}
    assert actions == {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}
    for statement in log_shipper_policy:
        for resource in statement.resources:
            assert resource.startswith(f"arn:aws:logs:{ALLOWED_REGION}:{ACCOUNT}:log-group:/"), (
                resource
            )
            assert "*" not in resource.removesuffix(":log-stream:*"), resource


def test_the_role_trusts_only_the_shippers_service_account(overlay: Overlay) -> None:
    irsa = None
    defaults = {}
    for doc in parse_directory(TERRAFORM).values():
        for entry in doc.get("locals", []):
            if "irsa" in entry:
                irsa = scalar(entry["irsa"])
        for entry in doc.get("variable", []):
            for name, body in entry.items():
                defaults[name] = scalar(scalar(body).get("default"))
    assert irsa is not None
    binding = scalar(irsa["log_shipper"])
    namespace = re.sub(
        r"\$\{var\.(\w+)\}", lambda m: str(defaults[m.group(1)]), str(binding["namespace"])
    )
    assert namespace == overlay.namespace
    assert binding["service_account"] == overlay.pod["serviceAccountName"]
    assert as_list(binding["service_account"]) == [SHIPPER]
