#!/bin/bash
# relay_bench.sh - the relay benchmark (`make bench`, as root; issues #5, #16).
# Runs itself once per broker (BENCH_BROKERS, default "mock real"; see
# docs/performance.md): librdkafka's mock cluster (test/kafka_mock/sr_kafka_mock),
# then a one-node Apache Kafka (test/kafka/cluster.sh, driven through the same
# helper with --bootstrap), both with the topics as Sentry creates them
# (events: lz4, LogAppendTime, max.message.bytes 25000000; the commit log: one
# partition, compact,delete, lz4), and prints both side by side.  Each run:
# on a throwaway PostgreSQL 15 cluster with sentry_relay preloaded, with a
# deterministic corpus of Sentry traffic (relay_corpus.py: v2 inserts with
# realistic event bodies, median ~2 KB with a tail to 1 MB, 5% replacements,
# 0.1% bad messages):
#
#  A  drain throughput, body decoding: the corpus (no headers) is already in
#     Kafka; the stream's workers have their partitions; the commit log is
#     advanced to the end of every partition, and the time runs from that
#     produce until the last job's commit (pg_xact_commit_timestamp, with
#     track_commit_timestamp = on).  With 1 and 2 workers (BENCH_WORKERS).
#     Each run is followed by the same drain with sentry_relay.fetch_wakeup
#     off (A_nowake; BENCH_NOWAKE=0 skips), reported as off / on.
#  B  the same with the modern task headers (decoded without the body).
#  C  COPY of the same job rows (exported from run A) from a file into a
#     table LIKE sentry_relay.jobs INCLUDING ALL, with its storage parameters
#     (fillfactor), and with the same columns the relay writes; measured
#     BENCH_C_REPS times between the A and B runs.
#     A and B are reported as ratios of their jobs/s to C's rows/s.
#  PA, PB  the Python peer (BENCH_PY=1): after A's runs and after B's, the
#     same corpus drained by python_forwarder.py, one process (Sentry's
#     SynchronizedConsumer with its commit-log thread, pause/resume gate and
#     protocol.py decoding, headers first; batches COPYed into a table LIKE
#     sentry_relay.jobs by a writer thread, then Kafka offsets committed:
#     at-least-once), on the same cluster, timed as A/B are: from the
#     commit-log produce to the last row's commit.  Unlike the relay's
#     workers it has read nothing ahead before the clock starts (its gate
#     pauses a partition with no remote offset).  A and B are also reported
#     as ratios to it.  In BENCH_QUICK mode (or BENCH_PY_CHECK=1) a check of
#     the peer runs first: a small corpus, body and headers, gated at half
#     of each partition, then released; every job once, none past the gate,
#     rows equal to sentry_relay.decode_event_message's and to the relay's.
#  D  latency: steady traffic at BENCH_D_RATE messages/s, the commit log
#     trailing by one batch (100 ms ticks); runs: d (a 5 ms fetch.wait.max.ms,
#     mock only), d_default (the relay's defaults: the target's run) and
#     d_default_nowake (fetch_wakeup off); per commit-log entry, the time
#     from its produce to the commit of its last job: p50, p99, max.
#  E  memory of the worker (/proc/PID/status, sampled every 20 ms, peak reset
#     per phase): a backlog of BENCH_E_MSGS small messages grows behind a
#     stalled commit log (RSS after each step: it must stay flat, which shows
#     librdkafka's queues are bounded), then drains (its rate: the backlog's
#     messages, those timed, over their time); then a topic where
#     BENCH_E_BIG-byte messages are in the mix drains.
#  F  throughput against partitions (BENCH_F_PARTS, same messages) and
#     against message size (BENCH_F_SIZES, same bytes), BENCH_F_WORKERS
#     workers, body decoding.
#  P  (BENCH_PERF=1) an extra run of A (or of BENCH_PERF_OF=B) with one
#     worker under `perf record -e cpu-clock -g`; the top of the profile
#     goes to results/relay_perf.txt.
#
# F and P run on the mock only by default.  Durability settings are
# PostgreSQL's defaults.  Results: test/bench/results/relay.txt (each broker's
# table, then both side by side), and per broker test/bench/results/BROKER/:
# relay.json (machine-readable), relay.txt (the printed table),
# relay_workers.png, relay_msgsize.png, relay_partitions.png and relay_raw/
# (runs.jsonl, samples, latencies, profile, server log excerpt).
#
# Knobs (environment):
#   BENCH_QUICK=1          everything small (a few minutes), for development
#   BENCH_BROKERS          "mock real" (default), or one of them
#   BENCH_KAFKA_JVM_OPTS   the real broker's JVM ("-XX:+UseSerialGC -XX:-UsePerfData");
#                          BENCH_KAFKA_HEAP_OPTS ("-Xmx1g -Xms256m")
#   BENCH_NOWAKE           1 (default): A and D with sentry_relay.fetch_wakeup off too
#   BENCH_SCENARIOS        which of "A B C D E F" to run (default all on the mock,
#                          "A B C D E" on the real broker; C needs A)
#   BENCH_MSGS             A/B/C corpus messages (50000; quick 20000)
#   BENCH_PARTITIONS       A/B partitions (128; the mock keeps ~5 MB each)
#   BENCH_WORKERS          worker counts for A and B ("1 2")
#   BENCH_AB_REPS          runs of each A and B worker count (3; quick 1): the
#                          median run is reported
#   BENCH_C_REPS           COPY repetitions (3)
#   BENCH_PY               1 (default) runs the Python peer PA/PB after A/B; 0 skips
#   BENCH_PY_REPS          runs of each (BENCH_AB_REPS); the median is reported
#   BENCH_PY_ARGS          extra python_forwarder.py options (batching, ...)
#   BENCH_PY_CHECK         the peer's check first (default: 1 in quick mode, else 0)
#   BENCH_D_RATE           messages/s (5000); BENCH_D_SECONDS (15; quick 8);
#   BENCH_D_PARTITIONS     (16); BENCH_D_WORKERS (1); BENCH_D_HEADERS (0)
#   BENCH_D_KAFKA_OPTS     librdkafka properties of D's stream ('"fetch.wait.max.ms":
#                          "5"': the mock holds an empty fetch for the whole wait,
#                          a broker answers when data arrives); BENCH_D_DEFAULT=1
#                          (default) adds a run "d_default" with the relay's own
#   BENCH_E_MSGS           backlog (300000; quick 100000); BENCH_E_PARTITIONS
#                          (128); BENCH_E_STEPS (10); BENCH_E_BIG (5000000 bytes)
#   BENCH_F_PARTS          ("1 8 64"); BENCH_F_PART_MSGS (5000, ~0.8 KB each);
#                          BENCH_F_PART_REPS (3: the median is reported)
#   BENCH_F_SIZES          ("512 2048 16384 262144"); BENCH_F_BYTES (33554432;
#                          quick 16777216) per size, but at least BENCH_F_MIN_PER_PART
#                          (8) messages per partition; BENCH_F_WORKERS (1)
#   BENCH_PERF             1 (default on the mock) profiles a run of A; 0 skips
#   BENCH_PERF_SECONDS     profile length cap (20)
#   BENCH_PERF_OF          which drain to profile, A (default) or B
#   BENCH_PERF_ARGS        perf record's options ("-e cpu-clock -g"); for
#                          off-CPU waits, "-e sched:sched_switch -g" and
#                          BENCH_KEEP=1, then `perf sched timehist`
#   BENCH_WARMUP           1 (default): an unreported drain of the A (or B) corpus
#                          first, so that the first measured run does not pay for
#                          creating WAL segments and touching shared_buffers
#   BENCH_KAFKA_OPTS       extra librdkafka properties for every stream, as JSON
#                          members, e.g. '"fetch.wait.max.ms": "20"'
#   BENCH_PORT (54351), BENCH_CONF (extra postgresql.conf lines), BENCH_KEEP=1
#                          keeps the work directory (server log, Kafka log)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$REPO/test/bench
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGBIN=$($PG_CONFIG --bindir)
PY=/usr/bin/python3
MOCK=$REPO/test/kafka_mock/sr_kafka_mock
QUICK=${BENCH_QUICK:-0}
q() { if [ "$QUICK" = 1 ]; then echo "$2"; else echo "$1"; fi; }
BROKERS=${BENCH_BROKERS:-mock real}
BROKER=${BENCH_BROKER:-}
RESULTS=$BENCH/results
if [ -z "$BROKER" ]; then
	# the parent: one run of this script per broker, then the side-by-side table
	START0=$(date +%s)
	mkdir -p "$RESULTS"
	rm -rf "$RESULTS/relay_raw" "$RESULTS"/relay_*.png
	for b in $BROKERS; do
		echo "=== broker: $b ==="
		BENCH_BROKER=$b "$0"
	done
	args=()
	for b in $BROKERS; do args+=("$b=$RESULTS/$b/relay.json"); done
	{
		for b in $BROKERS; do echo "=============== broker: $b ==============="; cat "$RESULTS/$b/relay.txt"; echo; done
		/usr/bin/python3 "$BENCH/relay_report.py" --compare "${args[@]}" --elapsed $(($(date +%s) - START0))
	} >"$RESULTS/relay.txt"
	/usr/bin/python3 "$BENCH/relay_report.py" --compare "${args[@]}" --elapsed $(($(date +%s) - START0))
	echo "results: $RESULTS/relay.txt (both brokers), $RESULTS/{$(echo $BROKERS | tr ' ' ,)}/"
	exit 0
