#!/usr/bin/env bash
# make deploy-check: every deployment artefact under deploy/ checked by the real tool
# (docs/OPERATIONS.md). Usage: scripts/deploy-check.sh BUILD_DIR (with kvcomp-server and
# kvcomp built; the Makefile target builds them). Each check prints its time; the first
# failure stops the run with a "deploy-check: FAILED: ..." line.
#   compose      docker-compose config parses deploy/compose; its bind mounts exist
#   k8s          kubectl kustomize deploy/k8s; kubernetes-models validate() and tsc on each object
#   promtool     check config, check rules, test rules (a test per alert)
#   grafana      tsc --noEmit --strict of the dashboard against @grafana/schema's Dashboard
#   live         a kvcomp-server on loopback: the dashboard's and alerts' metrics in its scrape;
#                Debian's Prometheus with the compose scrape config scrapes it (up == 1)
#   scale-out    3 servers, kvcomp load round_robin over ipv4:P1,P2,P3: each gets 25-42%
#   image        private dockerd, debootstrap base (cached), docker build, run --network host,
#                health + compress through it, SIGTERM -> exit 0
# DEPLOY_CHECKS="compose k8s ..." runs a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
KV=${KVCOMP_KV:-../shared/kv}
CHECKS=${DEPLOY_CHECKS:-compose k8s promtool grafana live scale-out image}
SERVER_BIN=$BUILD/server/kvcomp-server
CLI_BIN=$BUILD/client/kvcomp
IMAGE=kvcomp:dev
source deploy/checks/lib.sh
source deploy/checks/dockerd.sh
source deploy/checks/image-deps.sh

