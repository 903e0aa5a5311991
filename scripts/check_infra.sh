#!/usr/bin/env bash
# Offline checks of the infrastructure: Terraform, Kubernetes manifests, Dockerfile.
# Runs every check, prints one line per check, exits non-zero if any failed.
#
#   scripts/check_infra.sh
#
# Nothing here reaches AWS or a cluster, and Terraform providers are never downloaded (no
# `terraform init`). Tools come from .venv-infra/ (made here when missing or outdated):
# checkov's pinned dependencies conflict with the application's, so they never go in .venv/.
#   1. terraform fmt -check -recursive
#   2. checkov on terraform/ (with the custom Tokyo-only policy of terraform/policies/):
#      zero failed checks, every skip carries a reason, the custom policy actually ran
#   3. the custom policy fails on tests/infra/fixtures/bad_region, once per violation
#   4. per overlay (and first-deployment variant): kubectl kustomize | kubernetes-validate
#      --strict (built-in kinds), the External Secrets objects against their schema, checkov
#      on the rendered manifests
#   5. checkov on the Dockerfile
#   6. pytest tests/infra (python-hcl2 region guard, rendered-manifest invariants)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

VENV="$ROOT/.venv-infra"
HCL2_DIR="$VENV/hcl2"
REQUIREMENTS=(tests/infra/requirements.txt tests/infra/requirements-hcl2.txt)
PYTHON="${PYTHON:-python3}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

FAILED=()
START=$SECONDS

ok() { printf '  ok    %s\n' "$1"; }
fail() {
  printf '  FAIL  %s\n' "$1"
  FAILED+=("$1")
}

