#!/usr/bin/env bash
# The sqlite3 command-line shell, whose `.expert` mode `botpulse audit` uses for index
# advice. Nothing to start: `start` prints where the shell is.
#   sqlite3.sh install | start DIR | stop DIR      (see scripts/services/README.md)
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
case "${1:-}" in
  install)
    command -v sqlite3 >/dev/null && exit 0
    command -v apt-get >/dev/null || { echo "sqlite3.sh: needs apt-get (Debian) to install" >&2; exit 1; }
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq sqlite3 >/dev/null 2> >(grep -v "^debconf: delaying" >&2)
    command -v sqlite3 >/dev/null
    ;;
  start)
    echo "BOTPULSE_TEST_SQLITE3_SHELL=$(command -v sqlite3)"
    ;;
  stop) ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