fi
case $BROKER in mock | real) ;; *) echo "BENCH_BROKER: mock or real, not $BROKER" >&2; exit 2 ;; esac
RESULTS=$RESULTS/$BROKER
# F (scaling) and the profile run on the mock only by default
if [ "$BROKER" = mock ]; then SCEN_DEFAULT="A B C D E F"; PERF_DEFAULT=1; else SCEN_DEFAULT="A B C D E"; PERF_DEFAULT=0; fi
SCENARIOS=${BENCH_SCENARIOS:-$SCEN_DEFAULT}
MSGS=${BENCH_MSGS:-$(q 50000 20000)}
PARTS=${BENCH_PARTITIONS:-128}
WORKERS=${BENCH_WORKERS:-1 2}
C_REPS=${BENCH_C_REPS:-3}
D_RATE=${BENCH_D_RATE:-5000}
D_SECONDS=${BENCH_D_SECONDS:-$(q 15 8)}
D_PARTS=${BENCH_D_PARTITIONS:-16}
D_WORKERS=${BENCH_D_WORKERS:-1}
D_HEADERS=${BENCH_D_HEADERS:-0}
D_KAFKA_OPTS=${BENCH_D_KAFKA_OPTS-'"fetch.wait.max.ms": "5"'}
D_DEFAULT=${BENCH_D_DEFAULT:-1}
E_MSGS=${BENCH_E_MSGS:-$(q 300000 100000)}
E_PARTS=${BENCH_E_PARTITIONS:-128}
E_STEPS=${BENCH_E_STEPS:-10}
E_BIG=${BENCH_E_BIG:-5000000}
F_PARTS=${BENCH_F_PARTS:-1 8 64}
F_PART_MSGS=${BENCH_F_PART_MSGS:-5000}
F_PART_REPS=${BENCH_F_PART_REPS:-3}
F_SIZES=${BENCH_F_SIZES:-512 2048 16384 262144}
F_BYTES=${BENCH_F_BYTES:-$(q 33554432 16777216)}
# at least this many messages per partition in a size corpus: a restart drain
# does not time the first message of each partition (see drain_run)
F_MIN_PER_PART=${BENCH_F_MIN_PER_PART:-8}
F_WORKERS=${BENCH_F_WORKERS:-1}
PERF=${BENCH_PERF:-$PERF_DEFAULT}
PERF_SECONDS=${BENCH_PERF_SECONDS:-20}
PERF_OF=${BENCH_PERF_OF:-A}
PERF_ARGS=${BENCH_PERF_ARGS:--e cpu-clock -g}
WARMUP=${BENCH_WARMUP:-1}
AB_REPS=${BENCH_AB_REPS:-$(q 3 1)}
PY_ON=${BENCH_PY:-1}
PY_REPS=${BENCH_PY_REPS:-$AB_REPS}
PY_ARGS=${BENCH_PY_ARGS:-}
PY_CHECK=${BENCH_PY_CHECK:-$QUICK}
# the relay's fetcher wake-up (sentry_relay.fetch_wakeup) off too, for A and D
NOWAKE=${BENCH_NOWAKE:-1}
[ "$PY_ON" = 1 ] || PY_CHECK=0
PORT=${BENCH_PORT:-54351}
RUN_AS=postgres
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }

if [ ! -f "$($PG_CONFIG --sharedir)/extension/sentry_relay.control" ] ||
	[ ! -f "$($PG_CONFIG --pkglibdir)/sentry_relay.so" ]; then
	echo "sentry_relay is not installed for $PG_CONFIG: run make install first" >&2
	exit 1
fi
[ -x "$MOCK" ] || { echo "build the Kafka mock first: make -C test/kafka_mock" >&2; exit 1; }
command -v gnuplot >/dev/null || echo "WARNING: gnuplot not found (make deps installs gnuplot-nox): no plots" >&2