# --- tools ----------------------------------------------------------------------------------
stamp=$(cat "${REQUIREMENTS[@]}" | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/checkov" ] || [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "--- installing checkov, kubernetes-validate, pytest and python-hcl2 into .venv-infra/"
  rm -rf "$VENV"
  if ! { "$PYTHON" -m venv "$VENV" &&
    "$VENV/bin/pip" install --quiet --upgrade pip &&
    "$VENV/bin/pip" install --quiet -r tests/infra/requirements.txt &&
    "$VENV/bin/pip" install --quiet --target "$HCL2_DIR" -r tests/infra/requirements-hcl2.txt; } \
    >"$WORK/install.log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$WORK/install.log" | tail -30
    echo "FAIL: could not install the infrastructure tools"
    exit 1
  fi
  echo "$stamp" >"$VENV/.stamp"
fi
CHECKOV=("$VENV/bin/checkov" --skip-download --compact)
export PYTHONDONTWRITEBYTECODE=1
export TF_CLI_CONFIG_FILE=/dev/null # no CLI configuration needed: fmt only

# checkov JSON report -> one summary line; fails on failed checks, parsing errors, skips
# without a reason, or (when given) check ids that never ran.
summarise() { # report.json label [required check id prefix]
  "$VENV/bin/python" - "$@" <<'PY'
import json, sys
path, label = sys.argv[1], sys.argv[2]
required = sys.argv[3] if len(sys.argv) > 3 else None
data = json.load(open(path))
reports = data if isinstance(data, list) else [data]
passed = failed = skipped = errors = 0
problems, ran = [], set()
for report in reports:
    if "summary" not in report:
        continue
    s, r = report["summary"], report.get("results", {})
    passed += s["passed"]; failed += s["failed"]; skipped += s["skipped"]
    errors += s.get("parsing_errors", 0)
    for c in r.get("failed_checks", []):
        problems.append(f"failed {c['check_id']} {c['resource']} ({c['file_path']})")
    for c in r.get("skipped_checks", []):
        if not (c.get("check_result", {}).get("suppress_comment") or "").strip():
            problems.append(f"skipped without a reason: {c['check_id']} {c['resource']}")
    ran.update(c["check_id"] for c in r.get("passed_checks", []) + r.get("failed_checks", []))
if required and not any(i.startswith(required) for i in ran):
    problems.append(f"no {required}* check ran: the custom policy did not load")
if errors:
    problems.append(f"{errors} file(s) could not be parsed")
print(f"{label}: passed {passed}, failed {failed}, skipped {skipped} (each with its reason)")
for p in problems:
    print(f"        {p}")
sys.exit(1 if failed or problems else 0)
PY
}

# --- 1. terraform fmt -----------------------------------------------------------------------
echo "--- terraform"
if terraform fmt -check -recursive terraform >"$WORK/fmt.log" 2>&1 &&
  terraform fmt -check -recursive tests/infra/fixtures >>"$WORK/fmt.log" 2>&1; then
  ok "terraform fmt -check -recursive (terraform/, tests/infra/fixtures/)"
else
  cat "$WORK/fmt.log"
  fail "terraform fmt -check -recursive"
fi

# --- 2. checkov on terraform/ ---------------------------------------------------------------
"${CHECKOV[@]}" -d terraform --framework terraform --external-checks-dir terraform/policies \
  -o json >"$WORK/tf.json" 2>"$WORK/tf.err"
if summarise "$WORK/tf.json" "checkov terraform/" CKV_SESSHU_; then
  ok "checkov terraform/: zero failed checks"
else
  tail -5 "$WORK/tf.err"
  fail "checkov terraform/"
fi

# --- 3. the custom policy fails on the bad fixture ------------------------------------------
"${CHECKOV[@]}" -d tests/infra/fixtures/bad_region --framework terraform \
  --external-checks-dir terraform/policies --check "CKV_SESSHU_*" -o json \
  >"$WORK/bad.json" 2>/dev/null
if "$VENV/bin/python" - "$WORK/bad.json" <<'PY'; then
import json, sys
data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
got = {(c["check_id"], c["resource"]) for r in reports for c in r.get("results", {}).get("failed_checks", [])}
expected = {
    ("CKV_SESSHU_1", "aws.default"), ("CKV_SESSHU_5", "aws.default"),
    ("CKV_SESSHU_1", "aws.osaka"), ("CKV_SESSHU_5", "aws.osaka"),
    ("CKV_SESSHU_2", "aws_s3_bucket.abroad"), ("CKV_SESSHU_2", "aws_iam_role_policy.abroad"),
    ("CKV_SESSHU_2", "aws_subnet.abroad"), ("CKV_SESSHU_3", "replica"),
    ("CKV_SESSHU_4", "aws_ami.abroad"),
}
print(f"custom policy on tests/infra/fixtures/bad_region: {len(got)} failed checks (expected {len(expected)})")
for missing in sorted(expected - got):
    print(f"        not caught: {missing}")
for extra in sorted(got - expected):
    print(f"        unexpected: {extra}")
sys.exit(0 if got == expected else 1)
PY
  ok "custom policy rejects every violation of the bad fixture"
else
  fail "custom policy on the bad fixture"
fi

# --- 4. Kubernetes overlays -----------------------------------------------------------------
echo "--- kubernetes"
K8S_VERSION=$(sed -n '/variable "eks_version"/,/^}/p' terraform/variables.tf | grep default | cut -d'"' -f2)
for overlay in k8s/overlays/*/ k8s/first-deployment/*/; do
  env=$(basename "$(dirname "$overlay")")-$(basename "$overlay")
  rendered="$WORK/$env.yaml"
  if ! kubectl kustomize "$overlay" >"$rendered" 2>"$WORK/$env.kustomize.log"; then
    cat "$WORK/$env.kustomize.log"
    fail "kubectl kustomize $overlay"
    continue
  fi
  # Built-in kinds to kubernetes-validate; External Secrets objects to their own schema;
  # any other custom kind is an error.
  if "$VENV/bin/python" -m tests.infra.manifests split "$rendered" "$WORK/$env.builtin.yaml"; then
    ok "$env: External Secrets objects match their schema"
  else
    fail "$env: External Secrets objects"
  fi
  if "$VENV/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION.0" "$WORK/$env.builtin.yaml" \
    >"$WORK/$env.kv.log" 2>&1 && ! grep -q . "$WORK/$env.kv.log"; then
    count=$(grep -c '^kind:' "$WORK/$env.builtin.yaml")
    ok "$env: kubernetes-validate --strict -k $K8S_VERSION.0: $count objects valid"
  else
    cat "$WORK/$env.kv.log"
    fail "$env: kubernetes-validate --strict"
  fi
  mkdir -p "$WORK/$env"
  cp "$rendered" "$WORK/$env/manifests.yaml"
  "${CHECKOV[@]}" -d "$WORK/$env" --framework kubernetes -o json >"$WORK/$env.json" 2>/dev/null
  if summarise "$WORK/$env.json" "checkov ${overlay%/} (rendered)"; then
    ok "$env: checkov zero failed checks"
  else
    fail "$env: checkov"
  fi
done

# --- 5. Dockerfile --------------------------------------------------------------------------
echo "--- docker"
"${CHECKOV[@]}" -f Dockerfile --framework dockerfile -o json >"$WORK/docker.json" 2>/dev/null
if summarise "$WORK/docker.json" "checkov Dockerfile"; then
  ok "checkov Dockerfile: zero failed checks"
else
  fail "checkov Dockerfile"
fi

# --- 6. pytest tests/infra ------------------------------------------------------------------
# python-hcl2 comes first on the path (checkov's fork uses the same import name). The app's
# pytest configuration and conftest are left out: they need Django and a database.
echo "--- pytest tests/infra"
if PYTHONPATH="$HCL2_DIR${PYTHONPATH:+:$PYTHONPATH}" "$VENV/bin/python" -m pytest \
  -c /dev/null --rootdir="$ROOT" --noconftest -p no:cacheprovider -q tests/infra; then
  ok "pytest tests/infra"
else
  fail "pytest tests/infra"
fi

echo "--- $((SECONDS - START)) s"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "infrastructure checks FAILED: ${FAILED[*]}"
  exit 1
fi
echo "infrastructure checks passed"
