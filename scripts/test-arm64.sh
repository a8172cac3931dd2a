#!/usr/bin/env bash
# scripts/test-arm64.sh ARM64_BUILD X86_BUILD [JOBS [CMAKE_FLAGS...]]  (run by `make test-arm64`)
#
# Cross-compiles the codec core and its tests for ARM64 (cmake/aarch64-linux-gnu.cmake), runs
# them under qemu-aarch64-static through ctest, then exchanges frames between that build and
# the native one in X86_BUILD, in both directions: each build encodes the same real and
# random tensors with every registered codec, and the other decodes them bit-exact.
set -euo pipefail
cd "$(dirname "$0")/.."
arm=${1:?usage: test-arm64.sh ARM64_BUILD X86_BUILD [JOBS]}
x86=${2:?usage: test-arm64.sh ARM64_BUILD X86_BUILD [JOBS]}
jobs=${3:-2}
cmake_flags=("${@:4}")  # the native build's (the Makefile's CMAKE_FLAGS)
qemu=(qemu-aarch64-static -L /)  # the libc cmake/aarch64-linux-gnu.cmake explains
start=$SECONDS
took() { echo "test-arm64: $1 ($((SECONDS - start)) s so far)"; }

./scripts/install-arm64-deps.sh
cmake -S . -B "$arm" -G Ninja -DKVCOMP_CORE_ONLY=ON "${cmake_flags[@]}" \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" > /dev/null
cmake --build "$arm" -j "$jobs"
took "cross-built $arm"

# Every test of the core-only build (unit, property, golden frames, fuzz regressions), each
# run through qemu by CMAKE_CROSSCOMPILING_EMULATOR.
(cd "$arm" && ctest --output-on-failure -j "$jobs" --timeout 900)
took "ctest under qemu-aarch64-static"

cmake --build "$x86" -j "$jobs" --target kvcomp-core-roundtrip
arm_tool=("${qemu[@]}" "$arm/tests/core/kvcomp-core-roundtrip")
x86_tool=("$x86/tests/core/kvcomp-core-roundtrip")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "test-arm64: frames made on ARM64, decoded on x86-64"
"${arm_tool[@]}" encode "$tmp/from-arm64"
"${x86_tool[@]}" decode "$tmp/from-arm64"
echo "test-arm64: frames made on x86-64, decoded on ARM64"
"${x86_tool[@]}" encode "$tmp/from-x86"
"${arm_tool[@]}" decode "$tmp/from-x86"
took "frames exchanged both ways"
