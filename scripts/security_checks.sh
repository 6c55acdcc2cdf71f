#!/usr/bin/env bash
# Offline security checks of the stack: statelint on every state machine definition, checkov on the
# template after the SAM transform (checkov sees SAM-generated roles only there), and a count of IAM
# statements that keep a wildcard action or Resource "*". Needs no AWS account and no Docker, only PyPI.
# `sam validate --lint` (cfn-lint) is in scripts/sam_checks.sh and is not repeated here.
#
#   scripts/security_checks.sh             # tools go to .venv-security (checkov's pins clash with the project's)
#   SECURITY_VENV=/some/venv scripts/security_checks.sh
#
# Exceptions live in the repository, each with its reason: security/checkov-skips.yaml (checks skipped
# for named resources) and security/iam-wildcards.yaml (wildcard statements AWS allows nothing narrower for).
set -euo pipefail

CHECKOV_VERSION="3.3.30"
# The translator that aws-sam-cli 1.170.0 (scripts/sam_checks.sh) uses, so both see the same roles.
SAM_TRANSLATOR_VERSION="1.115.0"
STATELINT_VERSION="3.1.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECURITY_VENV="${SECURITY_VENV:-$ROOT/.venv-security}"
OUT_DIR="$ROOT/.aws-sam/security"
cd "$ROOT"

# No instance metadata service, no Prisma Cloud: nothing here may wait for the network.
export AWS_EC2_METADATA_DISABLED=true
export AWS_DEFAULT_REGION=us-east-1
export BC_SKIP_MAPPING=TRUE
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false

step() { printf '\n==> %s\n' "$*"; }

