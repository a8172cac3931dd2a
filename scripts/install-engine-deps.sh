#!/usr/bin/env bash
# Installs what `make engine-check` and `make bench-engine` need: Node (>= 20) and the pinned
# node-llama-cpp with its prebuilt Linux x64 engine (engine/package-lock.json). No compiler and
# no download of llama.cpp itself: NODE_LLAMA_CPP_SKIP_DOWNLOAD stops node-llama-cpp's
# postinstall from fetching or building one, and the prebuilt package is used as it ships.
# Idempotent: npm runs only when the lockfile changed since the last install.
#
# `npm install --omit=optional` with the lockfile, not `npm ci`: node-llama-cpp lists a prebuilt
# package per platform as optional, the registry these machines use does not carry the macOS,
# Windows and RISC-V ones, so the lockfile cannot name them and `npm ci` calls it out of sync.
# The install follows the lockfile all the same (versions and integrity); the check below fails
# if it had to change it.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for p in nodejs npm; do command -v "${p/nodejs/node}" >/dev/null || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  echo "install-engine-deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q \
    install --no-install-recommends "${missing[@]}"
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "install-engine-deps: node-llama-cpp 3.22 needs Node >= 20; this is $(node --version)" >&2
  exit 1
fi

if [ ! -f engine/node_modules/.package-lock.json ] ||
  ! cmp -s engine/package-lock.json engine/node_modules/.lock-stamp; then
  cp engine/package-lock.json engine/.package-lock.before
  (cd engine && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --no-audit \
    --no-fund --loglevel=error)
  if ! cmp -s engine/package-lock.json engine/.package-lock.before; then
    mv engine/.package-lock.before engine/package-lock.json
    echo "install-engine-deps: npm changed engine/package-lock.json (restored): package.json" \
      "and the lockfile disagree" >&2
    exit 1
  fi
  rm engine/.package-lock.before
  cp engine/package-lock.json engine/node_modules/.lock-stamp
fi
