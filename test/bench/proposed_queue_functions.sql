-- proposed_queue_functions.sql - NOT part of the extension: a proposed
-- rewrite of sentry_relay.claim_jobs and complete_jobs (same signatures,
-- same results), for the maintainers to measure and port to sql/:
--
--   BENCH_PATCH=test/bench/proposed_queue_functions.sql make bench-queue
--
-- Both statements lose their join, and with it the planning cost that
-- dominates a claim under churn.  The statements have parameters, so the
-- plan cache plans them anew at each call (the generic plan of the claim,
-- costed with LIMIT $1 at 10% of the table, always loses); and planning a
-- join on jobs.id costs a merge join, whose mergejoinscansel() probes the
-- actual low end of jobs_pkey (get_actual_variable_range) through the dead
-- index entries that completed jobs leave there until the next vacuum -
-- the same walk that the claim itself then does.
--
-- 1. claim_jobs: "j.id = ANY (ARRAY(subquery))" instead of
--    "j.id IN (subquery)"; the plan is the same (an InitPlan, then an
--    index scan on id = ANY).
-- 2. complete_jobs(ids, attempts): "j.id = ANY (ids) AND j.attempts =
--    attempts[array_position(ids, j.id)]" instead of "USING unnest(ids,
--    attempts)" (array_position is linear, fine for batches of a few
--    hundred; a duplicate id matches its first token).

CREATE OR REPLACE FUNCTION sentry_relay.claim_jobs(
    max_jobs int,
    lease interval DEFAULT '5 minutes',
    queues text[] DEFAULT NULL)
RETURNS SETOF sentry_relay.jobs
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
    RETURN QUERY
    UPDATE sentry_relay.jobs AS j
       SET leased_until = now() + lease,
           attempts = j.attempts + 1
     WHERE j.id = ANY (ARRAY(
           SELECT c.id FROM sentry_relay.jobs AS c
            WHERE (queues IS NULL OR c.queue = ANY (queues))
              AND c.visible_at <= now()
              AND (c.leased_until IS NULL OR c.leased_until <= now())
            ORDER BY c.id
            LIMIT max_jobs
              FOR UPDATE SKIP LOCKED))
    RETURNING j.*;
END $$;

CREATE OR REPLACE FUNCTION sentry_relay.complete_jobs(ids bigint[], attempts int[] DEFAULT NULL)
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
    IF attempts IS NOT NULL AND cardinality(attempts) <> cardinality(ids) THEN
        RAISE EXCEPTION 'attempts must have one entry per id (% ids, % attempts)',
                cardinality(ids), cardinality(attempts)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass each job''s attempts as claim_jobs returned it, or no attempts at all.';
    END IF;
    IF attempts IS NULL THEN
        DELETE FROM sentry_relay.jobs AS j
         WHERE j.id = ANY (ids) AND j.leased_until IS NOT NULL;
    ELSE
        -- with lease tokens, a completion from an expired lease that was
        -- claimed again is rejected
        DELETE FROM sentry_relay.jobs AS j
         WHERE j.id = ANY (ids) AND j.leased_until IS NOT NULL
           AND j.attempts = (complete_jobs.attempts)[array_position(ids, j.id)];
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