WORK=$(mktemp -d /tmp/sentry_relay_relaybench.XXXXXX)
chmod 755 "$WORK"
as_user() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$WORK"
PERF_PID=
SAMPLER_PID=
PY_PID=
cleanup() {
	[ -n "$PERF_PID" ] && kill "$PERF_PID" 2>/dev/null || true
	[ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
	[ -n "${PY_PID:-}" ] && kill "$PY_PID" 2>/dev/null || true
	as_user "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
	if [ -n "${KAFKA_PID:-}" ]; then
		echo quit >&"${KAFKA[1]}" 2>/dev/null || true
		wait "$KAFKA_PID" 2>/dev/null || true
	fi
	[ "$BROKER" = real ] && "$REPO/test/kafka/cluster.sh" stop --kill "$WORK/kafka" >/dev/null 2>&1 || true
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql() { psql_q -At -c "$1"; }
log() { echo "[$(date +%H:%M:%S)] $*"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
START=$(date +%s)
RUNS=$WORK/runs.jsonl
: >"$RUNS"
RAW=$WORK/raw
mkdir -p "$RAW"

# --- Kafka: the mock cluster, driven through a coprocess ---------------------
# BENCH_BROKER=real: a one-node Apache Kafka (KRaft, test/kafka/cluster.sh),
# driven through the same helper in --bootstrap mode (same protocol; topics by
# the CreateTopics admin API with Sentry's settings).  Its JVM: serial GC
# (2 cores), C2 allowed (cluster.sh's default stops at C1, for start-up time)
if [ "$BROKER" = real ]; then
	export SR_KAFKA_CLASSPATH=${SR_KAFKA_CLASSPATH:-$("$REPO/test/kafka/fetch.sh")}
	export SR_KAFKA_JVM_OPTS=${BENCH_KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:-UsePerfData}
	export SR_KAFKA_HEAP_OPTS=${BENCH_KAFKA_HEAP_OPTS:--Xmx1g -Xms256m}
	REAL_BOOT=$("$REPO/test/kafka/cluster.sh" start --nodes 1 --owner $$ "$WORK/kafka") ||
		{ echo "the Kafka cluster did not start" >&2; exit 1; }
	chmod -R a+rX "$WORK/kafka"
	coproc KAFKA { "$MOCK" --bootstrap "$REAL_BOOT" -X message.max.bytes=10000000 -X linger.ms=100 2>"$WORK/kafka.log"; }
else
	coproc KAFKA { "$MOCK" --brokers 1 -X message.max.bytes=10000000 -X linger.ms=100 2>"$WORK/kafka.log"; }
fi
KAFKA_PID=$KAFKA_PID
read -r -t 60 word BOOTSTRAP <&"${KAFKA[0]}" || true
[ "${word:-}" = BOOTSTRAP ] || { echo "the Kafka helper did not start" >&2; cat "$WORK/kafka.log" >&2; exit 1; }
# the broker's process, for its CPU time: the mock's own (the coprocess may be
# a subshell around it), or the JVM
if [ "$BROKER" = real ]; then
	MOCK_PID=$(cat "$WORK/kafka/node1/pid")
else
	MOCK_PID=$(pgrep -P "$KAFKA_PID" -f sr_kafka_mock || echo "$KAFKA_PID")
fi
# kafka CMD...: one command; its answer (after "OK ") goes to $KREPLY
kafka() {
	local reply
	echo "$*" >&"${KAFKA[1]}"
	read -r -t 900 reply <&"${KAFKA[0]}" || { echo "kafka: no answer to: $*" >&2; exit 1; }
	case "$reply" in
	OK*) KREPLY=${reply#OK}; KREPLY=${KREPLY# } ;;
	*) echo "kafka: $* -> $reply" >&2; exit 1 ;;
	esac
}
# topics as Sentry creates them (sentry-kafka-schemas topics/*.yaml; the same
# settings as test/perl/SentryRelay/KafkaReal.pm).  The mock checks and ignores them
EVENTS_CFG="compression.type=lz4 message.timestamp.type=LogAppendTime max.message.bytes=25000000 retention.ms=86400000"
COMMIT_CFG="cleanup.policy=compact,delete compression.type=lz4 min.compaction.lag.ms=3600000 retention.ms=86400000 segment.bytes=104857600 segment.ms=3600000"
# shellcheck disable=SC2086 # lists of settings
create_events_topic() { kafka create_topic "$1" "$2" 1 $EVENTS_CFG; }
# shellcheck disable=SC2086
kafka create_topic snuba-commit-log 1 1 $COMMIT_CFG

# --- the server ---------------------------------------------------------------
as_user "$PGBIN/initdb" -D "$WORK/data" -A trust -U postgres >/dev/null
cat >>"$WORK/data/postgresql.conf" <<CONF
shared_preload_libraries = 'sentry_relay'
sentry_relay.database = 'postgres'
sentry_relay.bootstrap_servers = '$BOOTSTRAP'
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT
max_connections = 50
max_worker_processes = 24
track_commit_timestamp = on
# sized for a 2-core, 24 GB machine; durability settings stay at their defaults
shared_buffers = 1GB
effective_cache_size = 16GB
maintenance_work_mem = 512MB
work_mem = 16MB
max_wal_size = 16GB
min_wal_size = 2GB
checkpoint_timeout = 30min
log_checkpoints = on
log_line_prefix = '%n [%p] '
${BENCH_CONF:-}
CONF
as_user "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
sql "CREATE EXTENSION sentry_relay"
# jobs_like TABLE: a table like the queue, for C's COPY and the Python peer.
# LIKE copies no storage parameters: give it the queue's own (fillfactor and
# autovacuum settings), so that it is loaded like the relay's
jobs_like() {
	sql "CREATE TABLE $1 (LIKE sentry_relay.jobs INCLUDING ALL)"
	sql "DO \$\$ BEGIN EXECUTE format('ALTER TABLE $1 SET (%s)', (SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = 'sentry_relay.jobs'::regclass)); END \$\$"
}
jobs_like bench_copy

# wait_sql SQL WANT TIMEOUT: poll until SQL returns WANT, or fail
wait_sql() {
	local deadline=$((SECONDS + $3)) got=
	while [ $SECONDS -lt $deadline ]; do
		got=$(sql "$1" 2>/dev/null || true)
		[ "$got" = "$2" ] && return 0
		sleep 0.2	# poll interval
	done
	echo "timed out after $3 s waiting for: $1 (got '$got', want '$2')" >&2
	tail -20 "$WORK/server.log" >&2
	exit 1
}

# the consumer-group timings the mock needs; fetch settings stay librdkafka's
# and the relay's defaults unless BENCH_KAFKA_OPTS adds some
FAST_OPTS='"session.timeout.ms": "6000", "heartbeat.interval.ms": "500", "max.poll.interval.ms": "60000", "topic.metadata.refresh.interval.ms": "1000", "reconnect.backoff.max.ms": "500"'
[ -n "${BENCH_KAFKA_OPTS:-}" ] && FAST_OPTS="$FAST_OPTS, $BENCH_KAFKA_OPTS"

# corpus NAME TOPIC PARTS ARGS...: generate, produce, check nothing was
# dropped by the mock's retention; sets CORPUS_JSON (CORPUS_KEEP=1 keeps
# the produce file, $WORK/NAME.txt)
corpus() {
	local name=$1 topic=$2 parts=$3 file=$WORK/$1.txt
	shift 3
	$PY "$BENCH/relay_corpus.py" events "$file" --topic "$topic" --partitions "$parts" "$@" >/dev/null
	chmod 644 "$file"
	cp "$file.json" "$RAW/corpus_$name.json"
	CORPUS_JSON=$RAW/corpus_$name.json
	create_events_topic "$topic" "$parts"
	local t=$(now)
	kafka produce_file "$file"
	log "  $name: produced $KREPLY messages in $(calc "$(now) - $t") s"
	[ "${CORPUS_KEEP:-0}" = 1 ] || rm -f "$file"
	check_retained "$topic" "$parts"
}
# check_retained TOPIC PARTS: every partition still starts at offset 0
check_retained() {
	local p
	for p in $(seq 0 $(($2 - 1))); do
		kafka end_offsets "$1" "$p"
		if [ "${KREPLY%% *}" != 0 ]; then
			echo "the mock dropped messages of $1 partition $p (watermarks $KREPLY):" \
				"fewer messages or more partitions, please" >&2
			exit 1
		fi
	done
}
# commit_file STREAM TOPIC PARTS OFFSETS: write the commit-log entries by
# which the writer (group g_STREAM) commits OFFSETS, to $WORK/commit.txt
commit_file() {
	$PY "$BENCH/relay_corpus.py" commit "$WORK/commit.txt" --topic "$2" --partitions "$3" \
		--group "g_$1" --offsets "$4" --ts "$(now)"
	chmod 644 "$WORK/commit.txt"
}
# commit_send: produce the entries commit_file wrote.  A timed drain starts
# its clock just before this, not before commit_file: writing the file (and
# reading the corpus's offsets) starts Python twice, 40-60 ms on this machine
commit_send() { kafka produce_file "$WORK/commit.txt"; }
# commit_to STREAM TOPIC PARTS OFFSETS: the writer commits, untimed
commit_to() {
	commit_file "$@"
	commit_send
}
# start_stream NAME TOPIC PARTS WORKERS: create it; wait for its workers
# to run and hold every partition
start_stream() {
	sql "SELECT sentry_relay.create_stream('$1', '$2', 'snuba-commit-log', ARRAY['g_$1'],
		consumer_group => 'cg_$1', workers => $4, options => '{\"kafka\": {$FAST_OPTS}}')" >/dev/null
	stream_up "$1" "$3" "$4"
}
# stream_up NAME PARTS WORKERS: wait for its workers to run and hold every partition
stream_up() {
	wait_sql "SELECT count(*) FROM sentry_relay.workers WHERE stream = '$1' AND status = 'running'" "$3" 120
	wait_sql "SELECT count(*) FROM sentry_relay.partitions WHERE stream = '$1' AND worker_pid IS NOT NULL" "$2" 120
}
drop_stream() {
	sql "SELECT sentry_relay.drop_stream('$1')" >/dev/null
	wait_sql "SELECT count(*) FROM sentry_relay.workers WHERE stream = '$1'" 0 60
}
# set_wakeup on|off: sentry_relay.fetch_wakeup (PGC_SIGHUP); every measured
# stream is created afterwards, so its workers start with it
set_wakeup() {
	sql "ALTER SYSTEM SET sentry_relay.fetch_wakeup = $1" >/dev/null
	sql "SELECT pg_reload_conf()" >/dev/null
	wait_sql "SHOW sentry_relay.fetch_wakeup" "$1" 30
}
fresh_tables() {
	sql "TRUNCATE sentry_relay.jobs, sentry_relay.dead_letters"
	sql "CHECKPOINT"
}
# json_get FILE KEY: a top-level value of a JSON file
json_get() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# cpu_ticks PID...: user + system CPU time of the processes, in clock ticks
cpu_ticks() {
	local t=0 p
	for p in "$@"; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo $t
}

# rep_suffix N: a repeated run's name suffix ("" for the first, "_rN" after)
rep_suffix() { [ "$1" = 1 ] || echo "_r$1"; }

# machine_ticks: busy and total CPU ticks of the whole machine (/proc/stat)
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }

