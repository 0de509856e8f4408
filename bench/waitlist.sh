#!/usr/bin/env bash
# A long waitlist costs nobody anything: `loadgen waitlist` (200,000 people on one sold-out
# event's waitlist, then 4 buyers on another event alone, then beside 8 clients reading their
# place) against the release launcher on :8080 (SQLite, in-process TTL store, rate limits off),
# once per launcher binary given, one after another in one run (default: this build's). The
# launcher's resident memory is read before and after.
# Usage: cargo build --release -p holdfast -p loadgen && bash bench/waitlist.sh [holdfast ...]
# (LOADGEN_ARGS="--entries 20000" for a shorter run)
set -u
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- target/release/holdfast
for binary in "$@"; do
  data=$(mktemp -d)
  env -i PATH="$PATH" HOME="$HOME" DATA_DIR="$data" RUST_LOG=warn DEMO_SEED=false \
    RATE_LIMIT_DISABLED=true "$binary" >"$data.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fsS localhost:8080/ready >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "== $binary"
  echo "launcher RSS at start: $(awk '/VmRSS/ {print int($2 / 1024) " MB"}' "/proc/$pid/status")"
  timeout 900 target/release/loadgen waitlist --url http://localhost:8080 ${LOADGEN_ARGS:-}
  echo "launcher RSS at the end: $(awk '/VmRSS/ {print int($2 / 1024) " MB"}' "/proc/$pid/status")"
  kill "$pid"
  wait "$pid" 2>/dev/null
  rm -rf "$data" "$data.log"
done
