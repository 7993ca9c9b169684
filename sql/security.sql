--
-- security: the role the relay's workers run as (sentry_relay_relay) and
-- exactly what it may do; dead letters and raw payloads for admins only;
-- secrets hidden from non-superusers (settings, stream options, the value
-- alter_stream returns, errors); stream options that only a superuser may
-- set; hostile stream, topic and group names; and pinned search_paths.
-- Every rule is checked from an unprivileged role with SET ROLE.
--
-- Like roles.sql, the whole test runs in one transaction, so that the tests
-- running in parallel never see our streams, jobs or dead letters.  Our
-- roles are regress_sec_*, our streams regress-sec*, our job ids 920000 up.
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

-- The same, with the hint.
CREATE FUNCTION pg_temp.err_hint(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    h text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || SQLERRM || ' (hint: ' || coalesce(h, '-') || ')';
END $$;

-- The privileges of a role on a table or view, as a list.
CREATE FUNCTION pg_temp.privs(r name, t oid) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(p, ',' ORDER BY n), '-')
      FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'])
           WITH ORDINALITY AS x(p, n)
     WHERE has_table_privilege(r, t, p)
$$;

--
-- The worker role.
--
-- sentry_relay.worker_role names it; it is a restart setting that anybody
-- may read (it holds no secret).
SELECT name, setting, context FROM pg_settings WHERE name = 'sentry_relay.worker_role';
-- CREATE EXTENSION created it: LOGIN (PostgreSQL 15 connects a background
-- worker only as a role that can log in) without a password, and nothing
-- else; a member of no role, and no role is a member of it.
SELECT rolname, rolcanlogin, rolpassword IS NULL AS no_password, rolsuper, rolinherit,
       rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
  FROM pg_authid WHERE rolname = 'sentry_relay_relay';
SELECT count(*) AS memberships FROM pg_auth_members
 WHERE member = 'sentry_relay_relay'::regrole OR roleid = 'sentry_relay_relay'::regrole;
SELECT has_database_privilege('sentry_relay_relay', current_database(), 'CONNECT') AS connect,
       has_database_privilege('sentry_relay_relay', current_database(), 'CREATE') AS create;
-- exactly these privileges on the tables and views of the extension
SELECT c.relname, c.relkind, pg_temp.privs('sentry_relay_relay', c.oid) AS relay
  FROM pg_class AS c
 WHERE c.relnamespace = 'sentry_relay'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY c.relname;
-- no function but the decoders, which everyone may call
SELECT p.oid::regprocedure AS function
  FROM pg_proc AS p
 WHERE p.pronamespace = 'sentry_relay'::regnamespace
   AND has_function_privilege('sentry_relay_relay', p.oid, 'EXECUTE')
 ORDER BY 1;
-- no CREATE in the schema or in public
SELECT has_schema_privilege('sentry_relay_relay', 'sentry_relay', 'CREATE') AS create_ext_schema,
       has_schema_privilege('sentry_relay_relay', 'public', 'CREATE') AS create_public;
-- streams.options holds secrets: the worker role reads it, the admin and
-- job-worker roles do not
SELECT r AS role, has_column_privilege(r, 'sentry_relay.streams', 'options', 'SELECT') AS read_options
  FROM unnest(ARRAY['sentry_relay_relay', 'sentry_relay_admin', 'sentry_relay_worker']) AS r;

-- Login roles for the test.
CREATE ROLE regress_sec_admin LOGIN IN ROLE sentry_relay_admin;
CREATE ROLE regress_sec_worker LOGIN IN ROLE sentry_relay_worker;
CREATE ROLE regress_sec_nobody LOGIN;

-- A stream (superuser) with a secret in its options, and another schema's
-- data that the worker role must not see.
SELECT name FROM sentry_relay.create_stream('regress-sec', 'events', 'snuba-commit-log',
    ARRAY['snuba-consumers'],
    options => '{"kafka": {"sasl.password": "regress-hunter2", "session.timeout.ms": "10000"}}');
CREATE SCHEMA regress_sec_other;
CREATE TABLE regress_sec_other.secrets (v text);
INSERT INTO regress_sec_other.secrets VALUES ('not for the relay');

--
-- What the launcher and a worker do, as the worker role: the same
-- statements as src/launcher.c and src/queue.c.
--
SET ROLE sentry_relay_relay;
-- the launcher
SELECT name, workers FROM sentry_relay.streams WHERE enabled AND name = 'regress-sec';
-- load the stream, options included
SELECT topic, consumer_group, options->'kafka'->>'session.timeout.ms' AS timeout
  FROM sentry_relay.streams WHERE name = 'regress-sec';
