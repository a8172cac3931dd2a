#!/usr/bin/env bash
# Installs what `make deploy-check` needs beyond scripts/install-deps.sh: a local dockerd
# (docker.io), debootstrap for the base image, Debian's docker-compose, Prometheus/promtool,
# and the pinned npm packages under deploy/checks (npm ci). Kept apart from install-deps.sh
# so `make test` never needs docker. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(docker.io debootstrap docker-compose prometheus python3-yaml curl nodejs npm kubectl)
missing=()
for p in "${packages[@]}"; do
  # kubectl is preinstalled outside apt on the CI machines; only install it if absent.
  if [ "$p" = kubectl ]; then command -v kubectl >/dev/null || missing+=(kubernetes-client); continue; fi
  if [ "$p" = nodejs ] || [ "$p" = npm ]; then command -v "$p" >/dev/null && continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  apt_opts=(-o DPkg::Lock::Timeout=600 -y -q)
  echo "install-deploy-deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install \
    --no-install-recommends "${missing[@]}"
fi

# Pinned TypeScript, @grafana/schema and kubernetes-models (deploy/checks/package-lock.json).
if [ ! -f deploy/checks/node_modules/.package-lock.json ] ||
  ! cmp -s deploy/checks/package-lock.json deploy/checks/node_modules/.lock-stamp; then
  (cd deploy/checks && npm ci --no-audit --no-fund --loglevel=error &&
    cp package-lock.json node_modules/.lock-stamp)
fi
