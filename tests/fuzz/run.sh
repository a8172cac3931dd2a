#!/usr/bin/env bash
# run.sh BUILD SECONDS [JOBS]: runs every libFuzzer target of BUILD (a KVCOMP_FUZZ=ON build) for
# SECONDS each, JOBS targets at a time (default: one per core; each target is one process on one
# core, so two cores give two targets their full 60 s in half the wall time). Each starts from
# the checked-in corpus (tests/fuzz/corpus/<target>: the long runs' minimised corpora,
# docs/RELIABILITY.md), fresh seeds (real frames of every registered codec, see make_seeds.cc)
# and the corpus earlier runs grew in BUILD/fuzz-run/corpus, where new inputs go. Prints
# executions per target; exits 1 if any target found a crash (the input is in
# BUILD/fuzz-run/artifacts/).
set -euo pipefail
build=$1
seconds=$2
slots=${3:-$(nproc)}
here=$(cd "$(dirname "$0")" && pwd)
kv=${KVCOMP_SHARED_KV:-$here/../../../shared/kv}
run=$build/fuzz-run
rm -rf "$run/seeds"
"$build/tests/fuzz/make_seeds" "$kv" "$run/seeds"
# The server's targets build with the server only.
if [[ -x $build/tests/fuzz/fuzz_server ]]; then
  "$build/tests/fuzz/make_server_seeds" "$kv" "$run/seeds"
fi
# Every target built, the longest first, so that the last slot does not start a long one alone:
# libFuzzer replays a target's whole corpus before its SECONDS count (.ci/run of f05e99d here:
# service 213 s in all, roundtrip 156 s, the others 60-64 s).
targets=()
for t in service roundtrip server stage_decode spec frame; do
  if [[ -x $build/tests/fuzz/fuzz_$t ]]; then targets+=("$t"); fi
done
mkdir -p "$run/artifacts"

# fuzz_one TARGET: one libFuzzer run; its log is $run/TARGET.log, its exit code $run/TARGET.rc.
fuzz_one() {
  local t=$1 dict=() corpora=("$run/corpus/$1")
  mkdir -p "$run/corpus/$t"
  [[ -d $here/corpus/$t ]] && corpora+=("$here/corpus/$t")
  [[ $t == spec || $t == roundtrip ]] && dict=(-dict="$run/seeds/spec.dict")
  local rc=0
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" -artifact_prefix="$run/artifacts/$t-" \
    "${corpora[@]}" "$run/seeds/$t" > "$run/$t.log" 2>&1 || rc=$?
  echo "$rc" > "$run/$t.rc"
}

for t in "${targets[@]}"; do
  while (( $(jobs -rp | wc -l) >= slots )); do wait -n || true; done
  echo "fuzz: $t for ${seconds}s"
  rm -f "$run/$t.rc"
  fuzz_one "$t" &
done
wait

status=0
printf '%-14s %12s %10s %8s %8s\n' target executions exec/s corpus cov > "$run/summary.txt"
for t in "${targets[@]}"; do
  log=$run/$t.log
  if [[ $(cat "$run/$t.rc" 2>/dev/null || echo missing) != 0 ]]; then
    status=1
    echo "fuzz: $t FAILED; the input is in $run/artifacts/, the log in $log:"
    # libprotobuf logs every invalid UTF-8 string it parses as "ERROR": not the failure.
    grep -v 'libprotobuf ERROR' "$log" |
      grep -E -A12 '==ERROR|ERROR: libFuzzer|check failed|runtime error' | head -40 || true
  fi
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  corpus=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<< "$last")
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<< "$last")
  printf '%-14s %12s %10s %8s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "${corpus:-?}" "${cov:-?}" \
    >> "$run/summary.txt"
done
cat "$run/summary.txt"
if [[ $status -ne 0 ]]; then
  echo "fuzz: crashes found. Each becomes a regression: copy the input to"
  echo "      tests/fuzz/regressions/<target>/<what-broke>, fix, and check it replays clean."
fi
exit $status
