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
. bench/launcher.sh
[ $# -gt 0 ] || set -- target/release/holdfast
for binary in "$@"; do
  start_launcher "$binary" RUST_LOG=warn RATE_LIMIT_DISABLED=true
  echo "== $binary"
  echo "launcher RSS at start: $(awk '/VmRSS/ {print int($2 / 1024) " MB"}' "/proc/$LAUNCHER_PID/status")"
  timeout 900 target/release/loadgen waitlist --url http://localhost:8080 ${LOADGEN_ARGS:-}
  echo "launcher RSS at the end: $(awk '/VmRSS/ {print int($2 / 1024) " MB"}' "/proc/$LAUNCHER_PID/status")"
  stop_launcher
done
