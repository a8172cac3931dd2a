#!/usr/bin/env bash
# scripts/prefetch.sh: installs and fetches what the steps after `make test` need, so that .ci/run
# can do it in the background while `make test` compiles. All of it waits on the network or the
# disk, not on the CPU: node-llama-cpp (engine-check), the arm64 cross toolchain (test-arm64),
# docker, Prometheus and the deploy checks' npm packages, then the image's debootstrap base and
# apt layers (deploy-check). Each part is idempotent and is also run by the step that needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
for part in scripts/install-engine-deps.sh scripts/install-arm64-deps.sh \
  scripts/install-deploy-deps.sh deploy/checks/image-deps.sh; do
  t0=$SECONDS
  "$part"
  echo "prefetch: $part took $((SECONDS - t0)) s"
done
echo "prefetch: done in $((SECONDS - start)) s"
