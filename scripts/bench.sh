#!/usr/bin/env bash
# make bench: the lossless table (kvbench), then the lossy one (kvbench_lossy), from an existing
# build dir; docs/BENCHMARKS.md explains both.
#   scripts/bench.sh BUILD_DIR [options for both]   e.g. --rounds 7 --layers all
# (--codecs replaces either table's rows: run build/bench/kvbench[_lossy] directly for that)
set -euo pipefail
build="${1:-build}"
shift || true
# One core: pin to one CPU when taskset is available, so runs are comparable.
pin=()
command -v taskset > /dev/null && pin=(taskset -c 0)
for bin in kvbench kvbench_lossy; do
  if [[ ! -x "$build/bench/$bin" ]]; then
    echo "bench.sh: $build/bench/$bin is missing; build with KVCOMP_BUILD_BENCH=ON (the default)" >&2
    exit 1
  fi
done
"${pin[@]}" "$build/bench/kvbench" "$@"
echo
"${pin[@]}" "$build/bench/kvbench_lossy" "$@"
