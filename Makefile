# Fieldstack: the two set-up commands are `make run` and `make test` (see README.md).
# PRESET picks a CMake preset from CMakePresets.json (dev, asan, release).

PRESET ?= dev
RUN_PRESET ?= release
CONFIG ?=
JOBS ?= $(shell nproc)

.PHONY: all deps build test run bench bench-upload bench-shares bench-endpoints bench-tiering bench-compute bench-inference fuzz asan faults-long crash-long format clean

# libFuzzer targets (clang, fuzz preset); `make test` runs each for FUZZ_SECONDS.
FUZZERS = http_fuzz s3_fuzz blob_fuzz
FUZZ_SECONDS ?= 15

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build --preset $(PRESET) -j $(JOBS)

# Builds with warnings as errors, runs the fuzzers briefly, then every test; ctest's summary is
# the last output.
test: build fuzz
	@ctest --preset $(PRESET) -j $(JOBS)

fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j $(JOBS) --target $(FUZZERS)
	@scripts/run-fuzzers build/fuzz $(FUZZ_SECONDS) $(FUZZERS)

# Builds an optimized daemon and runs it in the foreground. Without CONFIG, a local Azurite
# stands in for the cloud and the default share uploads to it (scripts/run-local).
run: deps
	@cmake --preset $(RUN_PRESET) >/dev/null
	@cmake --build --preset $(RUN_PRESET) -j $(JOBS) --target fieldstack web
	@echo "Starting fieldstack; stop it with Ctrl-C."
	@$(if $(CONFIG),exec build/$(RUN_PRESET)/src/daemon/fieldstack serve --config $(CONFIG),\
	  exec scripts/run-local build/$(RUN_PRESET)/src/daemon/fieldstack)

bench: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS) --target store_bench upload_bench
	@build/release/bench/store_bench $(BENCH_ARGS)
	@build/release/bench/upload_bench

bench-shares: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS) --target shares_bench
	@build/release/bench/shares_bench $(BENCH_ARGS)

bench-endpoints: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS) --target endpoints_bench
	@build/release/bench/endpoints_bench $(BENCH_ARGS)

bench-upload: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS) --target upload_bench
	@build/release/bench/upload_bench $(BENCH_ARGS)

bench-tiering: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS) --target tiering_bench
	@build/release/bench/tiering_bench $(BENCH_ARGS)

bench-compute: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS) --target compute_bench
	@build/release/bench/compute_bench $(BENCH_ARGS)

bench-inference: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS) --target inference_bench
	@build/release/bench/inference_bench $(BENCH_ARGS)

asan:
	@$(MAKE) test PRESET=asan

# The crash test with many more kills than CI's 200 (KILLS=N to choose).
faults-long: build
	@FS_FAULT_FILES=2000 build/$(PRESET)/src/sync/sync_test --gtest_filter='UploaderFault*'

crash-long: build
	@FS_CRASH_KILLS=$(or $(KILLS),5000) build/$(PRESET)/test/crash/store_crash_test

format:
	@find src test bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf build
