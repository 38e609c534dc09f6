#!/usr/bin/env bash
# Redis for the test suite, on 127.0.0.1:16379, no persistence, pid and log in DIR.
#   redis.sh install | start DIR | stop DIR      (see scripts/services/README.md)
# Prints BOTPULSE_TEST_REDIS_URL=redis://127.0.0.1:16379/0
set -euo pipefail
PORT="${BOTPULSE_TEST_REDIS_PORT:-16379}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

case "${1:-}" in
  install)
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null && exit 0
    command -v apt-get >/dev/null || { echo "redis.sh: needs apt-get (Debian) to install" >&2; exit 1; }
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null 2> >(grep -v "^debconf: delaying" >&2)
    # The package may start a system instance on 6379; the suite uses its own.
    $SUDO service redis-server stop >/dev/null 2>&1 || true
    command -v redis-server >/dev/null
    ;;
  start)
    DIR="${2:?usage: redis.sh start DIR}"
    mkdir -p "$DIR"
    if redis-cli -h 127.0.0.1 -p "$PORT" ping >/dev/null 2>&1; then
      echo "redis.sh: port $PORT is already in use" >&2; exit 1
    fi
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
      --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR" >/dev/null
    for _ in $(seq 1 100); do
      redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG && break
      sleep 0.1
    done
    redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG \
      || { echo "redis.sh: redis-server did not answer" >&2; tail -20 "$DIR/redis.log" >&2; exit 1; }
    echo "BOTPULSE_TEST_REDIS_URL=redis://127.0.0.1:$PORT/0"
    ;;
  stop)
    DIR="${2:?usage: redis.sh stop DIR}"
    if [ -s "$DIR/redis.pid" ]; then
      pid="$(cat "$DIR/redis.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    ;;
  *)
    echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2
    ;;
esac
