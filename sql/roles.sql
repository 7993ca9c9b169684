--
-- roles: the two roles the extension creates, what each may do, what other
-- roles may do, the superuser-only Kafka setting, and the pinned search_path
-- of the SECURITY DEFINER functions.
--
-- Like queue.sql, the whole test runs in one transaction, so that the tests
-- running in parallel (streams.sql counts and lists every stream, and
-- deletes every job) never see our streams, jobs or dead jobs.
-- ON_ERROR_ROLLBACK lets a statement fail without ending the transaction.
-- Our roles are regress_sr_*, our stream regress-roles, our queue
-- regress_roles_q, our job ids 910000 and up.
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

-- The privileges of a role on a table or view, as a list.
CREATE FUNCTION pg_temp.privs(r name, t oid) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(p, ',' ORDER BY n), '-')
      FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'])
           WITH ORDINALITY AS x(p, n)
     WHERE has_table_privilege(r, t, p)
$$;

-- The roles, created by CREATE EXTENSION: they cannot log in.
SELECT rolname, rolcanlogin, rolsuper, rolinherit, rolcreaterole, rolcreatedb
  FROM pg_roles WHERE rolname IN ('sentry_relay_worker', 'sentry_relay_admin') ORDER BY 1;

-- Login roles for the test: a job worker, an operator, and anybody else.
CREATE ROLE regress_sr_worker LOGIN IN ROLE sentry_relay_worker;
CREATE ROLE regress_sr_admin LOGIN IN ROLE sentry_relay_admin;
CREATE ROLE regress_sr_nobody LOGIN;

--
-- Who may do what, from the catalogs.
--
-- the schema
SELECT r AS role, has_schema_privilege(r, 'sentry_relay', 'USAGE') AS usage,
       has_schema_privilege(r, 'sentry_relay', 'CREATE') AS create
  FROM unnest(ARRAY['regress_sr_worker', 'regress_sr_admin', 'regress_sr_nobody']) AS r;
-- every function
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_sr_worker', p.oid, 'EXECUTE') AS worker,
       has_function_privilege('regress_sr_admin', p.oid, 'EXECUTE') AS admin,
       has_function_privilege('regress_sr_nobody', p.oid, 'EXECUTE') AS nobody,
       p.prosecdef AS security_definer,
       p.proconfig AS settings
  FROM pg_proc AS p
 WHERE p.pronamespace = 'sentry_relay'::regnamespace
 ORDER BY p.oid::regprocedure::text;
-- every table and view
SELECT c.relname, c.relkind,
       pg_temp.privs('regress_sr_worker', c.oid) AS worker,
       pg_temp.privs('regress_sr_admin', c.oid) AS admin,
       pg_temp.privs('regress_sr_nobody', c.oid) AS nobody
  FROM pg_class AS c
 WHERE c.relnamespace = 'sentry_relay'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY c.relname;

-- Jobs for the worker (and for the hijack attempt below), dead jobs and a
-- dead letter for the operator.
INSERT INTO sentry_relay.jobs
    (id, stream, topic, partition, "offset", queue, eventstream_type, project_id,
     event_id, is_new, is_regression, is_new_group_environment, cache_key)
OVERRIDING SYSTEM VALUE
SELECT i, 'regress-roles', 'events', 0, i, 'regress_roles_q', 'error', 1,
       md5(i::text), true, false, false, 'e:' || md5(i::text) || ':1'
  FROM generate_series(910001, 910003) AS i;
INSERT INTO sentry_relay.dead_jobs
    (id, stream, topic, partition, "offset", queue, eventstream_type, project_id,
     event_id, is_new, is_regression, is_new_group_environment, cache_key, attempts, errors)
SELECT i, 'regress-roles', 'events', 0, i, 'regress_roles_q', 'error', 1,
       md5(i::text), true, false, false, 'e:' || md5(i::text) || ':1', 5, '[]'
  FROM generate_series(910101, 910102) AS i;
INSERT INTO sentry_relay.jobs
    (id, stream, topic, partition, "offset", queue, eventstream_type, project_id,
     event_id, is_new, is_regression, is_new_group_environment, cache_key)
