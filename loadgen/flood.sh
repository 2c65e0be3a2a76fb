#!/usr/bin/env bash
# The flood figures: a legitimate sender's ACK latency and errors through a real engine,
# with no flood, then while FLOOD connections (default 4,096) hold slots idle, then while
# they drip a frame one byte a second (slow-loris), then while each holds 16 KiB of a frame
# it never ends (partial), each flood from 16 source addresses.
#
#   loadgen/flood.sh [FLOOD [SECONDS [RATE]]]   # default: 4096 connections, 20 s, 200 msg/s
#
# The production (TCP service -> router -> TCP operation to a `hie-loadgen sink`) is written
# to a temporary directory; the engine and the sink are stopped, and the directory removed,
# on exit. Build first:
#
#   cargo build --release -p hie -p hie-loadgen
#
# Each run prints its `hie-loadgen send --json` report; the summary at the end has one line
# per run: legitimate p50/p99/max (µs), ACKed, errors, and what became of the flood.
set -euo pipefail
cd "$(dirname "$0")/.."
FLOOD="${1:-4096}" SECONDS_EACH="${2:-20}" RATE="${3:-200}"
BIN="${CARGO_TARGET_DIR:-target}/release"
HIE="$BIN/hie" LOADGEN="$BIN/hie-loadgen"
for b in "$HIE" "$LOADGEN"; do
    [[ -x "$b" ]] || { echo "flood.sh: $b is missing; build it first (see the header)" >&2; exit 2; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hie-flood.XXXXXX")"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Two distinct free ports (the engine listens on every address).
read -r IN_PORT OUT_PORT < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("", 0)); b.bind(("", 0))
print(a.getsockname()[1], b.getsockname()[1])')

cat >"$WORK/production.toml" <<EOF
[production]
name = "Flood"

[engine]
shards = 1
wal_sync = "fsync"

[[item]]
name = "In"
class = "EnsLib.HL7.Service.TCPService"
[item.host]
TargetConfigNames = "Router"
[item.adapter]
Port = "$IN_PORT"

[[item]]
name = "Router"
class = "EnsLib.HL7.MsgRouter.RoutingEngine"
[item.host]
TargetConfigNames = "Out"

[[item]]
name = "Out"
class = "EnsLib.HL7.Operation.TCPOperation"
[item.host]
[item.adapter]
IPAddress = "127.0.0.1"
Port = "$OUT_PORT"
EOF

"$LOADGEN" sink --listen "127.0.0.1:$OUT_PORT" >"$WORK/sink.out" 2>"$WORK/sink.err" &
PIDS+=($!)
# The engine must hold the flood too: raise its descriptor limit as far as allowed.
ulimit -n "$(ulimit -Hn)"
"$HIE" run "$WORK/production.toml" --data-dir "$WORK/data" >"$WORK/hie.out" 2>"$WORK/hie.log" &
PIDS+=($!)
for _ in $(seq 600); do
    grep -qx ready "$WORK/hie.out" 2>/dev/null && break
    kill -0 "${PIDS[1]}" 2>/dev/null || { cat "$WORK/hie.log" >&2; exit 1; }
    sleep 0.1
done
grep -qx ready "$WORK/hie.out" || { echo "flood.sh: hie never became ready" >&2; exit 1; }

# One run: a legitimate open-loop load (4 connections from 127.0.0.1), with the flood
# options given, if any.
run() {
    local name="$1"; shift
    echo "== $name" >&2
    "$LOADGEN" send --to "127.0.0.1:$IN_PORT" -c 4 --rate "$RATE" --duration "${SECONDS_EACH}s" \
        --warmup 2s --timeout 5s --json "$@" | tee "$WORK/$name.json"
}

run baseline
run idle --flood "$FLOOD" --flood-kind idle --flood-sources 16
run slowloris --flood "$FLOOD" --flood-kind slowloris --flood-interval 1s --flood-sources 16
run partial --flood "$FLOOD" --flood-kind partial --flood-bytes 16384 --flood-sources 16

echo
echo "== summary (legitimate: $RATE msg/s, 4 connections, ${SECONDS_EACH} s; flood: $FLOOD connections)"
for name in baseline idle slowloris partial; do
    jq -r --arg n "$name" '"\($n): sent \(.sent) acked \(.acked) " + (if .acked > 0 then "p50 \(.latency_us.p50) p99 \(.latency_us.p99) max \(.latency_us.max) µs" else "no ACK at all" end) + "; errors \(.errors | to_entries | map(select(.value > 0) | "\(.key) \(.value)") | join(", ") | if . == "" then "none" else . end)" + (if .flood then "; flood: connected \(.flood.connected) connect_failed \(.flood.connect_failed) refused_at_once \(.flood.refused_at_once) cut \(.flood.cut) held \(.flood.held) resets \(.flood.resets) cut-after-ms p50 \(.flood.cut_after_ms.p50) (set up in \(.flood.setup_s * 10 | round / 10) s)" else "" end)' "$WORK/$name.json"
done
