#!/usr/bin/env bash
# How long `GET /metrics` takes (issue #18), for two builds run alternately: the release
# `hie run` (MLLP service -> router -> MLLP operation, SHARDS shards, wal_sync fsync, not
# pinned) scraped SCRAPES times back to back while idle, then every 50 ms while
# `hie-loadgen e2e` (closed loop, 16 connections) drives it for LOAD. ROUNDS alternating
# pairs. Prints each run's median and 90th percentile (ms, curl's time_total) and the
# medians over all runs of each build.
# Usage: bench/scripts/scrape_time.sh BEFORE_BIN_DIR AFTER_BIN_DIR
# (each holding `hie` and `hie-loadgen`; SHARDS, SCRAPES, LOAD, ROUNDS override).
set -euo pipefail
BEFORE=$1 AFTER=$2
SHARDS=${SHARDS:-2}
SCRAPES=${SCRAPES:-200}
LOAD=${LOAD:-15s}
ROUNDS=${ROUNDS:-3}
IN=24675 SINK=24676 ADMIN=24690
dir=$(mktemp -d)
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
cat > "$dir/p.toml" <<TOML
[production]
name = "Bench.ScrapeTime"
[engine]
shards = $SHARDS
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

scrape() {
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$ADMIN/metrics"
}

# One run of build $1 ($2: idle or load): appends each scrape's seconds to $dir/$3.
run() {
    local bin=$1 mode=$2 out=$3
    rm -rf "$dir/data"
    "$bin/hie" run "$dir/p.toml" --data-dir "$dir/data" --no-pin --admin 127.0.0.1:$ADMIN \
        --log warn > "$dir/out" 2> "$dir/err" &
    local hie=$!
    for _ in $(seq 100); do grep -q '^ready$' "$dir/out" && break; sleep 0.1; done
    # A few messages first, so that every histogram and counter has samples.
    "$bin/hie-loadgen" e2e --to 127.0.0.1:$IN --sink-listen 127.0.0.1:$SINK -c 4 \
        --messages 200 > /dev/null
    : > "$dir/run"
    if [ "$mode" = idle ]; then
        for _ in $(seq "$SCRAPES"); do scrape >> "$dir/run"; done
    else
        "$bin/hie-loadgen" e2e --to 127.0.0.1:$IN --sink-listen 127.0.0.1:$SINK -c 16 \
            --duration "$LOAD" > /dev/null &
        local load=$!
        sleep 2
        while kill -0 "$load" 2>/dev/null; do scrape >> "$dir/run"; sleep 0.05; done
        wait "$load" || true
    fi
    kill "$hie"; wait "$hie" || true
    cat "$dir/run" >> "$dir/$out"
    python3 - "$dir/run" <<'PY'
import sys
v = sorted(float(x) * 1e3 for x in open(sys.argv[1]))
print(f"n={len(v)} median {v[len(v) // 2]:.3f} ms, p90 {v[len(v) * 9 // 10]:.3f} ms")
PY
}

for round in $(seq "$ROUNDS"); do
    for mode in idle load; do
        echo "round $round $mode before: $(run "$BEFORE" $mode before-$mode)"
        echo "round $round $mode after:  $(run "$AFTER" $mode after-$mode)"
    done
done
python3 - "$dir" <<'PY'
import sys
for mode in ("idle", "load"):
    for build in ("before", "after"):
        v = sorted(float(x) * 1e3 for x in open(f"{sys.argv[1]}/{build}-{mode}"))
        print(f"{mode} {build}: n={len(v)} median {v[len(v) // 2]:.3f} ms, "
              f"p90 {v[len(v) * 9 // 10]:.3f} ms")
PY
