#!/usr/bin/env bash
# One user's write quota, served the same to sequential and parallel senders: `loadgen quota`
# (400 POST /api/orders/payments/intent per user, 1, 8 and 40 in flight) against the release
# launcher on :8080 with the default limits (120 writes a minute), once per launcher binary
# given (default: this build's). Counters are shared through Redis when REDIS_URL is exported
# (its database is used as given; the keys are per user and expire within the minute).
# Usage: cargo build --release -p holdfast -p loadgen && bash bench/quota.sh [holdfast ...]
set -u
cd "$(dirname "$0")/.."
. bench/launcher.sh
[ $# -gt 0 ] || set -- target/release/holdfast
for binary in "$@"; do
  start_launcher "$binary" RUST_LOG=warn ${REDIS_URL:+REDIS_URL=$REDIS_URL}
  echo "== $binary${REDIS_URL:+ (counters in Redis)}"
  timeout 300 target/release/loadgen quota --url http://localhost:8080
  stop_launcher
done