# drain_run SCENARIO NAME TOPIC PARTS WORKERS CORPUS_JSON [perf]: one drain
# measurement (see A); appends a JSON line to $RUNS, and the drain's
# transactions to $RAW/batches_NAME.txt.
#
# DRAIN_MODE=gate (A, B): the stream's workers hold their partitions, and have
# read ahead into the hold, when the commit log moves every partition to its
# end; the clock starts at that produce.
#
# DRAIN_MODE=restart (F): a backlog that fits in the hold (every F corpus
# does: the hold counts decoded rows, not messages) would be fetched and
# decoded before that clock starts.  So the stream first relays the first
# message of each partition and stops, as a relay restarted on a backlog
# would have; then the writer commits the rest, the stream starts again,
# and the clock starts at its worker's "assigned" log line.  Its partitions
# then start at their stored offsets: a partition that has none waits about
# 100 ms in librdkafka 2.0.2's offset reset, once in its life, which would
# be most of a 5,000-message drain.  The first messages are not counted.
DRAIN_MODE=gate
# drain_commits TABLE STREAM T0: the first and last commit times of the
# stream's rows committed after T0 (DRAIN_TF, DRAIN_T1), and the drain's
# transactions (commit time after T0 in ms, jobs, partitions) in
# $RAW/batches_STREAM.txt
drain_commits() {
	read -r DRAIN_TF DRAIN_T1 <<<"$(sql "SELECT extract(epoch FROM min(pg_xact_commit_timestamp(xmin))) || ' ' || extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) FROM $1 WHERE stream = '$2' AND pg_xact_commit_timestamp(xmin) >= to_timestamp($3)")"
	sql "COPY (SELECT round(((extract(epoch FROM pg_xact_commit_timestamp(x)) - $3) * 1000)::numeric, 1), n, p FROM (SELECT xmin::text::xid AS x, count(*) AS n, count(DISTINCT partition) AS p FROM $1 WHERE stream = '$2' AND pg_xact_commit_timestamp(xmin) >= to_timestamp($3) GROUP BY xmin::text) b ORDER BY 1) TO STDOUT" \
		>"$RAW/batches_$2.txt"
}
drain_run() {
	local scen=$1 name=$2 topic=$3 parts=$4 workers=$5 cj=$6 prof=${7:-}
	local msgs msgs_timed jobs bad t0 tf t1 got pid pids cpu0 cpu mcpu0 mcpu m0 m1 logpos
	msgs=$(json_get "$cj" messages)
	msgs_timed=$msgs
	jobs=$(json_get "$cj" jobs)
	bad=$(json_get "$cj" bad)
	fresh_tables
	if [ "$DRAIN_MODE" = restart ]; then
		commit_to "$name" "$topic" "$parts" "$(seq 1 "$parts" | sed 's/.*/1/' | paste -sd,)"
		start_stream "$name" "$topic" "$parts" "$workers"
		wait_sql "SELECT coalesce(sum(local_offset), 0) FROM sentry_relay.partitions WHERE stream = '$name'" "$parts" 120
		sql "SELECT sentry_relay.stop_stream('$name')" >/dev/null
		wait_sql "SELECT count(*) FROM sentry_relay.workers WHERE stream = '$name'" 0 60
		commit_to "$name" "$topic" "$parts" "$(json_get "$cj" per_partition | tr -d '[] ')"
		logpos=$(stat -c %s "$WORK/server.log")
		mcpu0=$(cpu_ticks "$MOCK_PID")
		m0=$(machine_ticks)
		cpu0=0
		sql "SELECT sentry_relay.start_stream('$name')" >/dev/null
		stream_up "$name" "$parts" "$workers"
		pids=$(sql "SELECT string_agg(pid::text, ' ') FROM sentry_relay.workers WHERE stream = '$name'")
		# the clock's start: log_line_prefix is '%n [%p] ', the epoch in ms first
		local deadline=$((SECONDS + 10))
		t0=
		while [ -z "$t0" ] && [ $SECONDS -lt $deadline ]; do
			t0=$(tail -c +$((logpos + 1)) "$WORK/server.log" |
				awk -v pat="of stream \"$name\": assigned" 'index($0, pat) { print $1; exit }')
			[ -n "$t0" ] || sleep 0.1	# poll interval
		done
		[ -n "$t0" ] || { echo "$name: no assignment in the server log" >&2; exit 1; }
		msgs_timed=$((msgs - parts))
		# a corpus with one message per partition leaves nothing to time
		[ "$msgs_timed" -ge "$parts" ] || { echo "$name: only $msgs_timed messages left to time over $parts partitions: a larger corpus, please" >&2; exit 1; }
	else
		start_stream "$name" "$topic" "$parts" "$workers"
	fi
	if [ -n "$prof" ]; then
		pid=$(sql "SELECT pid FROM sentry_relay.workers WHERE stream = '$name'")
		# shellcheck disable=SC2086 # BENCH_PERF_ARGS is a list of options
		perf record $PERF_ARGS -o "$WORK/perf.data" -p "$pid" -- sleep "$PERF_SECONDS" \
			>"$WORK/perf.log" 2>&1 &
		PERF_PID=$!
	fi
	if [ "$DRAIN_MODE" = gate ]; then
		pids=$(sql "SELECT string_agg(pid::text, ' ') FROM sentry_relay.workers WHERE stream = '$name'")
		commit_file "$name" "$topic" "$parts" "$(json_get "$cj" per_partition | tr -d '[] ')"
		cpu0=$(cpu_ticks $pids)
		mcpu0=$(cpu_ticks "$MOCK_PID")
		m0=$(machine_ticks)
		t0=$(now)
		commit_send
	fi
	wait_sql "SELECT coalesce(sum(local_offset), 0) FROM sentry_relay.partitions WHERE stream = '$name'" \
		"$msgs" 1800
	cpu=$(calc "($(cpu_ticks $pids) - $cpu0) / $(getconf CLK_TCK)")
	mcpu=$(calc "($(cpu_ticks "$MOCK_PID") - $mcpu0) / $(getconf CLK_TCK)")
	m1=$(machine_ticks)
	if [ -n "$prof" ]; then
		kill -INT "$PERF_PID" 2>/dev/null || true
		wait "$PERF_PID" || true
		PERF_PID=
	fi
	drain_commits sentry_relay.jobs "$name" "$t0"
	tf=$DRAIN_TF t1=$DRAIN_T1
	got=$(sql "SELECT (SELECT count(*) FROM sentry_relay.jobs WHERE stream = '$name') || ' ' ||
		(SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = '$name') || ' ' ||
		(SELECT sum(batches) || ' ' || sum(skipped) || ' ' || sum(messages) || ' ' || sum(gated) FROM sentry_relay.workers WHERE stream = '$name')")
	read -r got_jobs got_dead batches skipped wmsgs gated <<<"$got"
	if [ "$got_jobs" != "$jobs" ] || [ "$got_dead" != "$bad" ]; then
		echo "WARNING: $name: $got_jobs jobs and $got_dead dead letters, expected $jobs and $bad" >&2
	fi
	printf '{"scenario": "%s", "name": "%s", "topic": "%s", "partitions": %d, "workers": %d, "messages": %d, "corpus_messages": %d, "jobs": %d, "dead_letters": %d, "expected_jobs": %d, "expected_dead": %d, "batches": %s, "skipped": %s, "gated": %s, "t0": %s, "t_first": %s, "t1": %s, "seconds": %s, "worker_cpu_s": %s, "mock_cpu_s": %s, "machine_busy": %s, "corpus": "%s", "mode": "%s", "fetch_wakeup": "%s", "broker": "%s"}\n' \
		"$scen" "$name" "$topic" "$parts" "$workers" "$msgs_timed" "$msgs" "$got_jobs" "$got_dead" "$jobs" "$bad" \
		"${batches:-null}" "${skipped:-null}" "${gated:-null}" "$t0" "$tf" "$t1" "$(calc "$t1 - $t0")" "$cpu" "$mcpu" \
		"$(calc "(${m1% *} - ${m0% *}) / (${m1#* } - ${m0#* })")" "$(basename "$cj")" "$DRAIN_MODE" "$(sql 'SHOW sentry_relay.fetch_wakeup')" "$BROKER" >>"$RUNS"
	log "  $name: $msgs_timed messages timed, $got_jobs jobs in all in $(printf %.3f "$(calc "$t1 - $t0")") s" \
		"($(calc "$msgs_timed / ($t1 - $t0)") msg/s, $workers workers, $parts partitions, $batches batches, $gated gated," \
		"worker CPU $cpu s, broker CPU $mcpu s)"
	drop_stream "$name"
}

COPY_COLS='stream, topic, eventstream_type, partition, "offset", queue, project_id, group_id, event_id, primary_hash, is_new, is_regression, is_new_group_environment, group_states, occurrence_id, cache_key, message_timestamp, body'
# copy_run REP: scenario C once
copy_run() {
	local out rows ms
	sql "TRUNCATE bench_copy"
	sql "CHECKPOINT"
	out=$(psql_q -At -c '\timing on' -c "COPY bench_copy ($COPY_COLS) FROM '$WORK/jobs.copy'")
	rows=$(sql "SELECT count(*) FROM bench_copy")
	ms=$(echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
	printf '{"scenario": "C", "name": "copy_%s", "rows": %d, "seconds": %s}\n' "$1" "$rows" \
		"$(calc "$ms / 1000")" >>"$RUNS"
	log "  COPY #$1: $rows rows in $ms ms ($(calc "$rows * 1000 / $ms") rows/s)"
}

# --- the Python peer (PA, PB) -------------------------------------------------
# python_forwarder.py's librdkafka properties: the streams' (FAST_OPTS, with
# BENCH_KAFKA_OPTS), over the relay's own fetch.wait.max.ms (src/kafka.c sets
# 100 ms; librdkafka's default is 500, and the mock holds an empty fetch
# that long).  Its other properties stay librdkafka's defaults, as Sentry's
# forwarder leaves them (a larger prefetch than the relay's queue_buffer).
mapfile -t PY_KAFKA < <($PY -c 'import json, sys
d = {"fetch.wait.max.ms": "100"}
d.update(json.loads("{" + sys.argv[1] + "}"))
for k, v in d.items(): print("--kafka-opt"); print("%s=%s" % (k, v))' "$FAST_OPTS")
PY_DSN="host=$WORK port=$PORT dbname=postgres user=postgres"
# py_start NAME TOPIC ARGS...: start python_forwarder.py in the background
# (PY_PID) as stream NAME into table py_NAME, following writer group g_NAME
# in consumer group cg_NAME from the earliest offsets; wait until it holds
# its partitions and has read the commit log to its end
py_start() {
	local name=$1 topic=$2 deadline=$((SECONDS + 120))
	shift 2
	rm -f "$WORK/$name.ready"
	# shellcheck disable=SC2086 # BENCH_PY_ARGS is a list of options
	$PY "$BENCH/python_forwarder.py" --bootstrap-servers "$BOOTSTRAP" --topic "$topic" \
		--commit-log-topic snuba-commit-log --synchronize-commit-group "g_$name" \
		--consumer-group "cg_$name" --initial-offset-reset earliest --dsn "$PY_DSN" \
		--table "py_$name" --stream "$name" "${PY_KAFKA[@]}" $PY_ARGS "$@" \
		--ready-file "$WORK/$name.ready" >"$WORK/$name.out" 2>"$WORK/$name.log" &
	PY_PID=$!
	while [ ! -f "$WORK/$name.ready" ]; do
		if ! kill -0 "$PY_PID" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
			echo "python_forwarder.py ($name) did not get ready:" >&2
			tail -20 "$WORK/$name.log" >&2
			exit 1
		fi
		sleep 0.1	# poll interval
	done
}
# py_wait NAME: wait for the forwarder to exit; its JSON line to $RAW/py_NAME.json
py_wait() {
	local rc=0
	wait "$PY_PID" || rc=$?
	PY_PID=
	if [ $rc != 0 ] || [ ! -s "$WORK/$1.out" ]; then
		echo "python_forwarder.py ($1) exited with status $rc:" >&2
		tail -20 "$WORK/$1.log" >&2
		exit 1
	fi
	tail -1 "$WORK/$1.out" >"$RAW/py_$1.json"
}
# py_drain_run SCENARIO NAME TOPIC PARTS CORPUS_JSON: one drain by the Python
# peer, timed as drain_run's gate mode: the clock starts at the commit-log
# produce that moves every partition to its end, and stops at the last
# row's commit.  Appends a JSON line to $RUNS.
py_drain_run() {
	local scen=$1 name=$2 topic=$3 parts=$4 cj=$5
	local msgs jobs bad t0 got mcpu0 mcpu m0 m1 cpu
	msgs=$(json_get "$cj" messages)
	jobs=$(json_get "$cj" jobs)
	bad=$(json_get "$cj" bad)
	jobs_like "py_$name"
	sql "CHECKPOINT"
	py_start "$name" "$topic" --until-count "$msgs" --max-seconds 1800
	commit_file "$name" "$topic" "$parts" "$(json_get "$cj" per_partition | tr -d '[] ')"
	mcpu0=$(cpu_ticks "$MOCK_PID")
	m0=$(machine_ticks)
	t0=$(now)
	commit_send
	py_wait "$name"
	mcpu=$(calc "($(cpu_ticks "$MOCK_PID") - $mcpu0) / $(getconf CLK_TCK)")
	m1=$(machine_ticks)
	drain_commits "py_$name" "$name" "$t0"
	got=$(sql "SELECT count(*) || ' ' || count(DISTINCT (partition, \"offset\")) FROM py_$name")
	# the forwarder's own CPU (all its threads) from ready to its last commit
	cpu=$($PY -c 'import json, sys; d = json.load(open(sys.argv[1])); print(round(d["cpu_s_last_commit"] - d["cpu_s_ready"], 3))' "$RAW/py_$name.json")
	read -r got_jobs got_distinct <<<"$got"
	if [ "$got_jobs" != "$jobs" ] || [ "$got_distinct" != "$jobs" ]; then
		echo "WARNING: $name: $got_jobs rows ($got_distinct distinct offsets), expected $jobs" >&2
	fi
	printf '{"scenario": "%s", "name": "%s", "topic": "%s", "partitions": %d, "workers": 1, "messages": %d, "corpus_messages": %d, "jobs": %d, "dead_letters": %s, "expected_jobs": %d, "expected_dead": %d, "t0": %s, "t_first": %s, "t1": %s, "seconds": %s, "worker_cpu_s": %s, "mock_cpu_s": %s, "machine_busy": %s, "corpus": "%s", "mode": "gate", "python": %s}\n' \
		"$scen" "$name" "$topic" "$parts" "$msgs" "$msgs" "$got_jobs" \
		"$(json_get "$RAW/py_$name.json" errors)" "$jobs" "$bad" "$t0" "$DRAIN_TF" "$DRAIN_T1" \
		"$(calc "$DRAIN_T1 - $t0")" "$cpu" "$mcpu" "$(calc "(${m1% *} - ${m0% *}) / (${m1#* } - ${m0#* })")" \
		"$(basename "$cj")" "$(cat "$RAW/py_$name.json")" >>"$RUNS"
	log "  $name: $msgs messages, $got_jobs jobs in $(printf %.3f "$(calc "$DRAIN_T1 - $t0")") s" \
		"($(calc "$msgs / ($DRAIN_T1 - $t0)") msg/s, 1 Python process, $(json_get "$RAW/py_$name.json" db_commits) transactions," \
		"its CPU $cpu s, broker CPU $mcpu s)"
	sql "DROP TABLE py_$name"
}

# py_check: the peer's check (BENCH_PY_CHECK), on two small corpora (bodies
# only; with headers) over 8 partitions.  The writer commits half of each
# partition: the forwarder must relay the jobs below that gate and none past
# it; then the writer commits the rest: every job once, the counts of the
# corpus, the Kafka offsets committed to the ends.  Its rows must equal what
# sentry_relay.decode_event_message makes of each message, and the rows the
# relay itself makes of the same topic.  Fails the bench on any difference.
py_check() {
	local kind name topic cj parts=8 n=3000 half full expect got past fails=0 res
	local cols='partition, "offset", queue, eventstream_type, project_id, group_id, event_id, primary_hash, is_new, is_regression, is_new_group_environment, group_states, occurrence_id, cache_key, message_timestamp'
	sql "CREATE TABLE py_check_msgs (topic text, partition int, \"offset\" bigint, value bytea, headers jsonb, want jsonb, PRIMARY KEY (topic, partition, \"offset\"))"
	sql "CREATE TABLE py_check_gate (topic text, partition int, gate bigint)"
	sql "CREATE FUNCTION py_check_decode(v bytea, h jsonb) RETURNS jsonb LANGUAGE plpgsql AS \$\$ BEGIN RETURN coalesce(sentry_relay.decode_event_message(v, h, 'post_process_errors'), '\"skip\"'); EXCEPTION WHEN OTHERS THEN RETURN '\"error\"'; END \$\$"
	: >"$RAW/py_check.jsonl"
	for kind in body headers; do
		name=pychk_$kind topic=events-pychk-$kind
		local hdr=()
		[ $kind = headers ] && hdr=(--headers)
		log "python peer check ($kind): $n messages over $parts partitions, gated at half of each partition"
		CORPUS_KEEP=1 corpus "$name" "$topic" $parts --count $n --seed 23 "${hdr[@]}"
		cj=$CORPUS_JSON
		# the messages at their offsets (each partition starts at 0), and what
		# the relay's decoder makes of each: a job, "skip" or "error"
		$PY -c 'import json, sys
nxt = {}
for line in open(sys.argv[1]):
    f = line.split()
    p = int(f[1])
    o = nxt.get(p, 0)
    nxt[p] = o + 1
    h = dict((n, bytes.fromhex(v).decode()) for n, _, v in (x.partition("=") for x in f[4:]))
    value = "\\\\x" + ("" if f[3] == "\"\"" else f[3])
    print("%s\t%d\t%d\t%s\t%s" % (f[0], p, o, value, json.dumps(h).replace("\\", "\\\\") if h else "\\N"))' \
			"$WORK/$name.txt" | psql_q -c "COPY py_check_msgs (topic, partition, \"offset\", value, headers) FROM STDIN"
		rm -f "$WORK/$name.txt"
		sql "UPDATE py_check_msgs SET want = py_check_decode(value, headers) WHERE topic = '$topic'"
		full=$(json_get "$cj" per_partition | tr -d '[] ')
		half=$($PY -c 'import sys; print(",".join(str(int(x) // 2) for x in sys.argv[1].split(",")))' "$full")
		sql "INSERT INTO py_check_gate SELECT '$topic', p - 1, g FROM unnest('{$half}'::bigint[]) WITH ORDINALITY AS t(g, p)"
		expect=$(sql "SELECT count(*) FROM py_check_msgs m JOIN py_check_gate g USING (topic, partition) WHERE m.topic = '$topic' AND m.\"offset\" < g.gate AND jsonb_typeof(m.want) = 'object'")

		jobs_like "py_$name"
		py_start "$name" "$topic" --until-count "$n" --max-seconds 600 --batch-size 500
		commit_to "$name" "$topic" $parts "$half"
		wait_sql "SELECT count(*) FROM py_$name" "$expect" 120
		sleep 2	# a leaking gate would show within a few fetches
		got=$(sql "SELECT count(*) FROM py_$name")
		past=$(sql "SELECT count(*) FROM py_$name j JOIN py_check_gate g ON g.topic = '$topic' AND g.partition = j.partition WHERE j.\"offset\" >= g.gate")
		commit_to "$name" "$topic" $parts "$full"
		py_wait "$name"
		# the relay on the same topic, for its rows
		start_stream "pychk_relay_$kind" "$topic" $parts 1
		commit_to "pychk_relay_$kind" "$topic" $parts "$full"
		wait_sql "SELECT coalesce(sum(local_offset), 0) FROM sentry_relay.partitions WHERE stream = 'pychk_relay_$kind'" "$n" 120
		res=$($PY - "$RAW/py_$name.json" "$cj" "$got" "$expect" "$past" "$kind" \
			"$(sql "SELECT count(*) || ',' || count(DISTINCT (partition, \"offset\")) FROM py_$name")" \
			"$(sql "SELECT count(*) FROM py_$name j FULL JOIN (SELECT * FROM py_check_msgs WHERE topic = '$topic' AND jsonb_typeof(want) = 'object') m USING (partition, \"offset\")
				WHERE j.id IS NULL OR m.want IS NULL OR (j.project_id, j.group_id, j.event_id, j.primary_hash, j.is_new, j.is_regression, j.is_new_group_environment,
					j.group_states, j.occurrence_id, j.queue, j.cache_key) IS DISTINCT FROM ((m.want->>'project_id')::bigint, (m.want->>'group_id')::bigint,
					m.want->>'event_id', m.want->>'primary_hash', (m.want->>'is_new')::boolean, (m.want->>'is_regression')::boolean,
					(m.want->>'is_new_group_environment')::boolean, nullif(m.want->'group_states', 'null'::jsonb), m.want->>'occurrence_id',
					m.want->>'queue', m.want->>'cache_key')
				OR j.stream IS DISTINCT FROM '$name' OR j.topic IS DISTINCT FROM '$topic' OR j.eventstream_type IS DISTINCT FROM 'error' OR j.message_timestamp IS NULL")" \
			"$(sql "SELECT count(*) FROM ((SELECT $cols FROM py_$name EXCEPT ALL SELECT $cols FROM sentry_relay.jobs WHERE stream = 'pychk_relay_$kind')
				UNION ALL (SELECT $cols FROM sentry_relay.jobs WHERE stream = 'pychk_relay_$kind' EXCEPT ALL SELECT $cols FROM py_$name)) d")" \
			"$(sql "SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'pychk_relay_$kind'")" \
			"$($PY -c 'import sys; from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2]})
print(",".join(str(tp.offset) for tp in c.committed([TopicPartition(sys.argv[3], p) for p in range(int(sys.argv[4]))], timeout=30)))
c.close()' "$BOOTSTRAP" "cg_$name" "$topic" $parts)" "$full" <<'PYEOF'
import json, sys
out, cj, got, expect, past, kind, rows, vs_decode, vs_relay, relay_rows, committed, full = sys.argv[1:]
out, cj = json.load(open(out)), json.load(open(cj))
nrows, distinct = rows.split(",")
checks = [
    ("rows below the gate", int(got), int(expect)),
    ("rows at or past the gate", int(past), 0),
    ("messages relayed", out["messages"], cj["messages"]),
    ("jobs", out["jobs"], cj["jobs"]),
    ("skipped", out["skipped"], cj["replacements"]),
    ("errors", out["errors"], cj["bad"]),
    ("rows", int(nrows), cj["jobs"]),
    ("distinct offsets", int(distinct), cj["jobs"]),
    ("rows unlike decode_event_message's", int(vs_decode), 0),
    ("relay rows", int(relay_rows), cj["jobs"]),
    ("rows unlike the relay's", int(vs_relay), 0),
    ("Kafka offsets committed", committed, full),
]
bad = [c for c in checks if c[1] != c[2]]
res = {"scenario": "PC", "name": "check_" + kind, "passed": not bad, "jobs": out["jobs"],
       "messages": out["messages"], "gate_rows": int(got), "pauses": out["pauses"],
       "resumes": out["resumes"], "seeks": out["seeks"], "dropped": out["dropped"],
       "failed": ["%s: %s, want %s" % c for c in bad]}
print(json.dumps(res))
PYEOF
		)
		echo "$res" >>"$RUNS"
		echo "$res" >>"$RAW/py_check.jsonl"
		drop_stream "pychk_relay_$kind"
		sql "DROP TABLE py_$name"
		if [[ "$res" == *'"passed": true'* ]]; then
			log "  $kind: passed ($(json_get "$RAW/py_$name.json" jobs) jobs; $got below the gate, none past it;" \
				"$(json_get "$RAW/py_$name.json" pauses) pauses, $(json_get "$RAW/py_$name.json" seeks) seeks back," \
				"$(json_get "$RAW/py_$name.json" dropped) fetched messages dropped at the gate)"
		else
			echo "python peer check ($kind) FAILED: $res" >&2
			fails=$((fails + 1))
		fi
	done
	sql "DROP TABLE py_check_msgs, py_check_gate; DROP FUNCTION py_check_decode"
	fresh_tables
	[ $fails = 0 ] || exit 1
}

# --- A, B, C ------------------------------------------------------------------
[ "$PY_CHECK" = 1 ] && py_check
if has A || has B; then
	log "corpus: $MSGS messages over $PARTS partitions, without and with headers"
	has A && corpus a events-a "$PARTS" --count "$MSGS" && CJ_A=$CORPUS_JSON
	has B && corpus b events-b "$PARTS" --count "$MSGS" --headers && CJ_B=$CORPUS_JSON
fi
c_rep=0
c_between() {
	if has C && [ -f "$WORK/jobs.copy" ] && [ $c_rep -lt "$C_REPS" ]; then
		c_rep=$((c_rep + 1))
		copy_run $c_rep
	fi
}
if { has A || has B; } && [ "$WARMUP" = 1 ]; then
	# the first drain into a fresh cluster creates WAL segments and faults in
	# shared_buffers; later runs (and C) reuse them.  Pay that here, unreported.
	log "warm-up: one drain, not reported"
	if has A; then drain_run W warm_a events-a "$PARTS" 1 "$CJ_A"; else drain_run W warm_b events-b "$PARTS" 1 "$CJ_B"; fi
fi
if has A; then
	log "scenario A: drain throughput, body decoding"
	first=1
	for w in $WORKERS; do
		for r in $(seq 1 "$AB_REPS"); do
			# a stream name is never reused: a new stream on an old consumer
			# group would start at the group's committed offsets in Kafka
			drain_run A "a_w$w$(rep_suffix "$r")" events-a "$PARTS" "$w" "$CJ_A"
			if [ "$NOWAKE" = 1 ]; then
				# the same drain with the fetcher wake-up off, right after
				set_wakeup off
				drain_run A_nowake "anw_w$w$(rep_suffix "$r")" events-a "$PARTS" "$w" "$CJ_A"
				set_wakeup on
			fi
			if [ $first = 1 ] && has C; then
				# the rows C loads: exactly what this run inserted
				sql "COPY (SELECT $COPY_COLS FROM sentry_relay.jobs ORDER BY id) TO '$WORK/jobs.copy'"
				log "scenario C: COPY of the same $(sql 'SELECT count(*) FROM sentry_relay.jobs') job rows"
				c_between
			fi
			first=0
		done
	done
	c_between
	if [ "$PY_ON" = 1 ]; then
		log "scenario PA: the Python peer, body decoding, 1 process"
		for r in $(seq 1 "$PY_REPS"); do
			py_drain_run PA "pa$(rep_suffix "$r")" events-a "$PARTS" "$CJ_A"
		done
	fi
fi
if has B; then
	log "scenario B: drain throughput, header decoding"
	for w in $WORKERS; do
		for r in $(seq 1 "$AB_REPS"); do
			drain_run B "b_w$w$(rep_suffix "$r")" events-b "$PARTS" "$w" "$CJ_B"
		done
	done
	c_between
	if [ "$PY_ON" = 1 ]; then
		log "scenario PB: the Python peer, header decoding, 1 process"
		for r in $(seq 1 "$PY_REPS"); do
			py_drain_run PB "pb$(rep_suffix "$r")" events-b "$PARTS" "$CJ_B"
		done
	fi
fi
while has C && [ -f "$WORK/jobs.copy" ] && [ $c_rep -lt "$C_REPS" ]; do c_between; done

# --- P: profile of A with one worker ------------------------------------------
if [ "$PERF" = 1 ] && has "$PERF_OF"; then
	log "profile: scenario $PERF_OF, 1 worker, under perf record"
	if [ "$PERF_OF" = B ]; then perf_args=(b_perf events-b "$PARTS" 1 "$CJ_B"); else perf_args=(a_perf events-a "$PARTS" 1 "$CJ_A"); fi
	if drain_run P "${perf_args[@]}" perf && [ -s "$WORK/perf.data" ]; then
		{
			echo "# perf record -e cpu-clock -g on the relay worker, scenario $PERF_OF (1 worker), $(date -u +%FT%TZ)"
			echo "## by thread (the main thread is the PostgreSQL worker; rdk:* are librdkafka's)"
			perf report -i "$WORK/perf.data" --stdio --no-children --sort comm -g none 2>/dev/null | grep -v '^$' | grep -v '^#' | head -12 || true
			echo "## by shared object"
			perf report -i "$WORK/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -v '^$' | grep -v '^#' | head -15 || true
			echo "## by symbol (self)"
			perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null |
				grep -v '^$' | grep -v '^#' | head -50 || true
			echo "## by symbol (children: inclusive, where frame pointers allow)"
			perf report -i "$WORK/perf.data" --stdio --children --sort symbol -g none 2>/dev/null |
				grep -v '^$' | grep -v '^#' | head -45 || true
		} >"$RAW/relay_perf.txt"
	fi
fi
[ -n "${CJ_A:-}" ] && { sql "TRUNCATE sentry_relay.jobs"; }

# --- D: latency ---------------------------------------------------------------
# run_d NAME KAFKA_OPTS: one latency run on its own topic, stream NAME, with
# KAFKA_OPTS (JSON members, may be empty) added to the stream's properties.
run_d() {
	local name=$1 opts=$2 topic=events-$1 saved=$FAST_OPTS
	log "scenario D ($name): $d_msgs messages at $D_RATE msg/s over $D_PARTS partitions, commit log one batch behind${opts:+, $opts}"
	$PY "$BENCH/relay_corpus.py" events "$WORK/$name.txt" --topic "$topic" --partitions "$D_PARTS" \
		--count "$d_msgs" --seed 7 "${hdr[@]}" >/dev/null
	cp "$WORK/$name.txt.json" "$RAW/corpus_$name.json"
	$PY "$BENCH/relay_latency.py" prepare "$WORK/$name.txt" "$WORK/$name" --partitions "$D_PARTS" \
		--rate "$D_RATE" --tick 0.1 --topic "$topic" --group "g_$name" >/dev/null
	rm -f "$WORK/$name.txt"
	chmod -R a+rX "$WORK/$name"
	create_events_topic "$topic" "$D_PARTS"
	fresh_tables
	[ -n "$opts" ] && FAST_OPTS="$FAST_OPTS, $opts"
	start_stream "$name" "$topic" "$D_PARTS" "$D_WORKERS"
	FAST_OPTS=$saved
	$PY "$BENCH/relay_latency.py" run "$WORK/$name" "$RAW/${name}_commits.tsv" \
		<&"${KAFKA[0]}" >&"${KAFKA[1]}" 2>"$WORK/${name}_run.log"
	cat "$WORK/${name}_run.log"
	wait_sql "SELECT coalesce(sum(local_offset), 0) FROM sentry_relay.partitions WHERE stream = '$name'" "$d_msgs" 600
	sql "COPY (SELECT partition, \"offset\", extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM sentry_relay.jobs WHERE stream = '$name') TO STDOUT" \
		>"$WORK/${name}_jobs.tsv"
	$PY "$BENCH/relay_latency.py" report "$RAW/${name}_commits.tsv" "$WORK/${name}_jobs.tsv" --json "$RAW/${name}_latency.json"
	printf '{"scenario": "D", "fetch_wakeup": "'"$(sql 'SHOW sentry_relay.fetch_wakeup')"'", "name": "%s", "kafka_opts": "%s", "rate": %d, "seconds": %d, "partitions": %d, "workers": %d, "headers": %d, "messages": %d, "latency": %s, "driver": %s, "batches": %s}\n' \
		"$name" "${opts//\"/\\\"}" "$D_RATE" "$D_SECONDS" "$D_PARTS" "$D_WORKERS" "$D_HEADERS" "$d_msgs" "$(cat "$RAW/${name}_latency.json")" \
		"$(cat "$RAW/${name}_commits.tsv.json")" "$(sql "SELECT sum(batches) FROM sentry_relay.workers WHERE stream = '$name'")" >>"$RUNS"
	drop_stream "$name"
	rm -rf "$WORK/$name"
}
if has D; then
	d_msgs=$((D_RATE * D_SECONDS))
	hdr=()
	[ "$D_HEADERS" = 1 ] && hdr=(--headers)
	# d: the target's run.  librdkafka's mock answers a fetch that finds no
	# data only when fetch.wait.max.ms expires, where a Kafka broker answers
	# as soon as data arrives; a short wait makes the mock behave like one.
	# On a real broker, which answers when data arrives, this run is not made.
	[ "$BROKER" = mock ] && run_d d "$D_KAFKA_OPTS"
	# d_default: the relay's own settings (fetch.wait.max.ms 100 ms): the target's run
	[ "$D_DEFAULT" = 1 ] || [ "$BROKER" = real ] && run_d d_default ""
	if [ "$NOWAKE" = 1 ]; then
		set_wakeup off
		run_d d_default_nowake ""
		set_wakeup on
	fi
fi

# --- E: memory ----------------------------------------------------------------
# sample_start PID NAME / sample_stop: RSS sampler around a phase
sample_start() {
	rm -f "$WORK/sample.stop"
	$PY "$BENCH/relay_rss.py" "$1" "$RAW/rss_$2.json" --reset --stop "$WORK/sample.stop" &
	SAMPLER_PID=$!
}
sample_stop() {
	touch "$WORK/sample.stop"
	wait "$SAMPLER_PID" || true
	SAMPLER_PID=
}
rss_now() { awk '/^(VmRSS|RssAnon|RssFile|RssShmem|VmHWM):/ {printf "\"%s\": %s, ", $1, $2}' "/proc/$1/status" | sed 's/:"/"/g; s/, $//'; }
if has E; then
	log "scenario E: worker memory, $E_MSGS-message backlog behind a stalled commit log"
	fresh_tables
	step=$(((E_MSGS + E_STEPS - 1) / E_STEPS))
	$PY "$BENCH/relay_corpus.py" events "$WORK/e.txt" --topic events-e --partitions "$E_PARTS" \
		--count "$E_MSGS" --size min --seed 11 >/dev/null
	cp "$WORK/e.txt.json" "$RAW/corpus_e.json"
	split -l "$step" -d -a 3 "$WORK/e.txt" "$WORK/e_part."
	rm -f "$WORK/e.txt"
	chmod 644 "$WORK"/e_part.*
	create_events_topic events-e "$E_PARTS"
	start_stream e events-e "$E_PARTS" 1
	pid=$(sql "SELECT pid FROM sentry_relay.workers WHERE stream = 'e'")
	# the first step is relayed; then the writer stalls
	kafka produce_file "$WORK/e_part.000"
	first=$KREPLY
	offs=
	for p in $(seq 0 $((E_PARTS - 1))); do kafka end_offsets events-e "$p"; offs+="${KREPLY#* },"; done
	commit_to e events-e "$E_PARTS" "${offs%,}"
	wait_sql "SELECT coalesce(sum(local_offset), 0) FROM sentry_relay.partitions WHERE stream = 'e'" "$first" 300
	sample_start "$pid" e_backlog
	backlog=0
	printf '{"scenario": "E", "name": "e_step", "backlog": 0, "rss": {%s}}\n' "$(rss_now "$pid")" >>"$RUNS"
	for f in "$WORK"/e_part.*; do
		[ "$f" = "$WORK/e_part.000" ] && continue
		kafka produce_file "$f"
		backlog=$((backlog + KREPLY))
		rm -f "$f"
		printf '{"scenario": "E", "name": "e_step", "backlog": %d, "rss": {%s}}\n' "$backlog" "$(rss_now "$pid")" >>"$RUNS"
		log "  backlog $backlog: $(rss_now "$pid")"
	done
	check_retained events-e "$E_PARTS"
	sample_stop
	log "  drain of the $backlog-message backlog"
	sample_start "$pid" e_drain
	commit_file e events-e "$E_PARTS" "$(json_get "$RAW/corpus_e.json" per_partition | tr -d '[] ')"
	t0=$(now)
	commit_send
	wait_sql "SELECT coalesce(sum(local_offset), 0) FROM sentry_relay.partitions WHERE stream = 'e'" "$E_MSGS" 1800
	t1=$(sql "SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) FROM sentry_relay.jobs WHERE stream = 'e'")
	sample_stop
	# the drain relays the backlog only: the first step was relayed before
	printf '{"scenario": "E", "name": "e_drain", "backlog": %d, "messages": %d, "seconds": %s}\n' \
		"$backlog" "$backlog" "$(calc "$t1 - $t0")" >>"$RUNS"
	drop_stream e

	log "  $E_BIG-byte messages in the mix"
	fresh_tables
	create_events_topic events-ebig 16
	start_stream ebig events-ebig 16 1
	pid=$(sql "SELECT pid FROM sentry_relay.workers WHERE stream = 'ebig'")
	sample_start "$pid" e_big
	$PY "$BENCH/relay_corpus.py" events "$WORK/ebig.txt" --topic events-ebig --partitions 16 \
		--count 1600 --size min --big "8:$E_BIG" --seed 13 >/dev/null
	cp "$WORK/ebig.txt.json" "$RAW/corpus_ebig.json"
	chmod 644 "$WORK/ebig.txt"
	kafka produce_file "$WORK/ebig.txt"
	rm -f "$WORK/ebig.txt"
	check_retained events-ebig 16
	commit_to ebig events-ebig 16 "$(json_get "$RAW/corpus_ebig.json" per_partition | tr -d '[] ')"
	wait_sql "SELECT coalesce(sum(local_offset), 0) FROM sentry_relay.partitions WHERE stream = 'ebig'" \
		"$(json_get "$RAW/corpus_ebig.json" messages)" 600
	sample_stop
	got=$(sql "SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'ebig'")
	printf '{"scenario": "E", "name": "e_big", "big_bytes": %d, "jobs": %d, "expected_jobs": %d}\n' \
		"$E_BIG" "$got" "$(json_get "$RAW/corpus_ebig.json" jobs)" >>"$RUNS"
	drop_stream ebig
fi

# --- F: scaling ---------------------------------------------------------------
if has F; then
	log "scenario F: throughput against partitions ($F_PART_MSGS messages, ~0.8 KB), from a restart"
	# each count F_PART_REPS times (the same corpus on fresh topics): one
	# drain lasts tens of ms, so the report takes the median.  Each corpus
	# would fit in the hold, so the stream is restarted on it (see drain_run)
	DRAIN_MODE=restart
	for np in $F_PARTS; do
		for rep in $(seq 1 "$F_PART_REPS"); do
			sfx=$(rep_suffix "$rep")
			corpus "fp$np$sfx" "events-fp$np$sfx" "$np" --count "$F_PART_MSGS" --size 650 --seed $((100 + np))
			drain_run F_parts "f_p$np$sfx" "events-fp$np$sfx" "$np" "$F_WORKERS" "$CORPUS_JSON"
		done
	done
	log "scenario F: throughput against message size ($F_BYTES bytes each, 64 partitions)"
	for sz in $F_SIZES; do
		n=$((F_BYTES / sz))
		# a restart drain does not time the first message of each partition:
		# at 256 kB a 16 MB corpus was one message per partition, nothing timed
		[ $n -ge $((64 * F_MIN_PER_PART)) ] || n=$((64 * F_MIN_PER_PART))
		corpus "fs$sz" "events-fs$sz" 64 --count "$n" --size "$sz" --seed $((200 + sz % 97))
		drain_run F_size "f_s$sz" "events-fs$sz" 64 "$F_WORKERS" "$CORPUS_JSON"
	done
	DRAIN_MODE=gate
fi

# --- report -------------------------------------------------------------------
grep -E 'sentry_relay|ERROR|FATAL|PANIC|checkpoint complete' "$WORK/server.log" | tail -200 >"$RAW/server_excerpt.log" || true
mkdir -p "$RESULTS"
rm -rf "$RESULTS/relay_raw"

cp -r "$RAW" "$RESULTS/relay_raw"
cp "$RUNS" "$RESULTS/relay_raw/runs.jsonl"
$PY "$BENCH/relay_report.py" --runs "$RUNS" --raw "$RESULTS/relay_raw" --json "$RESULTS/relay.json" \
	--plots "$RESULTS" --quick "$QUICK" --broker "$BROKER" \
	--server-version "$(sql 'SHOW server_version')" \
	--settings "$(sql "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'full_page_writes', 'wal_level', 'track_commit_timestamp', 'sentry_relay.batch_size', 'sentry_relay.batch_max_bytes', 'sentry_relay.batch_timeout', 'sentry_relay.queue_buffer', 'sentry_relay.fetch_wakeup')")" \
	--elapsed $(($(date +%s) - START)) | tee "$RESULTS/relay.txt"
if command -v gnuplot >/dev/null; then
	points() { [ "$(grep -cv '^#' "$RESULTS/$1" 2>/dev/null)" -gt 0 ] && echo 1 || echo 0; }
	rm -f "$RESULTS"/relay_*.png
	(cd "$RESULTS" && gnuplot -e "have_workers=$(points relay_workers.dat); have_size=$(points relay_msgsize.dat); have_parts=$(points relay_partitions.dat)" \
		"$BENCH/relay_plot.gp") && log "plots: $(cd "$RESULTS" && ls relay_*.png 2>/dev/null | tr '\n' ' ')"
fi
