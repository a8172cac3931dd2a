#!/usr/bin/env bash
# soak.sh BUILD SECONDS: a soak of a real kvcomp-server on loopback (docs/RELIABILITY.md).
#
# Runs `kvcomp load` rounds back to back for SECONDS, cycling through codecs (lossless,
# zstd(3), bounded(cos=0.9999), mixed(...), lossless-max) and sizes (generated Llama shapes from
# 64 KiB to 16 MiB a tensor, and real caches from ../shared/kv), with deliberately bad requests
# in every round: 10% of calls, half a Compress with an unparseable codec (INVALID_ARGUMENT),
# half a Decompress of a real frame with a flipped byte (DATA_LOSS). It samples the server's
# VmRSS every half second. It fails (exit 1) unless:
#   - every valid request got OK, and every bad request exactly its expected code, per round
#     (from kvcomp load --json) and in total (from the server's grpc_server_handled_total);
#   - the server is still up at the end;
#   - RSS grows by at most 10% or 16 MiB, whichever is larger, after warm-up (the first 20% of
#     the run, or the first full cycle of rounds if that ends later): the lowest sample over
#     the last full cycle of rounds against the lowest over the first full cycle after
#     warm-up. Whole cycles, because the rounds' working sets differ severalfold, so windows
#     of a fixed length hold different mixes. The lowest sample, because what the allocator
#     keeps after a big round only ever adds to a sample, while a leak raises every later
#     sample, the lowest included. 16 MiB, because a clean run's lowest sample drifted by 6 MiB
#     (10% of this server is 2.4 MiB). docs/RELIABILITY.md has the measurements. A run too
#     short for two cycles after warm-up compares the 20% after warm-up with the last 20%.
# Prints one summary line; the per-round JSON, RSS samples and server log stay in BUILD/soak/.
set -euo pipefail
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
kv=${KVCOMP_SHARED_KV:-$here/../../shared/kv}
out=$build/soak
server_bin=$build/server/kvcomp-server
cli=$build/client/kvcomp
for b in "$server_bin" "$cli"; do
  [[ -x $b ]] || { echo "soak: $b is missing (build it first)" >&2; exit 2; }
done