-- claim partition 0
INSERT INTO sentry_relay.partition_state AS s (stream, partition, topic, worker_pid)
VALUES ('regress-sec', 0, 'events', 4242) ON CONFLICT (stream, partition) DO UPDATE
   SET worker_pid = excluded.worker_pid, topic = excluded.topic, updated_at = now()
RETURNING local_offset;
-- remote offsets and the commit-log position
INSERT INTO sentry_relay.remote_offsets AS r
    (stream, partition, consumer_group, "offset", orig_message_ts, source)
VALUES ('regress-sec', 0, 'snuba-consumers', 3, NULL, 'commit_log')
ON CONFLICT (stream, partition, consumer_group) DO UPDATE
   SET "offset" = excluded."offset", orig_message_ts = excluded.orig_message_ts,
       source = 'commit_log', updated_at = now();
INSERT INTO sentry_relay.commit_log_positions AS c (stream, partition, "offset")
VALUES ('regress-sec', 0, 1) ON CONFLICT (stream, partition) DO UPDATE
   SET "offset" = excluded."offset", updated_at = now();
SELECT partition, consumer_group, "offset" FROM sentry_relay.remote_offsets WHERE stream = 'regress-sec';
SELECT partition, "offset" FROM sentry_relay.commit_log_positions WHERE stream = 'regress-sec';
-- a batch: a job, a dead letter, the fenced progress update
INSERT INTO sentry_relay.jobs (stream, topic, eventstream_type, partition, "offset", queue,
    project_id, group_id, event_id, primary_hash, is_new, is_regression,
    is_new_group_environment, group_states, occurrence_id, cache_key, message_timestamp, body)
VALUES ('regress-sec', 'events', 'error', 0, 0, 'regress_sec_q', 1, NULL, 'e', NULL, true, false,
    false, NULL, NULL, 'e:regress-sec:1', NULL, '\x7b7d');
INSERT INTO sentry_relay.dead_letters (stream, topic, partition, "offset", key, value,
    header_names, header_values, error, sqlstate, error_class)
VALUES ('regress-sec', 'events', 0, 1, '\x6b', '\xdeadbeef', ARRAY['h'], ARRAY['\x00'::bytea],
    'not JSON', '22P02', 'invalid_json');
UPDATE sentry_relay.partition_state SET local_offset = 2, state = 'LOCAL_BEHIND',
       worker_pid = 4242, high_watermark = coalesce(10, high_watermark),
       last_error = CASE WHEN false THEN NULL ELSE last_error END, updated_at = now()
 WHERE stream = 'regress-sec' AND partition = 0 AND local_offset IS NOT DISTINCT FROM NULL;
-- release it
UPDATE sentry_relay.partition_state SET worker_pid = NULL, updated_at = now()
 WHERE stream = 'regress-sec' AND partition = 0 AND worker_pid = 4242;
-- and nothing else: it cannot read what it wrote, delete, truncate, manage
-- streams, claim jobs, or read another schema
SELECT stmt, pg_temp.err(stmt) AS result
  FROM (VALUES
    ($$SELECT count(*) FROM sentry_relay.jobs$$),
    ($$SELECT value FROM sentry_relay.dead_letters$$),
    ($$SELECT count(*) FROM sentry_relay.dead_jobs$$),
    ($$DELETE FROM sentry_relay.partition_state$$),
    ($$DELETE FROM sentry_relay.remote_offsets$$),
    ($$DELETE FROM sentry_relay.jobs$$),
    ($$TRUNCATE sentry_relay.commit_log_positions$$),
    ($$UPDATE sentry_relay.streams SET enabled = false$$),
    ($$INSERT INTO sentry_relay.streams (name, topic, synchronize_commit_groups) VALUES ('x', 'y', ARRAY['g'])$$),
    ($$SELECT sentry_relay.claim_jobs(1)$$),
    ($$SELECT sentry_relay.create_stream('regress-sec2', 'events', NULL, ARRAY['g'])$$),
    ($$SELECT sentry_relay.stop_stream('regress-sec')$$),
    ($$SELECT sentry_relay._wake_launcher()$$),
    ($$SELECT count(*) FROM sentry_relay.workers$$),
    ($$SELECT v FROM regress_sec_other.secrets$$),
    ($$CREATE TABLE sentry_relay.regress_sec_t (i int)$$),
    ($$CREATE TABLE public.regress_sec_t (i int)$$),
    ($$SHOW sentry_relay.kafka_properties$$)) AS v(stmt);
