#!/usr/bin/env bash
# 1-seat holds through the gateway (`loadgen holds`: 100,000 users over 40 events of 20,000
# seats, 64 connections, 10 s) against the release launcher on :8080 with rate limits off, once
# per launcher binary given (default: this build's), one after another in one run, ROUNDS times
# (default 2). The TTL store is Redis when REDIS_URL is exported.
# Usage: cargo build --release -p holdfast -p loadgen && bash bench/holds.sh [holdfast ...]
set -u
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- target/release/holdfast
for round in $(seq 1 "${ROUNDS:-2}"); do
  for binary in "$@"; do
    data=$(mktemp -d)
    env -i PATH="$PATH" HOME="$HOME" DATA_DIR="$data" RUST_LOG=error DEMO_SEED=false \
      RATE_LIMIT_DISABLED=true ${REDIS_URL:+REDIS_URL=$REDIS_URL} "$binary" >"$data.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      curl -fsS localhost:8080/ready >/dev/null 2>&1 && break
      sleep 0.2
    done
    echo "== round $round: $binary${REDIS_URL:+ (Redis)}"
    timeout 300 target/release/loadgen holds --url http://localhost:8080 | grep -E "POST /api/orders/holds"
    kill "$pid"
    wait "$pid" 2>/dev/null
    rm -rf "$data" "$data.log"
  done
done
