--
-- The stream management functions: create, alter, start, stop and drop
-- streams, set remote offsets, and every bad argument (a clear ERROR with a
-- hint and a SQLSTATE).  The launcher runs in sentry_relay.database, not in
-- this regression database, so no worker starts here.
--
\set SHOW_CONTEXT never
\set VERBOSITY default

-- Report the SQLSTATE and message of a failing statement.
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- Sentry's three streams.
SELECT name, topic, commit_log_topic, synchronize_commit_groups, consumer_group,
       initial_offset_reset, workers, options, enabled
FROM sentry_relay.create_stream('errors', 'events', 'snuba-commit-log', ARRAY['snuba-consumers']);
SELECT name, options
FROM sentry_relay.create_stream('transactions', 'transactions', 'snuba-transactions-commit-log',
    ARRAY['transactions_group'], options => '{"eventstream_type": "transaction"}');
SELECT name, workers, initial_offset_reset, options
FROM sentry_relay.create_stream('issue-platform', 'generic-events', 'snuba-generic-events-commit-log',
    ARRAY['generic_events_group'], workers => 2, initial_offset_reset => 'latest',
    options => '{"eventstream_type": "generic", "keep_body": true, "bootstrap_servers": "kafka-1:9092",
                 "kafka": {"fetch.wait.max.ms": 50, "enable.ssl.certificate.verification": false}}');

-- A stream fed only by set_remote_offset (no commit log), following two groups.
SELECT name, commit_log_topic, synchronize_commit_groups
FROM sentry_relay.create_stream('sql-fed', 'events', NULL, ARRAY['writer-a', 'writer-b']);

-- Bad arguments to create_stream.
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('errors', 'events', 'c', ARRAY['g'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('bad name!', 'events', 'c', ARRAY['g'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream(NULL, 'events', 'c', ARRAY['g'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream(repeat('x', 64), 'events', 'c', ARRAY['g'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'ev ents', 'c', ARRAY['g'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c;drop', ARRAY['g'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY[]::text[])$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', NULL)$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g', 'g'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g', NULL])$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], consumer_group => '')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], initial_offset_reset => 'smallest')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], workers => 0)$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], workers => 65)$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => NULL)$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '[]')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"keep_bodies": true}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"keep_body": "yes"}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"eventstream_type": "errors"}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"bootstrap_servers": ""}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"kafka": "x"}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"kafka": {"no.such.property": "1"}}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"kafka": {"session.timeout.ms": "soon"}}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"kafka": {"group.id": "other"}}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"kafka": {"group.instance.id": "mine"}}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"assignment": "fixed"}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"assignment": true}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"kafka": {"sasl.password": {"a": 1}}}')$$);
-- a secret's value never appears in an error
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"kafka": {"sasl.password": "hunter2", "group.id": "x"}}')$$) NOT LIKE '%hunter2%' AS secret_hidden;
-- and the hint is shown
SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], initial_offset_reset => 'smallest');
SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"keep_bodies": true}');
SELECT sentry_relay.create_stream('s', 'events', 'c', ARRAY['g'], options => '{"assignment": "cooperative"}');
SELECT count(*) AS streams FROM sentry_relay.streams;
-- both assignments are accepted
SELECT pg_temp.err($$SELECT sentry_relay._validate_options('{"assignment": "local"}')$$) AS local_ok,
       pg_temp.err($$SELECT sentry_relay._validate_options('{"assignment": "static"}')$$) AS static_ok,
       pg_temp.err($$SELECT sentry_relay._validate_options('{"assignment": "group"}')$$) AS group_ok;

-- alter_stream changes only what is passed, and validates the result.
SELECT name, workers, initial_offset_reset, synchronize_commit_groups
FROM sentry_relay.alter_stream('errors', workers => 3, initial_offset_reset => 'latest');
SELECT name, topic, workers FROM sentry_relay.alter_stream('errors', synchronize_commit_groups => ARRAY['snuba-consumers', 'backup']);
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream('errors', workers => -1)$$);
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream('nope', workers => 2)$$);
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream(NULL, workers => 2)$$);
SELECT workers, initial_offset_reset FROM sentry_relay.streams WHERE name = 'errors';

