#!/usr/bin/env bash
# make bench-service: unary Compress through the real kvcomp-server on loopback, against the
# same codec in process, in one run.
#   scripts/bench-service.sh BUILD_DIR [CODEC] [SECONDS]
#
# 1. kvcomp bench: the codec in process on WORKERS threads (the server's worker count), on
#    1 MiB FP16 Llama-shaped tensors ([8 heads, 512 tokens, 128 dim]).
# 2. kvcomp load, closed loop, 2 x WORKERS callers: the peak RPS and GB/s through the RPC.
# 3. efficiency = RPC GB/s / in-process GB/s.
# 4. kvcomp load, open loop (Poisson) at 50% of the peak RPS: p50 / p99 latency.
# Prints a summary and writes every JSON report to $OUT (default BUILD_DIR/bench-service).
# The client and the server share the machine's cores: that is part of what is measured.
# CONNECTIONS (default 1): the TCP connections kvcomp load spreads its calls over, in both
# phases; one HTTP/2 connection carries one large message at a time.
set -euo pipefail
build="${1:-build}"
codec="${2:-lossless}"
seconds="${3:-10}"
cli="$build/client/kvcomp"
server="$build/server/kvcomp-server"
for b in "$cli" "$server"; do
  [[ -x "$b" ]] || { echo "bench-service.sh: $b is missing; build kvcomp and kvcomp-server" >&2; exit 1; }
done
workers="${WORKERS:-$(nproc)}"
connections="${CONNECTIONS:-1}"
# glibc returns every 1 MiB buffer to the kernel (mmap/munmap per message) unless told not
# to: on this workload that doubles the server's system time. Set GLIBC_TUNABLES= (empty) to
# measure the default allocator behaviour.
export GLIBC_TUNABLES="${GLIBC_TUNABLES-glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456}"
out="${OUT:-$build/bench-service}"
mkdir -p "$out"
data="llama:layers=4,heads=8,dim=128,tokens=512,dtype=fp16"  # 8 tensors of 1 MiB

ready="$out/ready"
rm -f "$ready"
"$server" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --ready-file "$ready" \
  --workers "$workers" --log-level warn &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -s "$ready" ]] && break; sleep 0.1; done
addr="$(sed -n 's/^grpc=//p' "$ready")"
[[ -n "$addr" ]] || { echo "bench-service.sh: the server did not become ready" >&2; exit 1; }

"$cli" bench "$data" --codec "$codec" --threads "$workers" --runs 7 --json > "$out/inprocess.json"
"$cli" load --server "$addr" --codec "$codec" --data "$data" --concurrency $((2 * workers)) \
  --connections "$connections" --duration "$seconds" --json > "$out/peak.json"
half="$(python3 -c "import json; print(round(json.load(open('$out/peak.json'))['rps'] / 2, 2))")"
"$cli" load --server "$addr" --codec "$codec" --data "$data" --rps "$half" --concurrency 64 \
  --connections "$connections" --duration "$seconds" --json > "$out/half.json"

python3 - "$out" "$codec" "$workers" "$connections" <<'PY'
import json, os, sys
out, codec, workers, connections = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ip = json.load(open(os.path.join(out, "inprocess.json")))
peak = json.load(open(os.path.join(out, "peak.json")))
half = json.load(open(os.path.join(out, "half.json")))
eff = peak["raw_gb_per_second"] / ip["compress_gb_per_second"]
p50, p99 = half["latency_ms"]["p50"], half["latency_ms"]["p99"]
load1 = os.getloadavg()[0]
summary = {
    "codec": codec, "workers": workers, "connections": connections, "cores": os.cpu_count(),
    "loadavg_1m": load1,
    "ratio": ip["ratio"],
    "inprocess_compress_gb_s": ip["compress_gb_per_second"],
    "rpc_peak_rps": peak["rps"], "rpc_peak_gb_s": peak["raw_gb_per_second"],
    "rpc_peak_errors": peak["errors"], "efficiency": eff,
    "half_load_rps": half["rps"], "half_load_p50_ms": p50, "half_load_p99_ms": p99,
    "half_load_p99_over_p50": p99 / p50 if p50 else None, "half_load_errors": half["errors"],
    "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
print(f"codec {codec}, {workers} server workers, {connections} client connection(s), "
      f"{os.cpu_count()} cores, load average {load1:.2f}, "
      f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r}")
print(f"in process : {ip['compress_gb_per_second']:.3f} GB/s compress, ratio {ip['ratio']:.3f}x")
print(f"RPC peak   : {peak['rps']:.1f} rps, {peak['raw_gb_per_second']:.3f} GB/s "
      f"(p50 {peak['latency_ms']['p50']:.2f} ms, p99 {peak['latency_ms']['p99']:.2f} ms, "
      f"{peak['errors']} errors)")
print(f"efficiency : {eff:.3f}  (target >= 0.7)")
print(f"half load  : {half['rps']:.1f} rps, p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
      f"p99/p50 {p99 / p50 if p50 else float('nan'):.2f}  (target <= 3), {half['errors']} errors")
PY
