#!/usr/bin/env bash
# Validates template.yaml with `sam validate --lint` (cfn-lint), installing aws-sam-cli into its
# own venv (.venv-sam) on first use. Needs no AWS account: a dummy region and credentials do.
set -euo pipefail
cd "$(dirname "$0")/.."
SAM_VERSION="${SAM_VERSION:-1.170.0}"
VENV=.venv-sam
if [ ! -x "$VENV/bin/sam" ]; then
    echo "infra: installing aws-sam-cli into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli${SAM_VERSION:+==$SAM_VERSION}" \
        || "$VENV/bin/pip" install --quiet --disable-pip-version-check aws-sam-cli
fi
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export SAM_CLI_TELEMETRY=0
"$VENV/bin/sam" validate --lint --template template.yaml
