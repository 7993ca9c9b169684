--
-- queue: the job queue interface (claim_jobs, complete_jobs, fail_job,
-- retry_dead_jobs, queue_stats) and sentry_relay.max_attempts.
--
-- The whole test runs in one transaction, for two reasons:
--  * the other tests of the schedule run in parallel in the same database,
--    and streams.sql ends with DELETE FROM sentry_relay.jobs: our rows stay
--    invisible to it until we have removed them ourselves;
--  * now() stands still, so leases, backoffs and ages are exact intervals.
-- Lease expiry and the end of a backoff are simulated by moving leased_until
-- or visible_at, instead of waiting.  ON_ERROR_ROLLBACK lets a statement fail
-- (to show an error with its hint) without ending the transaction.
--
-- Our jobs have explicit ids from 900000 up, far above the identity sequence
-- that other tests use, and queues named regress_q*.  claim_jobs is always
-- given our queues, so it never touches another test's jobs.
--
\set SHOW_CONTEXT never
\set VERBOSITY default
\set ON_ERROR_ROLLBACK on
\pset null '<NULL>'

BEGIN;

-- Report the SQLSTATE and message of a failing statement.
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Enqueue jobs with the given ids in queue q, as the relay would.
CREATE FUNCTION pg_temp.add_jobs(q text, VARIADIC ids bigint[]) RETURNS bigint LANGUAGE sql AS $$
    WITH added AS (
        INSERT INTO sentry_relay.jobs
            (id, stream, topic, partition, "offset", queue, eventstream_type, project_id,
             event_id, is_new, is_regression, is_new_group_environment, cache_key)
        OVERRIDING SYSTEM VALUE
        SELECT i, 'regress_queue', 'events', 0, i, q, 'error', 1,
               md5(i::text), true, false, false, 'e:' || md5(i::text) || ':1'
          FROM unnest(ids) AS i
        RETURNING 1)
    SELECT count(*) FROM added
$$;

-- The jobs of queue q: attempts, when they become visible and when their
-- lease ends (relative to now()), and their error history without the
-- timestamps ("at" is checked separately: it is always now() here).
CREATE FUNCTION pg_temp.jobs(q text)
RETURNS TABLE (id bigint, attempts int, visible_in interval, lease interval, errors jsonb)
LANGUAGE sql AS $$
    SELECT j.id, j.attempts, j.visible_at - now(), j.leased_until - now(),
           (SELECT jsonb_agg(e - 'at' ORDER BY n)
              FROM jsonb_array_elements(j.errors) WITH ORDINALITY AS x(e, n))
      FROM sentry_relay.jobs AS j
     WHERE j.queue = q
     ORDER BY j.id
$$;

-- A worker's attempt that fails: claim the one job of queue q, fail it
-- with its lease token, show the backoff and whether the job died, then
-- make the job visible again (as if the backoff had passed).
CREATE FUNCTION pg_temp.claim_and_fail(q text, msg text)
RETURNS TABLE (attempt int, failed boolean, backoff interval, dead boolean)
LANGUAGE plpgsql AS $$
DECLARE
    c sentry_relay.jobs;
BEGIN
    SELECT * INTO c FROM sentry_relay.claim_jobs(1, queues => ARRAY[q]);
    attempt := c.attempts;
    failed := sentry_relay.fail_job(c.id, msg, attempt => c.attempts);
    SELECT j.visible_at - now() INTO backoff FROM sentry_relay.jobs AS j WHERE j.id = c.id;
    dead := EXISTS (SELECT 1 FROM sentry_relay.dead_jobs AS d WHERE d.id = c.id);
    UPDATE sentry_relay.jobs AS j SET visible_at = now() WHERE j.id = c.id;
    RETURN NEXT;
END $$;

