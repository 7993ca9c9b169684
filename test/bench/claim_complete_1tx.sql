-- queue_bench.sh, arm "claim+complete, one statement": claim a batch and
-- complete it in the same statement (one transaction).  Not what a worker
-- can do (it has no time to run the jobs), shown for comparison.
\if :tokens
SELECT sentry_relay.complete_jobs(coalesce(array_agg(id), '{}'), coalesce(array_agg(attempts), '{}')) FROM sentry_relay.claim_jobs(10);
\else
SELECT sentry_relay.complete_jobs(coalesce(array_agg(id), '{}')) FROM sentry_relay.claim_jobs(10);
\endif