RESET ROLE;

-- What the worker role wrote went through.
SELECT stream, "offset", queue, body FROM sentry_relay.jobs WHERE stream = 'regress-sec';
SELECT "offset", value, error FROM sentry_relay.dead_letters WHERE stream = 'regress-sec';
SELECT local_offset, state, worker_pid, high_watermark FROM sentry_relay.partition_state
 WHERE stream = 'regress-sec';

--
-- Dead letters and raw payloads are for admins only.
--
SET ROLE regress_sec_admin;
SELECT "offset", key, value, header_names, header_values FROM sentry_relay.dead_letters
 WHERE stream = 'regress-sec';
RESET ROLE;
SELECT r AS role, pg_temp.err(format('SET ROLE %I; SELECT value FROM sentry_relay.dead_letters', r)) AS dead_letters,
       pg_temp.err(format('SET ROLE %I; SELECT body FROM sentry_relay.jobs', r)) AS job_bodies
  FROM unnest(ARRAY['regress_sec_worker', 'regress_sec_nobody', 'sentry_relay_relay']) AS r;
RESET ROLE;

--
-- Secrets stay hidden from non-superusers.
--
-- the options column, and alter_stream's result, which returned the whole
-- row: a superuser gets the options back, an admin gets NULL
SELECT (sentry_relay.alter_stream('regress-sec')).options->'kafka'->>'sasl.password' AS superuser_sees;
SET ROLE regress_sec_admin;
SELECT pg_temp.err($$SELECT options FROM sentry_relay.streams WHERE name = 'regress-sec'$$);
SELECT name, workers, options FROM sentry_relay.alter_stream('regress-sec', workers => 2);
SELECT (sentry_relay.alter_stream('regress-sec')).options AS admin_sees;
SELECT name, options FROM sentry_relay.create_stream('regress-sec-admin', 'events', NULL, ARRAY['w'],
    options => '{"eventstream_type": "transaction"}');
-- the stored secret is kept when the admin changes something else
RESET ROLE;
SELECT workers, options->'kafka'->>'sasl.password' AS kept FROM sentry_relay.streams WHERE name = 'regress-sec';
-- a secret in an error: never its value
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream('regress-sec',
    options => '{"kafka": {"ssl.key.password": {"regress-hunter3": 1}}}')$$) NOT LIKE '%hunter3%' AS hidden;
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream('regress-sec',
    options => '{"kafka": {"sasl.password": "regress-hunter3", "enable.auto.commit": "true"}}')$$) NOT LIKE '%hunter3%' AS hidden;
-- the settings: kafka_properties is superuser-only, worker_role is not
SET ROLE regress_sec_admin;
SELECT pg_temp.err('SHOW sentry_relay.kafka_properties');
SELECT count(*) AS listed FROM pg_settings WHERE name = 'sentry_relay.kafka_properties';
SHOW sentry_relay.worker_role;
SELECT pg_temp.err($$SET sentry_relay.worker_role = 'postgres'$$);
RESET ROLE;

--
-- Stream options only a superuser may set: bootstrap_servers, and
-- librdkafka properties that carry credentials or name files, commands or
-- libraries.  sasl.kerberos.kinit.cmd is a shell command librdkafka runs,
-- plugin.library.paths a library it loads, in a worker of the server.  The
-- validation of the options never loads the library (it once did, in the
-- caller's backend: "dlopen() failed: /tmp/evil.so").
--
SET ROLE regress_sec_admin;
SELECT opts, pg_temp.err_hint(format($$SELECT sentry_relay.create_stream('regress-sec5', 'events', NULL,
    ARRAY['w'], options => %L)$$, opts)) AS result
  FROM (VALUES
    ('{"bootstrap_servers": "attacker.example:9092"}'),
    ('{"kafka": {"sasl.kerberos.kinit.cmd": "touch /tmp/pwned"}}'),
    ('{"kafka": {"plugin.library.paths": "/tmp/evil.so"}}'),
    ('{"kafka": {"security.protocol": "sasl_plaintext"}}'),
    ('{"kafka": {"sasl.mechanism": "PLAIN"}}'),
    ('{"kafka": {"sasl.username": "relay"}}'),
    ('{"kafka": {"ssl.ca.location": "/etc/ssl/certs"}}'),
    ('{"kafka": {"ssl.endpoint.identification.algorithm": "none"}}'),
    ('{"kafka": {"enable.ssl.certificate.verification": "false"}}'),
    ('{"kafka": {"sasl.password": "x"}}'),
    ('{"kafka": {"session.timeout.ms": "10000"}}')) AS v(opts);
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream('regress-sec-admin',
    options => '{"kafka": {"sasl.kerberos.kinit.cmd": "id"}}')$$);
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream('regress-sec-admin',
    options => '{"bootstrap_servers": "attacker.example:9092"}')$$);