# codec | data: every round mixes one of these with bad requests.
rounds=(
  "lossless|llama:layers=1,heads=8,dim=128,tokens=512"
  "zstd(3)|$kv/story_prose"
  "bounded(cos=0.9999)|llama:layers=2,heads=4,dim=64,tokens=2048"
  "mixed(1,lossless,bounded(cos=0.9999))|$kv/technical_prose.fp32.npz"
  "zstd(3)|llama:layers=1,heads=8,dim=128,tokens=8192"
  "lossless-max|llama:layers=2,heads=2,dim=64,tokens=256"
  "bounded(cos=0.9999)|$kv/generated_greedy"
  "lossless|llama:layers=1,heads=1,dim=32,tokens=16,dtype=bf16"
)
warmup=$((seconds / 5))
# Warm-up: the first 20% of the run, or the first full cycle of rounds if that takes longer,
# so the warm-up has seen every workload.
round_seconds=$((warmup / ${#rounds[@]}))
((round_seconds >= 2)) || round_seconds=2

rm -rf "$out"
mkdir -p "$out"
# The server as deployed: its allocator settings are its own (server/main.cc keeps memory from
# call to call and hands it back every 5 s), so the resting RSS is what it holds.
"$server_bin" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 --ready-file "$out/ready" \
  > "$out/server.log" 2>&1 &
server_pid=$!
sampler_pid=
cleanup() {
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2> /dev/null || true
  kill "$server_pid" 2> /dev/null || true
  wait "$server_pid" 2> /dev/null || true
}
trap cleanup EXIT
trap "exit 1" INT TERM
for _ in $(seq 300); do
  [[ -s $out/ready ]] && grep -q '^metrics=' "$out/ready" && break
  kill -0 "$server_pid" 2> /dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.1
done
grpc=$(sed -n 's/^grpc=//p' "$out/ready")
metrics=$(sed -n 's/^metrics=//p' "$out/ready")

start=$(date +%s.%N)
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
(
  while kill -0 "$server_pid" 2> /dev/null; do
    echo "$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN {printf "%.1f", n - s}') $(rss)"
    sleep 0.5
  done
) > "$out/rss.txt" &
sampler_pid=$!

status=0
i=0
while :; do
  now=$(date +%s.%N)
  left=$(awk -v s="$start" -v n="$now" -v t="$seconds" 'BEGIN {printf "%.1f", t - (n - s)}')
  awk -v l="$left" 'BEGIN {exit !(l >= 1)}' || break
  d=$(awk -v l="$left" -v r="$round_seconds" 'BEGIN {print (l < r ? l : r)}')
  IFS='|' read -r codec data <<< "${rounds[i % ${#rounds[@]}]}"
  json=$out/round-$(printf '%03d' "$i").json
  round_start=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN {printf "%.1f", n - s}')
  rc=0
  "$cli" load --server "$grpc" -c 4 -d "$d" --codec "$codec" --data "$data" \
    --bad-fraction 0.1 --bad-frames --seed "$((i + 1))" --json > "$json" 2> "$out/round-$i.err" ||
    rc=$?
  # Every valid call OK; every bad one exactly its code; nothing else.
  if ! jq -e '
      . as $r | (.bad_sent // {}) as $sent | ($sent | add // 0) as $bad
      | (.status.OK // 0) == (.requests - $bad)
        and ([$sent | to_entries[] | .value == ($r.status[.key] // 0)] | all)
        and ([.status | keys[] | select(. != "OK")] - ($sent | keys) == [])' \
      "$json" > /dev/null || [[ $rc -ne 0 ]]; then
    echo "soak: round $i ($codec on $data) failed (exit $rc):" >&2
    cat "$out/round-$i.err" "$json" >&2
    status=1
  fi
  # Round, start and end (seconds since start), and whether it ran its full length.
  echo "$i $round_start $(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN {printf "%.1f", n - s}')" \
    "$(awk -v d="$d" -v r="$round_seconds" 'BEGIN {print (d < r ? 0 : 1)}')" >> "$out/rounds.txt"
  i=$((i + 1))
  if ((i == ${#rounds[@]})); then
    cycle=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN {printf "%.0f", n - s}')
    ((cycle <= warmup)) || warmup=$cycle
  fi
done
elapsed=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN {printf "%.0f", n - s}')
kill -0 "$server_pid" 2> /dev/null || { echo "soak: the server died" >&2; exit 1; }
end_rss=$(rss)
kill "$sampler_pid" 2> /dev/null || true
wait "$sampler_pid" 2> /dev/null || true
sampler_pid=

# Totals from kvcomp load, against the server's own counters.
totals=$(jq -s '{requests: (map(.requests) | add),
                 ok: (map(.status.OK // 0) | add),
                 invalid: (map(.bad_sent.INVALID_ARGUMENT // 0) | add),
                 data_loss: (map(.bad_sent.DATA_LOSS // 0) | add),
                 rounds: length}' "$out"/round-*.json)
read -r requests ok invalid data_loss nrounds < <(jq -r '"\(.requests) \(.ok) \(.invalid) \(.data_loss) \(.rounds)"' <<< "$totals")
curl -sf "http://$metrics/metrics" > "$out/metrics.txt"
handled() {  # method code
  awk -v m="grpc_method=\"$1\"" -v c="grpc_code=\"$2\"" \
    '/^grpc_server_handled_total\{/ && index($0, m) && index($0, c) {s += $NF} END {print s + 0}' \
    "$out/metrics.txt"
}
all_handled=$(awk '/^grpc_server_handled_total\{/ {s += $NF} END {print s + 0}' "$out/metrics.txt")
# Each round also made one good Compress (of the frame it then corrupts).
want_compress_ok=$((ok + nrounds))
got="Compress OK $(handled Compress OK), Compress INVALID_ARGUMENT $(handled Compress InvalidArgument), Decompress DATA_LOSS $(handled Decompress DataLoss), all $all_handled"
want="Compress OK $want_compress_ok, Compress INVALID_ARGUMENT $invalid, Decompress DATA_LOSS $data_loss, all $((requests + nrounds))"
if [[ $got != "$want" ]]; then
  echo "soak: the server's grpc_server_handled_total disagrees with kvcomp load:" >&2
  echo "  server: $got" >&2
  echo "  load:   $want" >&2
  status=1
fi

# RSS: the resting level (lowest sample) over the first full cycle after warm-up against the
# last full cycle (see the top); medians and peaks for the record.
rss_stats() {  # FROM TO: lowest, median and peak of the samples with FROM <= t < TO, in KiB
  awk -v a="$1" -v b="$2" '$1 >= a && $1 < b {print $2}' "$out/rss.txt" | sort -n |
    awk '{v[NR] = $1} END {
      if (!NR) { print 0, 0, 0; exit }
      print v[1], v[int((NR + 1) / 2)], v[NR]
    }'
}
# "FROM TO" of the first full cycle starting after warm-up and of the last full cycle.
read -r base_from base_to last_from last_to < <(awk -v L="${#rounds[@]}" -v w="$warmup" '
  {start[$1] = $2; end[$1] = $3; full[$1] = $4; n = $1 + 1}
  END {
    first = -1; last = -1
    for (c = 0; (c + 1) * L <= n; c++) {
      ok = 1
      for (r = c * L; r < (c + 1) * L; r++) ok = ok && full[r]
      if (!ok) continue
      if (first < 0 && start[c * L] >= w) first = c
      last = c
    }
    if (first >= 0 && last > first)
      print start[first * L], end[(first + 1) * L - 1], start[last * L], end[(last + 1) * L - 1]
    else
      print "", "", "", ""
  }' "$out/rounds.txt")
if [[ -z $base_from ]]; then
  base_from=$warmup base_to=$((warmup + seconds / 5)) last_from=$((elapsed - seconds / 5)) last_to=1e9
fi
read -r warm_rss warm_median warm_peak < <(rss_stats "$base_from" "$base_to")
read -r last_rss last_median last_peak < <(rss_stats "$last_from" "$last_to")
growth=$(awk -v a="$warm_rss" -v b="$last_rss" 'BEGIN {printf "%.1f", a ? 100 * (b - a) / a : 999}')
growth_kib=$((last_rss - warm_rss))
limit_kib=$((warm_rss / 10 > 16384 ? warm_rss / 10 : 16384))
if ((warm_rss == 0 || last_rss == 0)); then
  echo "soak: no RSS samples to compare in $out/rss.txt" >&2
  status=1
elif ((growth_kib > limit_kib)); then
  echo "soak: server RSS grew ${growth}% after warm-up (limit 10% or 16 MiB); samples in $out/rss.txt" >&2
  status=1
fi

mib() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }
echo "soak: ${elapsed}s, $nrounds rounds of ${round_seconds}s, $requests requests" \
  "($ok OK, $invalid INVALID_ARGUMENT and $data_loss DATA_LOSS as sent; server agrees:" \
  "$([[ $got == "$want" ]] && echo yes || echo NO)); server RSS resting level (lowest sample)" \
  "$(mib "$warm_rss") MiB over ${base_from}-${base_to}s (after warm-up), $(mib "$last_rss") MiB over" \
  "${last_from}-${last_to}s: growth ${growth}%, $(mib "$growth_kib") MiB" \
  "(limit 10% or 16 MiB, the larger); medians $(mib "$warm_median") and" \
  "$(mib "$last_median") MiB; peaks $(mib "$warm_peak") and $(mib "$last_peak") MiB," \
  "$(mib "$end_rss") MiB at end$([[ $status -eq 0 ]] && echo ': PASS' || echo ': FAIL')"
exit $status
