/*
 * sentry_relay 0.3.0 -> 0.4.0: sentry_relay.workers shows how each worker's
 * batches of jobs went into sentry_relay.jobs: direct_inserts through the
 * table access method's multi-row insert, the path of the table as the
 * extension creates it, and copy_inserts through COPY FROM, which a table
 * with triggers, row-level security or generated columns needs (see
 * docs/performance.md).  Shared memory, like the other counters.
 */
\echo Use "ALTER EXTENSION sentry_relay UPDATE TO '0.4.0'" to load this file. \quit

DROP VIEW @extschema@.workers;
DROP FUNCTION @extschema@._worker_status();
CREATE FUNCTION @extschema@._worker_status(
    OUT pid int, OUT stream text, OUT worker int, OUT status text,
    OUT partitions int[], OUT messages bigint, OUT jobs bigint,
    OUT skipped bigint, OUT dead_letters bigint, OUT batches bigint,
    OUT last_error text, OUT last_error_at timestamptz,
    OUT started_at timestamptz, OUT restarts int,
    OUT kafka_errors bigint, OUT broker_waits bigint, OUT rebalances bigint,
    OUT commit_failures bigint, OUT remote_backwards bigint, OUT gated bigint,
    OUT direct_inserts bigint, OUT copy_inserts bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sr_worker_status'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION @extschema@._worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._worker_status() TO sentry_relay_admin;

CREATE VIEW @extschema@.workers AS
SELECT * FROM @extschema@._worker_status();
GRANT SELECT ON @extschema@.workers TO sentry_relay_admin;
