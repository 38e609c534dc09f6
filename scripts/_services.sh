# Sourced by scripts/test: install and start every server in scripts/services/ on
# 127.0.0.1, export what they print (KEY=VALUE), and stop them all on exit.
# BOTPULSE_NO_SERVICES=1 skips this (tests needing a server then skip, or fail under CI).
SERVICES_DIR="$(mktemp -d /tmp/botpulse-services.XXXXXX)"
chmod 755 "$SERVICES_DIR"
_started_services=()
_stop_services() {
  for svc in "${_started_services[@]}"; do
    "$ROOT/scripts/services/$svc.sh" stop "$SERVICES_DIR/$svc" >/dev/null 2>&1 || true
  done
  rm -rf "$SERVICES_DIR"
}
trap _stop_services EXIT
if [ "${BOTPULSE_NO_SERVICES:-}" != "1" ]; then
  for script in "$ROOT"/scripts/services/*.sh; do
    [ -e "$script" ] || continue
    svc="$(basename "$script" .sh)"
    echo "== service $svc"
    if ! "$script" install; then
      echo "botpulse: could not install $svc" >&2; [ "${CI:-}" = "true" ] && exit 1; continue
    fi
    mkdir -p "$SERVICES_DIR/$svc"; chmod 777 "$SERVICES_DIR/$svc"
    if out="$("$script" start "$SERVICES_DIR/$svc")"; then
      _started_services+=("$svc")
      while IFS= read -r line; do
        case "$line" in *=*) export "$line"; echo "   $line";; esac
      done <<< "$out"
    else
      echo "botpulse: could not start $svc" >&2; [ "${CI:-}" = "true" ] && exit 1
    fi
  done
fi
