#!/usr/bin/env bash
# Gateway throughput with rate limits on and off, in one run: `loadgen auth` (64 users, cookie
# `GET /api/auth/me`, the "other" class keyed per user) against the release launcher on :8080,
# alternating off/on for two rounds. "On" runs every check with quotas too large to refuse, so
# the difference is what counting costs. Counters are in process unless REDIS_URL is exported.
# Usage: cargo build --release -p holdfast -p loadgen && bash bench/limits.sh
set -u
cd "$(dirname "$0")/.."
run() { # label, then the environment of that run
  local label=$1
  shift
  local data
  data=$(mktemp -d)
  env -i PATH="$PATH" HOME="$HOME" DATA_DIR="$data" RUST_LOG=warn DEMO_SEED=false \
    ${REDIS_URL:+REDIS_URL=$REDIS_URL} "$@" target/release/holdfast >"$data.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 50); do
    curl -fsS localhost:8080/ready >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "== limits $label"
  target/release/loadgen auth --url http://localhost:8080 --connections 64 --seconds 8 |
    grep "auth/me"
  kill "$pid"
  wait "$pid" 2>/dev/null
  rm -rf "$data" "$data.log"
}
for _ in 1 2; do
  run off RATE_LIMIT_DISABLED=true
  run on RATE_LIMIT_DISABLED=false AUTH_RATE_LIMIT_BURST=100000 AUTH_RATE_LIMIT_REFILL_MS=1 \
    RATE_LIMIT_OTHER=100000000/60
done
