#!/usr/bin/env bash
# run.sh BUILD SECONDS: runs every libFuzzer target of BUILD (a KVCOMP_FUZZ=ON build) for
# SECONDS each, from the checked-in corpus (tests/fuzz/corpus/<target>: the long runs'
# minimised corpora, docs/RELIABILITY.md), fresh seeds (real frames of every registered codec,
# see make_seeds.cc) and the corpus earlier runs grew in BUILD/fuzz-run/corpus, where new
# inputs go. Prints executions per target; exits 1 if any target found a crash (the input is
# in BUILD/fuzz-run/artifacts/).
set -euo pipefail
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
kv=${KVCOMP_SHARED_KV:-$here/../../../shared/kv}
run=$build/fuzz-run
targets=(frame stage_decode spec roundtrip)

rm -rf "$run/seeds"
"$build/tests/fuzz/make_seeds" "$kv" "$run/seeds"
if [[ -x $build/tests/fuzz/fuzz_server ]]; then  # builds with the server
  "$build/tests/fuzz/make_server_seeds" "$kv" "$run/seeds"
  targets+=(server service)
fi
mkdir -p "$run/artifacts"
status=0
printf '%-14s %12s %10s %8s %8s\n' target executions exec/s corpus cov > "$run/summary.txt"
for t in "${targets[@]}"; do
  mkdir -p "$run/corpus/$t"
  corpora=("$run/corpus/$t")
  [[ -d $here/corpus/$t ]] && corpora+=("$here/corpus/$t")
  log=$run/$t.log
  dict=()
  [[ $t == spec || $t == roundtrip ]] && dict=(-dict="$run/seeds/spec.dict")
  echo "fuzz: $t for ${seconds}s"
  if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
      -print_final_stats=1 "${dict[@]}" -artifact_prefix="$run/artifacts/$t-" \
      "${corpora[@]}" "$run/seeds/$t" > "$log" 2>&1; then
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