OVERRIDING SYSTEM VALUE
SELECT i, 'regress-hijack', 'events', 0, i, 'regress_hijack_q', 'error', 1,
       md5(i::text), true, false, false, 'e:' || md5(i::text) || ':1'
  FROM generate_series(910201, 910202) AS i;
INSERT INTO sentry_relay.dead_letters (stream, topic, partition, "offset", value, error, sqlstate, error_class)
VALUES ('regress-roles', 'events', 0, 7, '\x00', 'not JSON', '22P02', 'invalid_json');

--
-- sentry_relay_worker: claim, complete and fail jobs, nothing else.
--
SET ROLE regress_sr_worker;
SELECT id, attempts, leased_until > now() AS leased
  FROM sentry_relay.claim_jobs(2, queues => ARRAY['regress_roles_q']) ORDER BY id;
SELECT sentry_relay.complete_jobs(ARRAY[910001], ARRAY[1]) AS removed;
SELECT sentry_relay.complete_jobs(ARRAY[910002], ARRAY[1]) AS removed;
SELECT id FROM sentry_relay.claim_jobs(1, queues => ARRAY['regress_roles_q']);
SELECT sentry_relay.fail_job(910003, 'boom', attempt => 1) AS failed;
-- the decoders are for everyone
SELECT sentry_relay.decode_event_message(convert_to(
    '[2, "insert", {"event_id": "9cdc4c32dff14fbbb012b0aa9e908126", "project_id": 1, "group_id": null, "primary_hash": null},
      {"is_new": true, "is_regression": false, "is_new_group_environment": false}]', 'UTF8'))->>'cache_key' AS cache_key;
SELECT topic, partition, consumer_group, "offset"
  FROM sentry_relay.decode_commit_log_message('events:0:snuba-consumers', '12346');
-- no table, view or other function
SELECT count(*) FROM sentry_relay.jobs;
SELECT pg_temp.err('SELECT count(*) FROM sentry_relay.jobs');
SELECT pg_temp.err('UPDATE sentry_relay.jobs SET attempts = 0');
SELECT pg_temp.err('DELETE FROM sentry_relay.jobs');
SELECT pg_temp.err($$INSERT INTO sentry_relay.jobs (stream, topic, partition, "offset", queue,
    eventstream_type, project_id, event_id, is_new, is_regression, is_new_group_environment,
    cache_key) VALUES ('s', 't', 0, 0, 'q', 'error', 1, 'e', true, false, false, 'k')$$);
SELECT pg_temp.err('SELECT count(*) FROM sentry_relay.dead_jobs');
SELECT pg_temp.err('SELECT count(*) FROM sentry_relay.dead_letters');
SELECT pg_temp.err('SELECT count(*) FROM sentry_relay.streams');
SELECT pg_temp.err('SELECT count(*) FROM sentry_relay.partitions');
SELECT pg_temp.err('SELECT count(*) FROM sentry_relay.workers');
SELECT sentry_relay.create_stream('regress-roles', 'events', NULL, ARRAY['regress-writer']);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('regress-roles', 'events', NULL, ARRAY['regress-writer'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.stop_stream('regress-roles')$$);
SELECT pg_temp.err($$SELECT sentry_relay.set_remote_offset('regress-roles', 0, 1)$$);
SELECT pg_temp.err('SELECT * FROM sentry_relay.queue_stats()');
SELECT pg_temp.err('SELECT sentry_relay.retry_dead_jobs()');
SELECT pg_temp.err('SELECT sentry_relay._wake_launcher()');
SELECT pg_temp.err($$SELECT sentry_relay._stream_check('regress-roles')$$);
SELECT pg_temp.err('SELECT * FROM sentry_relay._worker_status()');
SELECT pg_temp.err('SET sentry_relay.max_attempts = 100');
RESET ROLE;

--
-- sentry_relay_admin: streams and offsets, dead jobs, monitoring; no jobs.
--
SET ROLE regress_sr_admin;
SELECT name, topic, commit_log_topic, synchronize_commit_groups, enabled
  FROM sentry_relay.create_stream('regress-roles', 'events', NULL, ARRAY['regress-writer']);
SELECT name, workers FROM sentry_relay.alter_stream('regress-roles', workers => 2);
SELECT sentry_relay.stop_stream('regress-roles');
SELECT sentry_relay.start_stream('regress-roles');
SELECT sentry_relay.set_remote_offset('regress-roles', 0, 42);
SELECT name, workers, enabled FROM sentry_relay.streams WHERE name = 'regress-roles';
SELECT stream, partition, consumer_group, "offset", source
  FROM sentry_relay.remote_offsets WHERE stream = 'regress-roles';
SELECT count(*) AS partitions FROM sentry_relay.partitions WHERE stream = 'regress-roles';
SELECT count(*) AS states FROM sentry_relay.partition_state WHERE stream = 'regress-roles';
SELECT count(*) AS positions FROM sentry_relay.commit_log_positions WHERE stream = 'regress-roles';
SELECT count(*) >= 0 AS readable FROM sentry_relay.workers;
SELECT id, attempts, errors->0->>'error' AS error
  FROM sentry_relay.jobs WHERE queue = 'regress_roles_q' ORDER BY id;
SELECT queue, depth, ready, leased, delayed, dead
  FROM sentry_relay.queue_stats() WHERE queue = 'regress_roles_q';
SELECT sentry_relay.retry_dead_jobs(ARRAY[910101]) AS moved;
SELECT id, attempts FROM sentry_relay.jobs WHERE queue = 'regress_roles_q' ORDER BY id;
SELECT id, attempts FROM sentry_relay.dead_jobs WHERE queue = 'regress_roles_q';
DELETE FROM sentry_relay.dead_jobs WHERE queue = 'regress_roles_q';
SELECT "offset", error, sqlstate FROM sentry_relay.dead_letters WHERE stream = 'regress-roles';
DELETE FROM sentry_relay.dead_letters WHERE stream = 'regress-roles';
-- but not the job functions, not writes other than deleting dead rows
SELECT sentry_relay.claim_jobs(1, queues => ARRAY['regress_roles_q']);
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, queues => ARRAY['regress_roles_q'])$$);
SELECT pg_temp.err('SELECT sentry_relay.complete_jobs(ARRAY[910101])');
SELECT pg_temp.err($$SELECT sentry_relay.fail_job(910101, 'x')$$);
SELECT pg_temp.err('DELETE FROM sentry_relay.jobs');
SELECT pg_temp.err('UPDATE sentry_relay.jobs SET attempts = 0');
SELECT pg_temp.err($$UPDATE sentry_relay.streams SET enabled = false WHERE name = 'regress-roles'$$);
SELECT pg_temp.err($$INSERT INTO sentry_relay.remote_offsets (stream, partition, consumer_group, "offset", source)
    VALUES ('regress-roles', 1, 'regress-writer', 1, 'sql')$$);
