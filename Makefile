# The two commands a newcomer runs: `make demo` and `make test`. Both install what they need.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: deps configure build test demo bench bench-service format clean fuzz test-asan golden soak

deps:
	@./scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	@./scripts/demo.sh $(BUILD)

bench: build
	@./scripts/bench.sh $(BUILD)

# Compress through the real server on loopback vs the same codec in process (docs/BENCHMARKS.md).
BENCH_CODEC ?= lossless
BENCH_SECONDS ?= 10
bench-service: build
	@./scripts/bench-service.sh $(BUILD) '$(BENCH_CODEC)' $(BENCH_SECONDS)

# Reliability (docs/RELIABILITY.md). Each has its own build dir.
FUZZ_SECONDS ?= 60
FUZZ_BUILD ?= build-fuzz
ASAN_BUILD ?= build-asan
# gcc leaves float-cast-overflow out of -fsanitize=undefined; name it.
SAN_FLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer

# libFuzzer targets (clang), each run for FUZZ_SECONDS: the core's four and the server's request
# handling (fuzz_server); FUZZ_CORE_ONLY=ON skips the server (its build adds proto + service).
FUZZ_CORE_ONLY ?= OFF
fuzz: deps
	@cmake -S . -B $(FUZZ_BUILD) -G Ninja -DKVCOMP_FUZZ=ON -DKVCOMP_CORE_ONLY=$(FUZZ_CORE_ONLY) \
		-DKVCOMP_BUILD_BENCH=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ > /dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target kvcomp_fuzzers
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# A soak of a real server on loopback: kvcomp load rounds mixing codecs, sizes and bad requests
# for SOAK_SECONDS; fails on any unexpected status or RSS growth over 10% after warm-up.
SOAK_SECONDS ?= 180
soak: configure
	@cmake --build $(BUILD) -j $(JOBS) --target kvcomp-server kvcomp
	@./scripts/soak.sh $(BUILD) $(SOAK_SECONDS)

# The whole test suite under ASan, UBSan and LeakSanitizer (server subprocesses included).
test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DKVCOMP_BUILD_BENCH=OFF "-DCMAKE_C_FLAGS=$(SAN_FLAGS)" \
		"-DCMAKE_CXX_FLAGS=$(SAN_FLAGS)" > /dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS) --timeout 1800

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
	@./scripts/test-arm64.sh $(ARM64_BUILD) $(BUILD) $(JOBS)

# Deployment (docs/OPERATIONS.md): the image built and run in a private dockerd, Prometheus
# scraping a real server, the dashboard, alerts, compose and k8s manifests checked by real tools,
# and round_robin over 3 servers (scripts/deploy-check.sh). Needs scripts/install-deploy-deps.sh.
.PHONY: deploy-check
deploy-check: configure
	@./scripts/install-deploy-deps.sh
	@cmake --build $(BUILD) -j $(JOBS) --target kvcomp-server kvcomp
	@./scripts/deploy-check.sh $(BUILD)
