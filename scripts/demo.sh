#!/usr/bin/env bash
# make demo: start a real kvcomp-server on 127.0.0.1 (ephemeral port), compress a KV cache
# through it with the kvcomp CLI (per-layer K/V table and weighted totals), decompress it,
# check the result is bit-exact against the originals; then the same cache with a lossy
# policy (its measured error per tensor), the recommendation for the seed's strict
# thresholds, and an HTML report; then one engine round trip (llama.cpp's saved state through
# the server and back into a fresh context, engine/demo.mjs); then stop the server.
#
#   scripts/demo.sh BUILD_DIR          (BUILD_DIR defaults to ./build)
#   KVCOMP_DEMO_CODEC='zstd(9)' scripts/demo.sh build
#
# The cache is ../shared/kv/story_prose (a real dump) when it exists; otherwise a generated
# Llama-shaped cache, clearly labelled as synthetic (KVCOMP_SHARED_KV=/nonexistent forces it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
server_bin="$build/server/kvcomp-server"
cli="$build/client/kvcomp"
codec="${KVCOMP_DEMO_CODEC:-lossless}"
# The seed's "mixed": first two layers lossless, the rest within its strict thresholds.
lossy_codec="${KVCOMP_DEMO_LOSSY_CODEC:-mixed(2,lossless,bounded(cos=0.9999,rel_mae=0.01))}"
report_dir="$build/demo"
for bin in "$server_bin" "$cli"; do
  [ -x "$bin" ] || { echo "demo: $bin is missing; run 'make build' first" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kvcomp-demo.XXXXXX")
server_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The server, on loopback only, port 0: it writes the ports it bound to the ready file.
"$server_bin" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --ready-file "$work/ready" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  [ -s "$work/ready" ] && grep -q '^grpc=' "$work/ready" && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "demo: kvcomp-server exited before it was ready:" >&2
    cat "$work/server.log" >&2
    server_pid=""
    exit 1
  fi
  sleep 0.1
done
grpc=$(sed -n 's/^grpc=//p' "$work/ready")
metrics=$(sed -n 's/^metrics=//p' "$work/ready")
[ -n "$grpc" ] || { echo "demo: kvcomp-server did not become ready" >&2; exit 1; }
echo "kvcomp-server (pid $server_pid) listening on $grpc, metrics on http://$metrics/metrics"

# 2. The input: the real dump, or a generated cache when ../shared is absent.
shared="${KVCOMP_SHARED_KV:-$root/../shared/kv}/story_prose"
if [ -f "$shared/manifest.json" ]; then
  input="$shared"
  echo "input: $(cd "$shared" && pwd) (real KV dump, FP16 files)"
else
  input="$work/generated_llama"
  echo "input: ../shared is absent; using a GENERATED synthetic Llama-shaped cache (not real data)"
  "$cli" generate -o "$input" --layers 8 --kv-heads 8 --head-dim 128 --tokens 512 --dtype fp16
fi
echo

# 3. Compress through the server: the table, then the weighted K, V and KV totals.
"$cli" compress "$input" -o "$work/cache.kvc" --codec "$codec" --server "$grpc" --dtype fp16
echo

# 4. Decompress into a fresh folder and compare every file with the original, byte for byte.
"$cli" decompress "$work/cache.kvc" -o "$work/decompressed" --server "$grpc"
checked=0
for f in "$work/decompressed"/*; do
  name=$(basename "$f")
  [ "$name" = manifest.json ] && continue
  if ! cmp -s "$f" "$input/$name"; then
    echo "bit-exact: NO ($name differs from the original)" >&2
    exit 1
  fi
  checked=$((checked + 1))
done
expected=$(find "$input" -maxdepth 1 -name '*.f16' | wc -l)
if [ "$checked" -eq 0 ] || [ "$checked" -ne "$expected" ]; then
  echo "bit-exact: NO (compared $checked files, expected $expected)" >&2
  exit 1
fi
echo "compared $checked files with cmp against the originals"
echo "bit-exact: yes"

echo

# 5. A lossy policy beside it: every lossy row carries the error measured on its decoded tensor.
echo "The same cache with a lossy policy: $lossy_codec"
"$cli" compress "$input" -o "$work/lossy.kvc" --codec "$lossy_codec" --server "$grpc" --dtype fp16
echo

# 6. The study in one call: what passes the seed's strict thresholds (cosine >= 0.9999 on
#    every tensor, K MAE <= 0.01, V MAE <= 0.002), and the HTML report.
mkdir -p "$report_dir"
echo "Analyze, with the seed's strict thresholds:"
"$cli" analyze "$input" --dtype fp16 --server "$grpc" --k-cos 0.9999 --v-cos 0.9999 \
  --k-mae 0.01 --v-mae 0.002 --html "$report_dir/analyze_report.html" \
  --json "$report_dir/analyze_report.json"
echo

# 7. A real engine: llama.cpp saves a sequence state, the state goes through this server and back,
#    and a fresh context continues from it exactly as the uninterrupted run does.
echo "An engine round trip (llama.cpp's sequence state through kvcomp, docs/ENGINES.md):"
node "$root/engine/demo.mjs" --server "$grpc" --cli "$cli" --dir "$work/engine"
echo

# 8. Stop the server: SIGTERM to its PID, then wait for the graceful shutdown.
kill -TERM "$server_pid"
if wait "$server_pid"; then
  echo "kvcomp-server stopped"
else
  echo "demo: kvcomp-server exited with status $? on SIGTERM" >&2
  server_pid=""
  exit 1
fi
server_pid=""