--
-- Bad arguments: each is an error with SQLSTATE 22023
-- (invalid_parameter_value) or 22004 (null_value_not_allowed), and a hint.
--
-- claim_jobs: max_jobs is 1 to 10000, the lease is more than 0 and at most
-- 1 day, queues is NULL or a non-empty list of non-null names.
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(NULL, queues => ARRAY['regress_q'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(0, queues => ARRAY['regress_q'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(-1, queues => ARRAY['regress_q'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(10001, queues => ARRAY['regress_q'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, NULL, ARRAY['regress_q'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, '0', ARRAY['regress_q'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, '-1 second', ARRAY['regress_q'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, '1 day 00:00:00.000001', ARRAY['regress_q'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, '25 hours', ARRAY['regress_q'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, '1 month', ARRAY['regress_q'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, queues => ARRAY[]::text[])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, queues => ARRAY[NULL]::text[])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, queues => ARRAY['regress_q', NULL])$$);
-- the limits themselves are accepted (there is no job in these queues)
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(10000, queues => ARRAY['regress_q_none'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, '1 day', ARRAY['regress_q_none'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, '24 hours', ARRAY['regress_q_none'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, '1 microsecond', ARRAY['regress_q_none'])$$);
-- with their hints
SELECT * FROM sentry_relay.claim_jobs(0, queues => ARRAY['regress_q']);
SELECT * FROM sentry_relay.claim_jobs(1, '0', ARRAY['regress_q']);
SELECT * FROM sentry_relay.claim_jobs(1, queues => ARRAY['regress_q', NULL]);

-- complete_jobs: ids and the lease tokens (attempts) must not be NULL, and
-- attempts has one entry per id.  Empty lists are fine, and remove nothing.
SELECT pg_temp.err($$SELECT sentry_relay.complete_jobs(NULL)$$);
SELECT pg_temp.err($$SELECT sentry_relay.complete_jobs(NULL, ARRAY[1])$$);
SELECT pg_temp.err($$SELECT sentry_relay.complete_jobs(ARRAY[900001])$$);
SELECT pg_temp.err($$SELECT sentry_relay.complete_jobs(ARRAY[900001], NULL)$$);
SELECT pg_temp.err($$SELECT sentry_relay.complete_jobs(ARRAY[]::bigint[])$$);
SELECT pg_temp.err($$SELECT sentry_relay.complete_jobs(ARRAY[900001, 900002], ARRAY[1])$$);
SELECT pg_temp.err($$SELECT sentry_relay.complete_jobs(ARRAY[900001], ARRAY[1, 1])$$);
SELECT pg_temp.err($$SELECT sentry_relay.complete_jobs(ARRAY[900001], ARRAY[]::int[])$$);
SELECT sentry_relay.complete_jobs(ARRAY[]::bigint[], ARRAY[]::int[]) AS removed;
SELECT sentry_relay.complete_jobs(NULL);
SELECT sentry_relay.complete_jobs(ARRAY[900001]);
SELECT sentry_relay.complete_jobs(ARRAY[900001, 900002], ARRAY[1]);

-- fail_job: id, error and the lease token (attempt) must not be NULL,
-- retry_in must not be negative.  The arguments are checked before the job
-- is looked up.
SELECT pg_temp.err($$SELECT sentry_relay.fail_job(NULL, 'boom', attempt => 1)$$);
SELECT pg_temp.err($$SELECT sentry_relay.fail_job(900001, NULL, attempt => 1)$$);
SELECT pg_temp.err($$SELECT sentry_relay.fail_job(900001, 'boom')$$);
SELECT pg_temp.err($$SELECT sentry_relay.fail_job(900001, 'boom', '5 seconds')$$);
SELECT pg_temp.err($$SELECT sentry_relay.fail_job(900001, 'boom', '-1 second', 1)$$);
SELECT pg_temp.err($$SELECT sentry_relay.fail_job(900001, 'boom', '1 day -25 hours', 1)$$);
SELECT sentry_relay.fail_job(NULL, 'boom', attempt => 1);
SELECT sentry_relay.fail_job(900001, NULL, attempt => 1);
SELECT sentry_relay.fail_job(900001, 'boom');
SELECT sentry_relay.fail_job(900001, 'boom', '-1 second', 1);

-- retry_dead_jobs: an empty list, or ids that are not dead jobs, move nothing.
SELECT sentry_relay.retry_dead_jobs(ARRAY[]::bigint[]) AS moved;
SELECT sentry_relay.retry_dead_jobs(ARRAY[900001, NULL]) AS moved;

--
-- claim_jobs: oldest (lowest id) first, per queue, each job once.
--
-- Jobs enqueued out of id order, in two queues, and one job that is not
-- visible yet.
SELECT pg_temp.add_jobs('regress_q', 900004, 900002, 900005, 900001) AS enqueued;
SELECT pg_temp.add_jobs('regress_q2', 900006, 900003) AS enqueued;
SELECT pg_temp.add_jobs('regress_q', 900007) AS enqueued;
UPDATE sentry_relay.jobs SET visible_at = now() + interval '1 minute' WHERE id = 900007;
SELECT * FROM pg_temp.jobs('regress_q');

-- A claim leases the lowest ids of the given queues, for 5 minutes by
-- default, and counts the attempt.
SELECT id, queue, attempts, leased_until - now() AS lease
  FROM sentry_relay.claim_jobs(2, queues => ARRAY['regress_q']) ORDER BY id;
SELECT id, queue, attempts, leased_until - now() AS lease
  FROM sentry_relay.claim_jobs(10, '30 seconds', ARRAY['regress_q2']) ORDER BY id;
SELECT id, queue, attempts, leased_until - now() AS lease
  FROM sentry_relay.claim_jobs(1, '1 hour', ARRAY['regress_q2', 'regress_q']) ORDER BY id;
-- leased jobs are not claimed again, and 900007 is not visible yet
SELECT id, queue, attempts, leased_until - now() AS lease
  FROM sentry_relay.claim_jobs(100, queues => ARRAY['regress_q', 'regress_q2']) ORDER BY id;
SELECT count(*) AS claimed FROM sentry_relay.claim_jobs(100, queues => ARRAY['regress_q', 'regress_q2']);
SELECT * FROM pg_temp.jobs('regress_q');
-- once visible, 900007 can be claimed
UPDATE sentry_relay.jobs SET visible_at = now() WHERE id = 900007;
SELECT id, attempts FROM sentry_relay.claim_jobs(100, queues => ARRAY['regress_q', 'regress_q2']);

-- A lease that has expired can be claimed again: the attempt (the lease
-- token) goes up.  A lease that ends right now has expired.
UPDATE sentry_relay.jobs SET leased_until = now() - interval '1 second' WHERE id = 900001;
UPDATE sentry_relay.jobs SET leased_until = now() WHERE id = 900004;
SELECT id, attempts, leased_until - now() AS lease
  FROM sentry_relay.claim_jobs(10, queues => ARRAY['regress_q']) ORDER BY id;
UPDATE sentry_relay.jobs SET leased_until = now() - interval '1 second' WHERE id = 900001;
SELECT id, attempts, leased_until - now() AS lease
  FROM sentry_relay.claim_jobs(10, queues => ARRAY['regress_q']) ORDER BY id;
SELECT * FROM pg_temp.jobs('regress_q');

--
-- complete_jobs removes claimed jobs and returns how many it removed.
--
-- Only claimed jobs whose lease token (attempt) matches; unknown ids and
-- repeated ids count once at most.
SELECT sentry_relay.complete_jobs(ARRAY[900002, 900002, 999999], ARRAY[1, 1, 1]) AS removed;
SELECT sentry_relay.complete_jobs(ARRAY[900002], ARRAY[1]) AS removed;
-- a job that is not claimed (never claimed, or failed and waiting for its
-- retry) cannot be completed
SELECT pg_temp.add_jobs('regress_q', 900008) AS enqueued;
SELECT sentry_relay.complete_jobs(ARRAY[900008], ARRAY[0]) AS removed;
-- A stale token is rejected.  900001 is at
-- attempt 3, so a completion from attempt 1 or 2 (expired leases) is
-- rejected, and attempt 3 removes it.
SELECT sentry_relay.complete_jobs(ARRAY[900001], ARRAY[1]) AS removed;
SELECT sentry_relay.complete_jobs(ARRAY[900001], ARRAY[2]) AS removed;
SELECT sentry_relay.complete_jobs(ARRAY[900001], ARRAY[NULL]::int[]) AS removed;
SELECT id, attempts FROM pg_temp.jobs('regress_q') WHERE id = 900001;
SELECT sentry_relay.complete_jobs(ARRAY[900001], ARRAY[3]) AS removed;
-- each id is paired with its own token
SELECT sentry_relay.complete_jobs(ARRAY[900004, 900005, 900007], ARRAY[2, 7, 1]) AS removed;
SELECT id, attempts FROM pg_temp.jobs('regress_q');
-- an expired lease that nobody claimed again can still be completed with
-- its token
UPDATE sentry_relay.jobs SET leased_until = now() - interval '1 second' WHERE id = 900005;
SELECT sentry_relay.complete_jobs(ARRAY[900005], ARRAY[1]) AS removed;
-- but once a job whose lease expired is claimed again, only the new token
-- removes it
UPDATE sentry_relay.jobs SET leased_until = now() - interval '1 second' WHERE id = 900003;
SELECT id, attempts FROM sentry_relay.claim_jobs(1, queues => ARRAY['regress_q2']);
SELECT sentry_relay.complete_jobs(ARRAY[900003, 900006], ARRAY[1, 1]) AS removed;
SELECT sentry_relay.complete_jobs(ARRAY[900003], ARRAY[2]) AS removed;
SELECT * FROM pg_temp.jobs('regress_q2');
SELECT * FROM pg_temp.jobs('regress_q');

--
-- fail_job records the error, clears the lease and delays the job by
-- retry_in or by the default backoff (5 s, doubling per attempt).
--
SELECT pg_temp.add_jobs('regress_q_fail', 900101, 900102, 900103) AS enqueued;
-- jobs that are not claimed (or do not exist) are left alone: false
SELECT sentry_relay.fail_job(900101, 'never claimed', attempt => 0) AS failed;
SELECT sentry_relay.fail_job(999999, 'no such job', attempt => 1) AS failed;
SELECT id, attempts FROM sentry_relay.claim_jobs(3, queues => ARRAY['regress_q_fail']) ORDER BY id;
SELECT sentry_relay.fail_job(900101, 'boom', attempt => 1) AS failed;
SELECT sentry_relay.fail_job(900102, 'slow down', retry_in => '2 minutes', attempt => 1) AS failed;
SELECT sentry_relay.fail_job(900103, 'retry now', retry_in => '0', attempt => 1) AS failed;
SELECT * FROM pg_temp.jobs('regress_q_fail');
-- each error is stamped with the time of the failure
SELECT j.id, (e->>'at')::timestamptz = now() AS at_is_now
  FROM sentry_relay.jobs AS j, jsonb_array_elements(j.errors) AS e
 WHERE j.queue = 'regress_q_fail' ORDER BY j.id;
-- failing again changes nothing: the job is no longer claimed
SELECT sentry_relay.fail_job(900101, 'boom again', attempt => 1) AS failed;
-- and it cannot be completed while it waits for its retry
SELECT sentry_relay.complete_jobs(ARRAY[900101], ARRAY[1]) AS removed;
-- 900103 is visible at once; the others wait for their retry
SELECT id, attempts FROM sentry_relay.claim_jobs(3, queues => ARRAY['regress_q_fail']);
-- A stale lease token is rejected and changes nothing; the current one
-- works, with the backoff of attempt 2 (10 s).
SELECT sentry_relay.fail_job(900103, 'stale', attempt => 1) AS failed;
SELECT sentry_relay.fail_job(900103, 'stale', attempt => 3) AS failed;
SELECT * FROM pg_temp.jobs('regress_q_fail') WHERE id = 900103;
SELECT sentry_relay.fail_job(900103, 'second failure', attempt => 2) AS failed;
SELECT * FROM pg_temp.jobs('regress_q_fail') WHERE id = 900103;
-- With its token, a failure is still accepted once the lease has expired,
-- as long as nobody claimed the job again.
UPDATE sentry_relay.jobs SET visible_at = now() WHERE id = 900101;
SELECT id, attempts FROM sentry_relay.claim_jobs(1, queues => ARRAY['regress_q_fail']);
UPDATE sentry_relay.jobs SET leased_until = now() - interval '1 second' WHERE id = 900101;
SELECT sentry_relay.fail_job(900101, 'late but mine', attempt => 2) AS failed;
SELECT * FROM pg_temp.jobs('regress_q_fail') WHERE id = 900101;
-- a completed job cannot fail
UPDATE sentry_relay.jobs SET visible_at = now() WHERE id = 900102;
SELECT id, attempts FROM sentry_relay.claim_jobs(1, queues => ARRAY['regress_q_fail']);
SELECT sentry_relay.complete_jobs(ARRAY[900102], ARRAY[2]) AS removed;
SELECT sentry_relay.fail_job(900102, 'after completion', attempt => 2) AS failed;

--
-- The default backoff doubles per attempt (5 s, 10 s, 20 s, 40 s), and the
-- job dies at sentry_relay.max_attempts (default 5): it moves to dead_jobs
-- with its whole error history.
--
SHOW sentry_relay.max_attempts;
SELECT pg_temp.add_jobs('regress_q_dead', 900201) AS enqueued;
SELECT * FROM pg_temp.claim_and_fail('regress_q_dead', 'error 1');
SELECT * FROM pg_temp.claim_and_fail('regress_q_dead', 'error 2');
SELECT * FROM pg_temp.claim_and_fail('regress_q_dead', 'error 3');
SELECT * FROM pg_temp.claim_and_fail('regress_q_dead', 'error 4');
SELECT * FROM pg_temp.jobs('regress_q_dead');
SELECT * FROM pg_temp.claim_and_fail('regress_q_dead', 'error 5');
SELECT count(*) AS live FROM sentry_relay.jobs WHERE id = 900201;
SELECT id, queue, attempts, leased_until, visible_at - now() AS visible_in,
       died_at = now() AS died_now, event_id = md5('900201') AS same_job,
       jsonb_path_query_array(errors, '$[*].attempt') AS attempts_failed,
       jsonb_path_query_array(errors, '$[*].error') AS errors
  FROM sentry_relay.dead_jobs WHERE queue = 'regress_q_dead';
-- the dead job cannot be completed or failed
SELECT sentry_relay.complete_jobs(ARRAY[900201], ARRAY[5]) AS removed;
SELECT sentry_relay.fail_job(900201, 'dead already', attempt => 5) AS failed;

-- retry_dead_jobs moves it back: same id and history, attempts 0, visible
-- now, not leased.
SELECT sentry_relay.retry_dead_jobs(ARRAY[900201]) AS moved;
SELECT sentry_relay.retry_dead_jobs(ARRAY[900201]) AS moved;
SELECT count(*) AS dead FROM sentry_relay.dead_jobs WHERE id = 900201;
SELECT id, attempts, visible_in, lease, jsonb_array_length(errors) AS errors
  FROM pg_temp.jobs('regress_q_dead');
-- its attempts start over, and its history grows
SELECT * FROM pg_temp.claim_and_fail('regress_q_dead', 'error 6');
SELECT id, attempts, jsonb_path_query_array(errors, '$[*].attempt') AS attempts_failed
  FROM sentry_relay.jobs WHERE id = 900201;

-- sentry_relay.max_attempts is read at each failure.
SET sentry_relay.max_attempts = 2;
SHOW sentry_relay.max_attempts;
SELECT * FROM pg_temp.claim_and_fail('regress_q_dead', 'error 7');
SELECT id, attempts, jsonb_path_query_array(errors, '$[*].attempt') AS attempts_failed
  FROM sentry_relay.dead_jobs WHERE id = 900201;
-- with max_attempts = 1 a job dies at its first failure, whatever retry_in
SET sentry_relay.max_attempts = 1;
SELECT pg_temp.add_jobs('regress_q_dead', 900202, 900203) AS enqueued;
SELECT id FROM sentry_relay.claim_jobs(2, queues => ARRAY['regress_q_dead']) ORDER BY id;
SELECT sentry_relay.fail_job(900202, 'fatal', retry_in => '1 second', attempt => 1) AS failed;
SELECT sentry_relay.fail_job(900203, 'fatal', attempt => 1) AS failed;
SELECT id, attempts, (errors -> 0) - 'at' AS first_error_without_at
  FROM sentry_relay.dead_jobs WHERE queue = 'regress_q_dead' ORDER BY id;
-- the setting's range is 1 to 1000
SET sentry_relay.max_attempts = 0;
SET sentry_relay.max_attempts = 1001;
SELECT name, setting, context, min_val, max_val, boot_val
  FROM pg_settings WHERE name = 'sentry_relay.max_attempts';

-- retry_dead_jobs() with no ids moves every dead job (here, only ours: the
-- other tests create none).
SELECT sentry_relay.retry_dead_jobs() AS moved;
SELECT count(*) AS dead FROM sentry_relay.dead_jobs;
SELECT id, attempts, visible_in, lease, jsonb_array_length(errors) AS errors
  FROM pg_temp.jobs('regress_q_dead');

-- The backoff is capped at 1 hour: 5 s * 2^9 = 42 min 40 s at attempt 10,
-- and 1 hour from attempt 11 on, however many attempts are allowed.
SET sentry_relay.max_attempts = 1000;
SELECT pg_temp.add_jobs('regress_q_cap', 900301) AS enqueued;
UPDATE sentry_relay.jobs SET attempts = 9 WHERE id = 900301;
SELECT * FROM pg_temp.claim_and_fail('regress_q_cap', 'slow');
SELECT * FROM pg_temp.claim_and_fail('regress_q_cap', 'slow');
SELECT * FROM pg_temp.claim_and_fail('regress_q_cap', 'slow');
UPDATE sentry_relay.jobs SET attempts = 41 WHERE id = 900301;
SELECT * FROM pg_temp.claim_and_fail('regress_q_cap', 'slow');
UPDATE sentry_relay.jobs SET attempts = 998 WHERE id = 900301;
SELECT * FROM pg_temp.claim_and_fail('regress_q_cap', 'slow');
SELECT * FROM pg_temp.claim_and_fail('regress_q_cap', 'slow');
SELECT id, attempts, jsonb_array_length(errors) AS errors FROM sentry_relay.dead_jobs WHERE id = 900301;
RESET sentry_relay.max_attempts;
SHOW sentry_relay.max_attempts;

--
-- queue_stats: per queue, depth = ready + leased + delayed, the age of the
-- oldest job, and the dead jobs.  It covers every queue, so we look at ours.
--
SELECT pg_temp.add_jobs('regress_q_stats', 900401, 900402, 900403, 900404, 900405, 900406) AS enqueued;
UPDATE sentry_relay.jobs SET enqueued_at = now() - interval '1 hour' WHERE id = 900403;
SELECT id FROM sentry_relay.claim_jobs(4, queues => ARRAY['regress_q_stats']) ORDER BY id;
SELECT sentry_relay.complete_jobs(ARRAY[900401], ARRAY[1]) AS removed;    -- gone
SELECT sentry_relay.fail_job(900402, 'later', attempt => 1) AS failed;    -- delayed
UPDATE sentry_relay.jobs SET leased_until = now() - interval '1 second'
 WHERE id = 900403;                                                        -- ready again
SET sentry_relay.max_attempts = 1;
SELECT pg_temp.add_jobs('regress_q_dead_only', 900501, 900502) AS enqueued;
SELECT id FROM sentry_relay.claim_jobs(2, queues => ARRAY['regress_q_dead_only']) ORDER BY id;
SELECT sentry_relay.fail_job(900501, 'fatal', attempt => 1) AS failed;
SELECT sentry_relay.fail_job(900502, 'fatal', attempt => 1) AS failed;
RESET sentry_relay.max_attempts;
-- 900404 stays leased, 900405 and 900406 were never claimed.  The other
-- queues hold what the sections above left: regress_q_cap and
-- regress_q_dead_only only dead jobs, and regress_q2 nothing at all (so it
-- has no row).
SELECT * FROM sentry_relay.queue_stats() WHERE queue LIKE 'regress\_q%' ORDER BY queue;

--
-- Clean up: remove our jobs and dead jobs, and check nothing is left.
--
DELETE FROM sentry_relay.jobs WHERE queue LIKE 'regress\_q%';
DELETE FROM sentry_relay.dead_jobs WHERE queue LIKE 'regress\_q%';
SELECT count(*) AS left FROM sentry_relay.jobs WHERE id >= 900000 OR queue LIKE 'regress\_q%';
SELECT count(*) AS left FROM sentry_relay.dead_jobs WHERE id >= 900000 OR queue LIKE 'regress\_q%';
SELECT * FROM sentry_relay.queue_stats() WHERE queue LIKE 'regress\_q%';
COMMIT;

--
-- A claim that is its transaction's first write commits asynchronously (a
-- lost claim only makes the job ready again); after any other write, the
-- transaction's commit stays as durable as the caller set it.
--
BEGIN;
SELECT count(*) AS claimed FROM sentry_relay.claim_jobs(1, queues => ARRAY['regress_q_none']);
SHOW synchronous_commit;
ROLLBACK;
SHOW synchronous_commit;
BEGIN;
SELECT pg_temp.add_jobs('regress_q_sync', 900601) AS enqueued;
SELECT count(*) AS claimed FROM sentry_relay.claim_jobs(1, queues => ARRAY['regress_q_sync']);
SHOW synchronous_commit;
ROLLBACK;
