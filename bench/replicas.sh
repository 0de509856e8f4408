#!/usr/bin/env bash
# Many replicas, one killed (`loadgen replicas`): Holdfast as separate processes on a shared
# Redis Cluster (started by .ci/redis-cluster.sh unless REDIS_CLUSTER_URLS or REDIS_URL is
# exported), RabbitMQ (AMQP_URL, default the local broker) and MongoDB server (MONGODB_URI,
# default the local SecantusDB replica set). Runs the on-sale with 1, 2 and 3 orders replicas,
# then with 3 and one orders replica and one gateway SIGKILLed mid-sale (and RabbitMQ restarted
# mid-sale, when rabbitmqctl is at hand); every run checks correctness and fails the script
# when a check fails.
# Usage: cargo build --release --workspace --bins && bash bench/replicas.sh
#   PROFILE=debug BUYERS=300 SHORT=1 bash bench/replicas.sh   (the short form CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
BUYERS=${BUYERS:-2000}
CONNECTIONS=${CONNECTIONS:-32}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export MONGODB_URI=${MONGODB_URI:-mongodb://127.0.0.1:27017/?replicaSet=secantus}
if [ -z "${REDIS_CLUSTER_URLS:-}" ] && [ -z "${REDIS_URL:-}" ]; then
  REDIS_CLUSTER_URLS=$(.ci/redis-cluster.sh start)
  export REDIS_CLUSTER_URLS
fi
loadgen=target/$PROFILE/loadgen
run() { # description, loadgen arguments...
  local what=$1
  shift
  echo "== $what"
  timeout 600 "$loadgen" replicas --buyers "$BUYERS" --connections "$CONNECTIONS" "$@" |
    grep -E "^(sale|killed|restarted|bus|ok|FAIL|every check)" || {
    echo "replicas run failed: $what" >&2
    return 1
  }
}
if [ -z "${SHORT:-}" ]; then
  for orders in 1 2 3; do
    run "$orders orders replica(s)" --orders "$orders"
  done
fi
# RabbitMQ is restarted mid-sale too when this machine runs it (rabbitmqctl).
restart=()
if command -v rabbitmqctl >/dev/null; then
  restart=(--restart-broker "${RESTART_BROKER:-rabbitmqctl -q stop_app && rabbitmqctl -q start_app && rabbitmqctl -q await_startup}")
fi
run "3 orders replicas, one orders replica and one gateway killed${restart:+, RabbitMQ restarted}" \
  --orders 3 --kill "${restart[@]}"