work=$(mktemp -d /tmp/kvcomp-deploy-check.XXXXXX)
PROM_PID=
CONTAINER=
cleanup() {
  local rc=$?
  set +e
  stop_servers 2> /dev/null
  if [ -n "$PROM_PID" ]; then kill "$PROM_PID" 2> /dev/null; wait "$PROM_PID" 2> /dev/null; fi
  [ -n "$CONTAINER" ] && docker rm -f "$CONTAINER" > /dev/null 2>&1
  dockerd_stop
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TIMES=()
timed() {
  local name=$1 t0=$SECONDS
  shift
  echo "== deploy-check: $name"
  "$@"
  TIMES+=("$(printf '%-10s %4d s' "$name" $((SECONDS - t0)))")
  echo "== deploy-check: $name OK ($((SECONDS - t0)) s)"
}

check_compose() {
  local f=deploy/compose/docker-compose.yml
  docker-compose -f "$f" config > "$work/compose.yml" || fail "docker-compose config rejects $f"
  "$PY" - "$work/compose.yml" << 'PYEOF' || fail "$f mounts a file that does not exist"
import os, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
for name, svc in c["services"].items():
    for v in svc.get("volumes", []):
        src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
        if src.startswith("/") and not os.path.exists(src):
            sys.exit(f"service {name}: {src} does not exist")
print(f"compose: {len(c['services'])} services: {', '.join(sorted(c['services']))}")
PYEOF
}

check_k8s() {
  kubectl kustomize deploy/k8s > "$work/k8s.yaml" || fail "kubectl kustomize deploy/k8s"
  node deploy/checks/k8s-validate.js < "$work/k8s.yaml"
  deploy/checks/node_modules/.bin/tsc -p deploy/checks/tsconfig.k8s.json ||
    fail "deploy/k8s: a field unknown to kubernetes-models' types (tsc above)"
}

check_promtool() {
  local d=deploy/compose/prometheus
  promtool check config "$d/prometheus.yml" || fail "promtool check config $d/prometheus.yml"
  promtool check rules "$d/alerts.yml" || fail "promtool check rules $d/alerts.yml"
  (cd "$d" && promtool test rules alerts_test.yml) || fail "promtool test rules $d/alerts_test.yml"
}

check_grafana() {
  deploy/checks/grafana-check.sh
}

check_live() {
  [ -x "$SERVER_BIN" ] && [ -x "$CLI_BIN" ] || fail "no $SERVER_BIN / $CLI_BIN: build them first"
  start_server "$SERVER_BIN" "$work" live
  local grpc=$SERVER_GRPC metrics=$SERVER_METRICS
  # Traffic, so every labelled family exists: a lossless and a lossy compress, and one error.
  "$CLI_BIN" compress "$KV/story_prose" -o "$work/lossless.kvc" --codec lossless --dtype fp16 \
    --server "$grpc" > /dev/null || fail "kvcomp compress (lossless) against $grpc"
  "$CLI_BIN" compress "$KV/story_prose" -o "$work/lossy.kvc" \
    --codec 'quant(bits=4,group=tensor)+zstd(1)' --dtype fp16 --server "$grpc" > /dev/null ||
    fail "kvcomp compress (lossy) against $grpc"
  deploy/checks/dashboard-metrics.py deploy/compose/grafana/dashboards/kvcomp.json \
    deploy/compose/prometheus/alerts.yml "http://$metrics/metrics"
  deploy/checks/prometheus-live.sh "$metrics" "$work/prometheus"
}

check_scale_out() {
  local i targets=() urls=()
  for i in 1 2 3; do
    start_server "$SERVER_BIN" "$work" "replica$i"
    targets+=("${SERVER_GRPC}")
    urls+=("http://$SERVER_METRICS/metrics")
  done
  local target="ipv4:$(IFS=,; echo "${targets[*]}")"
  "$CLI_BIN" load --server "$target" --lb-policy round_robin -n 300 -c 4 \
    --data "$KV/story_prose" --codec lossless > "$work/load.txt" 2>&1 || {
    cat "$work/load.txt" >&2
    fail "kvcomp load over $target"
  }
  "$PY" - 300 "${urls[@]}" << 'PYEOF' || fail "round_robin did not spread 300 calls over 3 servers (25-42% each)"
import re, sys, urllib.request
total, urls = int(sys.argv[1]), sys.argv[2:]
counts = []
for u in urls:
    text = urllib.request.urlopen(u, timeout=10).read().decode()
    n = sum(float(m.group(1)) for m in re.finditer(
        r'^grpc_server_handled_total\{[^}]*grpc_method="Compress"[^}]*\} (\S+)$', text, re.M))
    counts.append(int(n))
shares = [c / total for c in counts]
print(f"scale-out: Compress calls per server {counts} of {total}: "
      + " / ".join(f"{s:.0%}" for s in shares))
if sum(counts) != total:
    sys.exit(f"the servers handled {sum(counts)} calls, the client sent {total}")
if not all(0.25 <= s <= 0.42 for s in shares):
    sys.exit("a server got less than 25% or more than 42%")
PYEOF
  stop_servers || fail "a scale-out server did not exit 0 on SIGTERM"
}

check_image() {
  dockerd_start
  image_deps
  local t0=$SECONDS
  # runc on a loaded machine sometimes fails to start a step's container ("OCI runtime create
  # failed"); one retry resumes from the cached layers. Any other failure is final.
  if ! docker build "${IMAGE_BUILD_ARGS[@]}" -t "$IMAGE" . > "$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    grep -q "OCI runtime create failed" "$work/build.log" || fail "docker build (log above)"
    echo "image: WARNING: runc could not start a build container; retrying the build once" >&2
    docker build "${IMAGE_BUILD_ARGS[@]}" -t "$IMAGE" . > "$work/build.log" 2>&1 || {
      tail -40 "$work/build.log" >&2
      fail "docker build (log above)"
    }
  fi
  grep -E "tests passed|Total Test time" "$work/build.log" || true
  docker image prune -f > /dev/null
  echo "image: built in $((SECONDS - t0)) s; $(docker image inspect -f '{{.Size}}' "$IMAGE" |
    awk '{printf "%.0f MB", $1/1e6}'); user $(docker image inspect -f '{{.Config.User}}' "$IMAGE")"
  [ "$(docker image inspect -f '{{.Config.User}}' "$IMAGE")" = 10001:10001 ] || fail "image does not run as 10001"

  local port mport
  port=$(free_port)
  mport=$(free_port)
  CONTAINER=kvcomp-deploy-check-$$
  # Host network only (dockerd has no bridge); read-only rootfs as in deploy/k8s.
  docker run -d --name "$CONTAINER" --network host --read-only --health-interval 2s \
    -e "KVCOMP_LISTEN=127.0.0.1:$port" -e "KVCOMP_METRICS=127.0.0.1:$mport" "$IMAGE" > /dev/null ||
    fail "docker run $IMAGE"
  local i status=
  for i in $(seq 1 30); do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$CONTAINER")
    [ "$status" = healthy ] && break
    [ "$(docker inspect -f '{{.State.Running}}' "$CONTAINER")" = true ] || break
    sleep 1
  done
  [ "$status" = healthy ] || { docker logs "$CONTAINER" >&2; fail "container not healthy (HEALTHCHECK: $status)"; }
  echo "image: HEALTHCHECK (kvcomp health in the container) says $status"
  docker run --rm --network host --entrypoint kvcomp "$IMAGE" health --server "127.0.0.1:$port" ||
    fail "kvcomp health through the container"
  mkdir -p "$work/out" && chmod 777 "$work/out"
  docker run --rm --network host --read-only -v "$(realpath "$KV"):/kv:ro" -v "$work/out:/out" \
    --entrypoint kvcomp "$IMAGE" compress /kv/story_prose -o /out/story.kvc --codec lossless \
    --dtype fp16 --server "127.0.0.1:$port" || fail "kvcomp compress through the container"
  "$CLI_BIN" info "$work/out/story.kvc" > /dev/null || fail "the container's .kvc does not parse"
  # Label order is the exporter's (alphabetical), so match each label on its own.
  curl -sf "http://127.0.0.1:$mport/metrics" | grep '^grpc_server_handled_total{' |
    grep 'grpc_method="Compress"' | grep 'grpc_code="OK"' | grep -q '} [1-9]' ||
    fail "the container's /metrics has no OK Compress"
  # docker stop: SIGTERM, then SIGKILL after 30 s (exit 137). 0 means it drained and exited.
  docker stop -t 30 "$CONTAINER" > /dev/null
  local code
  code=$(docker inspect -f '{{.State.ExitCode}}' "$CONTAINER")
  docker logs "$CONTAINER" 2>&1 | tail -3
  [ "$code" = 0 ] || fail "container exited $code after SIGTERM, not 0"
  echo "image: SIGTERM -> exit 0"
  docker rm "$CONTAINER" > /dev/null
  CONTAINER=
  dockerd_stop
}

t_all=$SECONDS
for c in $CHECKS; do
  case $c in
    compose) timed compose check_compose ;;
    k8s) timed k8s check_k8s ;;
    promtool) timed promtool check_promtool ;;
    grafana) timed grafana check_grafana ;;
    live) timed live check_live ;;
    scale-out) timed scale-out check_scale_out ;;
    image) timed image check_image ;;
    *) fail "unknown check '$c'" ;;
  esac
done
echo "deploy-check: all passed in $((SECONDS - t_all)) s"
printf '  %s\n' "${TIMES[@]}"
