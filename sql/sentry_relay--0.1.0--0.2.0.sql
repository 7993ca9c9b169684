/*
 * sentry_relay 0.1.0 -> 0.2.0
 *
 * For databases at 0.1.0; CREATE EXTENSION VERSION '0.2.0' runs
 * sentry_relay--0.1.0.sql and then this file.  A fresh install of the
 * current version runs its own install script (sentry_relay--0.4.0.sql),
 * which gives the same objects as this chain.
 */
\echo Use "ALTER EXTENSION sentry_relay UPDATE TO '0.2.0'" to load this file. \quit

/* ---- job queue (issue #4) ---------------------------------------------- */

/*
 * Half of each page is left free, so that a claim (which changes only
 * unindexed columns) is always a HOT update: at fillfactor 70 only about
 * half of the claims were.  Applies to pages written from now on.
 */
ALTER TABLE @extschema@.jobs SET (fillfactor = 50);

CREATE OR REPLACE FUNCTION @extschema@.claim_jobs(
    max_jobs int,
    lease interval DEFAULT '5 minutes',
    queues text[] DEFAULT NULL)
RETURNS SETOF @extschema@.jobs
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
    -- A claim is soft state: if a crash loses it, the job is simply ready
    -- again, as if its lease had expired (a durable claim would instead keep
    -- the job leased for the whole lease after a crash).  So when the claim
    -- is its transaction's first write, its commit does not wait for the WAL
    -- flush.  complete_jobs and fail_job stay durable, and their commit
    -- flushes the claim's WAL record too.
    IF pg_current_xact_id_if_assigned() IS NULL THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    RETURN QUERY
    UPDATE @extschema@.jobs AS j
       SET leased_until = now() + lease,
           attempts = j.attempts + 1
     -- "= ANY (ARRAY(...))", not "IN (...)": no join to plan.  Planning a
     -- join on jobs.id probes the low end of the primary key through the
     -- dead entries that completed jobs leave there until vacuum, and with
     -- parameters the plan is made anew at every call.
     WHERE j.id = ANY (ARRAY(
           SELECT c.id FROM @extschema@.jobs AS c
            WHERE (queues IS NULL OR c.queue = ANY (queues))
              AND c.visible_at <= now()
              AND (c.leased_until IS NULL OR c.leased_until <= now())
            ORDER BY c.id
            LIMIT max_jobs
              FOR UPDATE SKIP LOCKED))
    RETURNING j.*;
END $$;


/*
 * The queue's contents are data, not configuration, but a backup must not
 * lose them: pg_dump dumps the jobs not yet done, the dead jobs and the dead
 * letters, and the identity sequences' positions, so that ids given after a
 * restore never collide with restored ones.
 */
SELECT pg_catalog.pg_extension_config_dump('@extschema@.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.jobs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.dead_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.dead_letters_id_seq', '');

/* ---- security (issue #6) ------------------------------------------------ */

/*
 * The role the relay's workers run as (sentry_relay.worker_role, by default
 * sentry_relay_relay).  PostgreSQL 15 connects a background worker only as
 * a role that can log in, so it has LOGIN, but no password: give it none,
 * and no pg_hba.conf line that lets it in without one.  It is no superuser,
 * inherits nothing, and gets exactly what the launcher and the workers do:
 *
 *   streams                 SELECT (the launcher reads name, workers,
 *                           enabled, updated_at; a worker its definition,
 *                           options included: the only role besides
 *                           superusers that reads options)
 *   partition_state         SELECT, INSERT, UPDATE (claim, progress, release)
 *   remote_offsets          SELECT, INSERT, UPDATE (the commit log's offsets)
 *   commit_log_positions    SELECT, INSERT, UPDATE (the commit log's position)
 *   jobs, dead_letters      INSERT only: it cannot read what it wrote
 *   the database            CONNECT
 *
 * No DELETE or TRUNCATE anywhere, no function of the extension (the
 * decoders run in C inside the worker; PUBLIC may call them anyway), nothing
 * in any other schema.
 */
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'sentry_relay_relay') THEN
        CREATE ROLE sentry_relay_relay LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
            NOINHERIT NOREPLICATION NOBYPASSRLS;
    END IF;
    EXECUTE pg_catalog.format('GRANT CONNECT ON DATABASE %I TO sentry_relay_relay',
                              pg_catalog.current_database());
END $$;

GRANT SELECT ON @extschema@.streams TO sentry_relay_relay;
GRANT SELECT, INSERT, UPDATE ON @extschema@.partition_state, @extschema@.remote_offsets,
    @extschema@.commit_log_positions TO sentry_relay_relay;
GRANT INSERT ON @extschema@.jobs, @extschema@.dead_letters TO sentry_relay_relay;

/*
 * Stream options: who may write what, and who may read them back.
 *
 * A non-superuser (sentry_relay_admin) may not set a stream's
 * bootstrap_servers (the workers would send the credentials of
 * sentry_relay.kafka_properties there), nor librdkafka properties that
 * carry credentials or name files, commands or libraries
 * (sasl.kerberos.kinit.cmd and plugin.library.paths would run code as the
 * server's operating-system user).  _check_option_privileges looks at the
 * role outside the SECURITY DEFINER functions.  Group names with control
 * characters are refused (they end up in log lines).  A trigger checks
 * every write of the table, whichever function makes it.
 */
