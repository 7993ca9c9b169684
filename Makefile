# sentry_relay - PGXS build, plus the project's entry points:
#
#   make deps    install the Debian packages the build and tests need
#   make test    build, install, and run every test (unit, pg_regress, TAP)
#   make demo    run the main job end to end on a throwaway cluster
#   make fuzz    run the libFuzzer targets for FUZZ_SECONDS each
#
# test, demo and deps work before pg_config exists: they install it first.

EXTENSION = sentry_relay
EXTVERSION = 0.4.0

MODULE_big = sentry_relay
OBJS = \
	src/sentry_relay.o \
	src/guc.o \
	src/decode_sql.o \
	src/decode_backend.o \
	src/decode_common.o \
	src/decode_event.o \
	src/decode_fast.o \
	src/decode_python.o \
	src/decode_commit.o \
	src/json_skim.o \
	src/json_text.o \
	src/state.o \
	src/shmem.o \
	src/stream.o \
	src/launcher.o \
	src/kafka.o \
	src/worker.o \
	src/events.o \
	src/commit_log.o \
	src/rebalance.o \
	src/gate.o \
	src/hold.o \
	src/batch.o \
	src/message.o \
	src/offset_mirror.o \
	src/worker_status.o \
	src/fetch_waker.o \
	src/store.o \
	src/job_rows.o \
	src/multi_insert.o

DATA = $(wildcard sql/$(EXTENSION)--*.sql)
PG_CPPFLAGS = -I$(srcdir)/src -DSR_EXTVERSION='"$(EXTVERSION)"'
# The server headers are included as system headers so that -Wextra judges
# our code, not PostgreSQL's inline functions.
PG_CFLAGS = -Wall -Wextra -Werror -isystem $(shell $(PG_CONFIG) --includedir-server 2>/dev/null)
SHLIB_LINK = -ljson-c -lrdkafka -lpthread