install_tools() {
    local wanted="checkov==$CHECKOV_VERSION aws-sam-translator==$SAM_TRANSLATOR_VERSION statelint==$STATELINT_VERSION"
    local stamp="$SECURITY_VENV/.installed"
    if [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$wanted" ]]; then
        return
    fi
    local python
    python="$(command -v python3.11 || command -v python3)"
    step "Installing $wanted into $SECURITY_VENV (with $python)"
    "$python" -m venv "$SECURITY_VENV"
    # shellcheck disable=SC2086  # one word per requirement
    "$SECURITY_VENV/bin/pip" install --quiet --disable-pip-version-check $wanted
    "$SECURITY_VENV/bin/pip" check
    echo "$wanted" >"$stamp"
}

# Every statemachine/*.asl.json, each ${Placeholder} replaced by a value of the right shape (what
# DefinitionSubstitutions will put there), checked by statelint.
run_statelint() {
    "$SECURITY_VENV/bin/python" - "$SECURITY_VENV/bin/statelint" "$OUT_DIR" statemachine/*.asl.json <<'PY'
import json
import re
import subprocess
import sys
from pathlib import Path

statelint, out_dir, *definitions = sys.argv[1:]
placeholder = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def value_for(name: str) -> str:
    if name.endswith("Url"):
        return f"https://sqs.us-east-1.amazonaws.com/123456789012/{name}"
    if name.endswith("Arn"):
        return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    return name


failed = 0
for definition in definitions:
    text = Path(definition).read_text(encoding="utf-8")
    names = sorted(set(placeholder.findall(text)))
    substituted = placeholder.sub(lambda match: value_for(match.group(1)), text)
    json.loads(substituted)
    target = Path(out_dir) / Path(definition).name
    target.write_text(substituted, encoding="utf-8")
    result = subprocess.run([statelint, str(target)], capture_output=True, text=True, check=False)
    status = "ok" if result.returncode == 0 else "FAILED"
    print(f"{definition}: {status} (placeholders: {', '.join(names) or 'none'})")
    if result.returncode != 0:
        print(result.stdout + result.stderr)
        failed += 1
sys.exit(1 if failed else 0)
PY
}

# template.yaml -> CloudFormation JSON with aws-sam-translator (offline: local code and definition
# paths become placeholders, managed policies are not looked up), plus the skips of
# security/checkov-skips.yaml as Metadata.checkov.skip on the resources they name.
translate_template() {
    "$SECURITY_VENV/bin/python" - "$ROOT/template.yaml" "$ROOT/security/checkov-skips.yaml" "$OUT_DIR/template.json" <<'PY'
import json
import sys

import yaml
from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies(ManagedPolicyLoader):
    """The template names no managed policy by name, so nothing needs IAM's list (nor credentials)."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict:
        return {}


template_path, skips_path, out_path = sys.argv[1:]
with open(template_path, encoding="utf-8") as handle:
    template = yaml_parse(handle.read())
for resource in template["Resources"].values():
    props = resource.get("Properties", {})
    for key in ("CodeUri", "ContentUri"):
        if isinstance(props.get(key), str):
            props[key] = "s3://offline/placeholder.zip"
    if isinstance(props.get("DefinitionUri"), str):
        props.pop("DefinitionUri")
        props["Definition"] = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
cfn = transform(template, {}, NoManagedPolicies())

with open(skips_path, encoding="utf-8") as handle:
    skips = yaml.safe_load(handle)["skips"]
problems = []
for skip in skips:
    if not str(skip.get("reason", "")).strip():
        problems.append(f"{skip['check']}: no reason")
    for logical_id in skip["resources"]:
        resource = cfn["Resources"].get(logical_id)
        if resource is None:
            problems.append(f"{skip['check']}: no resource {logical_id} in the translated template")
            continue
        entry = {"id": skip["check"], "comment": skip["reason"]}
        resource.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", []).append(entry)
if problems:
    sys.exit("security/checkov-skips.yaml: " + "; ".join(problems))

with open(out_path, "w", encoding="utf-8") as handle:
    json.dump(cfn, handle, indent=2, sort_keys=True)
types: dict[str, int] = {}
for resource in cfn["Resources"].values():
    types[resource["Type"]] = types.get(resource["Type"], 0) + 1
print(f"{out_path}: {len(cfn['Resources'])} resources")
for name, count in sorted(types.items()):
    print(f"  {count} x {name}")
PY
}

run_checkov() {
    # --soft-fail: checkov's own exit code would hide the report below; the counts decide.
    "$SECURITY_VENV/bin/checkov" --file "$OUT_DIR/template.json" --framework cloudformation \
        --skip-download --soft-fail --output json >"$OUT_DIR/checkov.json" 2>"$OUT_DIR/checkov.log" || {
        cat "$OUT_DIR/checkov.log" >&2
        return 1
    }
    "$SECURITY_VENV/bin/python" - "$OUT_DIR/checkov.json" <<'PY'
import json
import sys

with open(sys.argv[1], encoding="utf-8") as handle:
    report = json.load(handle)
reports = report if isinstance(report, list) else [report]
results = {"passed_checks": [], "failed_checks": [], "skipped_checks": []}
for one in reports:
    for key in results:
        results[key] += one.get("results", {}).get(key, [])


def where(check: dict) -> str:
    return check["resource"].split(".", 1)[-1]


for check in sorted(results["skipped_checks"], key=lambda c: (c["check_id"], where(c))):
    comment = check.get("check_result", {}).get("suppress_comment", "")
    print(f"SKIPPED {check['check_id']} {where(check)}: {comment}")
for check in sorted(results["failed_checks"], key=lambda c: (c["check_id"], where(c))):
    print(f"FAILED  {check['check_id']} {where(check)}: {check['check_name']}")
passed, failed, skipped = (len(results[key]) for key in ("passed_checks", "failed_checks", "skipped_checks"))
print(f"checkov: passed {passed}, failed {failed}, skipped {skipped}")
sys.exit(1 if failed else 0)
PY
}

# Allow statements with an action containing "*" or a Resource "*", in every policy of the translated
# template (role policies, managed policies, key/topic/queue/bucket policies), and the AWS managed
# policies attached to roles. Each must be listed in security/iam-wildcards.yaml.
count_wildcards() {
    "$SECURITY_VENV/bin/python" - "$OUT_DIR/template.json" "$ROOT/security/iam-wildcards.yaml" <<'PY'
import json
import sys

import yaml

with open(sys.argv[1], encoding="utf-8") as handle:
    cfn = json.load(handle)
with open(sys.argv[2], encoding="utf-8") as handle:
    allowed = yaml.safe_load(handle)
allowed_statements = {(entry["resource"], entry["sid"]): entry["reason"] for entry in allowed["statements"]}
allowed_managed = {(entry["resource"], entry["policy"]): entry["reason"] for entry in allowed["managed_policies"]}

POLICY_PROPERTIES = {
    "AWS::IAM::Role": "Policies",
    "AWS::IAM::Policy": "PolicyDocument",
    "AWS::IAM::ManagedPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::S3::BucketPolicy": "PolicyDocument",
}


def as_list(value):
    return value if isinstance(value, list) else [value]


def documents(resource):
    value = resource.get("Properties", {}).get(POLICY_PROPERTIES[resource["Type"]])
    if resource["Type"] == "AWS::IAM::Role":
        return [policy["PolicyDocument"] for policy in value or []]
    return [value] if value else []


found, unexplained, patterns = [], [], []
for logical_id, resource in sorted(cfn["Resources"].items()):
    if resource["Type"] not in POLICY_PROPERTIES:
        continue
    for document in documents(resource):
        for index, statement in enumerate(as_list(document["Statement"])):
            if statement["Effect"] != "Allow":
                continue
            sid = statement.get("Sid", f"statement {index}")
            actions = [str(action) for action in as_list(statement.get("Action", []))]
            resources = as_list(statement.get("Resource", []))
            if any("*" in action for action in actions) or "*" in resources:
                shown = "*" if "*" in resources else "scoped resources"
                line = f"{logical_id}/{sid}: {', '.join(actions)} on {shown}"
                found.append(line)
                if (logical_id, sid) not in allowed_statements:
                    unexplained.append(line)
            for item in resources:
                text = json.dumps(item)
                if item != "*" and "*" in text:
                    patterns.append(f"{logical_id}/{sid}: {text}")
    if resource["Type"] == "AWS::IAM::Role":
        for arn in resource["Properties"].get("ManagedPolicyArns", []):
            name = json.dumps(arn).rsplit("/", 1)[-1].strip('"}')
            line = f"{logical_id}: AWS managed policy {name}"
            found.append(line)
            if (logical_id, name) not in allowed_managed:
                unexplained.append(line)

for line in found:
    marker = "  UNEXPLAINED" if line in unexplained else ""
    print(f"{line}{marker}")
print("ARN patterns scoped to one resource (informational):")
for line in patterns:
    print(f"  {line}")
statements = sum(1 for line in found if "AWS managed policy" not in line)
print(
    f"IAM wildcards: {statements} Allow statements with a wildcard action or Resource \"*\" "
    f"and {len(found) - statements} AWS managed policies, {len(unexplained)} not justified "
    "in security/iam-wildcards.yaml"
)
stale = set(allowed_statements) - {
    tuple(line.split(":", 1)[0].split("/", 1)) for line in found if "AWS managed policy" not in line
}
if stale:
    print(f"security/iam-wildcards.yaml lists statements that no longer exist: {sorted(stale)}")
sys.exit(1 if unexplained or stale else 0)
PY
}

install_tools
mkdir -p "$OUT_DIR"
echo "checkov $("$SECURITY_VENV/bin/checkov" --version), aws-sam-translator $SAM_TRANSLATOR_VERSION, statelint $STATELINT_VERSION"

step "statelint on statemachine/*.asl.json (placeholders substituted)"
run_statelint

step "SAM template -> CloudFormation (aws-sam-translator), skips from security/checkov-skips.yaml"
translate_template

step "checkov on $OUT_DIR/template.json"
run_checkov

step "IAM statements with a wildcard action or Resource \"*\""
count_wildcards

step "All security checks passed"
