#!/usr/bin/env bash
# Runs Debian's Prometheus on 127.0.0.1 (a free port, its data in DIR) with deploy/compose's
# scrape config and alert rules, its target rewritten from kvcomp:9464 to METRICS_ADDR, and
# queries its HTTP API until the kvcomp job is up == 1 and kvcomp's metrics are stored.
# Usage: prometheus-live.sh METRICS_ADDR DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/checks/lib.sh
metrics=$1 dir=$2
mkdir -p "$dir/data"
cp deploy/compose/prometheus/alerts.yml "$dir/"
"$PY" - deploy/compose/prometheus/prometheus.yml "$metrics" > "$dir/prometheus.yml" << 'PYEOF'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
n = 0
for job in c["scrape_configs"]:
    for sc in job.get("static_configs", []):
        new = [sys.argv[2] if t == "kvcomp:9464" else t for t in sc["targets"]]
        n += new != sc["targets"]
        sc["targets"] = new
if n != 1:
    sys.exit("prometheus-live: the compose config has no kvcomp:9464 target to rewrite")
print(yaml.safe_dump(c, sort_keys=False))
PYEOF
promtool check config "$dir/prometheus.yml" > /dev/null || fail "the loopback Prometheus config"
port=$(free_port)
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address="127.0.0.1:$port" > "$dir/prometheus.log" 2>&1 &
pid=$!
trap 'kill $pid 2> /dev/null; wait $pid 2> /dev/null || true' EXIT
api="http://127.0.0.1:$port/api/v1"
query() { curl -sf --get "$api/query" --data-urlencode "query=$1"; }
up=
for i in $(seq 1 60); do
  kill -0 $pid 2> /dev/null || { tail -20 "$dir/prometheus.log" >&2; fail "prometheus exited"; }
  up=$(query 'up{job="kvcomp"}' 2> /dev/null | "$PY" -c \
    'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2> /dev/null || true)
  [ "$up" = 1 ] && break
  sleep 0.5
done
[ "$up" = 1 ] || { tail -20 "$dir/prometheus.log" >&2; fail "Prometheus never saw up{job=\"kvcomp\"} == 1 at $metrics (last: '$up')"; }
echo "prometheus: scraping $metrics: up{job=\"kvcomp\"} == 1 after $((i / 2)) s"
for q in 'sum(grpc_server_handled_total{grpc_service="kvcomp.v1.KVCompressor",grpc_method="Compress",grpc_code="OK"})' \
  'sum(kvcomp_codec_bytes_in_total)' 'count(kvcomp_codec_error_cosine_bucket)'; do
  v=$(query "$q" | "$PY" -c \
    'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")')
  [ -n "$v" ] && [ "$v" != 0 ] || fail "Prometheus has no value for $q"
  echo "prometheus: $q = $v"
done
# The rules are evaluated every 15 s; health is "unknown" until the first evaluation.
for i in $(seq 1 50); do
  rules=$(curl -sf "$api/rules" | "$PY" -c \
    'import json,sys; g=json.load(sys.stdin)["data"]["groups"]; print(" ".join(r["name"] + ":" + r["health"] for x in g for r in x["rules"]))' 2> /dev/null || true)
  [ "$(echo "$rules" | grep -o ':ok' | wc -l)" = 3 ] && break
  sleep 0.5
done
echo "prometheus: rules: $rules"
[ "$(echo "$rules" | grep -o ':ok' | wc -l)" = 3 ] || fail "Prometheus did not load and evaluate the 3 alert rules ok"
