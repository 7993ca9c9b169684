#!/bin/bash
# demo.sh - the main job, end to end, on an embedded default:
#   1. start a local Kafka broker (librdkafka's mock cluster, test/kafka_mock)
#      and a throwaway PostgreSQL 15 cluster with sentry_relay preloaded;
#   2. create Sentry's errors stream;
#   3. produce realistic sample Sentry events, then commit-log advances that
#      trail them the way the writer's (Snuba's) do;
#   4. show jobs arriving in the queue and the partitions moving through
#      their states, plus what happened to the odd messages;
#   5. clean up.
# Run as root through `make demo` (which installs and builds first).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGBIN=$($PG_CONFIG --bindir)
DEMO=$(mktemp -d /tmp/sentry_relay_demo.XXXXXX)
PORT=${SR_DEMO_PORT:-54329}
PARTITIONS=3
PER_PARTITION=40
RUN_AS=postgres
chmod 755 "$DEMO"
as_user() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$DEMO"

make -s -C "$REPO/test/kafka_mock" >/dev/null

cleanup() {
	as_user "$PGBIN/pg_ctl" -D "$DEMO/data" -m fast stop >/dev/null 2>&1 || true
	if [ -n "${KAFKA_PID:-}" ]; then
		echo quit >&"${KAFKA[1]}" 2>/dev/null || true
		wait "$KAFKA_PID" 2>/dev/null || true
	fi
	rm -rf "$DEMO"
}
trap cleanup EXIT

# --- 1. Kafka and PostgreSQL ------------------------------------------------
coproc KAFKA { "$REPO/test/kafka_mock/sr_kafka_mock" --brokers 1 2>"$DEMO/kafka.log"; }
KAFKA_PID=$KAFKA_PID
read -r -t 30 word BOOTSTRAP <&"${KAFKA[0]}"
[ "$word" = BOOTSTRAP ] || { echo "the Kafka mock did not start" >&2; exit 1; }
kafka() {
	local reply
	echo "$*" >&"${KAFKA[1]}"
	read -r -t 60 reply <&"${KAFKA[0]}"
	case "$reply" in OK*) echo "${reply#OK}" ;; *) echo "kafka: $* -> $reply" >&2; exit 1 ;; esac
}
kafka create_topic events $PARTITIONS >/dev/null
kafka create_topic snuba-commit-log 1 >/dev/null
echo "== Kafka broker (librdkafka mock cluster) at $BOOTSTRAP"

as_user "$PGBIN/initdb" -D "$DEMO/data" -A trust -U postgres >/dev/null
cat >> "$DEMO/data/postgresql.conf" <<CONF
shared_preload_libraries = 'sentry_relay'
sentry_relay.database = 'postgres'
sentry_relay.bootstrap_servers = '$BOOTSTRAP'
listen_addresses = ''
unix_socket_directories = '$DEMO'
port = $PORT
CONF
as_user "$PGBIN/pg_ctl" -D "$DEMO/data" -l "$DEMO/server.log" -w start >/dev/null
echo "== PostgreSQL 15 with sentry_relay preloaded, in $DEMO"

psql_demo() { as_user "$PGBIN/psql" -h "$DEMO" -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
value() { psql_demo -At -c "$1"; }
wait_value() {
	local sql=$1 want=$2 deadline=$((SECONDS + 60)) got
	while [ $SECONDS -lt $deadline ]; do
		got=$(value "$sql")
		[ "$got" = "$want" ] && return 0
		sleep 0.1	# poll interval
	done
	echo "timed out waiting for: $sql (got '$got', want '$want')" >&2
	exit 1
}

# --- 2. the errors stream ---------------------------------------------------
psql_demo <<'SQL'
CREATE EXTENSION sentry_relay;
SELECT name, topic, commit_log_topic, synchronize_commit_groups, consumer_group
FROM sentry_relay.create_stream('errors', 'events', 'snuba-commit-log',
    ARRAY['snuba-consumers'],
    options => '{"kafka": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}}');
SQL
wait_value "SELECT count(*) FROM sentry_relay.partitions WHERE worker_pid IS NOT NULL" "$PARTITIONS"
echo "== the worker has its $PARTITIONS partitions"

# --- 3. traffic -----------------------------------------------------------------
/usr/bin/python3 "$REPO/test/demo_traffic.py" events "$DEMO/events.txt" $PARTITIONS $PER_PARTITION
chmod 644 "$DEMO/events.txt"
echo "== produced $(kafka produce_file "$DEMO/events.txt") events (inserts, half with task headers; a replacement, a skip_consume and a bad message per partition)"
wait_value "SELECT count(*) FROM sentry_relay.partitions WHERE kafka_lag IS NOT NULL OR state = 'UNKNOWN'" "$PARTITIONS"

show() {
	psql_demo -c "SELECT partition, local_offset, remote_offset, state, lag FROM sentry_relay.partitions ORDER BY partition" \
		-c "SELECT count(*) AS jobs, count(DISTINCT (partition, \"offset\")) AS distinct_positions FROM sentry_relay.jobs"
}
echo
echo "== the writer has committed nothing yet: no job may be enqueued"
show

for step in 10 25 $PER_PARTITION; do
	/usr/bin/python3 "$REPO/test/demo_traffic.py" commit "$DEMO/commit.txt" events $PARTITIONS $step snuba-consumers
	chmod 644 "$DEMO/commit.txt"
	kafka produce_file "$DEMO/commit.txt" >/dev/null
	wait_value "SELECT count(*) FROM sentry_relay.partitions WHERE local_offset = $step" "$PARTITIONS"
	echo
	echo "== the writer committed offset $step on every partition"
	show
done

# --- 4. what came out -----------------------------------------------------------
echo
echo "== a few jobs, ready for post_process_group"
psql_demo -c "SELECT partition, \"offset\", queue, project_id, group_id, is_new, cache_key FROM sentry_relay.jobs ORDER BY partition, \"offset\" LIMIT 5"
echo "== undecodable messages were dead-lettered with their raw bytes"
psql_demo -c "SELECT partition, \"offset\", sqlstate, error_class, error, length(value) AS bytes FROM sentry_relay.dead_letters ORDER BY partition"
echo "== the worker"
psql_demo -c "SELECT pid, stream, status, partitions, messages, jobs, skipped, dead_letters FROM sentry_relay.workers"
echo "== done; the cluster and the broker are removed"
