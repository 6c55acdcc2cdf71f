#!/usr/bin/env bash
# Offline checks of the SAM application: lint, SAM validation, a python3.13/arm64 build, that every
# built shared object is aarch64, and the unzipped size of every built artifact. Needs no AWS account and no Docker, only PyPI.
#
#   scripts/sam_checks.sh            # SAM CLI goes to .venv-sam (its pins clash with the project's)
#   SAM_VENV=/some/venv scripts/sam_checks.sh
set -euo pipefail

SAM_CLI_VERSION="1.170.0"
LAMBDA_RUNTIME_PYTHON="3.13"
# Lambda's limit for a function and all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT_BYTES=$((250 * 1024 * 1024))

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SAM_VENV="${SAM_VENV:-$ROOT/.venv-sam}"
cd "$ROOT"

export SAM_CLI_TELEMETRY=0
# No instance metadata service here: do not let botocore wait for one.
export AWS_EC2_METADATA_DISABLED=true

step() { printf '\n==> %s\n' "$*"; }

install_sam_cli() {
    if [[ -x "$SAM_VENV/bin/sam" ]] && "$SAM_VENV/bin/sam" --version | grep -q "$SAM_CLI_VERSION"; then
        return
    fi
    local python
    python="$(command -v python3.11 || command -v python3)"
    step "Installing aws-sam-cli==$SAM_CLI_VERSION into $SAM_VENV (with $python)"
    "$python" -m venv "$SAM_VENV"
    "$SAM_VENV/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"
}

# `sam build` without a container runs the function runtime's own interpreter (python3.13), which
# must be on PATH. Under pyenv a version that is installed but not selected is not, so select it
# alongside the default one, and put its bin directory first in case the shims are missing.
use_runtime_python() {
    if command -v pyenv >/dev/null 2>&1; then
        local pyenv_root version
        pyenv_root="$(pyenv root)"
        version="$(pyenv versions --bare | grep -E "^${LAMBDA_RUNTIME_PYTHON//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)"
        if [[ -n "$version" ]]; then
            local default_version
            default_version="$(pyenv version-name 2>/dev/null | cut -d: -f1 || true)"
            export PYENV_VERSION="${default_version:+$default_version:}$version"
            export PATH="$pyenv_root/versions/$version/bin:$PATH"
        fi
    fi
    if ! command -v "python$LAMBDA_RUNTIME_PYTHON" >/dev/null 2>&1 \
        || ! "python$LAMBDA_RUNTIME_PYTHON" -c '' >/dev/null 2>&1; then
        echo "error: python$LAMBDA_RUNTIME_PYTHON is not on PATH; sam build needs it (or Docker with --use-container)" >&2
        exit 1
    fi
    echo "python$LAMBDA_RUNTIME_PYTHON: $(command -v "python$LAMBDA_RUNTIME_PYTHON") ($("python$LAMBDA_RUNTIME_PYTHON" --version))"
}

report_sizes() {
    local build_dir="$ROOT/.aws-sam/build" layer_bytes=0 failed=0 name bytes total
    [[ -d "$build_dir/CommonLayer" ]] && layer_bytes="$(du -sb "$build_dir/CommonLayer" | cut -f1)"
    printf '%-32s %12s %14s\n' "artifact (unzipped)" "bytes" "with layer"
    for dir in "$build_dir"/*/; do
        name="$(basename "$dir")"
        bytes="$(du -sb "$dir" | cut -f1)"
        if [[ "$name" == "CommonLayer" ]]; then
            printf '%-32s %12s %14s\n' "$name" "$bytes" "-"
            continue
        fi
        total=$((bytes + layer_bytes))
        printf '%-32s %12s %14s\n' "$name" "$bytes" "$total"
        if ((total > LAMBDA_UNZIPPED_LIMIT_BYTES)); then
            echo "error: $name and its layer exceed Lambda's 250 MB unzipped limit" >&2
            failed=1
        fi
    done
    return "$failed"
}

install_sam_cli
echo "$("$SAM_VENV/bin/sam" --version); $("$SAM_VENV/bin/cfn-lint" --version)"

step "sam validate --lint (cfn-lint, rules set in .cfnlintrc)"
"$SAM_VENV/bin/sam" validate --lint

step "sam validate --region us-east-1 (SAM translator)"
# samconfig.toml sets lint = true for validate; an environment it does not define gives the plain
# translator validation instead of a second lint.
"$SAM_VENV/bin/sam" validate --region us-east-1 --config-env translator-only

step "sam build (python$LAMBDA_RUNTIME_PYTHON, arm64, no container)"
use_runtime_python
"$SAM_VENV/bin/sam" build

step "Native code under .aws-sam/build is aarch64 (Lambda arm64)"
"$SAM_VENV/bin/python" scripts/check_native_arch.py .aws-sam/build

step "Unzipped sizes under .aws-sam/build"
report_sizes

# IAM wildcards are audited (and fail the run unless justified) by scripts/security_checks.sh.

step "All SAM checks passed"
