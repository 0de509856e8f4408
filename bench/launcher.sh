# Sourced by the bench scripts: start the release launcher on :8080 with a fresh data folder,
# and stop it. `start_launcher BINARY [NAME=value ...]` sets LAUNCHER_PID and LAUNCHER_DATA and
# returns once the gateway is ready; `stop_launcher` ends it and removes its data.
# `each_launcher COMMAND BINARY...` runs COMMAND against each launcher binary in turn (rate
# limits off; Redis when REDIS_URL is exported), ROUNDS times (default 2), in one run.
start_launcher() {
  local binary=$1
  shift
  LAUNCHER_DATA=$(mktemp -d)
  env -i PATH="$PATH" HOME="$HOME" DATA_DIR="$LAUNCHER_DATA" DEMO_SEED=false "$@" \
    "$binary" >"$LAUNCHER_DATA.log" 2>&1 &
  LAUNCHER_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS localhost:8080/ready >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the launcher did not become ready" >&2
  return 1
}

stop_launcher() {
  kill "$LAUNCHER_PID" 2>/dev/null
  wait "$LAUNCHER_PID" 2>/dev/null
  rm -rf "$LAUNCHER_DATA" "$LAUNCHER_DATA.log"
}

each_launcher() {
  local command=$1
  shift
  [ $# -gt 0 ] || set -- target/release/holdfast
  for round in $(seq 1 "${ROUNDS:-2}"); do
    for binary in "$@"; do
      start_launcher "$binary" RUST_LOG=error RATE_LIMIT_DISABLED=true \
        ${REDIS_URL:+REDIS_URL=$REDIS_URL}
      echo "== round $round: $binary${REDIS_URL:+ (Redis)}"
      "$command"
      stop_launcher
    done
  done
}
