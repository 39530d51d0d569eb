#!/usr/bin/env bash
# Builds the four Lambda functions for arm64 (provided.al2023) with cargo-lambda, installed from
# PyPI into .venv-lambda on first use (it brings zig for cross-linking). Prints each function's
# bootstrap size and zipped size. Output: target/lambda/<function>/bootstrap(.zip).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-lambda
CARGO_LAMBDA_VERSION="${CARGO_LAMBDA_VERSION:-1.9.2}"
if [ ! -x "$VENV/bin/cargo-lambda" ]; then
    echo "infra: installing cargo-lambda $CARGO_LAMBDA_VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
fi
export PATH="$PWD/$VENV/bin:$PATH"
rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
start=$(date +%s)
cargo lambda build --release --arm64 --output-format zip \
    -p config-api -p slack-oauth -p ingest -p deliver
echo "lambda-build: $(( $(date +%s) - start )) s"
for f in config-api slack-oauth ingest deliver; do
    zip="target/lambda/$f/bootstrap.zip"
    [ -f "$zip" ] || { echo "missing $zip" >&2; exit 1; }
    python3 - "$f" "$zip" <<'PY'
import os, sys, zipfile
name, path = sys.argv[1], sys.argv[2]
unzipped = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
print(f"lambda-build: {name:<12} bootstrap {unzipped / 2**20:6.2f} MB  zip {os.path.getsize(path) / 2**20:6.2f} MB")
PY
done