# make SANITIZE=address: build the extension with AddressSanitizer.  The
# server binary is not instrumented, so every server process must preload
# libasan; `make test SANITIZE=address` does that (see test/run-tests.sh and
# the README's Operations section).  Objects are rebuilt when SANITIZE changes.
SANITIZE ?=
ifneq ($(SANITIZE),)
PG_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -O1 -g
SHLIB_LINK += -fsanitize=$(SANITIZE)
endif
SR_FLAGS_STAMP = src/.sanitize-flags
$(shell echo '$(SANITIZE)' | cmp -s - $(SR_FLAGS_STAMP) 2>/dev/null || echo '$(SANITIZE)' > $(SR_FLAGS_STAMP))
$(OBJS): $(SR_FLAGS_STAMP)
# PGXS tracks no header dependencies (Debian's build has no autodepend): every
# object is rebuilt when any of our headers changes, so that a changed struct
# (the shared-memory slots, the worker) never links against stale objects
$(OBJS) $(OBJS:.o=.bc): $(wildcard src/*.h)
EXTRA_CLEAN = test/unit/test_state test/unit/test_decode test/unit/test_skim \
	test/unit/decode_dump test/fuzz/fuzz_event test/fuzz/fuzz_commit_log test/fuzz/fuzz_skim

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

.DEFAULT_GOAL := all

ifneq ($(wildcard $(PG_CONFIG)),)
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
else
all:
	$(CURDIR)/test/setup-deps.sh
	$(MAKE) all
install:
	$(CURDIR)/test/setup-deps.sh
	$(MAKE) install
endif

.PHONY: deps test demo fuzz fuzz-smoke unit bench bench-decode

deps:
	$(CURDIR)/test/setup-deps.sh

test: deps
	$(MAKE) all
	$(MAKE) install
	SR_SANITIZE=$(SANITIZE) $(CURDIR)/test/run-tests.sh

demo: deps
	$(MAKE) all
	$(MAKE) install
	$(CURDIR)/test/demo.sh

# Pure-C unit tests: no PostgreSQL needed; built with ASan and UBSan.
UNIT_CFLAGS = -O1 -g -Wall -Wextra -Werror -Isrc -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
test/unit/test_state: test/unit/test_state.c src/state.c src/state.h test/unit/tap.h
	$(CC) $(UNIT_CFLAGS) -o $@ test/unit/test_state.c src/state.c

# The pure decoder: what the unit tests, fuzzers and benchmarks link alone.
DECODER_SRCS = src/decode_common.c src/decode_event.c src/decode_fast.c \
	src/decode_python.c src/decode_commit.c src/json_skim.c src/json_text.c
DECODER_DEPS = $(DECODER_SRCS) src/decode.h src/decode_internal.h src/json_skim.h src/json_text.h

test/unit/test_decode: test/unit/test_decode.c $(DECODER_DEPS) test/unit/tap.h
	$(CC) $(UNIT_CFLAGS) -o $@ test/unit/test_decode.c $(DECODER_SRCS) -ljson-c -lm

test/unit/test_skim: test/unit/test_skim.c $(DECODER_DEPS) test/unit/tap.h
	$(CC) $(UNIT_CFLAGS) -o $@ test/unit/test_skim.c $(DECODER_SRCS) -ljson-c -lm

# The C side of the differential test against the Python reference decoder
# (test/t/076_decoder_differential.pl): one JSON line per message of a file.
test/unit/decode_dump: test/unit/decode_dump.c $(DECODER_DEPS) test/fuzz/fuzz_common.h
	$(CC) $(UNIT_CFLAGS) -o $@ test/unit/decode_dump.c $(DECODER_SRCS) -ljson-c -lm

unit: test/unit/test_state test/unit/test_decode test/unit/test_skim test/unit/decode_dump

FUZZ_SECONDS ?= 600
fuzz: deps
	$(CURDIR)/test/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-smoke:
	$(CURDIR)/test/fuzz/run.sh 10

# Job queue benchmark (as root, after `make install`): claim_jobs/complete_jobs
# against a plain DELETE ... FOR UPDATE SKIP LOCKED baseline, and claim latency
# over millions of jobs.  Prints a table; writes test/bench/results/queue.json.
.PHONY: bench-queue
bench-queue:
	$(CURDIR)/test/bench/queue_bench.sh

# Relay benchmark (issues #5, #16): every scenario on a throwaway cluster, on
# the mock Kafka cluster and on a real one (test/kafka); prints a table, writes
# test/bench/results/ (docs/performance.md).  Not in make test.
bench: deps
	$(MAKE) all
	$(MAKE) install
	$(MAKE) -C test/kafka_mock
	$(CURDIR)/test/bench/relay_bench.sh

# Decoder micro-benchmark: the skim and fast path against json-c's whole
# parse, on 20,000 messages of the bench corpus (BENCH_DECODE_ARGS: corpus
# options).  Needs no server.
test/bench/decode_bench: test/bench/decode_bench.c $(DECODER_DEPS)
	$(CC) -O2 -g -Wall -Wextra -Werror -Isrc -o $@ test/bench/decode_bench.c $(DECODER_SRCS) -ljson-c -lm

bench-decode: test/bench/decode_bench
	/usr/bin/python3 test/bench/relay_corpus.py events /tmp/sentry_relay_decode_corpus \
		--topic events --partitions 8 --count 20000 $(BENCH_DECODE_ARGS) >/dev/null
	test/bench/decode_bench /tmp/sentry_relay_decode_corpus 5

# Chaos soak (issue #6): faults at random times against a 3-broker mock
# cluster; CHAOS_SECONDS long (a 2-minute version runs inside make test).
CHAOS_SECONDS ?= 900
.PHONY: chaos
chaos: deps
	$(MAKE) all
	$(MAKE) install
	$(MAKE) -C test/kafka_mock
	CHAOS_SECONDS=$(CHAOS_SECONDS) $(CURDIR)/test/chaos/run.sh
