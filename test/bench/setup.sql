-- queue_bench.sh: the benchmark's tables and filler, in the database that
-- has sentry_relay.  bench_baseline is an identical copy of
-- sentry_relay.jobs: same columns, defaults, identity, primary key and
-- storage parameters (fillfactor, autovacuum settings).
\set ON_ERROR_STOP on
CREATE TABLE bench_baseline (LIKE sentry_relay.jobs INCLUDING ALL);
SELECT 'ALTER TABLE bench_baseline SET (' || array_to_string(reloptions, ', ') || ')'
  FROM pg_class WHERE oid = 'sentry_relay.jobs'::regclass AND reloptions IS NOT NULL \gexec

-- bench_fill(table, n): append n ready jobs with realistic values (as the
-- relay writes them for an errors stream that does not keep the body)
CREATE FUNCTION bench_fill(tbl regclass, n bigint) RETURNS bigint
LANGUAGE plpgsql AS $f$
DECLARE
    k bigint;
BEGIN
    IF n <= 0 THEN
        RETURN 0;
    END IF;
    EXECUTE format($q$
      INSERT INTO %s (stream, topic, partition, "offset", queue, eventstream_type, project_id,
          group_id, event_id, primary_hash, is_new, is_regression, is_new_group_environment,
          group_states, cache_key, message_timestamp)
      SELECT 'errors', 'events', g %% 16, g / 16, 'post_process_errors', 'error', v.p, v.grp,
             v.e, md5(v.e), g %% 7 = 0, g %% 13 = 0, g %% 11 = 0,
             jsonb_build_array(jsonb_build_object('id', v.grp, 'is_new', g %% 7 = 0,
                 'is_regression', g %% 13 = 0, 'is_new_group_environment', g %% 11 = 0)),
             'e:' || v.e || ':' || v.p, now() - interval '1 second'
        FROM generate_series(1, $1) AS g,
             LATERAL (SELECT md5(random()::text || g) AS e, 1 + g %% 97 AS p,
                             1000 + g %% 5003 AS grp) AS v$q$, tbl)
      USING n;
    GET DIAGNOSTICS k = ROW_COUNT;
    RETURN k;
END $f$;
