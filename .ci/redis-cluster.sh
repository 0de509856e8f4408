#!/usr/bin/env bash
# A local Redis Cluster for the tests: three masters, each with one replica, on ports
# BASE..BASE+5 (BASE defaults to 7000), keeping nothing on disk. Starts it unless it already
# answers, waits until every slot is served, and prints the seed URLs for REDIS_CLUSTER_URLS.
#   .ci/redis-cluster.sh [start]   start (or reuse) the cluster
#   .ci/redis-cluster.sh stop      stop its servers
set -euo pipefail

BASE=${REDIS_CLUSTER_BASE_PORT:-7000}
DIR=${REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/holdfast-redis-cluster}
PORTS=$(seq "$BASE" $((BASE + 5)))

cluster_ok() {
  redis-cli -p "$BASE" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

# Stops whatever answers on the cluster's ports and waits until none answers.
stop_servers() {
  for port in $PORTS; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
  for port in $PORTS; do
    for _ in $(seq 1 50); do
      redis-cli -p "$port" ping >/dev/null 2>&1 || break
      sleep 0.1
    done
  done
}

seeds() {
  echo "redis://127.0.0.1:$BASE,redis://127.0.0.1:$((BASE + 1)),redis://127.0.0.1:$((BASE + 2))"
}

case "${1:-start}" in
  stop)
    stop_servers
    exit 0
    ;;
  start) ;;
  *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac

if cluster_ok; then
  seeds
  exit 0
fi

# Whatever answers on these ports without being a healthy cluster (a half-made cluster, nodes
# left holding keys or each other's configuration) is stopped first: `--cluster create` needs
# empty nodes that know nobody.
stop_servers
mkdir -p "$DIR"
for port in $PORTS; do
  rm -f "$DIR/nodes-$port.conf"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
    --cluster-config-file "$DIR/nodes-$port.conf" --cluster-node-timeout 2000 \
    --save "" --appendonly no --dir "$DIR" --logfile "$DIR/$port.log"
done
for port in $PORTS; do
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
done
# shellcheck disable=SC2046
redis-cli --cluster create $(for port in $PORTS; do printf '127.0.0.1:%s ' "$port"; done) \
  --cluster-replicas 1 --cluster-yes >"$DIR/create.log" 2>&1 || {
  cat "$DIR/create.log" >&2
  exit 1
}
for _ in $(seq 1 100); do
  if cluster_ok; then
    seeds
    exit 0
  fi
  sleep 0.2
done
echo "the Redis Cluster on ports $BASE-$((BASE + 5)) did not reach cluster_state:ok" >&2
exit 1
