# Cross-compiles for 64-bit ARM Linux (the edge devices' ARM64 with NEON) with Debian's
# g++-aarch64-linux-gnu. Dependencies come from Debian multiarch (the :arm64 packages that
# scripts/install-arm64-deps.sh installs) under /usr/lib/aarch64-linux-gnu.
#
#   cmake -S . -B build-arm64 -G Ninja -DKVCOMP_CORE_ONLY=ON \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# Tests run under qemu-aarch64-static, set as the emulator so that ctest and
# gtest_discover_tests run the ARM64 binaries through it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Selects the multiarch directories: lib/aarch64-linux-gnu and lib/aarch64-linux-gnu/cmake.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# Programs are host programs; libraries, headers and packages must be the target's. The
# multiarch layout puts both under /usr, so no sysroot: the library architecture keeps the
# host's x86_64 libraries out of the search.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# pkg-config (xxhash) must read the arm64 .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

find_program(KVCOMP_QEMU_AARCH64 qemu-aarch64-static)
if(KVCOMP_QEMU_AARCH64)
  # -L /: the ARM64 loader and libc of Debian's multiarch libc6:arm64 (2.36-9+deb12u14), beside
  # Abseil, zstd and xxhash in /usr/lib/aarch64-linux-gnu. Not the cross toolchain's own copy
  # under /usr/aarch64-linux-gnu (2.36-8cross1): under qemu 7.2 every thread a program starts
  # hangs at 100% CPU with that libc (a two-line std::thread program does), which froze every
  # threaded test; the same binary runs with the multiarch libc, and statically linked.
  set(CMAKE_CROSSCOMPILING_EMULATOR "${KVCOMP_QEMU_AARCH64};-L;/")
endif()
