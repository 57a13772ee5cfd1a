# Thin front door over CMake. `make` builds into build/, `make test` runs every test,
# `make install PREFIX=/opt/runnel` installs the binaries, librunnel and runnel.pc.
BUILD      ?= build
SAN_BUILD  ?= build-sanitize
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_OPTS ?=
PREFIX     ?= /usr/local

.PHONY: all build deps demo test install sanitize bench fuzz soak clean

all: build

deps:
	@scripts/install-deps.sh

# A failed configure leaves a CMakeCache.txt behind; remove it so the next make configures again.
$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) -DRUNNEL_WERROR=ON $(CMAKE_OPTS) >/dev/null || \
		{ rm -f $(BUILD)/CMakeCache.txt; exit 1; }

build: $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j $(JOBS)

demo: deps build
	@scripts/demo.sh $(BUILD)

test: deps build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The prefix is chosen at install time (runnel.pc locates itself), so one build installs anywhere.
# DESTDIR is honoured for staged installs.
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

sanitize: deps
	@cmake -S . -B $(SAN_BUILD) -DRUNNEL_SANITIZE=ON -DRUNNEL_WERROR=ON $(CMAKE_OPTS) >/dev/null
	@cmake --build $(SAN_BUILD) -j $(JOBS)
	@cd $(SAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)

bench: deps build
	@scripts/install-deps.sh --bench
	@bench/run.sh $(BUILD)

# The cluster soak (not part of make test): random SIGKILL/SIGSTOP/SIGTERM of one broker at a
# time under an acks=all load for SOAK_SECONDS, then exactly-once and byte-for-byte checks.
SOAK_SECONDS ?= 120
soak: deps build
	@cd $(BUILD)/tests/integration && TMPDIR=$$PWD RUNNEL_BROKER_BIN=$(abspath $(BUILD))/broker/runnel-broker \
		SOAK_SECONDS=$(SOAK_SECONDS) ./itest_cluster_chaos

fuzz: deps
	@CC=clang cmake -S . -B build-fuzz -DRUNNEL_FUZZ=ON $(CMAKE_OPTS) >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) build-fuzz
