#!/usr/bin/env bash
# Tables that a sale adds to stay flat: the release launcher with RECORD_RETENTION_HOURS=0
# (whatever is done with goes at the next pruning pass, every minute), then `loadgen onsale`
# ROUNDS times (12,000 buyers of 1–4 seats on a 20,000-seat event each), printing the orders,
# the outbox rows and the delivery log rows after each sale and once a pass has run.
# Usage: cargo build --release -p holdfast -p loadgen && bash bench/retention.sh
set -u
cd "$(dirname "$0")/.."
. bench/launcher.sh
ROUNDS=${ROUNDS:-3}
start_launcher target/release/holdfast RUST_LOG=warn RATE_LIMIT_DISABLED=true \
  RECORD_RETENTION_HOURS=0
counts() { # label
  python3 - "$LAUNCHER_DATA" "$1" <<'PY'
import sqlite3, sys
data, label = sys.argv[1], sys.argv[2]
def count(db, sql):
    return sqlite3.connect(f"file:{data}/{db}.sqlite3?mode=ro", uri=True).execute(sql).fetchone()[0]
print(f"{label:<28} orders {count('orders', 'SELECT count(*) FROM orders'):>6}   "
      f"outbox {count('orders', 'SELECT count(*) FROM outbox'):>6}   "
      f"deliveries {count('notifications', 'SELECT count(*) FROM deliveries'):>6}")
PY
}
for round in $(seq 1 "$ROUNDS"); do
  timeout 600 target/release/loadgen onsale --url http://localhost:8080 --buyers 12000 \
    --rows 100 --seats-per-row 200 --map compact | grep -E "^POST /api/orders/purchase"
  counts "after sale $round"
  sleep 65
  counts "after the next pass"
done
stop_launcher
