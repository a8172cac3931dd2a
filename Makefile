# The two commands a newcomer runs: `make demo` and `make test`. Both install what they need.
BUILD ?= build
JOBS ?= $(shell nproc)
# -g1 (line tables and function names: enough for backtraces, perf and sanitizer reports) rather
# than RelWithDebInfo's -g, which costs a third more compile time (cli_test.cc: 25 s against
# 18 s) and generates the same code. Configure a Debug build of your own for a debugger.
CMAKE_FLAGS ?= '-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG' \
	'-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG'

.PHONY: deps configure build test demo bench bench-service format clean fuzz test-asan golden soak \
	engine-deps engine-check bench-engine

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build engine-deps
	@./scripts/demo.sh $(BUILD)

bench: build
	@./scripts/bench.sh $(BUILD)

# Compress through the real server on loopback vs the same codec in process (docs/BENCHMARKS.md).
BENCH_CODEC ?= lossless
BENCH_SECONDS ?= 10
bench-service: build
	@./scripts/bench-service.sh $(BUILD) '$(BENCH_CODEC)' $(BENCH_SECONDS)

# Reliability (docs/RELIABILITY.md). One clang build with ASan + UBSan (and libFuzzer's coverage
# hooks) serves both the sanitized test suite and the fuzzers: CI builds it once, not twice.
FUZZ_SECONDS ?= 60
SAN_BUILD ?= build-san
# -O1 -gline-tables-only, as OSS-Fuzz builds: a quarter less compile time than -O2 -g (30 s ->
# 23 s for hardening_test.cc), and line tables are all a sanitizer report needs.
SAN_CMAKE_FLAGS = -DKVCOMP_FUZZ=ON -DKVCOMP_BUILD_BENCH=OFF \
	-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	'-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG' \
	'-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG'

# libFuzzer targets, each run for FUZZ_SECONDS: the core's four, the server's request handling
# (fuzz_server) and the service driven by call sequences (fuzz_service). FUZZ_CORE_ONLY=ON
# fuzzes the core's four alone, from a core-only build of its own.
FUZZ_CORE_ONLY ?= OFF
ifeq ($(FUZZ_CORE_ONLY),ON)
fuzz: SAN_BUILD := build-fuzz-core
fuzz: SAN_CMAKE_FLAGS += -DKVCOMP_CORE_ONLY=ON
endif
fuzz: deps
	@cmake -S . -B $(SAN_BUILD) -G Ninja $(SAN_CMAKE_FLAGS) > /dev/null
	@cmake --build $(SAN_BUILD) -j $(JOBS) --target kvcomp_fuzzers
	@tests/fuzz/run.sh $(SAN_BUILD) $(FUZZ_SECONDS)

# The test suite under ASan, UBSan and LeakSanitizer (server subprocesses included), but the
# `long` label (2 GiB streamed: a memory figure, not a sanitizer's target).
test-asan: deps
	@cmake -S . -B $(SAN_BUILD) -G Ninja $(SAN_CMAKE_FLAGS) > /dev/null
	@cmake --build $(SAN_BUILD) -j $(JOBS)
	@cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS) --timeout 1800 -LE long

# A soak of a real server on loopback: kvcomp load rounds mixing codecs, sizes and bad requests
# for SOAK_SECONDS; fails on any unexpected status or RSS growth over 10% after warm-up.
SOAK_SECONDS ?= 180
soak: configure
	@cmake --build $(BUILD) -j $(JOBS) --target kvcomp-server kvcomp
	@./scripts/soak.sh $(BUILD) $(SOAK_SECONDS)

# Adds golden frames for codecs that have none; `make_golden --all` is a format change.
golden: build
	@$(BUILD)/tests/tools/make_golden --add

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	@rm -rf $(BUILD)

# The codec core cross-compiled for ARM64 and tested under qemu-aarch64-static, then frames
# exchanged between that build and the native $(BUILD), both ways (scripts/test-arm64.sh).
ARM64_BUILD ?= build-arm64
.PHONY: test-arm64
test-arm64: configure
	@./scripts/test-arm64.sh $(ARM64_BUILD) $(BUILD) $(JOBS) $(CMAKE_FLAGS)

# Deployment (docs/OPERATIONS.md): the image built and run in a private dockerd, Prometheus
# scraping a real server, the dashboard, alerts, compose and k8s manifests checked by real tools,
# and round_robin over 3 servers (scripts/deploy-check.sh). Needs scripts/install-deploy-deps.sh.
.PHONY: deploy-check
deploy-check: configure
	@./scripts/install-deploy-deps.sh
	@cmake --build $(BUILD) -j $(JOBS) --target kvcomp-server kvcomp
	@./scripts/deploy-check.sh $(BUILD)

# llama.cpp as the judge (docs/ENGINES.md): node-llama-cpp's prebuilt engine saves real sequence
# states, which go through a real kvcomp-server and back into fresh contexts. engine-check
# asserts that lossless round trips are byte-identical and change no token and no probability
# (F16, BF16, F32, Q8_0; flash attention on and off), and checks analyze's engine verdict.
# bench-engine measures the lossless ratios, the lossy fidelity table, Q8_0's stage bytes and
# the round-trip times of docs/BENCHMARKS.md (about a minute; not in CI).
engine-deps:
	@./scripts/install-engine-deps.sh

engine-check: configure engine-deps
	@cmake --build $(BUILD) -j $(JOBS) --target kvcomp-server kvcomp kvcomp_python
	@KVCOMP_CLI=$(BUILD)/client/kvcomp KVCOMP_SERVER=$(BUILD)/server/kvcomp-server \
		node engine/check.mjs $(BUILD)/engine-check

bench-engine: configure engine-deps
	@cmake --build $(BUILD) -j $(JOBS) --target kvcomp-server kvcomp
	@KVCOMP_CLI=$(BUILD)/client/kvcomp KVCOMP_SERVER=$(BUILD)/server/kvcomp-server \
		node engine/bench.mjs $(BUILD)/bench-engine
