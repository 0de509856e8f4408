#!/usr/bin/env bash
# Proxy overhead: nginx and holdfast-gateway as reverse proxies in front of the same upstream,
# measured with the same wrk settings in one run; prints both and the gateway/nginx ratio.
#
#   bash bench/proxy.sh                  # 64 connections, 10 s each
#   CONNECTIONS=128 DURATION=20 bash bench/proxy.sh
#
# Between the two runs the floor: the same axum server and hyper-util client with nothing else
# (gateway/examples/reference_proxy.rs), i.e. what this HTTP stack costs before any gateway work.
#
# The upstream is an nginx server answering every path with the same 105-byte JSON body. The
# nginx proxy keeps upstream connections alive (as the gateway's pooled client does) and logs
# each request, as the gateway does at info. The gateway's rate limiter runs but with a quota
# wrk cannot spend (nginx limits nothing), so every answer is a proxied 200. Installs
# nginx-light and wrk with apt-get when they are missing.
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
UPSTREAM_PORT=${UPSTREAM_PORT:-18081}
NGINX_PORT=${NGINX_PORT:-18082}
GATEWAY_PORT=${BENCH_GATEWAY_PORT:-18083}
REFERENCE_PORT=${REFERENCE_PORT:-18084}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

need() {
  command -v "$1" >/dev/null 2>&1 && return
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get install -y "$2" >/dev/null 2>&1 || {
    $sudo apt-get update >/dev/null && $sudo apt-get install -y "$2" >/dev/null
  }
}
need nginx nginx-light
need wrk wrk
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

WORK=$(mktemp -d)
cleanup() {
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ -n "${GATEWAY_PID:-}" ] && kill "$GATEWAY_PID" 2>/dev/null || true
  [ -n "${REFERENCE_PID:-}" ] && kill "$REFERENCE_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

BODY='{"id":"0123456789abcdef01234567","title":"Benchmark","venue":"Upstream Hall","priceCents":4200,"ok":true}'
cat > "$WORK/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 4096; }
http {
  access_log $WORK/access.log;
  client_body_temp_path $WORK/body;
  proxy_temp_path $WORK/proxy;
  fastcgi_temp_path $WORK/fastcgi;
  uwsgi_temp_path $WORK/uwsgi;
  scgi_temp_path $WORK/scgi;
  keepalive_requests 1000000;
  upstream backend {
    server 127.0.0.1:$UPSTREAM_PORT;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:$UPSTREAM_PORT;
    access_log off;
    location / {
      default_type application/json;
      return 200 '$BODY';
    }
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /api/ {
      proxy_pass http://backend/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
"$NGINX" -c "$WORK/nginx.conf" -e "$WORK/error.log"

cargo build --release --quiet -p holdfast-gateway --bin holdfast-gateway --example reference_proxy \
  --manifest-path "$ROOT/Cargo.toml"
UPSTREAM="http://127.0.0.1:$UPSTREAM_PORT"
env GATEWAY_PORT="$GATEWAY_PORT" AUTH_SERVICE_URL="$UPSTREAM" EVENTS_SERVICE_URL="$UPSTREAM" \
  ORDERS_SERVICE_URL="$UPSTREAM" ML_SERVICE_URL="$UPSTREAM" RUST_LOG="${RUST_LOG:-info}" \
  RATE_LIMIT_OTHER="${RATE_LIMIT_OTHER:-1000000000/60}" \
  "$ROOT/target/release/holdfast-gateway" > "$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
env GATEWAY_PORT="$REFERENCE_PORT" UPSTREAM="$UPSTREAM" \
  "$ROOT/target/release/examples/reference_proxy" > "$WORK/reference.log" 2>&1 &
REFERENCE_PID=$!

for port in "$NGINX_PORT" "$REFERENCE_PORT" "$GATEWAY_PORT"; do
  url="http://127.0.0.1:$port/api/events"
  for _ in $(seq 100); do curl -fsS -o /dev/null "$url" 2>/dev/null && break; sleep 0.1; done
  curl -fsS -o /dev/null "$url"
done

run() { # name url → "requests/s p50 p99"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$2" >/dev/null # warm-up: connections and pools
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$2" > "$WORK/$1.wrk"
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/$1.wrk")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/$1.wrk")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/$1.wrk")
  errors=$(awk '/Non-2xx|Socket errors/' "$WORK/$1.wrk")
  printf '%-8s %10.0f req/s   p50 %-8s p99 %-8s %s\n' "$1" "$rps" "$p50" "$p99" "$errors"
  echo "$rps" > "$WORK/$1.rps"
  if [ -n "$errors" ]; then
    echo "$1 answered errors (see above): the comparison would be meaningless" >&2
    exit 1
  fi
}

echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, GET /api/events → a 105-byte upstream answer"
run nginx "http://127.0.0.1:$NGINX_PORT/api/events"
run floor "http://127.0.0.1:$REFERENCE_PORT/api/events"
run gateway "http://127.0.0.1:$GATEWAY_PORT/api/events"
awk -v g="$(cat "$WORK/gateway.rps")" -v f="$(cat "$WORK/floor.rps")" -v n="$(cat "$WORK/nginx.rps")" \
  'BEGIN { printf "gateway / nginx = %.2f   floor / nginx = %.2f   gateway / floor = %.2f\n", g / n, f / n, g / f }'
