#!/usr/bin/env bash
# Idle sockets cannot stop the edge: opens 20,000 connections to the gateway that never send a
# byte (from 127.0.0.1, in two processes of 10,000 for the file limit), then times `GET /health`
# from another address (127.0.0.2) ten times, and counts the launcher's open descriptors after
# 2 s and after 12 s. The launcher runs with the open-file limit FILE_LIMIT (default 4096, a
# common default; the launcher may raise its soft limit only that far). Once per launcher
# binary given (default: this build's), one after another in one run.
# Usage: cargo build --release -p holdfast && bash bench/idle.sh [holdfast ...]
set -u
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- target/release/holdfast
for binary in "$@"; do
  data=$(mktemp -d)
  (
    ulimit -n "${FILE_LIMIT:-4096}"
    exec env -i PATH="$PATH" HOME="$HOME" DATA_DIR="$data" RUST_LOG=error DEMO_SEED=false \
      "$binary" >"$data.log" 2>&1
  ) &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fsS localhost:8080/ready >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "== $binary"
  GATEWAY_PID=$pid timeout 120 python3 - <<'PY'
import os, socket, subprocess, sys, time

def descriptors():
    try:
        return len(os.listdir(f"/proc/{os.environ['GATEWAY_PID']}/fd"))
    except OSError:
        return "gone"

HOLDER = r"""
import socket, sys, time
sockets = []
for _ in range(10_000):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", 8080))
    except BlockingIOError:
        pass
    except OSError:
        break
    sockets.append(s)
print(len(sockets), flush=True)
def open_count():
    alive = 0
    for s in sockets:
        try:
            if s.recv(1) == b"":
                continue
        except BlockingIOError:
            alive += 1
        except OSError:
            continue
    return alive
time.sleep(2)
print(open_count(), flush=True)
time.sleep(10)
print(open_count(), flush=True)
"""
holders = [subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
           for _ in range(2)]
opened = sum(int(h.stdout.readline()) for h in holders)
print(f"idle sockets opened: {opened}")

def health():
    s = socket.create_connection(("127.0.0.1", 8080), timeout=5, source_address=("127.0.0.2", 0))
    t = time.perf_counter()
    s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    answer = s.recv(64)
    s.close()
    return (time.perf_counter() - t) * 1000, answer[:12]

times = []
for _ in range(10):
    try:
        ms, head = health()
        times.append(ms if head.startswith(b"HTTP/1.1 200") else float("inf"))
    except OSError as error:
        times.append(float("inf"))
    time.sleep(0.1)
answered = [t for t in times if t != float("inf")]
print(f"/health from another address: {len(answered)}/10 answered"
      + (f", slowest {max(answered):.1f} ms" if answered else ""))
for h in holders:
    h.stdout.readline()
print(f"launcher's open descriptors after 2 s: {descriptors()}")
for h in holders:
    h.stdout.readline()
print(f"launcher's open descriptors after 12 s: {descriptors()}")
PY
  echo "launcher still running: $(kill -0 "$pid" 2>/dev/null && echo yes || echo no)"
  grep -c "Too many open files" "$data.log" | sed 's/^/"Too many open files" log lines: /'
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -rf "$data" "$data.log"
done
