#!/usr/bin/env bash
# Installs what cross-compiling the codec core to ARM64 and testing it under emulation needs:
# Debian's aarch64 cross compiler, qemu-user-static, and the core's dependencies for arm64
# through Debian multiarch. Idempotent: it does nothing when all packages are already present.
# Used by `make test-arm64`; the native build's packages come from scripts/install-deps.sh.
set -euo pipefail

packages=(
  g++-aarch64-linux-gnu qemu-user-static libc6:arm64
  libabsl-dev:arm64 libzstd-dev:arm64 libxxhash-dev:arm64 libgtest-dev:arm64
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
apt_opts=(-o DPkg::Lock::Timeout=600 -y -q)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "install-arm64-deps: adding the arm64 architecture"
  "${sudo_cmd[@]}" dpkg --add-architecture arm64
fi
echo "install-arm64-deps: installing ${missing[*]}"
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}"
