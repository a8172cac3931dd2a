#!/usr/bin/env bash
# make bench-service: unary Compress through the real kvcomp-server, over TCP loopback and over
# shared memory, against the same codec in process, in the same run; then one call of a whole
# 64 MiB cache on 1 and on 2 workers.
#   scripts/bench-service.sh BUILD_DIR [CODEC] [SECONDS]
#
# Each of ROUNDS rounds (default 3), on one server (--workers WORKERS, --shm-socket):
# 1. kvcomp bench: the codec in process on WORKERS threads (the server's worker count), on
#    1 MiB FP16 Llama-shaped tensors ([8 heads, 512 tokens, 128 dim]).
# 2. kvcomp load, closed loop, 2 x WORKERS callers, over TCP then over shared memory (--shm:
#    tensors named by region, frames written to a region): the peak RPS and GB/s.
# 3. efficiency = RPC GB/s / in-process GB/s, each transport against this round's in-process;
#    and by CPU cost: in-process compress CPU s / GB over (server + kvcomp load) CPU s / GB in
#    the closed loop, which other work on a shared machine changes much less than GB/s.
# 4. kvcomp load, open loop (Poisson) at 50% of each transport's own peak: p50 / p99 latency.
# Then scripts/bench_scaling.py: one Compress of a 64 MiB Llama-shaped cache (16 layers x K/V
# of [8, 1024, 128] FP16) over shared memory, servers with 1 and 2 workers alternated.
# The summary gives the median of the rounds and every round; every JSON report is kept in
# $OUT (default BUILD_DIR/bench-service). The client and the server share the machine's cores:
# that is part of what is measured. CONNECTIONS (default 1): the TCP connections kvcomp load
# spreads its calls over; one HTTP/2 connection carries one large message at a time.
# Each phase also records the cores other processes took from it (the summary's last column).
# SCALING=0 skips the scaling part.
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
rounds="${ROUNDS:-3}"
out="${OUT:-$build/bench-service}"
mkdir -p "$out"
data="llama:layers=4,heads=8,dim=128,tokens=512,dtype=fp16"  # 8 tensors of 1 MiB

ready="$out/ready"
sock="$(mktemp -u /tmp/kvcomp-bench-shm.XXXXXX)"
rm -f "$ready"
"$server" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --ready-file "$ready" \
  --workers "$workers" --shm-socket "$sock" --log-level warn &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; rm -f "$sock"' EXIT
for _ in $(seq 100); do [[ -s "$ready" ]] && break; sleep 0.1; done
addr="$(sed -n 's/^grpc=//p' "$ready")"
[[ -n "$addr" ]] || { echo "bench-service.sh: the server did not become ready" >&2; exit 1; }

load() {  # load TRANSPORT OUTPUT [ARGS...]: kvcomp load over tcp or shm
  local transport=$1 output=$2
  shift 2
  local shm=()
  [[ "$transport" == shm ]] && shm=(--shm "$sock")
  "$cli" load --server "$addr" --codec "$codec" --data "$data" --connections "$connections" \
    --duration "$seconds" --json "${shm[@]}" "$@" > "$output"
}
rps_half() { python3 -c "import json; print(round(json.load(open('$1'))['rps'] / 2, 2))"; }
# The cores others took from a phase: the machine's busy time less the server's and this
# script's children's (kvcomp bench/load, reaped), over the phase's wall time. The machine is
# shared; a round others took much of is said so in the summary.
ticks() {
  echo "$(date +%s.%N) $(awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat)" \
    "$(awk '{print $14+$15}' "/proc/$server_pid/stat")" "$(awk '{print $16+$17}' "/proc/$$/stat")"
}
phase() {  # phase NAME COMMAND...: runs COMMAND; writes NAME.other (cores others used) and
  local name=$1 before after  # NAME.cpu (CPU seconds of the server, and of kvcomp bench/load)
  shift
  before=$(ticks)
  "$@"
  after=$(ticks)
  python3 -c "
import os, sys
a, b = [[float(x) for x in s.split()] for s in sys.argv[1:3]]
hz = os.sysconf('SC_CLK_TCK')
print(round(max(0.0, (b[1] - a[1]) - (b[2] - a[2]) - (b[3] - a[3])) / hz / (b[0] - a[0]), 3))
open(sys.argv[3], 'w').write(f'{(b[2] - a[2]) / hz} {(b[3] - a[3]) / hz}')
" "$before" "$after" "$out/$name.cpu" > "$out/$name.other"
}

inprocess() { "$cli" bench "$data" --codec "$codec" --threads "$workers" --runs 7 --json > "$1"; }
for round in $(seq "$rounds"); do
  phase "inprocess-$round" inprocess "$out/inprocess-$round.json"
  for transport in tcp shm; do
    phase "peak-$transport-$round" load "$transport" "$out/peak-$transport-$round.json" \
      --concurrency $((2 * workers))
  done
  for transport in tcp shm; do
    phase "half-$transport-$round" load "$transport" "$out/half-$transport-$round.json" \
      --concurrency 64 --rps "$(rps_half "$out/peak-$transport-$round.json")"
  done
  echo "bench-service.sh: round $round of $rounds done" >&2
