#!/usr/bin/env bash
# Before/after figures for a change: runs the engine end to end (1 shard, ADT and ORU), the
# MLLP server and the WAL criterion benches of two checkouts alternately, ROUNDS times, and
# prints one line per bench per run: round, build, bench id, criterion's middle throughput
# estimate. Alternating spreads the machine's noise over both builds; report the median and
# the range of each.
# Usage: bench/scripts/compare_builds.sh BEFORE_DIR AFTER_DIR [ROUNDS]
# where each DIR is a checkout (a `git worktree`) in which
# `cargo bench -p hie-bench --bench engine --bench mllp --bench wal --no-run` has run.
set -euo pipefail
before=$1 after=$2 rounds=${3:-5}
run() { # build-name dir binary-prefix filter
    local bin
    bin=$(ls -t "$2"/target/release/deps/"$3"-* | grep -v '\.d$' | head -1)
    (cd "$2" && "$bin" --bench --noplot "$4" 2>/dev/null |
        awk -v r="$round" -v w="$1" '
            /^[A-Za-z_0-9]+\/[^ ]*/ { id = $1 }
            /thrpt:/ && !/%/ { print r, w, id, $4, $5 }')
}
for round in $(seq "$rounds"); do
    for which in before after; do
        dir=$before
        [ "$which" = after ] && dir=$after
        run "$which" "$dir" engine "engine_e2e_fsync/"
        run "$which" "$dir" mllp "hie-net"
        run "$which" "$dir" wal "hie_wal"
    done
done
