-- queue_bench.sh, arm "baseline": the classic one-statement queue pop on an
-- identical copy of sentry_relay.jobs, in one transaction.
DELETE FROM bench_baseline WHERE id IN (SELECT id FROM bench_baseline ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 10);