done

python3 - "$out" "$codec" "$workers" "$connections" "$rounds" <<'PY'
import json, os, statistics, sys
out, codec, workers, connections, rounds = sys.argv[1:3] + [int(a) for a in sys.argv[3:6]]
load = lambda name: json.load(open(os.path.join(out, name)))
other = lambda name: float(open(os.path.join(out, name + ".other")).read())
cpu = lambda name: [float(x) for x in open(os.path.join(out, name + ".cpu")).read().split()]
rows = []
for r in range(1, rounds + 1):
    ip = load(f"inprocess-{r}.json")
    row = {"round": r, "inprocess_gb_s": ip["compress_gb_per_second"], "ratio": ip["ratio"],
           "inprocess_cpu_s_per_gb": ip["compress_cpu_seconds_per_gb"],
           "other_cores": {p: other(f"{p}-{r}") for p in
                           ("inprocess", "peak-tcp", "peak-shm", "half-tcp", "half-shm")}}
    for t in ("tcp", "shm"):
        peak, half = load(f"peak-{t}-{r}.json"), load(f"half-{t}-{r}.json")
        p50, p99 = half["latency_ms"]["p50"], half["latency_ms"]["p99"]
        server_s, client_s = cpu(f"peak-{t}-{r}")
        gb = peak["ok_raw_bytes"] / 1e9
        row[t] = {"peak_rps": peak["rps"], "peak_gb_s": peak["raw_gb_per_second"],
                  "peak_errors": peak["errors"],
                  "efficiency": peak["raw_gb_per_second"] / ip["compress_gb_per_second"],
                  "server_cpu_s_per_gb": server_s / gb, "client_cpu_s_per_gb": client_s / gb,
                  "efficiency_by_cpu": ip["compress_cpu_seconds_per_gb"] * gb /
                                       (server_s + client_s),
                  "half_rps": half["rps"], "p50_ms": p50, "p99_ms": p99,
                  "p99_over_p50": p99 / p50 if p50 else None, "half_errors": half["errors"]}
    row["shm_over_tcp_gb_s"] = row["shm"]["peak_gb_s"] / row["tcp"]["peak_gb_s"]
    rows.append(row)
med = lambda f: statistics.median(f(row) for row in rows)
summary = {
    "codec": codec, "workers": workers, "connections": connections, "cores": os.cpu_count(),
    "loadavg_1m": os.getloadavg()[0], "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
    "rounds": rows,
    "median": {"inprocess_gb_s": med(lambda r: r["inprocess_gb_s"]),
               "shm_over_tcp_gb_s": med(lambda r: r["shm_over_tcp_gb_s"]),
               **{f"{t}_{k}": med(lambda r: r[t][k]) for t in ("tcp", "shm")
                  for k in ("peak_gb_s", "efficiency", "efficiency_by_cpu", "p50_ms", "p99_ms",
                            "p99_over_p50")}},
}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)
print(f"codec {codec}, {workers} server workers, {connections} client connection(s), "
      f"{os.cpu_count()} cores, load average {summary['loadavg_1m']:.2f}, {rounds} rounds, "
      f"GLIBC_TUNABLES={summary['glibc_tunables']!r}")
print("round  in-process GB/s | tcp: GB/s  eff  eff-by-cpu  p50/p99 ms  p99/p50 | "
      "shm: GB/s  eff  eff-by-cpu  p50/p99 ms  p99/p50 | shm/tcp | most cores others took")
for r in rows:
    cells = " | ".join(
        f"{t}: {r[t]['peak_gb_s']:.3f} {r[t]['efficiency']:.2f} {r[t]['efficiency_by_cpu']:.2f} "
        f"{r[t]['p50_ms']:.2f}/{r[t]['p99_ms']:.2f} {r[t]['p99_over_p50']:.2f}"
        for t in ("tcp", "shm"))
    print(f"{r['round']:5d}  {r['inprocess_gb_s']:.3f}           | {cells} | "
          f"{r['shm_over_tcp_gb_s']:.2f}    | {max(r['other_cores'].values()):.2f}")
m = summary["median"]
print(f"median : in process {m['inprocess_gb_s']:.3f} GB/s; efficiency over shm "
      f"{m['shm_efficiency']:.2f} (target >= 0.85) against {m['tcp_efficiency']:.2f} over TCP; "
      f"by CPU cost {m['shm_efficiency_by_cpu']:.2f} over shm, "
      f"{m['tcp_efficiency_by_cpu']:.2f} over TCP; "
      f"p99/p50 at half load {m['shm_p99_over_p50']:.2f} over shm (target <= 3), "
      f"{m['tcp_p99_over_p50']:.2f} over TCP")
PY

if [[ "${SCALING:-1}" != 0 ]]; then
  /usr/bin/python3 "$(dirname "$0")/bench_scaling.py" "$build" "$codec" "$out"
fi
