# Sourced by scripts/deploy-check.sh: a private dockerd for the image check.
#   dockerd_start   starts it (own data-root, exec-root and socket; no bridge, no iptables,
#                   no NAT: containers run with --network host only) and exports DOCKER_HOST
#   dockerd_stop    stops it by PID and unmounts what it leaves under the exec-root
# The data-root persists under $KVCOMP_DOCKER_ROOT so layers (the apt ones above all) are
# cached between runs on one machine.
KVCOMP_DOCKER_ROOT=${KVCOMP_DOCKER_ROOT:-/var/tmp/kvcomp-docker}
DOCKERD_PID=

dockerd_start() {
  local root=$KVCOMP_DOCKER_ROOT
  mkdir -p "$root/data" "$root/exec"
  command -v dockerd > /dev/null || { echo "deploy-check: FAILED: no dockerd (run scripts/install-deploy-deps.sh)" >&2; return 1; }
  # Private containerd state lives under the exec-root too (dockerd starts its own).
  dockerd --data-root "$root/data" --exec-root "$root/exec" --pidfile "$root/dockerd.pid" \
    --host "unix://$root/docker.sock" --bridge=none --iptables=false --ip-forward=false \
    --ip-masq=false --ip6tables=false --userland-proxy=false > "$root/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  export DOCKER_HOST="unix://$root/docker.sock"
  local i
  for i in $(seq 1 60); do
    docker version > /dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2> /dev/null || break
    sleep 0.5
  done
  tail -20 "$root/dockerd.log" >&2
  echo "deploy-check: FAILED: dockerd did not come up (log: $root/dockerd.log)" >&2
  return 1
}

dockerd_stop() {
  local root=$KVCOMP_DOCKER_ROOT
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2> /dev/null; then
    kill "$DOCKERD_PID"
    local i
    for i in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2> /dev/null || break; sleep 0.5; done
    kill -0 "$DOCKERD_PID" 2> /dev/null && kill -9 "$DOCKERD_PID"
    wait "$DOCKERD_PID" 2> /dev/null || true
  fi
  DOCKERD_PID=
  # dockerd leaves its network namespace mounted; unmount everything under the exec-root.
  local m
  for m in $(awk -v r="$root/exec" '$5 ~ "^" r {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2> /dev/null || umount -l "$m" 2> /dev/null || true
  done
}
