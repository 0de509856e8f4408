#!/usr/bin/env bash
# An on-sale through the gateway (`loadgen onsale`: BUYERS buyers, default 5,000, over a
# 10,000-seat event, availability read from the compact view) against the release launcher on
# :8080 with rate limits off, once per launcher binary given (default: this build's), one after
# another in one run, ROUNDS times (default 2). The TTL store is Redis when REDIS_URL is exported.
# Usage: cargo build --release -p holdfast -p loadgen && bash bench/onsale.sh [holdfast ...]
set -u
cd "$(dirname "$0")/.."
. bench/launcher.sh
onsale() {
  timeout 300 target/release/loadgen onsale --url http://localhost:8080 \
    --buyers "${BUYERS:-5000}" --map compact |
    grep -E "took|POST /api/orders/(holds|purchase)|purchases per second|double-sold"
}
each_launcher onsale "$@"
