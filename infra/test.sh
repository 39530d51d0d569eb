#!/usr/bin/env bash
# The README's test command: fmt check, clippy -D warnings and the whole test suite, with the
# AWS backends tested against a moto server on 127.0.0.1. Needs only Rust, Python 3 and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/moto.sh

trap stop_moto EXIT INT TERM
start_moto

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"
