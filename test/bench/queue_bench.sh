#!/bin/bash
# queue_bench.sh - the job queue benchmark (`make bench-queue`, as root,
# after `make install`).  On a throwaway PostgreSQL 15 cluster with
# sentry_relay preloaded (no Kafka needed):
#
#  scenario 1, throughput: 8 clients (pgbench -c 8 -j 2 -T 30 -M prepared)
#    take jobs in batches of 10, in three arms, interleaved (A B C A B C):
#      A  claim+complete      claim_jobs(10), then complete_jobs(ids, attempts),
#                             two transactions, as a job worker does
#      B  baseline            DELETE ... WHERE id IN (SELECT id ... ORDER BY id
#                             FOR UPDATE SKIP LOCKED LIMIT 10) on an identical
#                             copy of sentry_relay.jobs
#      C  claim+complete 1tx  both in one statement (for comparison)
#    Before each run the arm's table is topped up to BENCH_ROWS ready jobs,
#    vacuumed and checkpointed, so every run starts from the same state.
#    jobs/s = rows gone from the table / pgbench's measured time.
#  scenario 2, claim latency over millions of jobs: BENCH_ROUNDS rounds of
#    "insert BENCH_ROUND_JOBS jobs, drain them with 8 clients (claim, then
#    complete)", with no manual vacuum; per round the average and p99
#    latency of the claims (pgbench --log).
#
# Durability settings are PostgreSQL's defaults (fsync, synchronous_commit,
# full_page_writes on) for every arm.  Results: test/bench/results/queue.json
# (machine-readable), queue.txt (the printed table) and raw/ (pgbench output).
# Knobs (environment): BENCH_DURATION (30), BENCH_REPS (2), BENCH_ROWS
# (2000000), BENCH_ROUNDS (6), BENCH_ROUND_JOBS (500000), BENCH_CLIENTS (8),
# BENCH_THREADS (2), BENCH_PORT (54341), BENCH_CONF (extra
# postgresql.conf lines, applied to every arm), BENCH_SKIP (s1 or s2),
# BENCH_PATCH (an SQL file run after CREATE EXTENSION, to measure a proposed
# change to the queue functions; the report says so).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=$REPO/test/bench
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGBIN=$($PG_CONFIG --bindir)
DURATION=${BENCH_DURATION:-30}
REPS=${BENCH_REPS:-2}
ROWS=${BENCH_ROWS:-2000000}
ROUNDS=${BENCH_ROUNDS:-6}
ROUND_JOBS=${BENCH_ROUND_JOBS:-500000}
CLIENTS=${BENCH_CLIENTS:-8}
THREADS=${BENCH_THREADS:-2}
BATCH=10	# fixed in the pgbench scripts
PORT=${BENCH_PORT:-54341}
SKIP=${BENCH_SKIP:-}
RUN_AS=postgres
RESULTS=$BENCH/results

if [ ! -f "$($PG_CONFIG --sharedir)/extension/sentry_relay.control" ] ||
	[ ! -f "$($PG_CONFIG --pkglibdir)/sentry_relay.so" ]; then
	echo "sentry_relay is not installed for $PG_CONFIG: run make install first" >&2
	exit 1
fi

WORK=$(mktemp -d /tmp/sentry_relay_bench.XXXXXX)
chmod 755 "$WORK"
as_user() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$WORK"
cleanup() {
	as_user "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
psql_q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
sql() { psql_q -At -c "$1"; }
log() { echo "[$(date +%H:%M:%S)] $*"; }
START=$(date +%s)

# --- the server -------------------------------------------------------------
as_user "$PGBIN/initdb" -D "$WORK/data" -A trust -U postgres >/dev/null
cat >>"$WORK/data/postgresql.conf" <<CONF
shared_preload_libraries = 'sentry_relay'
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT
max_connections = 50
# sized for a 2-core, 24 GB machine; durability settings stay at their defaults
shared_buffers = 1GB
effective_cache_size = 16GB
maintenance_work_mem = 512MB
work_mem = 16MB
max_wal_size = 16GB
min_wal_size = 2GB
checkpoint_timeout = 30min
log_checkpoints = on
log_autovacuum_min_duration = 0
${BENCH_CONF:-}
CONF
as_user "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null
sql "CREATE EXTENSION sentry_relay"
if [ -n "${BENCH_PATCH:-}" ]; then
	# an experiment: replace queue functions or table options before measuring
	echo "NOTE: applying BENCH_PATCH=$BENCH_PATCH on top of the installed extension" >&2
	psql_q -f "$BENCH_PATCH" >/dev/null
fi
psql_q -f "$BENCH/setup.sql" >/dev/null

# complete_jobs(ids, attempts) is what a worker calls; if this build rejects
# it, fall back to complete_jobs(ids) and say so in the results
TOKENS=1
if ! sql "SELECT sentry_relay.complete_jobs('{}'::bigint[], '{}'::int[])" >/dev/null 2>"$WORK/tokens.err"; then
	TOKENS=0
	echo "WARNING: complete_jobs(ids, attempts) fails on this build; the benchmark" \
		"completes with complete_jobs(ids) instead:" >&2
	sed 's/^/    /' "$WORK/tokens.err" | head -3 >&2
fi

mkdir -p "$RESULTS" "$WORK/raw" "$WORK/logs"
[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$WORK/logs"
MANIFEST=$WORK/manifest.tsv
: >"$MANIFEST"
PGBENCH=("$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$THREADS" -D "tokens=$TOKENS")

# --- scenario 1: throughput -------------------------------------------------
table_of() { case $1 in baseline) echo bench_baseline ;; *) echo sentry_relay.jobs ;; esac; }
script_of() {
	case $1 in
	claim_complete) echo "$BENCH/claim_complete.sql" ;;
	baseline) echo "$BENCH/baseline.sql" ;;
	claim_complete_1tx) echo "$BENCH/claim_complete_1tx.sql" ;;
	esac
}
# autovacuums TABLE: how many autovacuums of TABLE the server log shows
autovacuums() {
	grep -c "automatic vacuum of table \"postgres.$1\"" "$WORK/server.log" || true
}
# updates TABLE: "updates hot_updates" of TABLE so far (the claims, and
# whether they were HOT)
updates() {
	sql "SELECT n_tup_upd || ' ' || n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = '$1'::regclass"
}
# prepare TABLE: top it up to ROWS ready jobs, vacuum, checkpoint
prepare() {
	sql "SELECT bench_fill('$1', $ROWS - (SELECT count(*) FROM $1))" >/dev/null
	sql "VACUUM (ANALYZE) $1"
	sql "CHECKPOINT"
}

