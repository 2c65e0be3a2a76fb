#!/usr/bin/env bash
# The long soak: the CI soak test (tests/tests/soak.rs) for longer. The engine runs the
# release build under a steady open-loop load for SECONDS at RATE messages a second, with
# RSS and open descriptors sampled every second (about 60 samples are printed), then
# a graceful stop with the downstream down and a restart that must deliver what was held.
#
#   tests/soak.sh [SECONDS [RATE]]      # default: 3600 s at 2000 msg/s (7.2 million)
#
# It fails, as the test does, if the engine dies, loses, duplicates or reorders a message,
# or if RSS or descriptors grow past the test's bounds between warm-up and the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export HIE_SOAK_SECONDS="${1:-3600}" HIE_SOAK_RATE="${2:-2000}"
exec cargo test --release -p hie-tests --test soak -- --nocapture