CREATE FUNCTION @extschema@._caller_is_superuser()
RETURNS boolean
AS 'MODULE_PATHNAME', 'sr_caller_is_superuser'
LANGUAGE C STABLE STRICT;

CREATE FUNCTION @extschema@._check_option_privileges(options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'sr_check_option_privileges'
LANGUAGE C STRICT;

CREATE FUNCTION @extschema@._streams_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.consumer_group ~ '[[:cntrl:]]' THEN
        RAISE EXCEPTION 'consumer group must not contain control characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use the consumer group''s printable name, such as ''post-process-forwarder''.';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(NEW.synchronize_commit_groups) AS g WHERE g ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'writer group names must not contain control characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the writer groups as they appear in the commit log, such as ''snuba-consumers''.';
    END IF;
    IF TG_OP = 'INSERT' OR NEW.options IS DISTINCT FROM OLD.options THEN
        PERFORM @extschema@._check_option_privileges(NEW.options);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER streams_guard
    BEFORE INSERT OR UPDATE ON @extschema@.streams
    FOR EACH ROW EXECUTE FUNCTION @extschema@._streams_guard();

/*
 * alter_stream returned the whole row, options included, so an admin could
 * read options with SELECT (sentry_relay.alter_stream('errors')).options.
 * Now only a superuser gets them back; others get NULL.
 */
CREATE OR REPLACE FUNCTION @extschema@.alter_stream(
    name text,
    topic text DEFAULT NULL,
    commit_log_topic text DEFAULT NULL,
    synchronize_commit_groups text[] DEFAULT NULL,
    consumer_group text DEFAULT NULL,
    initial_offset_reset text DEFAULT NULL,
    workers int DEFAULT NULL,
    options jsonb DEFAULT NULL)
RETURNS @extschema@.streams
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s @extschema@.streams := @extschema@._stream_check(name);
BEGIN
    s.topic := coalesce(topic, s.topic);
    s.commit_log_topic := coalesce(commit_log_topic, s.commit_log_topic);
    s.synchronize_commit_groups := coalesce(synchronize_commit_groups, s.synchronize_commit_groups);
    s.consumer_group := coalesce(consumer_group, s.consumer_group);
    s.initial_offset_reset := coalesce(initial_offset_reset, s.initial_offset_reset);
    s.workers := coalesce(workers, s.workers);
    s.options := coalesce(options, s.options);
    PERFORM @extschema@._check_stream_args(s.topic, s.commit_log_topic, s.synchronize_commit_groups,
        s.consumer_group, s.initial_offset_reset, s.workers, s.options);
    UPDATE @extschema@.streams AS t
       SET topic = s.topic, commit_log_topic = s.commit_log_topic,
           synchronize_commit_groups = s.synchronize_commit_groups,
           consumer_group = s.consumer_group, initial_offset_reset = s.initial_offset_reset,
           workers = s.workers, options = s.options, updated_at = now()
     WHERE t.name = alter_stream.name
    RETURNING * INTO s;
    -- running workers pick up the new definition by restarting
    PERFORM @extschema@._wake_launcher();
    IF NOT @extschema@._caller_is_superuser() THEN
        s.options := NULL;      -- it may hold secrets
    END IF;
    RETURN s;
END $$;

REVOKE ALL ON FUNCTION @extschema@._caller_is_superuser(),
    @extschema@._check_option_privileges(jsonb),
    @extschema@._streams_guard() FROM PUBLIC;

/* ---- chaos counters (issue #6) ------------------------------------------ */

/*
 * sentry_relay.workers shows the faults each worker saw, counted per worker
 * slot across the restarts of its worker: Kafka error events and consumer
 * errors, waits for a broker, rebalances (assignments and revocations),
 * failed Kafka offset commits, remote offsets that moved backwards, and
 * messages read past the gate (re-read once the writer catches up).
 * Shared memory, like the other counters: a restart of PostgreSQL resets them.
 */
DROP VIEW @extschema@.workers;
DROP FUNCTION @extschema@._worker_status();
CREATE FUNCTION @extschema@._worker_status(
    OUT pid int, OUT stream text, OUT worker int, OUT status text,
    OUT partitions int[], OUT messages bigint, OUT jobs bigint,
    OUT skipped bigint, OUT dead_letters bigint, OUT batches bigint,
    OUT last_error text, OUT last_error_at timestamptz,
    OUT started_at timestamptz, OUT restarts int,
    OUT kafka_errors bigint, OUT broker_waits bigint, OUT rebalances bigint,
    OUT commit_failures bigint, OUT remote_backwards bigint, OUT gated bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sr_worker_status'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION @extschema@._worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@._worker_status() TO sentry_relay_admin;

CREATE VIEW @extschema@.workers AS
SELECT * FROM @extschema@._worker_status();
GRANT SELECT ON @extschema@.workers TO sentry_relay_admin;
