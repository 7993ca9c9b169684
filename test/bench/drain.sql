-- queue_bench.sh, scenario 2: claim+complete as in claim_complete.sql, but
-- the claim and the completion are separate pgbench "transactions" (the
-- client alternates on :phase, which persists across them), so that
-- pgbench --log records each claim's latency on its own line.  Run with
-- -D phase=0 and an even -t: even-numbered lines of a client are claims.
\if :phase = 0
SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(attempts), '{}') AS att FROM sentry_relay.claim_jobs(10) \gset
\set phase 1
\else
\if :tokens
SELECT sentry_relay.complete_jobs(:ids, :att);
\else
SELECT sentry_relay.complete_jobs(:ids);
\endif
\set phase 0
\endif
