#!/usr/bin/env bash
# One abusive client against the release launcher with default rate limits, on Redis (database
# 7 of 127.0.0.1:6379, emptied first): `loadgen hammer` hits each write route until its first
# 429, then floods all of them with 100,000 requests from one user. Prints the gateway's RSS and
# the Redis key count before and after the flood.
# Usage: cargo build --release -p holdfast -p loadgen && bash bench/hammer.sh
set -eu
cd "$(dirname "$0")/.."
REDIS=redis://127.0.0.1:6379/7
redis-cli -n 7 flushdb >/dev/null
data=$(mktemp -d)
env -i PATH="$PATH" HOME="$HOME" DATA_DIR="$data" RUST_LOG=warn DEMO_SEED=false REDIS_URL="$REDIS" \
  RATE_LIMIT_DISABLED=false target/release/holdfast >"$data.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$data.log"' EXIT
for _ in $(seq 1 50); do
  curl -fsS localhost:8080/ready >/dev/null 2>&1 && break
  sleep 0.2
done
state() { echo "$1: gateway RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status), Redis keys $(redis-cli -n 7 dbsize)"; }
state "before"
target/release/loadgen hammer --url http://localhost:8080 --connections 32 "$@"
state "after"
