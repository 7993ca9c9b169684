/*
 * sentry_relay 0.3.0 -> 0.4.0: sentry_relay.workers shows how each worker's
 * batches of jobs went into sentry_relay.jobs: direct_inserts through the
 * table access method's multi-row insert, the path of the table as the
 * extension creates it, and copy_inserts through COPY FROM, which a table
 * with triggers, row-level security or generated columns needs (see
 * docs/performance.md).  Shared memory, like the other counters.
 *
 * complete_jobs and fail_job require the lease token (the job's attempts,
 * as claim_jobs returns it).  A call without it, complete_jobs(ids) or
 * fail_job(id, error), now fails with SQLSTATE 22004 and a hint that shows
 * the call with the token: without it, a worker whose lease had expired
 * could remove, or clear the lease of, a job that another worker holds.
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

CREATE OR REPLACE FUNCTION @extschema@.complete_jobs(ids bigint[], attempts int[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
BEGIN
    IF ids IS NULL THEN
        RAISE EXCEPTION 'ids must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the ids of the claimed jobs that are done, for example ARRAY[1, 2, 3].';
    END IF;
    -- the lease tokens are required; their DEFAULT NULL only lets a call
    -- without them reach this error instead of "function does not exist"
    IF attempts IS NULL THEN
        RAISE EXCEPTION 'complete_jobs needs the lease token of each job: attempts must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass each job''s attempts as claim_jobs returned it: complete_jobs(ARRAY[id, ...], ARRAY[attempts, ...]). Without the token a worker whose lease expired could remove a job that another worker holds.';
    END IF;
    IF cardinality(attempts) <> cardinality(ids) THEN
        RAISE EXCEPTION 'attempts must have one entry per id (% ids, % attempts)',
                cardinality(ids), cardinality(attempts)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass each job''s attempts as claim_jobs returned it.';
    END IF;
    -- a completion from an expired lease that was claimed again is rejected
    -- no join (see claim_jobs); a repeated id matches its first token
    DELETE FROM @extschema@.jobs AS j
     WHERE j.id = ANY (ids) AND j.leased_until IS NOT NULL
       AND j.attempts = (complete_jobs.attempts)[array_position(ids, j.id)];
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.fail_job(
    id bigint,
    error text,
    retry_in interval DEFAULT NULL,
    attempt int DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j @extschema@.jobs;
    max_attempts int := current_setting('sentry_relay.max_attempts')::int;
    entry jsonb;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'id must not be null'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the id of the claimed job that failed.';
    END IF;
    IF error IS NULL THEN
        RAISE EXCEPTION 'error must not be null'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Say why the job failed; it is kept in the job''s error history.';
    END IF;
    -- the lease token is required; its DEFAULT NULL only lets a call
    -- without it reach this error instead of "function does not exist"
    IF attempt IS NULL THEN
        RAISE EXCEPTION 'fail_job needs the lease token of the job: attempt must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the job''s attempts as claim_jobs returned it: fail_job(id, error, attempt => attempts). Without the token a worker whose lease expired could clear the lease of another worker that holds the job.';
    END IF;
    IF retry_in IS NOT NULL AND retry_in < interval '0' THEN
        RAISE EXCEPTION 'retry_in must not be negative, not %', retry_in
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL for the default exponential backoff.';
    END IF;
    SELECT * INTO j FROM @extschema@.jobs AS t WHERE t.id = fail_job.id FOR UPDATE;
    IF NOT FOUND OR j.leased_until IS NULL THEN
        RETURN false;           -- completed, dead, or never claimed
    END IF;
    IF attempt <> j.attempts THEN
        RETURN false;           -- a late report from an expired, re-claimed lease
    END IF;
    entry := jsonb_build_object('attempt', j.attempts, 'at', now(), 'error', error);
    IF j.attempts >= max_attempts THEN
        DELETE FROM @extschema@.jobs AS t WHERE t.id = j.id;
        j.errors := coalesce(j.errors, '[]'::jsonb) || entry;
        j.leased_until := NULL;
        INSERT INTO @extschema@.dead_jobs SELECT (j).*, now();
    ELSE
        UPDATE @extschema@.jobs AS t
           SET leased_until = NULL,
               visible_at = now() + coalesce(retry_in,
                   least(interval '1 second' * 5 * power(2, least(j.attempts - 1, 10)), interval '1 hour')),
               errors = coalesce(t.errors, '[]'::jsonb) || entry
         WHERE t.id = j.id;
    END IF;
    RETURN true;
END $$;

