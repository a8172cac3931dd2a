#!/usr/bin/env bash
# Issue 5 end to end, through the real server and CLI:
#  1. `kvcomp analyze RUN --k-cos 0.9999 --v-cos 0.9999 --html --json` recommends a spec;
#  2. that spec, given to `kvcomp compress`, yields the same ratio, and the decoded tensors
#     meet the thresholds (checked independently with numpy);
#  3. the HTML report renders in real headless Chromium: charts drawn, script without errors,
#     and a screenshot kept as a test artifact.
# Usage: analyze_report_test.sh KVCOMP SERVER SHARED_KV ARTIFACT_DIR
set -euo pipefail
kvcomp=$1 server=$2 shared=$3 artifacts=$4
run="$shared/mmlu_fewshot_q1"
if [ ! -d "$run" ]; then echo "SKIP: $run is absent"; exit 0; fi
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$server" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --ready-file "$work/ready" --log-level warn &
server_pid=$!
for _ in $(seq 300); do [ -f "$work/ready" ] && break; sleep 0.1; done
addr=$(sed -n 's/^grpc=//p' "$work/ready")
[ -n "$addr" ] || { echo "FAIL: server did not start"; exit 1; }

"$kvcomp" analyze "$run" --k-cos 0.9999 --v-cos 0.9999 --html "$work/r.html" --json "$work/r.json" \
  --server "$addr" | tee "$work/table.txt"
grep -q "^Recommended: " "$work/table.txt" || { echo "FAIL: no recommendation printed"; exit 1; }
spec=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["recommendation"]["codec"])' "$work/r.json")
echo "recommended: $spec"
"$kvcomp" compress "$run" -o "$work/c.kvc" --codec "$spec" --server "$addr" > /dev/null
"$kvcomp" decompress "$work/c.kvc" -o "$work/back" --server "$addr" > /dev/null

/usr/bin/python3 - "$work/r.json" "$work/c.kvc" "$run" "$work/back" <<'PY'
import json, os, sys
import numpy as np
report, kvc, run, back = sys.argv[1:]
rec = json.load(open(report))["recommendation"]
raw = sum(os.path.getsize(os.path.join(run, f)) for f in os.listdir(run) if f.endswith(".f16"))
ratio = raw / os.path.getsize(kvc)
assert rec["found"], rec
assert abs(ratio - rec["ratio"]) < 1e-9, (ratio, rec["ratio"])
worst = 1.0
for f in sorted(os.listdir(run)):
    if not f.endswith(".f16"):
        continue
    x = np.fromfile(os.path.join(run, f), dtype="<f2").astype(np.float64)
    y = np.fromfile(os.path.join(back, f), dtype="<f2").astype(np.float64)
    cos = 1.0 if np.array_equal(x, y) else (x @ y) / np.sqrt((x @ x) * (y @ y))
    worst = min(worst, cos)
    assert cos >= 0.9999, (f, cos)
print(f"compress with the recommendation: KV {ratio:.4f}x (analyze said {rec['ratio']:.4f}x), "
      f"worst cosine {worst:.6f}")
PY

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --disable-dev-shm-usage --user-data-dir="$work/chrome" --window-size=1200,1900)
timeout 120 chromium "${flags[@]}" --virtual-time-budget=5000 --dump-dom "file://$work/r.html" \
  > "$work/dom.html" 2> "$work/chrome.log"
grep -q 'data-rendered="ok"' "$work/dom.html" || { echo "FAIL: report script did not finish"; exit 1; }
if grep -q 'data-error=' "$work/dom.html"; then
  echo "FAIL: script error: $(grep -o 'data-error="[^"]*"' "$work/dom.html")"; exit 1
fi
points_k=$(grep -o 'data-points-k="[0-9]*"' "$work/dom.html" | grep -o '[0-9]*')
bars=$(grep -o 'data-bars="[0-9]*"' "$work/dom.html" | grep -o '[0-9]*')
circles=$(grep -o '<circle' "$work/dom.html" | wc -l)
[ "$points_k" -ge 2 ] && [ "$bars" -eq 10 ] && [ "$circles" -ge 4 ] \
  || { echo "FAIL: chart elements missing (K points $points_k, bars $bars, circles $circles)"; exit 1; }
grep -q 'class="pt[^"]*recommended' "$work/dom.html" || { echo "FAIL: recommendation not highlighted"; exit 1; }
mkdir -p "$artifacts"
timeout 120 chromium "${flags[@]}" --virtual-time-budget=5000 \
  --screenshot="$artifacts/analyze_report.png" "file://$work/r.html" 2>> "$work/chrome.log"
[ -s "$artifacts/analyze_report.png" ] || { echo "FAIL: no screenshot"; exit 1; }
cp "$work/r.html" "$artifacts/analyze_report.html"
echo "PASS: K points $points_k, layer bars $bars, circles $circles; screenshot $artifacts/analyze_report.png"
