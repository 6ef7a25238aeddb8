# dispatchd: single top-level Makefile (STYLE.md section 10).
#
#   make            build/release/dispatchd
#   make test       everything: deps, build, unit tests, local stack,
#                   integration and system tests, stack down
#   make unit       unit tests only (no network, no services)
#   make test-cluster  system tests against three Kafka brokers and a Redis
#                   Cluster (scripts/stack cluster mode), stack down
#   make integration-cluster  the store on a Redis Cluster it starts itself
#   make asan|tsan|valgrind|helgrind|fuzz|fmt|fmt-check|lint|demo|install|clean
#   (each installs what it needs: scripts/deps [test|lint|valgrind|fuzz])
#
# Each variant builds in build/<variant>/ (BUILD=release|asan|tsan|noopt|
# coverage). The user's CFLAGS/LDFLAGS are appended, never replaced.

SHELL   := /bin/bash
BUILD   ?= release
WERROR  ?= 1
PREFIX  ?= /usr/local
DESTDIR ?=
B       := build/$(BUILD)

DD_STD  = -std=c11 -D_GNU_SOURCE
DD_WARN = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wold-style-definition -Wformat=2 \
          -Wcast-align -Wpointer-arith -Wwrite-strings -Wvla -Wundef \
          -Wnull-dereference -Wfloat-equal -Wno-missing-field-initializers
ifeq ($(WERROR),1)
DD_WARN += -Werror
endif

OPT_release  = -O2 -g -fno-omit-frame-pointer
OPT_noopt    = -O0 -g
OPT_asan     = -O1 -g -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=all
OPT_tsan     = -O1 -g -fno-omit-frame-pointer -fsanitize=thread
OPT_coverage = -O0 -g --coverage
DD_OPT = $(OPT_$(BUILD))
LDOPT_asan     = -fsanitize=address,undefined
LDOPT_tsan     = -fsanitize=thread
LDOPT_coverage = --coverage

# Recursively expanded on purpose: pkg-config runs only when a compile
# needs it, so `make test` can install missing packages first.
PKGS      = rdkafka hiredis jansson libmicrohttpd libcrypto
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
CMOCKA_CFLAGS = $(shell pkg-config --cflags cmocka)
CMOCKA_LIBS   = $(shell pkg-config --libs cmocka)

DD_CFLAGS = $(DD_STD) $(DD_WARN) $(DD_OPT) -Iinclude -Isrc -MMD -MP \
            -DDD_BUILD_$(BUILD) $(PKG_CFLAGS) $(CFLAGS)
DD_LDFLAGS = $(LDOPT_$(BUILD)) $(LDFLAGS)
DD_LIBS    = $(PKG_LIBS) -lpthread -lm

