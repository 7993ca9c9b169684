#!/bin/bash
# demo.sh - the main job, end to end, on an embedded default: start a
# throwaway PostgreSQL 15 cluster with sentry_relay preloaded, decode sample
# Sentry traffic (events-topic messages with and without headers, and
# commit-log entries in both formats), show how a bad message is reported,
# then clean up.  Run as root through `make demo`.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGBIN=$($PG_CONFIG --bindir)
DEMO=$(mktemp -d /tmp/sentry_relay_demo.XXXXXX)
PORT=${SR_DEMO_PORT:-54329}
chmod 755 "$DEMO"
RUN_AS=postgres
as_user() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$DEMO"

cleanup() {
	as_user "$PGBIN/pg_ctl" -D "$DEMO/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$DEMO"
}
trap cleanup EXIT

echo "== starting a throwaway PostgreSQL cluster in $DEMO"
as_user "$PGBIN/initdb" -D "$DEMO/data" -A trust -U postgres >/dev/null
cat >> "$DEMO/data/postgresql.conf" <<CONF
shared_preload_libraries = 'sentry_relay'
listen_addresses = ''
unix_socket_directories = '$DEMO'
port = $PORT
CONF
as_user "$PGBIN/pg_ctl" -D "$DEMO/data" -l "$DEMO/server.log" -w start >/dev/null

psql_demo() { as_user "$PGBIN/psql" -h "$DEMO" -p "$PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_demo <<'SQL'
\pset footer off
CREATE EXTENSION sentry_relay;
SET timezone = 'UTC';

\echo
\echo == sample events-topic messages, decoded into post-process jobs
CREATE TEMP TABLE sample(name text, value bytea, headers jsonb);
INSERT INTO sample VALUES
('v2 insert with group_states', convert_to($$[2, "insert",
  {"event_id": "9cdc4c32dff14fbbb012b0aa9e908126", "project_id": 1, "group_id": 42,
   "group_ids": [42], "organization_id": 1, "message": "ZeroDivisionError: division by zero",
   "platform": "python", "datetime": "2024-02-13T20:52:46.831390Z",
   "primary_hash": "49f68a5c8493ec2c0bf489821c21fc3b", "retention_days": 90,
   "data": {"exception": {"values": [{"type": "ZeroDivisionError",
            "stacktrace": {"frames": [{"filename": "app.py", "lineno": 12}]}}]},
            "tags": [["level", "error"]]}},
  {"is_new": true, "is_regression": false, "is_new_group_environment": true,
   "queue": "post_process_errors", "skip_consume": false,
   "group_states": [{"id": 42, "is_new": true, "is_regression": false,
                     "is_new_group_environment": true}]}]$$, 'UTF8'), NULL),
('issue platform insert', convert_to($$[2, "insert",
  {"event_id": "1b2c3d4e5f60718293a4b5c6d7e8f901", "project_id": 3, "group_id": null,
   "primary_hash": null, "occurrence_id": "c0ffee00c0ffee00c0ffee00c0ffee00",
   "occurrence_data": {"id": "c0ffee00c0ffee00c0ffee00c0ffee00", "type": 1001}},
  {"is_new": false, "is_regression": false, "is_new_group_environment": false,
   "queue": "post_process_issue_platform", "group_states": null}]$$, 'UTF8'), NULL),
('v1 insert (is_sample)', convert_to($$[1, "insert",
  {"event_id": "00000000000010008080808080808080", "project_id": 1, "group_id": 2,
   "message": "message", "platform": "python", "datetime": "2018-07-20T21:04:27.600640Z",
   "data": {}, "primary_hash": "49f68a5c8493ec2c0bf489821c21fc3b"},
  {"is_new": true, "is_sample": false, "is_regression": false,
   "is_new_group_environment": true}]$$, 'UTF8'), NULL),
('headers only (body not read)', convert_to('...a 2 KB body the relay never parses...', 'UTF8'),
  '{"version": "2", "operation": "insert", "event_id": "aa11bb22cc33dd44ee55ff6677889900",
    "project_id": "7", "group_id": "70", "primary_hash": "feedface", "is_new": "0",
    "is_regression": "1", "is_new_group_environment": "0", "skip_consume": "0",
    "Received-Timestamp": "1707857566.83"}'),
('tombstone_events', convert_to('[2, "tombstone_events", {"project_id": 1, "event_ids": ["9cdc4c32dff14fbbb012b0aa9e908126"]}]', 'UTF8'), NULL),
('end_unmerge', convert_to('[2, "end_unmerge", {"project_id": 1, "previous_group_id": 1, "new_group_id": 2}]', 'UTF8'), NULL),
('skip_consume', convert_to('[2, "insert", {"event_id": "9cdc4c32dff14fbbb012b0aa9e908126", "project_id": 1}, {"is_new": false, "is_regression": false, "skip_consume": true}]', 'UTF8'), NULL);

SELECT name, coalesce(jsonb_pretty(sentry_relay.decode_event_message(value, headers)), '(no job)') AS job
FROM sample;

\echo
\echo == commit-log entries: offsets the writer has committed (exclusive)
SELECT c.*
FROM (VALUES
  ('events:0:snuba-consumers', '{"offset": 12346, "orig_message_ts": 1707857566.83139, "received_p99": 1707857569.83139}', NULL::jsonb),
  ('events:1:snuba-consumers', '{"offset": 9001, "orig_message_ts": 1707857566.5}', NULL),
  ('events:2:snuba-consumers', '12346', '{"orig_message_ts": "2021-09-20T12:34:56.789000Z"}')
) AS m(k, v, h),
LATERAL sentry_relay.decode_commit_log_message(convert_to(k, 'UTF8'), convert_to(v, 'UTF8'), h) c;
SQL

echo
echo "== a bad message is an error with a SQLSTATE, not a crash"
psql_demo -v ON_ERROR_STOP=0 -c "\\set VERBOSITY verbose" \
	-c "SELECT sentry_relay.decode_event_message(convert_to('[2, \"explode\", {}]', 'UTF8'))" 2>&1 | sed 's/^/  /' || true
echo
echo "== done; the throwaway cluster is removed"
