#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60) with libFuzzer via cargo-fuzz, from the seed
# corpora in fuzz/corpus (test fixtures). cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept them. Prints executions and crashes per target; exits
# non-zero if any target found a crash (its input is kept in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "infra: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --version 0.13.2
fi
status=0
summary=()
for target in event_parser filter template slack_message; do
    mkdir -p "fuzz/corpus/$target" "fuzz/out/$target"
    log="fuzz/out/$target.log"
    # A private working corpus, so the committed seeds stay small.
    cp -n fuzz/corpus/$target/* "fuzz/out/$target/" 2>/dev/null || true
    if cargo fuzz run --fuzz-dir fuzz "$target" "fuzz/out/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -rss_limit_mb=2048 >"$log" 2>&1; then
        crashes=0
    else
        crashes=1
        status=1
    fi
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
    summary+=("fuzz: target=$target seconds=$SECONDS_PER_TARGET executions=$execs crashes=$crashes")
done
printf '%s\n' "${summary[@]}"
exit $status