SRCS      := $(wildcard src/*.c)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
LIB_OBJS  := $(LIB_SRCS:src/%.c=$(B)/obj/%.o)
TOOL_SRCS := $(wildcard tools/*.c)
TOOLS     := $(TOOL_SRCS:tools/%.c=$(B)/%)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/unit/%)
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
INTEG_BINS := $(INTEG_SRCS:tests/integration/%.c=$(B)/tests/integration/%)
FAKE_SRCS := $(wildcard tests/fakes/*.c)
TEST_HELPER_SRCS := $(wildcard tests/common/*.c)
TEST_HELPER_OBJS := $(TEST_HELPER_SRCS:tests/common/%.c=$(B)/obj/tests/%.o)

# Unit tests that never create an rd_kafka_t run under TSAN (STYLE.md 10).
TSAN_EXCLUDE ?= test_consumer test_consumer_mock test_producer test_pipeline
TSAN_UNIT_BINS = $(filter-out $(TSAN_EXCLUDE:%=$(B)/tests/unit/%),$(UNIT_BINS))

# Per-test link lists: tests/unit/deps.mk sets UNIT_DEPS_<test> (module
# names) and UNIT_FAKES_<test> (fake names). Default: the module named like
# the test, plus util and log.
-include tests/unit/deps.mk
unit_mods = $(sort util $(if $(wildcard src/log.c),log) \
              $(if $(wildcard src/$(1).c),$(1)) $(UNIT_DEPS_test_$(1)))

.PHONY: all test test-cluster unit integration integration-cluster asan tsan valgrind helgrind fuzz fuzz-bins fmt fmt-check lint demo bench \
        install clean noopt coverage tools unit-bins integration-bins
.DEFAULT_GOAL := all

all: $(B)/dispatchd tools

tools: $(TOOLS)

$(B)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(DD_CFLAGS) -c $< -o $@

$(B)/obj/tests/%.o: tests/common/%.c
	@mkdir -p $(@D)
	$(CC) $(DD_CFLAGS) $(CMOCKA_CFLAGS) -Itests/common -c $< -o $@

$(B)/obj/fakes/%.o: tests/fakes/%.c
	@mkdir -p $(@D)
	$(CC) $(DD_CFLAGS) -Itests/fakes -c $< -o $@

$(B)/libdd.a: $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/dispatchd: $(B)/obj/main.o $(B)/libdd.a
	$(CC) $(DD_LDFLAGS) -o $@ $^ $(DD_LIBS)

$(B)/%: tools/%.c $(B)/libdd.a
	@mkdir -p $(@D)
	$(CC) $(DD_CFLAGS) $(DD_LDFLAGS) -o $@ $< $(B)/libdd.a $(DD_LIBS)

.SECONDARY:
.SECONDEXPANSION:
$(B)/tests/unit/test_%: tests/unit/test_%.c \
        $$(foreach m,$$(call unit_mods,$$*),$(B)/obj/$$(m).o) \
        $$(foreach f,$$(UNIT_FAKES_test_$$*),$(B)/obj/fakes/$$(f).o)
	@mkdir -p $(@D)
	$(CC) $(DD_CFLAGS) $(CMOCKA_CFLAGS) -Itests/fakes -Itests/common \
	    $(DD_LDFLAGS) -o $@ $(filter %.c %.o,$^) $(CMOCKA_LIBS) $(DD_LIBS)

$(B)/tests/integration/test_%: tests/integration/test_%.c $(B)/libdd.a \
        $(TEST_HELPER_OBJS)
	@mkdir -p $(@D)
	$(CC) $(DD_CFLAGS) $(CMOCKA_CFLAGS) -Itests/common $(DD_LDFLAGS) \
	    -o $@ $< $(TEST_HELPER_OBJS) $(B)/libdd.a $(CMOCKA_LIBS) $(DD_LIBS)

unit-bins: $(UNIT_BINS)
integration-bins: $(INTEG_BINS) $(B)/dispatchd tools

# Unit tests only: no network, no services.
unit: unit-bins
	scripts/run-tests unit $(UNIT_BINS)

# Integration and system tests; expects a running stack (scripts/stack up)
# or DISPATCHD_TEST_BROKERS / DISPATCHD_TEST_REDIS_* in the environment.
# The store's Redis Cluster test runs under a cluster of its own (below).
integration: integration-bins
	scripts/run-tests integration $(filter-out %/test_store_cluster,$(INTEG_BINS))
	tests/integration/redis-cluster run scripts/run-tests integration-cluster \
	    $(B)/tests/integration/test_store_cluster
	BUILD=$(BUILD) scripts/run-system-tests

# The store on a Redis Cluster of its own (three masters with a replica
# each, ports 17101..17106): tests/integration/redis-cluster starts it,
# runs the test and stops it.
integration-cluster: $(B)/tests/integration/test_store_cluster
	tests/integration/redis-cluster run scripts/run-tests integration-cluster $<

test:
	scripts/test-all

# System tests against the clusters (tests/cluster): scripts/stack in
# cluster mode (three Kafka brokers, a Redis Cluster) in its own state
# folder .stack-cluster, started here and stopped afterwards, also on
# failure. DISPATCHD_STACK_REDIS=single keeps one plain redis-server.
test-cluster:
	scripts/deps
	$(MAKE) integration-bins
	t0=$$(date +%s); DISPATCHD_STACK_MODE=cluster DISPATCHD_STACK_DIR=$(CURDIR)/.stack-cluster \
	    BUILD=$(BUILD) scripts/with-stack .venv/bin/python -m pytest -p no:cacheprovider -q -rA \
	    --durations=0 tests/cluster && echo "make test-cluster: passed in $$(( $$(date +%s) - t0 ))s"

asan:
	scripts/deps
	$(MAKE) BUILD=asan unit-bins integration-bins
	DD_TEST_TIMEOUT_MULTIPLIER=3 scripts/with-stack $(MAKE) BUILD=asan unit integration

tsan:
	scripts/deps
	$(MAKE) BUILD=tsan $(filter-out $(TSAN_EXCLUDE:%=build/tsan/tests/unit/%),$(UNIT_SRCS:tests/unit/%.c=build/tsan/tests/unit/%))
	DD_TEST_TIMEOUT_MULTIPLIER=5 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	    scripts/run-tests tsan $(filter-out $(TSAN_EXCLUDE:%=build/tsan/tests/unit/%),$(UNIT_SRCS:tests/unit/%.c=build/tsan/tests/unit/%))

# libFuzzer harnesses (tests/fuzz/fuzz_<target>.c), built with clang in
# build/fuzz/: the modules each one links (tests/fuzz/deps.mk) compiled
# with the same sanitizers, each harness run for FUZZ_SECONDS on a scratch
# copy of tests/fuzz/corpus/<target>/. A crash fails; its input is kept in
# build/fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FB           := build/fuzz
FUZZ_SRCS    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=%)
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS   = $(DD_STD) $(DD_WARN) -O1 -g -fno-omit-frame-pointer \
                -Iinclude -Isrc -MMD -MP $(shell pkg-config --cflags jansson hiredis)
-include tests/fuzz/deps.mk
# The pkg-config packages a harness links: FUZZ_LIBS_<t>, default jansson.
fuzz_libs = $(or $(FUZZ_LIBS_$(1)),jansson)

$(FB)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FB)/fuzz_%: tests/fuzz/fuzz_%.c $$(foreach m,$$(FUZZ_DEPS_$$*),$(FB)/obj/$$(m).o)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ \
	    $(filter %.c %.o,$^) $(shell pkg-config --libs $(call fuzz_libs,$*)) -lm

fuzz-bins: $(FUZZ_TARGETS:%=$(FB)/fuzz_%)

fuzz:
	scripts/deps fuzz
	@echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return (int)(d[0] * 0 + n * 0); }' | \
	    $(FUZZ_CC) -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null || \
	    { echo "fuzz: $(FUZZ_CC) cannot link -fsanitize=fuzzer; install clang and libclang-rt-14-dev" >&2; exit 1; }
	$(MAKE) fuzz-bins
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run $(FB) $(FUZZ_TARGETS)

valgrind:
	scripts/deps valgrind
	$(MAKE) unit-bins
	DD_TEST_TIMEOUT_MULTIPLIER=10 DD_TEST_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --quiet" \
	    scripts/run-tests valgrind $(UNIT_BINS)

# The threaded unit tests (the rd_kafka ones too) under helgrind: data
# races, lock order, pthread API misuse. Known false positives (librdkafka's
# and C11 atomics, glibc's timed condvar wait) are in tests/helgrind.supp,
# each with its reason. test_log is left out: its stress loop takes minutes
# under helgrind, and TSan (make tsan) covers it.
HELGRIND_TESTS ?= test_queue test_offsets test_metrics test_pool test_producer \
                  test_consumer_mock
helgrind:
	scripts/deps valgrind
	$(MAKE) $(HELGRIND_TESTS:%=$(B)/tests/unit/%)
	DD_TEST_TIMEOUT_MULTIPLIER=10 DD_TEST_WRAPPER="valgrind --tool=helgrind --error-exitcode=99 --suppressions=tests/helgrind.supp --quiet" \
	    scripts/run-tests helgrind $(HELGRIND_TESTS:%=$(B)/tests/unit/%)

noopt:
	$(MAKE) BUILD=noopt all

coverage:
	$(MAKE) BUILD=coverage unit

FMT_FILES = $(shell git ls-files '*.c' '*.h')
fmt:
	clang-format -i $(FMT_FILES)

fmt-check:
	scripts/deps lint
	clang-format --dry-run -Werror $(FMT_FILES)

# The shell scripts: every file of scripts/ (and .ci/run) run by sh or bash.
SH_FILES = $(shell for f in scripts/* .ci/run; do \
               head -n1 "$$f" | grep -qE '^\#!.*(/|env )(ba)?sh$$' && echo "$$f"; done)
lint:
	scripts/deps lint
	shellcheck $(SH_FILES)
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
	    --inline-suppr -D__GNUC__ -Iinclude -Isrc src tools
	@# One file per run: clang-tidy 14 reports a false "uninitialized
	@# va_list" when it analyses several files in one invocation.
	@set -e; for f in $(SRCS) $(TOOL_SRCS); do \
	    clang-tidy --quiet $$f -- $(DD_STD) -Iinclude -Isrc $(PKG_CFLAGS) 2>/dev/null; \
	done; echo "lint: shellcheck, cppcheck and clang-tidy clean"

demo:
	scripts/demo

# Throughput, CPU per request and latency (not a test): the same backlogs
# drained by dd-passthrough, dispatchd of this tree and, with
# DD_BENCH_BASELINE=<commit>, dispatchd built from that commit; DD_BENCH_*
# in README "Performance".
bench:
	scripts/deps
	$(MAKE) all $(B)/bench/dd_openloop
	scripts/with-stack .venv/bin/python tests/bench/bench.py

# The open-loop sender of the latency mode (librdkafka only, not installed).
$(B)/bench/dd_openloop: tests/bench/dd_openloop.c
	@mkdir -p $(@D)
	$(CC) $(DD_STD) $(DD_WARN) $(DD_OPT) $(shell pkg-config --cflags rdkafka) $(CFLAGS) \
	    $(DD_LDFLAGS) -o $@ $< $(shell pkg-config --libs rdkafka)

install: $(B)/dispatchd tools
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(B)/dispatchd $(TOOLS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build

-include $(shell find $(B) -name "*.d" 2>/dev/null)
-include $(wildcard $(FB)/obj/*.d $(FB)/*.d)