RESET ROLE;
-- a superuser may, and the admin can still alter the stream's other settings
SELECT name, options->>'bootstrap_servers' AS servers
  FROM sentry_relay.create_stream('regress-sec3', 'events', NULL, ARRAY['w'],
    options => '{"bootstrap_servers": "kafka-9:9092", "kafka": {"ssl.ca.location": "/etc/ssl/certs"}}');
SET ROLE regress_sec_admin;
SELECT name, workers FROM sentry_relay.alter_stream('regress-sec3', workers => 3);
SELECT sentry_relay.stop_stream('regress-sec3');
RESET ROLE;
-- and when a superuser session SET ROLEs to an admin, it is an admin
SET ROLE regress_sec_admin;
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream('regress-sec3', options => '{"bootstrap_servers": "x:1"}')$$);
RESET ROLE;
SELECT workers, enabled, options->>'bootstrap_servers' AS servers FROM sentry_relay.streams WHERE name = 'regress-sec3';
-- a superuser may name a plugin; validating it does not load it here
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream('regress-sec3',
    options => '{"kafka": {"plugin.library.paths": "/nonexistent/regress_sec.so"}}')$$);

--
-- Hostile names: quotes, semicolons, colons, very long strings, control
-- characters and invalid UTF-8 are rejected with a clear error, or kept as
-- plain data.  Nothing is ever run as SQL.
--
SET ROLE regress_sec_admin;
-- stream names: 1 to 63 of A-Z a-z 0-9 _ . -
SELECT left(n, 40) AS name, length(n) AS len, regexp_replace(pg_temp.err_hint(format(
    $$SELECT sentry_relay.create_stream(%L, 'events', NULL, ARRAY['w'])$$, n)), 'x{41,}', '(x...)') AS result
  FROM (VALUES
    ($$x'; DROP TABLE sentry_relay.jobs; --$$),
    ('a"b'), ('a;b'), ('a:b'), ('a b'), (E'a\nb'), ('é'), (''),
    (repeat('x', 64)), (repeat('x', 1000000))) AS v(n);
SELECT name FROM sentry_relay.create_stream(repeat('x', 63), 'events', NULL, ARRAY['w']);
SELECT sentry_relay.drop_stream(repeat('x', 63));
-- the lookups of other functions take the name as data
SELECT pg_temp.err($$SELECT sentry_relay.stop_stream('regress-sec'' OR ''1''=''1')$$);
SELECT pg_temp.err($$SELECT sentry_relay.set_remote_offset('x''; DELETE FROM sentry_relay.streams; --', 0, 1)$$);
SELECT left(pg_temp.err($$SELECT sentry_relay.drop_stream(repeat('y', 1000000))$$), 40) AS result;
-- topics: Kafka's rules, 1 to 249 of A-Z a-z 0-9 . _ -
SELECT left(t, 40) AS topic, length(t) AS len, regexp_replace(pg_temp.err(format(
    $$SELECT sentry_relay.create_stream('regress-sec4', %L, NULL, ARRAY['w'])$$, t)), 't{41,}', '(t...)') AS result
  FROM (VALUES ($$events'; --$$), ('a;b'), ('events:0'), (repeat('t', 250))) AS v(t);
SELECT pg_temp.err($$SELECT sentry_relay.create_stream('regress-sec4', 'events', 'log;x', ARRAY['w'])$$);
-- group names: Kafka allows any string; quotes, semicolons and colons are
-- kept verbatim (a commit-log key is topic:partition:group, split at the
-- first two colons); control characters and more than 255 characters are not
SELECT name, consumer_group, synchronize_commit_groups
  FROM sentry_relay.create_stream('regress-sec4', 'events', NULL,
    ARRAY[$$snuba:consumers;'"x$$, 'w'], consumer_group => $$pp'f"; --:1$$);
SELECT sentry_relay.set_remote_offset('regress-sec4', 0, 7, $$snuba:consumers;'"x$$);
RESET ROLE;
SELECT partition, consumer_group, "offset" FROM sentry_relay.remote_offsets WHERE stream = 'regress-sec4';
SELECT topic, partition, consumer_group, "offset"
  FROM sentry_relay.decode_commit_log_message(convert_to($$events:0:snuba:consumers;'"x$$, 'UTF8'), '8');
SET ROLE regress_sec_admin;
SELECT left(g, 12) AS "group", length(g) AS len, regexp_replace(pg_temp.err_hint(format(
    $$SELECT sentry_relay.alter_stream('regress-sec4', synchronize_commit_groups => ARRAY[%L])$$, g)), 'g{41,}', '(g...)') AS result
  FROM (VALUES (E'a\nb'), (E'tab\there'), (E'nul?\x7f'), (repeat('g', 256))) AS v(g);
SELECT left(g, 12) AS "group", length(g) AS len, regexp_replace(pg_temp.err_hint(format(
    $$SELECT sentry_relay.alter_stream('regress-sec4', consumer_group => %L)$$, g)), 'g{41,}', '(g...)') AS result
  FROM (VALUES (E'a\rb'), (repeat('g', 256)), ('')) AS v(g);
SELECT pg_temp.err($$SELECT sentry_relay.set_remote_offset('regress-sec4', 0, 1, E'snuba\nconsumers')$$);
-- invalid UTF-8 never reaches the functions: the server rejects it first
SELECT pg_temp.err($$SELECT sentry_relay.create_stream(convert_from('\xff'::bytea, 'UTF8'), 'events', NULL, ARRAY['w'])$$);
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream('regress-sec4', consumer_group => convert_from('\xc3'::bytea, 'UTF8'))$$);
RESET ROLE;
-- the stream kept its definition, and the tables are all there
SELECT consumer_group, synchronize_commit_groups FROM sentry_relay.streams WHERE name = 'regress-sec4';
SELECT count(*) AS tables FROM pg_class
 WHERE relnamespace = 'sentry_relay'::regnamespace AND relkind = 'r';

--
-- Every SECURITY DEFINER function pins search_path (and so does the
-- trigger function); the replaced alter_stream and the trigger resist a
-- hijack attempt as roles.sql does for the others.
--
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc AS p
 WHERE p.pronamespace = 'sentry_relay'::regnamespace
   AND (p.prosecdef OR p.prorettype = 'trigger'::regtype)
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false);
SELECT count(*) AS pinned_definers FROM pg_proc
 WHERE pronamespace = 'sentry_relay'::regnamespace AND prosecdef;
CREATE SCHEMA regress_sec_evil AUTHORIZATION regress_sec_admin;
SET ROLE regress_sec_admin;
CREATE FUNCTION regress_sec_evil.unnest(text[]) RETURNS SETOF text
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: unnest(text[])'; END$$;
CREATE FUNCTION regress_sec_evil.textregexeq(text, text) RETURNS boolean
    LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked: text ~ text'; END$$;
CREATE OPERATOR regress_sec_evil.~ (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_sec_evil.textregexeq);
SET search_path = regress_sec_evil, pg_catalog, public;
SELECT pg_temp.err($$SELECT 'a'::text ~ 'a'::text$$);
SELECT pg_temp.err($$SELECT * FROM unnest(ARRAY['a'])$$);
SELECT name, workers, options FROM sentry_relay.alter_stream('regress-sec4', workers => 2);
SELECT pg_temp.err($$SELECT sentry_relay.alter_stream('regress-sec4', consumer_group => E'x\ty')$$);
RESET search_path;
RESET ROLE;

--
-- Clean up.
--
DROP SCHEMA regress_sec_evil CASCADE;
DROP SCHEMA regress_sec_other CASCADE;
SELECT sentry_relay.drop_stream(s, drop_jobs => true)
  FROM unnest(ARRAY['regress-sec', 'regress-sec-admin', 'regress-sec3', 'regress-sec4', 'regress-sec5']) AS s;
DELETE FROM sentry_relay.dead_letters WHERE stream = 'regress-sec';
DROP ROLE regress_sec_admin, regress_sec_worker, regress_sec_nobody;
SELECT count(*) AS roles_left FROM pg_roles WHERE rolname LIKE 'regress\_sec\_%';
SELECT count(*) AS streams_left FROM sentry_relay.streams WHERE name LIKE 'regress-sec%';
SELECT count(*) AS rows_left FROM sentry_relay.partition_state WHERE stream LIKE 'regress-sec%';
COMMIT;
