-- queue_bench.sh, arm "claim+complete": what a job worker does, in two
-- transactions (autocommit): claim a batch, then complete it.  With
-- -D tokens=1 the completion passes the lease tokens (attempts), as
-- examples/job_worker.py does; with tokens=0 it passes the ids only.
SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(attempts), '{}') AS att FROM sentry_relay.claim_jobs(10) \gset
\if :tokens
SELECT sentry_relay.complete_jobs(:ids, :att);
\else
SELECT sentry_relay.complete_jobs(:ids);
\endif
