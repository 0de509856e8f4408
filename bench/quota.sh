#!/usr/bin/env bash
# One user's write quota, served the same to sequential and parallel senders: `loadgen quota`
# (400 POST /api/orders/payments/intent per user, 1, 8 and 40 in flight) against the release
# launcher on :8080 with the default limits (120 writes a minute), once per launcher binary
# given (default: this build's). Counters are shared through Redis when REDIS_URL is exported
# (its database is used as given; the keys are per user and expire within the minute).
# Usage: cargo build --release -p holdfast -p loadgen && bash bench/quota.sh [holdfast ...]
set -u
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- target/release/holdfast
for binary in "$@"; do
  data=$(mktemp -d)
  env -i PATH="$PATH" HOME="$HOME" DATA_DIR="$data" RUST_LOG=warn DEMO_SEED=false \
    ${REDIS_URL:+REDIS_URL=$REDIS_URL} "$binary" >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fsS localhost:8080/ready >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "== $binary${REDIS_URL:+ (counters in Redis)}"
  timeout 300 target/release/loadgen quota --url http://localhost:8080
  kill "$pid"
  wait "$pid" 2>/dev/null
  rm -rf "$data" "$data.log"
done