SELECT pg_temp.err('TRUNCATE sentry_relay.dead_letters');
SELECT pg_temp.err('SELECT sentry_relay._wake_launcher()');
SELECT pg_temp.err($$SELECT sentry_relay._validate_options('{}')$$);
SELECT pg_temp.err('SET sentry_relay.max_attempts = 100');
SELECT sentry_relay.drop_stream('regress-roles', drop_jobs => true);
SELECT count(*) AS streams FROM sentry_relay.streams WHERE name = 'regress-roles';
SELECT count(*) AS jobs FROM sentry_relay.jobs WHERE stream = 'regress-roles';
RESET ROLE;

--
-- Any other role: only the decoders.
--
SET ROLE regress_sr_nobody;
SELECT sentry_relay.decode_event_message(convert_to(
    '[2, "insert", {"event_id": "9cdc4c32dff14fbbb012b0aa9e908126", "project_id": 1, "group_id": null, "primary_hash": null},
      {"is_new": true, "is_regression": false, "is_new_group_environment": false}]', 'UTF8'))->>'cache_key' AS cache_key;
SELECT topic, partition, consumer_group, "offset"
  FROM sentry_relay.decode_commit_log_message('events:0:snuba-consumers', '12346');
-- everything else is denied (SQLSTATE 42501)
SELECT stmt, split_part(pg_temp.err(stmt), ':', 1) AS sqlstate
  FROM (VALUES
    ($$SELECT sentry_relay.claim_jobs(1, queues => ARRAY['regress_roles_q'])$$),
    ($$SELECT sentry_relay.complete_jobs(ARRAY[910101])$$),
    ($$SELECT sentry_relay.fail_job(910101, 'x')$$),
    ($$SELECT sentry_relay.create_stream('regress-roles', 'events', NULL, ARRAY['g'])$$),
    ($$SELECT sentry_relay.set_remote_offset('regress-roles', 0, 1)$$),
    ($$SELECT sentry_relay.retry_dead_jobs()$$),
    ($$SELECT * FROM sentry_relay.queue_stats()$$),
    ($$SELECT count(*) FROM sentry_relay.jobs$$),
    ($$SELECT count(*) FROM sentry_relay.dead_jobs$$),
    ($$SELECT count(*) FROM sentry_relay.dead_letters$$),
    ($$SELECT count(*) FROM sentry_relay.streams$$),
    ($$SELECT count(*) FROM sentry_relay.partitions$$),
    ($$SELECT count(*) FROM sentry_relay.workers$$),
    ($$SELECT sentry_relay._wake_launcher()$$)) AS v(stmt);
RESET ROLE;

--
-- sentry_relay.kafka_properties may hold Kafka secrets: only superusers can
-- read it.  Others get SQLSTATE 42501, and pg_settings does not list it.
--
SHOW sentry_relay.kafka_properties;
SELECT count(*) AS listed FROM pg_settings WHERE name = 'sentry_relay.kafka_properties';
SET ROLE regress_sr_worker;
SHOW sentry_relay.kafka_properties;
SELECT pg_temp.err('SHOW sentry_relay.kafka_properties');
SELECT pg_temp.err($$SELECT current_setting('sentry_relay.kafka_properties')$$);
SELECT count(*) AS listed FROM pg_settings WHERE name = 'sentry_relay.kafka_properties';
-- the other settings are visible
SELECT name, setting FROM pg_settings
 WHERE name IN ('sentry_relay.max_attempts', 'sentry_relay.bootstrap_servers') ORDER BY name;
SET ROLE regress_sr_admin;
SELECT pg_temp.err('SHOW sentry_relay.kafka_properties');
SELECT pg_temp.err($$SELECT current_setting('sentry_relay.kafka_properties')$$);
SELECT count(*) AS listed FROM pg_settings WHERE name = 'sentry_relay.kafka_properties';
SET ROLE regress_sr_nobody;
SELECT pg_temp.err('SHOW sentry_relay.kafka_properties');
SELECT pg_temp.err($$SELECT current_setting('sentry_relay.kafka_properties')$$);
SELECT count(*) AS listed FROM pg_settings WHERE name = 'sentry_relay.kafka_properties';
RESET ROLE;

--
-- A search_path hijack attempt.  The worker owns a schema and fills it
-- with functions and an operator that shadow what the SECURITY DEFINER
-- functions call (now(), array_position(), cardinality(), unnest(),
-- current_setting(), length(), power(), text = text), each raising an
-- error if it is ever called.  It puts that schema (and pg_temp) first in
-- its search_path, before pg_catalog, then calls the job functions, and the
-- admin calls the stream functions.  The functions pin search_path =
-- pg_catalog, pg_temp, so the shadows are never called.
--
CREATE SCHEMA regress_sr_evil AUTHORIZATION regress_sr_worker;
GRANT USAGE ON SCHEMA regress_sr_evil TO regress_sr_admin;
SET ROLE regress_sr_worker;
CREATE FUNCTION regress_sr_evil.now() RETURNS timestamptz
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: now()'; END$$;
CREATE FUNCTION regress_sr_evil.array_position(text[], text) RETURNS int
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: array_position()'; END$$;
CREATE FUNCTION regress_sr_evil.cardinality(text[]) RETURNS int
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: cardinality(text[])'; END$$;
CREATE FUNCTION regress_sr_evil.cardinality(bigint[]) RETURNS int
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: cardinality(bigint[])'; END$$;
CREATE FUNCTION regress_sr_evil.cardinality(int[]) RETURNS int
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: cardinality(int[])'; END$$;
CREATE FUNCTION regress_sr_evil.unnest(bigint[]) RETURNS SETOF bigint
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: unnest(bigint[])'; END$$;
CREATE FUNCTION regress_sr_evil.current_setting(text) RETURNS text
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: current_setting()'; END$$;
CREATE FUNCTION regress_sr_evil.length(text) RETURNS int
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: length()'; END$$;
CREATE FUNCTION regress_sr_evil.power(int, int) RETURNS float8
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: power()'; END$$;
CREATE FUNCTION regress_sr_evil.text_eq(text, text) RETURNS boolean
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: text = text'; END$$;
CREATE OPERATOR regress_sr_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_sr_evil.text_eq);
CREATE FUNCTION pg_temp.now() RETURNS timestamptz
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: pg_temp.now()'; END$$;
SET search_path = pg_temp, regress_sr_evil, pg_catalog, public;
SHOW search_path;
-- unpinned code would call them
SELECT pg_temp.err('SELECT now()');
SELECT pg_temp.err($$SELECT array_position(ARRAY['a'], NULL)$$);
SELECT pg_temp.err($$SELECT cardinality(ARRAY['a'])$$);
SELECT pg_temp.err($$SELECT 'a'::text = 'a'::text$$);
SELECT pg_temp.err('SELECT power(2, 3)');
SELECT pg_temp.err('SELECT * FROM unnest(ARRAY[1::bigint])');
SELECT pg_temp.err($$SELECT current_setting('sentry_relay.max_attempts')$$);
-- the job functions do not, on their errors either
SELECT id, attempts FROM sentry_relay.claim_jobs(10, '1 minute', ARRAY['regress_hijack_q']) ORDER BY id;
SELECT pg_temp.err($$SELECT sentry_relay.claim_jobs(1, queues => ARRAY['regress_hijack_q', NULL])$$);
SELECT pg_temp.err('SELECT sentry_relay.complete_jobs(ARRAY[910201], ARRAY[1, 2])');
SELECT sentry_relay.fail_job(910201, 'boom', attempt => 1) AS failed;
SELECT sentry_relay.complete_jobs(ARRAY[910202], ARRAY[1]) AS removed;
SELECT sentry_relay.complete_jobs(ARRAY[910202], ARRAY[1]) AS removed;
-- the stream functions do not either
SET ROLE regress_sr_admin;
SHOW search_path;
SELECT name, synchronize_commit_groups
  FROM sentry_relay.create_stream('regress-roles', 'events', 'regress-commit-log', ARRAY['regress-writer']);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('regress-roles', 'events', NULL, ARRAY['g', NULL])$$);
