#!/usr/bin/env bash
# make bench: the lossless benchmark table (docs/BENCHMARKS.md) from an existing build dir.
#   scripts/bench.sh BUILD_DIR [kvbench options]   e.g. --rounds 7 --layers all
set -euo pipefail
build="${1:-build}"
shift || true
bin="$build/bench/kvbench"
if [[ ! -x "$bin" ]]; then
  echo "bench.sh: $bin is missing; build with KVCOMP_BUILD_BENCH=ON (the default)" >&2
  exit 1
fi
# One core: pin to one CPU when taskset is available, so runs are comparable.
if command -v taskset > /dev/null; then
  exec taskset -c 0 "$bin" "$@"
fi
exec "$bin" "$@"
