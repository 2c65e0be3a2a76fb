#!/usr/bin/env bash
# The admin API's cost on the data path (issue #18): the release `hie run` end to end
# (MLLP service -> router -> MLLP operation, wal_sync fsync, one shard pinned to CPU 0),
# driven by `hie-loadgen e2e` (closed loop, 64 connections, pinned to CPU 1), once with
# the admin API off (`--admin none`) and once on and scraped (`GET /metrics`, one
# persistent scraper as Prometheus is) every second; ROUNDS alternating pairs, the order
# swapped every round so that neither mode always runs second.
#
# Prints per run: the end-to-end rate (msg/s), the engine's CPU time per message (over
# the load generator's run, warm-up included), and the CPU the admin side took (the `hie-admin` thread plus the main thread, which asks the
# shards; ms per second of run). Then the cost: the mean and median of the per-pair rate
# differences with the standard error of the mean, and the admin side's CPU as a share of
# one core (the most the scrapes can take from a core the shard or the load generator
# needs).
#
# The data directory is on tmpfs (DATA_ROOT, default /dev/shm) so that the disk's
# latency spread, which moves single runs by 10-15 %, does not hide a 2 % difference;
# fsync is still called. DATA_ROOT=/var/tmp runs on disk.
#
# Usage: bench/scripts/admin_cost.sh (after `cargo build --release -p hie -p hie-loadgen`;
# BIN, DURATION, ROUNDS, DATA_ROOT override).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-8}
DATA_ROOT=${DATA_ROOT:-/dev/shm}
[ -d "$DATA_ROOT" ] || DATA_ROOT=${TMPDIR:-/tmp}
IN=24575 SINK=24576 ADMIN=24590
dir=$(mktemp -d)
data=$(mktemp -d "$DATA_ROOT/hie-admin-cost.XXXXXX")
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null || true
    rm -rf "$dir" "$data"
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

# The scraper: one process, GET /metrics every second until killed; counts what it got.
cat > "$dir/scrape.py" <<'PY'
import sys, time, urllib.request
url, out = sys.argv[1], sys.argv[2]
ok = failed = 0
while True:
    t = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
        ok += 1
    except Exception:
        failed += 1
    with open(out, "w") as f:
        f.write(f"{ok} {failed}\n")
    time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
PY

# CPU nanoseconds of process $1's threads (schedstat), as "admin_side total": admin side
# = the threads that are not shards (main `hie`, `hie-admin`, tokio's blocking pool;
# glommio's blocking threads inherit the shard's name and count with it: they do its
# fsyncs).
ticks() {
    local admin=0 total=0 t comm cpu
    for t in /proc/"$1"/task/*; do
        comm=$(cat "$t/comm" 2>/dev/null) || continue
        cpu=$(awk '{print $1}' "$t/schedstat" 2>/dev/null) || continue
        total=$((total + cpu))
        case "$comm" in hie | hie-admin | tokio-*) admin=$((admin + cpu)) ;; esac
    done
    echo "$admin $total"
}

# One run: prints "rate cpu_us_per_msg admin_ms_per_s".
run() {
    local mode=$1 admin=none
    [ "$mode" = on ] && admin=127.0.0.1:$ADMIN
    rm -rf "$data/d"
    "$BIN/hie" run "$dir/p.toml" --data-dir "$data/d" --cpus 0 --admin "$admin" \
        --log warn > "$dir/out" 2> "$dir/err" &
    local hie=$!
    for _ in $(seq 100); do grep -q '^ready$' "$dir/out" && break; sleep 0.1; done
    grep -q '^ready$' "$dir/out" || { cat "$dir/err" >&2; exit 1; }
    local scraper=
    if [ "$mode" = on ]; then
        python3 "$dir/scrape.py" "http://127.0.0.1:$ADMIN/metrics" "$dir/scrapes" &
        scraper=$!
    fi
    local before start
    before=$(ticks "$hie")
    start=$(date +%s.%N)
    "$BIN/hie-loadgen" e2e --to 127.0.0.1:$IN --sink-listen 127.0.0.1:$SINK -c 64 \
        --duration "$DURATION" --warmup 2s --cpus 1 --json > "$dir/report.json"
    local after end
    after=$(ticks "$hie")
    end=$(date +%s.%N)
    if [ -n "$scraper" ]; then
        kill "$scraper" 2>/dev/null || true
        wait "$scraper" 2>/dev/null || true
        read -r ok failed < "$dir/scrapes"
        [ "$failed" -eq 0 ] && [ "$ok" -gt 0 ] || { echo "scrapes: $ok ok, $failed failed" >&2; exit 1; }
    fi
    kill "$hie"; wait "$hie" || true
    python3 -c 'import json,os,sys
r = json.load(open(sys.argv[1])); assert r["lost"] == 0, r
(a0, t0), (a1, t1) = [map(int, x.split()) for x in sys.argv[2:4]]
wall = float(sys.argv[5]) - float(sys.argv[4])
print(round(r["rate_per_s"]), round((t1 - t0) / 1e3 / max(r["sent"], 1), 2),
      round((a1 - a0) / 1e6 / wall, 3))' "$dir/report.json" "$before" "$after" "$start" "$end"
}

declare -a off on
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 0 ]; then
        on+=("$(run on)")
        off+=("$(run off)")
    else
        off+=("$(run off)")
        on+=("$(run on)")
    fi
    echo "round $round: off ${off[-1]} | on+scraped ${on[-1]}   (msg/s, engine CPU µs/msg, admin-side CPU ms/s)"
done
python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics as st, sys
def runs(arg):
    v = [float(x) for x in arg.split()]
    return v[0::3], v[1::3], v[2::3]
(r_off, c_off, a_off), (r_on, c_on, a_on) = runs(sys.argv[1]), runs(sys.argv[2])
cost = [100 * (f - n) / f for f, n in zip(r_off, r_on)]
sem = st.stdev(cost) / len(cost) ** 0.5 if len(cost) > 1 else float("nan")
print(f"rate: off mean {st.mean(r_off):.0f} msg/s, on and scraped every second mean {st.mean(r_on):.0f} msg/s")
print(f"cost per pair (%): {' '.join(f'{c:+.1f}' for c in cost)}")
print(f"cost: mean {st.mean(cost):+.2f} % ± {sem:.2f} (standard error), median {st.median(cost):+.2f} %")
print(f"engine CPU per message: off {st.mean(c_off):.2f} µs, on {st.mean(c_on):.2f} µs")
print(f"admin side (main + hie-admin threads): off {st.mean(a_off):.2f} ms/s, on {st.mean(a_on):.2f} ms/s "
      f"= {st.mean(a_on) / 10:.3f} % of one core")
PY