SELECT name, workers FROM sentry_relay.alter_stream('regress-roles', workers => 3);
SELECT sentry_relay.set_remote_offset('regress-roles', 0, 5);
SELECT sentry_relay.stop_stream('regress-roles');
SELECT queue, depth, delayed FROM sentry_relay.queue_stats() WHERE queue OPERATOR(pg_catalog.=) 'regress_hijack_q';
SELECT sentry_relay.retry_dead_jobs(ARRAY[910299]) AS moved;
SELECT sentry_relay.drop_stream('regress-roles', drop_jobs => true);
RESET ROLE;
RESET search_path;
-- what the worker did went through: 910201 waits for its retry (the
-- default backoff of attempt 1), 910202 is done
SELECT id, attempts, visible_at - now() AS visible_in, leased_until,
       jsonb_path_query_array(errors, '$[*].error') AS errors
  FROM sentry_relay.jobs WHERE queue = 'regress_hijack_q' ORDER BY id;

--
-- Clean up.
--
DROP FUNCTION pg_temp.now();
DROP SCHEMA regress_sr_evil CASCADE;
DELETE FROM sentry_relay.jobs WHERE queue IN ('regress_roles_q', 'regress_hijack_q');
DELETE FROM sentry_relay.dead_jobs WHERE queue IN ('regress_roles_q', 'regress_hijack_q');
DROP ROLE regress_sr_worker, regress_sr_admin, regress_sr_nobody;
SELECT count(*) AS roles_left FROM pg_roles WHERE rolname LIKE 'regress\_sr\_%';
SELECT count(*) AS streams_left FROM sentry_relay.streams WHERE name = 'regress-roles';
SELECT count(*) AS jobs_left FROM sentry_relay.jobs WHERE stream IN ('regress-roles', 'regress-hijack') OR id >= 910000;
SELECT count(*) AS dead_left FROM sentry_relay.dead_jobs WHERE stream IN ('regress-roles', 'regress-hijack') OR id >= 910000;
SELECT count(*) AS letters_left FROM sentry_relay.dead_letters WHERE stream = 'regress-roles';
COMMIT;
