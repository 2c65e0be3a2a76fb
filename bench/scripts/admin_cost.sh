#!/usr/bin/env bash
# The admin API's cost on the data path (issue #18): the release `hie run` end to end
# (MLLP service -> router -> MLLP operation, wal_sync fsync, one shard pinned to CPU 0),
# driven by `hie-loadgen e2e` (closed loop, 64 connections, pinned to CPU 1), once with
# the admin API off (`--admin none`) and once on and scraped (`GET /metrics`) every
# second; ROUNDS alternating pairs. Prints each run's end-to-end rate (msg/s) and the
# engine's CPU time per message (user + system over the run, warm-up included), and the
# mean of each mode. Usage: bench/scripts/admin_cost.sh (after
# `cargo build --release -p hie -p hie-loadgen`; BIN, DURATION, ROUNDS override; ORDER=on
# runs the admin-on run first in each pair, to tell an order effect from the cost).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
DURATION=${DURATION:-20s}
ROUNDS=${ROUNDS:-3}
IN=24575 SINK=24576 ADMIN=24590
dir=$(mktemp -d)
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
cat > "$dir/p.toml" <<TOML
[production]
name = "Bench.AdminCost"
[engine]
shards = 1
wal_sync = "fsync"
[[item]]
name = "In"
class = "EnsLib.HL7.Service.TCPService"
[item.host]
TargetConfigNames = "Router"
[item.adapter]
Port = "$IN"
[[item]]
name = "Router"
class = "EnsLib.HL7.MsgRouter.RoutingEngine"
[item.host]
TargetConfigNames = "Out"
[[item]]
name = "Out"
class = "EnsLib.HL7.Operation.TCPOperation"
pool_size = 16
[item.adapter]
IPAddress = "127.0.0.1"
Port = "$SINK"
TOML

# One run: prints the end-to-end rate.
run() {
    local mode=$1 admin=none
    [ "$mode" = on ] && admin=127.0.0.1:$ADMIN
    rm -rf "$dir/data"
    "$BIN/hie" run "$dir/p.toml" --data-dir "$dir/data" --cpus 0 --admin "$admin" \
        --log warn > "$dir/out" 2> "$dir/err" &
    local hie=$!
    for _ in $(seq 100); do grep -q '^ready$' "$dir/out" && break; sleep 0.1; done
    local scraper=
    if [ "$mode" = on ]; then
        (while curl -sf "http://127.0.0.1:$ADMIN/metrics" > /dev/null; do sleep 1; done) &
        scraper=$!
    fi
    "$BIN/hie-loadgen" e2e --to 127.0.0.1:$IN --sink-listen 127.0.0.1:$SINK -c 64 \
        --duration "$DURATION" --warmup 2s --cpus 1 --json > "$dir/report.json"
    [ -n "$scraper" ] && kill "$scraper" 2>/dev/null || true
    # The engine's CPU time (user + system, clock ticks) over the whole run, warm-up included.
    local ticks
    ticks=$(awk '{print $14 + $15}' "/proc/$hie/stat")
    kill "$hie"; wait "$hie" || true
    python3 -c 'import json,os,sys; r=json.load(open(sys.argv[1])); assert r["lost"]==0, r
cpu_s = int(sys.argv[2]) / os.sysconf("SC_CLK_TCK")
print(round(r["rate_per_s"]), round(cpu_s * 1e6 / max(r["sent"], 1), 1))' "$dir/report.json" "$ticks"
}

declare -a off on
for round in $(seq "$ROUNDS"); do
    if [ "${ORDER:-off}" = on ]; then
        on+=("$(run on)")
        off+=("$(run off)")
    else
        off+=("$(run off)")
        on+=("$(run on)")
    fi
    echo "round $round: off ${off[-1]}, on+scraped ${on[-1]} (msg/s, engine CPU µs per message)"
done
python3 - "${off[*]}" "${on[*]}" <<'PY'
import sys
def runs(arg):
    v = [float(x) for x in arg.split()]
    return v[0::2], v[1::2]
(r_off, c_off), (r_on, c_on) = runs(sys.argv[1]), runs(sys.argv[2])
mean = lambda v: sum(v) / len(v)
print(f"mean rate: off {mean(r_off):.0f} msg/s, on and scraped every second {mean(r_on):.0f} msg/s, "
      f"cost {100 * (mean(r_off) - mean(r_on)) / mean(r_off):+.2f} %")
print(f"mean engine CPU per message: off {mean(c_off):.1f} µs, on {mean(c_on):.1f} µs, "
      f"cost {100 * (mean(c_on) - mean(c_off)) / mean(c_off):+.2f} %")
PY
