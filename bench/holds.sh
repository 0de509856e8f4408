#!/usr/bin/env bash
# 1-seat holds through the gateway (`loadgen holds`: 100,000 users over 40 events of 20,000
# seats, 64 connections, 10 s) against the release launcher on :8080 with rate limits off, once
# per launcher binary given (default: this build's), one after another in one run, ROUNDS times
# (default 2). The TTL store is Redis when REDIS_URL is exported.
# Usage: cargo build --release -p holdfast -p loadgen && bash bench/holds.sh [holdfast ...]
set -u
cd "$(dirname "$0")/.."
. bench/launcher.sh
holds() {
  timeout 300 target/release/loadgen holds --url http://localhost:8080 | grep -E "POST /api/orders/holds"
}
each_launcher holds "$@"
