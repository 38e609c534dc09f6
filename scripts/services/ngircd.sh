#!/usr/bin/env bash
# ngIRCd for the test suite, on 127.0.0.1:16667, no flood penalty, pid, config and log in DIR.
#   ngircd.sh install | start DIR | stop DIR      (see scripts/services/README.md)
# Prints BOTPULSE_TEST_IRC=127.0.0.1:16667
set -euo pipefail
PORT="${BOTPULSE_TEST_IRC_PORT:-16667}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

case "${1:-}" in
  install)
    command -v ngircd >/dev/null && exit 0
    [ -x /usr/sbin/ngircd ] && exit 0
    command -v apt-get >/dev/null || { echo "ngircd.sh: needs apt-get (Debian) to install" >&2; exit 1; }
    $SUDO apt-get update -qq
    # Debian's policy-rc.d keeps the package's own instance from starting in containers;
    # stop it anyway if it did: the suite runs its own on a test port.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ngircd >/dev/null 2> >(grep -v "^debconf: delaying" >&2)
    $SUDO service ngircd stop >/dev/null 2>&1 || true
    [ -x /usr/sbin/ngircd ] || command -v ngircd >/dev/null
    ;;
  start)
    DIR="${2:?usage: ngircd.sh start DIR}"
    NGIRCD="$(command -v ngircd || echo /usr/sbin/ngircd)"
    mkdir -p "$DIR/run"
    chmod 777 "$DIR/run"   # as root ngIRCd runs as nobody, which writes the PID file
    if port_open; then
      echo "ngircd.sh: port $PORT is already in use" >&2; exit 1
    fi
    cat > "$DIR/ngircd.conf" <<CONF
[Global]
  Name = irc.test.local
  Info = botpulse test server
  Listen = 127.0.0.1
  Ports = $PORT
  MotdPhrase = "botpulse test"
  PidFile = $DIR/run/ngircd.pid
[Limits]
  MaxConnectionsIP = 0
  MaxPenaltyTime = 0
[Options]
  PAM = no
  Ident = no
  DNS = no
CONF
    chmod 644 "$DIR/ngircd.conf"
    ( exec "$NGIRCD" -n -f "$DIR/ngircd.conf" >"$DIR/ngircd.log" 2>&1 ) &
    echo $! > "$DIR/ngircd.pid"
    for _ in $(seq 1 100); do port_open && break; sleep 0.1; done
    port_open || { echo "ngircd.sh: ngIRCd did not listen on $PORT" >&2; tail -20 "$DIR/ngircd.log" >&2; exit 1; }
    echo "BOTPULSE_TEST_IRC=127.0.0.1:$PORT"
    ;;
  stop)
    DIR="${2:?usage: ngircd.sh stop DIR}"
    if [ -s "$DIR/ngircd.pid" ]; then
      pid="$(cat "$DIR/ngircd.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    ;;
  *)
    echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2
    ;;
esac