-- stop_stream and start_stream flip enabled.
SELECT sentry_relay.stop_stream('errors');
SELECT enabled FROM sentry_relay.streams WHERE name = 'errors';
SELECT sentry_relay.start_stream('errors');
SELECT enabled FROM sentry_relay.streams WHERE name = 'errors';
SELECT pg_temp.err($$SELECT sentry_relay.start_stream('nope')$$);
SELECT pg_temp.err($$SELECT sentry_relay.stop_stream('nope')$$);
SELECT sentry_relay.stop_stream('nope');

-- set_remote_offset: one group may be implied, otherwise it must be named.
SELECT sentry_relay.set_remote_offset('transactions', 0, 100);
SELECT sentry_relay.set_remote_offset('transactions', 0, 120);
SELECT sentry_relay.set_remote_offset('sql-fed', 1, 7, 'writer-a');
SELECT stream, partition, consumer_group, "offset", source FROM sentry_relay.remote_offsets ORDER BY 1, 2, 3;
SELECT pg_temp.err($$SELECT sentry_relay.set_remote_offset('sql-fed', 1, 7)$$);
SELECT pg_temp.err($$SELECT sentry_relay.set_remote_offset('sql-fed', 1, 7, 'writer-c')$$);
SELECT pg_temp.err($$SELECT sentry_relay.set_remote_offset('sql-fed', -1, 7, 'writer-a')$$);
SELECT pg_temp.err($$SELECT sentry_relay.set_remote_offset('sql-fed', 1, -7, 'writer-a')$$);
SELECT pg_temp.err($$SELECT sentry_relay.set_remote_offset('sql-fed', 1, NULL, 'writer-a')$$);
SELECT pg_temp.err($$SELECT sentry_relay.set_remote_offset('nope', 1, 7)$$);
SELECT sentry_relay.set_remote_offset('sql-fed', 1, 7, 'writer-c');

-- The partitions view: the remote offset is the minimum over the followed
-- groups, and unknown until every group has reported.
INSERT INTO sentry_relay.partition_state (stream, partition, topic, local_offset, state)
VALUES ('sql-fed', 1, 'events', 3, 'UNKNOWN');
SELECT partition, local_offset, remote_offset, group_offsets, lag FROM sentry_relay.partitions WHERE stream = 'sql-fed';
SELECT sentry_relay.set_remote_offset('sql-fed', 1, 5, 'writer-b');
SELECT partition, local_offset, remote_offset, group_offsets, lag FROM sentry_relay.partitions WHERE stream = 'sql-fed';

-- The workers view exists (no worker runs in this database).
SELECT count(*) FROM sentry_relay.workers;

-- drop_stream removes the stream and its offsets; jobs stay unless asked.
INSERT INTO sentry_relay.jobs (stream, topic, partition, "offset", queue, eventstream_type,
    project_id, event_id, is_new, is_regression, is_new_group_environment, cache_key)
VALUES ('sql-fed', 'events', 1, 0, 'post_process_errors', 'error', 1,
    '0123456789abcdef0123456789abcdef', true, false, false, 'e:0123456789abcdef0123456789abcdef:1');
SELECT sentry_relay.drop_stream('sql-fed');
SELECT count(*) AS offsets_left FROM sentry_relay.remote_offsets WHERE stream = 'sql-fed';
SELECT count(*) AS states_left FROM sentry_relay.partition_state WHERE stream = 'sql-fed';
SELECT count(*) AS jobs_kept FROM sentry_relay.jobs WHERE stream = 'sql-fed';
SELECT sentry_relay.drop_stream('transactions', drop_jobs => true);
SELECT pg_temp.err($$SELECT sentry_relay.drop_stream('sql-fed')$$);
SELECT name FROM sentry_relay.streams ORDER BY name;
DELETE FROM sentry_relay.jobs;