if [ "$SKIP" != s1 ]; then
	log "scenario 1: filling sentry_relay.jobs and bench_baseline with $ROWS jobs each"
	prepare sentry_relay.jobs
	prepare bench_baseline
	for rep in $(seq 1 "$REPS"); do
		for arm in claim_complete baseline claim_complete_1tx; do
			table=$(table_of $arm)
			prepare "$table"
			before=$(sql "SELECT count(*) FROM $table")
			av_before=$(autovacuums "$table")
			read -r upd_before hot_before <<<"$(updates "$table")"
			out=$WORK/raw/s1_${arm}_$rep.txt
			"${PGBENCH[@]}" -T "$DURATION" -r -f "$(script_of $arm)" >"$out" 2>&1 ||
				{ cat "$out" >&2; exit 1; }
			after=$(sql "SELECT count(*) FROM $table")
			leased=$(sql "SELECT count(*) FROM $table WHERE leased_until > now()")
			av=$(($(autovacuums "$table") - av_before))
			read -r upd hot <<<"$(updates "$table")"
			printf 's1\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$arm" "$rep" "$((before - after))" \
				"$leased" "$av" "$((upd - upd_before))" "$((hot - hot_before))" "$out" >>"$MANIFEST"
			log "  $arm #$rep: $((before - after)) jobs in ${DURATION}s ($leased left leased, $av autovacuums)"
		done
	done
fi

# --- scenario 2: claim latency over millions of jobs ------------------------
if [ "$SKIP" != s2 ]; then
	log "scenario 2: $ROUNDS rounds of $ROUND_JOBS jobs through sentry_relay.jobs"
	sql "TRUNCATE sentry_relay.jobs"
	sql "CHECKPOINT"
	per_client=$(( (ROUND_JOBS + BATCH * CLIENTS - 1) / (BATCH * CLIENTS) ))
	for round in $(seq 1 "$ROUNDS"); do
		sql "SELECT bench_fill('sentry_relay.jobs', $ROUND_JOBS)" >/dev/null
		before=$(sql "SELECT count(*) FROM sentry_relay.jobs")
		logdir=$WORK/logs/round_$round
		mkdir -p "$logdir"
		[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$logdir"
		out=$WORK/raw/s2_round_$round.txt
		# one claim and one completion per client "transaction" pair
		(cd "$logdir" && "${PGBENCH[@]}" -t $((2 * per_client)) -D phase=0 -r --log \
			-f "$BENCH/drain.sql" >"$out" 2>&1) || { cat "$out" >&2; exit 1; }
		after=$(sql "SELECT count(*) FROM sentry_relay.jobs")
		vacuums=$(autovacuums sentry_relay.jobs)
		printf 's2\tdrain\t%s\t%s\t%s\t%s\t%s\n' "$round" "$((before - after))" "$after" "$out" \
			"$logdir" >>"$MANIFEST"
		log "  round $round: $((before - after)) jobs drained, $after left ($vacuums autovacuums so far)"
	done
fi

# --- report -----------------------------------------------------------------
rm -rf "$RESULTS/raw"
cp -r "$WORK/raw" "$RESULTS/raw"
grep -E 'automatic vacuum|checkpoint complete' "$WORK/server.log" >"$RESULTS/raw/server_vacuum_checkpoint.log" || true
/usr/bin/python3 "$BENCH/queue_report.py" --manifest "$MANIFEST" --json "$RESULTS/queue.json" \
	--duration "$DURATION" --clients "$CLIENTS" --threads "$THREADS" --batch "$BATCH" \
	--rows "$ROWS" --round-jobs "$ROUND_JOBS" --tokens "$TOKENS" --patch "${BENCH_PATCH:-}" \
	--server-version "$(sql 'SHOW server_version')" \
	--settings "$(sql "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers', 'synchronous_commit', 'fsync', 'full_page_writes', 'wal_level', 'autovacuum_naptime', 'max_wal_size', 'checkpoint_timeout')")" \
	--elapsed $(($(date +%s) - START)) | tee "$RESULTS/queue.txt"
