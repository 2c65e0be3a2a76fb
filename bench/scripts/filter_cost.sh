#!/usr/bin/env bash
# The engine's cost of a 10-rule router against plain forwarding (issue #17): the two
# cases of the engine bench's `engine_e2e_filter` group (1 shard, ADT, 20,000 messages a
# sample), each run in a process of its own, ROUNDS alternating pairs with the order
# swapped every round. Within one process criterion runs the group's cases one after the
# other, and the first case of a process measured faster; separate processes remove that
# order effect. Prints each run's throughput (criterion's middle estimate, k msg/s), the
# per-pair ratio rules10/forward, and the medians.
#
# Usage: bench/scripts/filter_cost.sh (after `cargo bench -p hie-bench --bench engine
# --no-run`; ENGINE overrides the bench binary, ROUNDS the number of pairs, default 6).
set -euo pipefail
cd "$(dirname "$0")/../.."
ENGINE=$(realpath "${ENGINE:-$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/engine-* | grep -v '\.d$' | head -1)}")
ROUNDS=${ROUNDS:-6}
run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT
one() {
    local rate
    rate=$(cd "$run_dir" && "$ENGINE" --bench "engine_e2e_filter/$1" 2>&1 |
        awk '/thrpt:/ && !/%/ {print $4; exit}')
    [ -n "$rate" ] || { echo "no figure from $ENGINE for $1" >&2; exit 1; }
    echo "$rate"
}
declare -a forward rules
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then
        forward+=("$(one forward)"); rules+=("$(one rules10)")
    else
        rules+=("$(one rules10)"); forward+=("$(one forward)")
    fi
    echo "round $round: forward ${forward[-1]} k msg/s, rules10 ${rules[-1]} k msg/s"
done
python3 - "${forward[*]}" "${rules[*]}" <<'PY'
import statistics as st, sys
f = [float(x) for x in sys.argv[1].split()]
r = [float(x) for x in sys.argv[2].split()]
ratios = [b / a for a, b in zip(f, r)]
print(f"ratio rules10/forward per pair: {' '.join(f'{x:.2f}' for x in ratios)}")
print(f"median: forward {st.median(f):.1f} k msg/s, rules10 {st.median(r):.1f} k msg/s, "
      f"ratio of medians {st.median(r) / st.median(f):.3f}, median ratio {st.median(ratios):.3f}")
PY
