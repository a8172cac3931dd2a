# Sourced by scripts/deploy-check.sh and deploy/checks/*.sh: shared helpers.
PY=/usr/bin/python3

fail() {
  echo "deploy-check: FAILED: $*" >&2
  exit 1
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server BIN DIR NAME [args...]: kvcomp-server on loopback (any free ports), its log in
# DIR/NAME.log; sets SERVER_PID, SERVER_GRPC, SERVER_METRICS. Appends the PID to SERVER_PIDS.
SERVER_PIDS=()
start_server() {
  local bin=$1 dir=$2 name=$3
  shift 3
  rm -f "$dir/$name.ready"
  "$bin" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --ready-file "$dir/$name.ready" "$@" \
    > "$dir/$name.log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  local i
  for i in $(seq 1 100); do
    [ -s "$dir/$name.ready" ] && grep -q '^metrics=' "$dir/$name.ready" && break
    kill -0 "$SERVER_PID" 2> /dev/null || { cat "$dir/$name.log" >&2; fail "$name: kvcomp-server exited at startup"; }
    sleep 0.1
  done
  SERVER_GRPC=$(sed -n 's/^grpc=//p' "$dir/$name.ready")
  SERVER_METRICS=$(sed -n 's/^metrics=//p' "$dir/$name.ready")
  [ -n "$SERVER_GRPC" ] && [ -n "$SERVER_METRICS" ] || fail "$name: no ready file after 10 s"
}

# Stops every server start_server started, by PID; each must exit 0 (drained).
stop_servers() {
  local pid rc=0
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2> /dev/null || continue
    wait "$pid" || rc=$?
  done
  SERVER_PIDS=()
  return $rc
}
