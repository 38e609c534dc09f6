#!/usr/bin/env bash
# PostgreSQL 15 (+ hypopg) for the test suite, on 127.0.0.1:15432 with its data in DIR.
#   postgres.sh install | start DIR | stop DIR      (see scripts/services/README.md)
#   postgres.sh restart DIR     stop and start again with the same data (for restart tests)
# Prints BOTPULSE_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:15432/botpulse_test
set -euo pipefail
PORT="${BOTPULSE_TEST_POSTGRES_PORT:-15432}"
DB=botpulse_test

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/postgres" ] && { echo "$dir"; return 0; }
  done
  return 1
}

have_hypopg() {
  local bindir sharedir
  bindir="$(pg_bindir)" || return 1
  sharedir="$("$bindir/pg_config" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)"
  [ -e "$sharedir/extension/hypopg.control" ]
}

# Run a command as the unprivileged `postgres` user (initdb and postgres refuse root).
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  elif [ "$(id -un)" = postgres ]; then
    "$@"
  else
    sudo -u postgres -- "$@"
  fi
}

case "${1:-}" in
  install)
    if pg_bindir >/dev/null && have_hypopg; then exit 0; fi
    command -v apt-get >/dev/null || { echo "postgres.sh: needs apt-get (Debian) to install" >&2; exit 1; }
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql postgresql-15-hypopg >/dev/null 2> >(grep -v "^debconf: delaying" >&2)
    # Debian's package starts a cluster on 5432; the suite uses its own, so stop that one.
    if command -v pg_ctlcluster >/dev/null; then $SUDO pg_ctlcluster 15 main stop >/dev/null 2>&1 || true; fi
    pg_bindir >/dev/null && have_hypopg
    ;;
  start)
    DIR="${2:?usage: postgres.sh start DIR}"
    BIN="$(pg_bindir)" || { echo "postgres.sh: PostgreSQL is not installed" >&2; exit 1; }
    mkdir -p "$DIR"
    chown postgres: "$DIR" 2>/dev/null || true
    chmod 700 "$DIR"
    DATA="$DIR/data"
    if [ ! -s "$DATA/PG_VERSION" ]; then
      as_postgres "$BIN/initdb" -D "$DATA" -A trust -U postgres -E UTF8 --no-sync >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; exit 1; }
    fi
    # -w waits until it accepts connections.
    as_postgres "$BIN/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -w -t 60 start -o \
      "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      >/dev/null || { tail -20 "$DIR/postgres.log" >&2; exit 1; }
    PSQL=("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
    if [ "$("${PSQL[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
      "${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null
    fi
    if have_hypopg; then
      PGOPTIONS="-c client_min_messages=warning" "${PSQL[@]}" -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS hypopg" >/dev/null
    else
      echo "postgres.sh: hypopg is not installed (index verification tests will skip)" >&2
    fi
    echo "BOTPULSE_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PORT/$DB"
    ;;
  stop)
    DIR="${2:?usage: postgres.sh stop DIR}"
    BIN="$(pg_bindir)" || exit 0
    if [ -s "$DIR/data/postmaster.pid" ]; then
      as_postgres "$BIN/pg_ctl" -D "$DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
        || as_postgres "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    ;;
  restart)
    DIR="${2:?usage: postgres.sh restart DIR}"
    BIN="$(pg_bindir)" || { echo "postgres.sh: PostgreSQL is not installed" >&2; exit 1; }
    # pg_ctl restart reuses the options of the running server (postmaster.opts).
    as_postgres "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -m fast -w -t 60 restart >/dev/null \
      || { tail -20 "$DIR/postgres.log" >&2; exit 1; }
    ;;
  *)
    echo "usage: $0 install | start DIR | stop DIR | restart DIR" >&2; exit 2
    ;;
esac
