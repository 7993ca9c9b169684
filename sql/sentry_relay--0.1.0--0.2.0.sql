/*
 * sentry_relay 0.1.0 -> 0.2.0
 *
 * There is no separate 0.2.0 install script: CREATE EXTENSION runs
 * sentry_relay--0.1.0.sql and then this file, so every fresh install also
 * exercises the upgrade path.  Each later version ships one more
 * sentry_relay--A--B.sql script in the same way.
 */
\echo Use "ALTER EXTENSION sentry_relay UPDATE TO '0.2.0'" to load this file. \quit

/* ---- job queue (issue #4) ---------------------------------------------- */

/*
 * Half of each page is left free, so that a claim (which changes only
 * unindexed columns) is always a HOT update: at fillfactor 70 only about
 * half of the claims were.  Applies to pages written from now on.
 */
ALTER TABLE @extschema@.jobs SET (fillfactor = 50);

CREATE OR REPLACE FUNCTION @extschema@.claim_jobs(
    max_jobs int,
    lease interval DEFAULT '5 minutes',
    queues text[] DEFAULT NULL)
RETURNS SETOF @extschema@.jobs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF max_jobs IS NULL OR max_jobs < 1 OR max_jobs > 10000 THEN
        RAISE EXCEPTION 'max_jobs must be between 1 and 10000, not %', coalesce(max_jobs::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Claim a small batch, such as 10 to 100 jobs, and claim again when done.';
    END IF;
    IF lease IS NULL OR lease <= interval '0' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'lease must be a positive interval of at most 1 day, not %', coalesce(lease::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The lease is how long a worker may hold a job before another may claim it, such as ''5 minutes''.';
    END IF;
    IF queues IS NOT NULL AND (array_ndims(queues) IS DISTINCT FROM 1
                               OR array_position(queues, NULL) IS NOT NULL) THEN
        RAISE EXCEPTION 'queues must be NULL (any queue) or a list of queue names'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example ARRAY[''post_process_errors''].';
    END IF;
    -- A claim is soft state: if a crash loses it, the job is simply ready
    -- again, as if its lease had expired (a durable claim would instead keep
    -- the job leased for the whole lease after a crash).  So when the claim
    -- is its transaction's first write, its commit does not wait for the WAL
    -- flush.  complete_jobs and fail_job stay durable, and their commit
    -- flushes the claim's WAL record too.
    IF pg_current_xact_id_if_assigned() IS NULL THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    RETURN QUERY
    UPDATE @extschema@.jobs AS j
       SET leased_until = now() + lease,
           attempts = j.attempts + 1
     -- "= ANY (ARRAY(...))", not "IN (...)": no join to plan.  Planning a
     -- join on jobs.id probes the low end of the primary key through the
     -- dead entries that completed jobs leave there until vacuum, and with
     -- parameters the plan is made anew at every call.
     WHERE j.id = ANY (ARRAY(
           SELECT c.id FROM @extschema@.jobs AS c
            WHERE (queues IS NULL OR c.queue = ANY (queues))
              AND c.visible_at <= now()
              AND (c.leased_until IS NULL OR c.leased_until <= now())
            ORDER BY c.id
            LIMIT max_jobs
              FOR UPDATE SKIP LOCKED))
    RETURNING j.*;
END $$;


/* ---- security (issue #6) ------------------------------------------------ */
