#!/usr/bin/env bash
# Builds release and runs every benchmark in one go (docs/benchmarks.md):
#   1. criterion benches (filter, matching 1,000 automations, window update, rendering, signing)
#   2. end to end through the local process on SQLite, 3. the bare baseline on the same sink,
#   4. release binary and zip sizes, 5. cold starts against a local Lambda Runtime API,
#   6. store operations per event on moto.
# Prints one closing `bench:` line and writes bench/results.json with the machine's description.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/moto.sh
trap stop_moto EXIT INT TERM
OUT=bench/out
mkdir -p "$OUT"

echo "== release build" >&2
cargo build --release --locked -p local -p bench -p config-api -p slack-oauth -p ingest -p deliver

echo "== criterion" >&2
cargo bench --locked -p automations --bench engine --bench render -- --warm-up-time 1 --measurement-time 3 --noplot \
    >"$OUT/criterion.txt" 2>&1 || { cat "$OUT/criterion.txt" >&2; exit 1; }

echo "== end to end and bare baseline" >&2
target/release/bench e2e --binary target/release/automations >"$OUT/e2e.json"

echo "== cold start" >&2
target/release/bench cold-start target/release/{config-api,slack-oauth,ingest,deliver} >"$OUT/cold_start.json"

echo "== store operations per event (moto)" >&2
start_moto
target/release/bench ops >"$OUT/ops.json"
stop_moto

python3 - "$OUT" <<'PY'
import glob, json, os, platform, subprocess, sys, zipfile, io
out = sys.argv[1]
def crit(bench_id):
    # criterion keeps each bench's estimates (ns) under target/criterion/<id with / as _>/new.
    path = os.path.join("target/criterion", bench_id.replace("/", "_"), "new", "estimates.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]
criterion = {
    "filter_eval_ns": crit("filter/evaluate (3 clauses, $in, $or, $regex)"),
    "match_1000_same_type_ns": crit("match/1000 automations, all of the event's type"),
    "match_1000_mixed_types_ns": crit("match/1000 automations, mixed event types"),
    "window_update_ns": crit("window/observe + threshold(5) + zscore(30)"),
    "window_update_stored_ns": crit("window/decode + observe + evaluate + encode (as stored)"),
    "render_github_payload_ns": crit("render_github_payload"),
    "sign_standard_webhooks_ns": crit("sign_standard_webhooks"),
    "slack_block_kit_ns": crit("slack_block_kit"),
}
e2e = json.load(open(f"{out}/e2e.json"))
cold = json.load(open(f"{out}/cold_start.json"))
ops = json.load(open(f"{out}/ops.json"))
sizes = {}
for f in ["config-api", "slack-oauth", "ingest", "deliver"]:
    path = f"target/release/{f}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, "bootstrap")
    sizes[f] = {"binary_mb": os.path.getsize(path) / 2**20, "zip_mb": len(buf.getvalue()) / 2**20}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
machine = {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(),
           "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
           "rustc": subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()}
results = {"machine": machine, "criterion_ns": criterion, "e2e": e2e, "cold_start_ms": cold,
           "sizes": sizes, "store_ops": ops}
with open("bench/results.json", "w") as f:
    json.dump(results, f, indent=2)
m1000 = criterion["match_1000_same_type_ns"]
print("bench: e2e_rate={:.0f} bare_rate={:.0f} ratio={:.2f} p50_ms={:.1f} p99_ms={:.1f} match1000_us={} "
      "cold_start_ms={:.1f} max_zip_mb={:.2f} writes_per_event={:.2f}".format(
    e2e["e2e_rate"], e2e["bare_rate"], e2e["ratio"], e2e["p50_ms"], e2e["p99_ms"],
    "n/a" if m1000 is None else f"{m1000 / 1000:.1f}", max(cold.values()),
    max(s["zip_mb"] for s in sizes.values()), ops["writes_per_event"]))
PY
