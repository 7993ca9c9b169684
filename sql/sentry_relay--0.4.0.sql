/*
 * sentry_relay 0.4.0: the whole extension, as CREATE EXTENSION installs it.
 *
 * PostgreSQL prefers this direct install script to the upgrade chain, so a
 * fresh install runs this one file, which holds the current definition of
 * every object.  sentry_relay--0.1.0.sql and the sentry_relay--A--B.sql
 * scripts stay for databases at an older version; the chain gives the same
 * objects, privileges and comments (test/t/082_install_equivalence.pl).
 */
\echo Use "CREATE EXTENSION sentry_relay" to load this file. \quit

/* The wire-format decoders (decode_event_message is at the end). */

CREATE FUNCTION @extschema@.decode_commit_log_message(
    key bytea,
    value bytea,
    headers jsonb DEFAULT NULL,
    OUT topic text,
    OUT partition int,
    OUT consumer_group text,
    OUT "offset" bigint,
    OUT orig_message_ts timestamptz,
    OUT received_p99 timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'sr_decode_commit_log_message'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.decode_commit_log_message(bytea, bytea, jsonb) IS
'decode a Snuba commit-log message (JSON or legacy integer value) into the writer''s committed offset';

/*
 * The relay: streams, partition progress, remote (writer) offsets, the
 * commit-log read position, the job queue and dead letters.
 */

CREATE TABLE @extschema@.streams (
    name text PRIMARY KEY
        CONSTRAINT streams_name_check CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    topic text NOT NULL
        CONSTRAINT streams_topic_check CHECK (topic ~ '^[A-Za-z0-9._-]{1,249}$'),
    commit_log_topic text
        CONSTRAINT streams_commit_log_topic_check CHECK (commit_log_topic ~ '^[A-Za-z0-9._-]{1,249}$'),
    synchronize_commit_groups text[] NOT NULL
        CONSTRAINT streams_groups_check CHECK (cardinality(synchronize_commit_groups) BETWEEN 1 AND 16),
    consumer_group text NOT NULL DEFAULT 'post-process-forwarder'
        CONSTRAINT streams_consumer_group_check CHECK (length(consumer_group) BETWEEN 1 AND 255),
    initial_offset_reset text NOT NULL DEFAULT 'earliest'
        CONSTRAINT streams_reset_check CHECK (initial_offset_reset IN ('earliest', 'latest', 'error')),
    workers int NOT NULL DEFAULT 1
        CONSTRAINT streams_workers_check CHECK (workers BETWEEN 1 AND 64),
    options jsonb NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.streams IS 'one row per relayed stream; manage with create_stream/alter_stream/start_stream/stop_stream/drop_stream';

-- Our progress per partition: local_offset is the next offset to enqueue.
CREATE TABLE @extschema@.partition_state (
    stream text NOT NULL REFERENCES @extschema@.streams (name) ON DELETE CASCADE ON UPDATE CASCADE,
    partition int NOT NULL CHECK (partition >= 0),
    topic text NOT NULL,
    local_offset bigint CHECK (local_offset >= 0),
    state text NOT NULL DEFAULT 'UNKNOWN',
    worker_pid int,
    high_watermark bigint,
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, partition)
);

-- The writers' committed (exclusive) offsets, per followed group.
CREATE TABLE @extschema@.remote_offsets (
    stream text NOT NULL REFERENCES @extschema@.streams (name) ON DELETE CASCADE ON UPDATE CASCADE,
    partition int NOT NULL CHECK (partition >= 0),
    consumer_group text NOT NULL,
    "offset" bigint NOT NULL CHECK ("offset" >= 0),
    orig_message_ts timestamptz,
    source text NOT NULL CHECK (source IN ('commit_log', 'sql')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, partition, consumer_group)
);

-- Where the commit log was read up to (next offset to read), per stream.
CREATE TABLE @extschema@.commit_log_positions (
    stream text NOT NULL REFERENCES @extschema@.streams (name) ON DELETE CASCADE ON UPDATE CASCADE,
    partition int NOT NULL,
    "offset" bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, partition)
);

-- The job queue: one row per post-process job, inserted exactly once.  A
-- task flag that a message sends as null is NULL, as Sentry passes None on.
CREATE TABLE @extschema@.jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream text NOT NULL,
    topic text NOT NULL,
    partition int NOT NULL,
    "offset" bigint NOT NULL,
    queue text NOT NULL,
    eventstream_type text NOT NULL,
    project_id bigint NOT NULL,
    group_id bigint,
    event_id text NOT NULL,
    primary_hash text,
    is_new boolean,
    is_regression boolean,
    is_new_group_environment boolean,
    group_states jsonb,
    occurrence_id text,
    cache_key text NOT NULL,
    message_timestamp timestamptz,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    body bytea,
    attempts int NOT NULL DEFAULT 0,
    visible_at timestamptz NOT NULL DEFAULT now(),
    leased_until timestamptz,
    errors jsonb
)
/*
 * A queue deletes as fast as it inserts.  Half of each page is left free, so
 * that a claim (which changes only unindexed columns) is always a HOT
 * update, and vacuum runs after a fixed number of dead rows instead of a
 * fraction of the table, without throttling.  The only index is the primary
 * key: claims walk it from its low end, where btree deduplication and
 * killed-tuple hints keep it small and fast.  (fillfactor comes last, where
 * the 0.1.0 -> 0.2.0 update leaves it.)
 */
WITH (autovacuum_vacuum_scale_factor = 0,
      autovacuum_vacuum_threshold = 10000,
      autovacuum_vacuum_insert_scale_factor = 0,
      autovacuum_vacuum_insert_threshold = 100000,
      autovacuum_vacuum_cost_delay = 0,
      autovacuum_analyze_scale_factor = 0.05,
      fillfactor = 50);

-- Jobs that failed max_attempts times, with their whole error history.
CREATE TABLE @extschema@.dead_jobs (LIKE @extschema@.jobs INCLUDING DEFAULTS);
ALTER TABLE @extschema@.dead_jobs ADD PRIMARY KEY (id),
    ADD COLUMN died_at timestamptz NOT NULL DEFAULT now();

-- Messages that could not be decoded, with their raw bytes.
CREATE TABLE @extschema@.dead_letters (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream text NOT NULL,
    topic text NOT NULL,
    partition int NOT NULL,
    "offset" bigint NOT NULL,
    key bytea,
    value bytea,
    header_names text[],
    header_values bytea[],
    error text NOT NULL,
    sqlstate text NOT NULL,
    error_class text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_stream_idx ON @extschema@.dead_letters (stream, partition, "offset");

-- Stream definitions and offsets survive pg_dump.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.streams', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.partition_state', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.remote_offsets', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.commit_log_positions', '');

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

/* C helpers of the stream functions. */

CREATE FUNCTION @extschema@._validate_options(options jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'sr_validate_options'
LANGUAGE C STRICT;

CREATE FUNCTION @extschema@._wake_launcher()
RETURNS void
AS 'MODULE_PATHNAME', 'sr_wake_launcher'
LANGUAGE C STRICT;

CREATE FUNCTION @extschema@._wake_stream(stream text)
RETURNS void
AS 'MODULE_PATHNAME', 'sr_wake_stream'
LANGUAGE C STRICT;

CREATE FUNCTION @extschema@._worker_status(
    OUT pid int, OUT stream text, OUT worker int, OUT status text,
    OUT partitions int[], OUT messages bigint, OUT jobs bigint,
    OUT skipped bigint, OUT dead_letters bigint, OUT batches bigint,
    OUT last_error text, OUT last_error_at timestamptz,
    OUT started_at timestamptz, OUT restarts int,
    OUT kafka_errors bigint, OUT broker_waits bigint, OUT rebalances bigint,
    OUT commit_failures bigint, OUT remote_backwards bigint, OUT gated bigint,
    OUT direct_inserts bigint, OUT copy_inserts bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sr_worker_status'
LANGUAGE C STRICT;

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

CREATE FUNCTION @extschema@._stream_check(name text)
RETURNS @extschema@.streams
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s @extschema@.streams;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'stream name must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the name given to sentry_relay.create_stream.';
    END IF;
    SELECT * INTO s FROM @extschema@.streams AS t WHERE t.name = _stream_check.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'stream "%" does not exist', name
            USING ERRCODE = 'undefined_object',
                  HINT = 'List streams with: SELECT name FROM sentry_relay.streams.';
    END IF;
    RETURN s;
END $$;

CREATE FUNCTION @extschema@._check_stream_args(
    topic text, commit_log_topic text, synchronize_commit_groups text[],
    consumer_group text, initial_offset_reset text, workers int, options jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF topic IS NULL OR topic !~ '^[A-Za-z0-9._-]{1,249}$' THEN
        RAISE EXCEPTION 'invalid topic name "%"', topic
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Kafka topic names are 1 to 249 characters of A-Z, a-z, 0-9, ".", "_" and "-".';
    END IF;
    IF commit_log_topic IS NOT NULL AND commit_log_topic !~ '^[A-Za-z0-9._-]{1,249}$' THEN
        RAISE EXCEPTION 'invalid commit log topic name "%"', commit_log_topic
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Kafka topic names are 1 to 249 characters of A-Z, a-z, 0-9, ".", "_" and "-"; pass NULL to rely on sentry_relay.set_remote_offset only.';
    END IF;
    IF synchronize_commit_groups IS NULL OR cardinality(synchronize_commit_groups) = 0 THEN
        RAISE EXCEPTION 'synchronize_commit_groups must name at least one writer group'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For Sentry''s errors stream this is ARRAY[''snuba-consumers''].';
    END IF;
    IF cardinality(synchronize_commit_groups) > 16 THEN
        RAISE EXCEPTION 'at most 16 writer groups can be followed, not %', cardinality(synchronize_commit_groups)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Follow only the writer groups whose progress gates post-processing.';
    END IF;
    IF array_position(synchronize_commit_groups, NULL) IS NOT NULL
       OR EXISTS (SELECT 1 FROM unnest(synchronize_commit_groups) g WHERE length(g) = 0 OR length(g) > 255) THEN
        RAISE EXCEPTION 'writer group names must be non-empty and at most 255 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example ARRAY[''snuba-consumers''].';
    END IF;
    IF (SELECT count(DISTINCT g) FROM unnest(synchronize_commit_groups) g) <> cardinality(synchronize_commit_groups) THEN
        RAISE EXCEPTION 'synchronize_commit_groups lists a group twice'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name each writer group once.';
    END IF;
    IF consumer_group IS NULL OR length(consumer_group) = 0 OR length(consumer_group) > 255 THEN
        RAISE EXCEPTION 'invalid consumer group "%"', consumer_group
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Sentry''s forwarder uses ''post-process-forwarder''.';
    END IF;
    IF initial_offset_reset IS NULL OR initial_offset_reset NOT IN ('earliest', 'latest', 'error') THEN
        RAISE EXCEPTION 'invalid initial_offset_reset "%"', initial_offset_reset
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''earliest'', ''latest'' or ''error''.';
    END IF;
    IF workers IS NULL OR workers < 1 OR workers > 64 THEN
        RAISE EXCEPTION 'workers must be between 1 and 64, not %', coalesce(workers::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use one worker per core at most; partitions are shared among workers.';
    END IF;
    IF options IS NULL THEN
        RAISE EXCEPTION 'options must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass ''{}'' for no options.';
    END IF;
    PERFORM @extschema@._validate_options(options);
END $$;

CREATE FUNCTION @extschema@.create_stream(
    name text,
    topic text,
    commit_log_topic text,
    synchronize_commit_groups text[],
    consumer_group text DEFAULT 'post-process-forwarder',
    initial_offset_reset text DEFAULT 'earliest',
    workers int DEFAULT 1,
    options jsonb DEFAULT '{}')
RETURNS @extschema@.streams
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s @extschema@.streams;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'stream name must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name the stream, for example ''errors''.';
    END IF;
    IF name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        RAISE EXCEPTION 'invalid stream name "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Stream names are 1 to 63 characters of A-Z, a-z, 0-9, "_", "." and "-", for example ''errors''.';
    END IF;
    PERFORM @extschema@._check_stream_args(topic, commit_log_topic, synchronize_commit_groups,
        consumer_group, initial_offset_reset, workers, options);
    BEGIN
        INSERT INTO @extschema@.streams AS t (name, topic, commit_log_topic, synchronize_commit_groups,
            consumer_group, initial_offset_reset, workers, options)
        VALUES (name, topic, commit_log_topic, synchronize_commit_groups,
            consumer_group, initial_offset_reset, workers, options)
        RETURNING * INTO s;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'stream "%" already exists', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Change it with sentry_relay.alter_stream, or drop it first.';
    END;
    PERFORM @extschema@._wake_launcher();
    RETURN s;
END $$;

/*
 * alter_stream returns the new row; its options may hold secrets, so only a
 * superuser gets them back, and others get NULL.
 */
CREATE FUNCTION @extschema@.alter_stream(
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

CREATE FUNCTION @extschema@.start_stream(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._stream_check(name);
    UPDATE @extschema@.streams AS t SET enabled = true, updated_at = now() WHERE t.name = start_stream.name;
    PERFORM @extschema@._wake_launcher();
END $$;

CREATE FUNCTION @extschema@.stop_stream(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._stream_check(name);
    UPDATE @extschema@.streams AS t SET enabled = false, updated_at = now() WHERE t.name = stop_stream.name;
    PERFORM @extschema@._wake_launcher();
END $$;

CREATE FUNCTION @extschema@.drop_stream(name text, drop_jobs boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@._stream_check(name);
    DELETE FROM @extschema@.streams AS t WHERE t.name = drop_stream.name;
    IF drop_jobs THEN
        DELETE FROM @extschema@.jobs AS j WHERE j.stream = drop_stream.name;
    END IF;
    PERFORM @extschema@._wake_launcher();
END $$;

CREATE FUNCTION @extschema@.set_remote_offset(
    stream text, partition int, "offset" bigint, consumer_group text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s @extschema@.streams := @extschema@._stream_check(stream);
    g text := consumer_group;
BEGIN
    IF partition IS NULL OR partition < 0 THEN
        RAISE EXCEPTION 'partition must be a non-negative integer, not %', coalesce(partition::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Kafka partitions are numbered from 0.';
    END IF;
    IF "offset" IS NULL OR "offset" < 0 THEN
        RAISE EXCEPTION 'offset must be a non-negative integer, not %', coalesce("offset"::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the writer''s committed offset: the next offset it will consume.';
    END IF;
    IF g IS NULL THEN
        IF cardinality(s.synchronize_commit_groups) <> 1 THEN
            RAISE EXCEPTION 'stream "%" follows % writer groups; say which one this offset is for',
                    s.name, cardinality(s.synchronize_commit_groups)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Pass consumer_group, one of %s.', s.synchronize_commit_groups);
        END IF;
        g := s.synchronize_commit_groups[1];
    ELSIF NOT g = ANY (s.synchronize_commit_groups) THEN
        RAISE EXCEPTION 'stream "%" does not follow writer group "%"', s.name, g
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('The followed groups are %s; change them with sentry_relay.alter_stream.', s.synchronize_commit_groups);
    END IF;
    INSERT INTO @extschema@.remote_offsets AS r (stream, partition, consumer_group, "offset", source)
    VALUES (s.name, partition, g, "offset", 'sql')
    ON CONFLICT ON CONSTRAINT remote_offsets_pkey DO UPDATE
       SET "offset" = excluded."offset", source = 'sql', orig_message_ts = NULL, updated_at = now();
    PERFORM @extschema@._wake_stream(s.name);
END $$;


/*
 * The job queue interface for job workers.
 *
 * claim_jobs leases jobs (FOR UPDATE SKIP LOCKED: each job goes to at most
 * one claimer at a time) and counts the attempt; the attempt number doubles
 * as the lease token.  complete_jobs removes finished jobs; fail_job records
 * an error and makes the job visible again after a backoff, or moves it to
 * dead_jobs after sentry_relay.max_attempts.  All are SECURITY DEFINER with
 * a pinned search_path, for the sentry_relay_worker role.
 */

CREATE FUNCTION @extschema@.claim_jobs(
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

CREATE FUNCTION @extschema@.complete_jobs(ids bigint[], attempts int[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
BEGIN
    IF ids IS NULL THEN
        RAISE EXCEPTION 'ids must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the ids of the claimed jobs that are done, for example ARRAY[1, 2, 3].';
    END IF;
    -- the lease tokens are required; their DEFAULT NULL only lets a call
    -- without them reach this error instead of "function does not exist"
    IF attempts IS NULL THEN
        RAISE EXCEPTION 'complete_jobs needs the lease token of each job: attempts must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass each job''s attempts as claim_jobs returned it: complete_jobs(ARRAY[id, ...], ARRAY[attempts, ...]). Without the token a worker whose lease expired could remove a job that another worker holds.';
    END IF;
    IF cardinality(attempts) <> cardinality(ids) THEN
        RAISE EXCEPTION 'attempts must have one entry per id (% ids, % attempts)',
                cardinality(ids), cardinality(attempts)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass each job''s attempts as claim_jobs returned it.';
    END IF;
    -- a completion from an expired lease that was claimed again is rejected
    -- no join (see claim_jobs); a repeated id matches its first token
    DELETE FROM @extschema@.jobs AS j
     WHERE j.id = ANY (ids) AND j.leased_until IS NOT NULL
       AND j.attempts = (complete_jobs.attempts)[array_position(ids, j.id)];
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

CREATE FUNCTION @extschema@.fail_job(
    id bigint,
    error text,
    retry_in interval DEFAULT NULL,
    attempt int DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j @extschema@.jobs;
    max_attempts int := current_setting('sentry_relay.max_attempts')::int;
    entry jsonb;
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'id must not be null'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the id of the claimed job that failed.';
    END IF;
    IF error IS NULL THEN
        RAISE EXCEPTION 'error must not be null'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Say why the job failed; it is kept in the job''s error history.';
    END IF;
    -- the lease token is required; its DEFAULT NULL only lets a call
    -- without it reach this error instead of "function does not exist"
    IF attempt IS NULL THEN
        RAISE EXCEPTION 'fail_job needs the lease token of the job: attempt must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the job''s attempts as claim_jobs returned it: fail_job(id, error, attempt => attempts). Without the token a worker whose lease expired could clear the lease of another worker that holds the job.';
    END IF;
    IF retry_in IS NOT NULL AND retry_in < interval '0' THEN
        RAISE EXCEPTION 'retry_in must not be negative, not %', retry_in
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL for the default exponential backoff.';
    END IF;
    SELECT * INTO j FROM @extschema@.jobs AS t WHERE t.id = fail_job.id FOR UPDATE;
    IF NOT FOUND OR j.leased_until IS NULL THEN
        RETURN false;           -- completed, dead, or never claimed
    END IF;
    IF attempt <> j.attempts THEN
        RETURN false;           -- a late report from an expired, re-claimed lease
    END IF;
    entry := jsonb_build_object('attempt', j.attempts, 'at', now(), 'error', error);
    IF j.attempts >= max_attempts THEN
        DELETE FROM @extschema@.jobs AS t WHERE t.id = j.id;
        j.errors := coalesce(j.errors, '[]'::jsonb) || entry;
        j.leased_until := NULL;
        INSERT INTO @extschema@.dead_jobs SELECT (j).*, now();
    ELSE
        UPDATE @extschema@.jobs AS t
           SET leased_until = NULL,
               visible_at = now() + coalesce(retry_in,
                   least(interval '1 second' * 5 * power(2, least(j.attempts - 1, 10)), interval '1 hour')),
               errors = coalesce(t.errors, '[]'::jsonb) || entry
         WHERE t.id = j.id;
    END IF;
    RETURN true;
END $$;

CREATE FUNCTION @extschema@.retry_dead_jobs(ids bigint[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n int;
BEGIN
    WITH moved AS (
        DELETE FROM @extschema@.dead_jobs AS d
         WHERE ids IS NULL OR d.id = ANY (ids)
        RETURNING d.*)
    INSERT INTO @extschema@.jobs OVERRIDING SYSTEM VALUE
    SELECT m.id, m.stream, m.topic, m.partition, m."offset", m.queue, m.eventstream_type,
           m.project_id, m.group_id, m.event_id, m.primary_hash, m.is_new, m.is_regression,
           m.is_new_group_environment, m.group_states, m.occurrence_id, m.cache_key,
           m.message_timestamp, m.enqueued_at, m.body, 0, now(), NULL, m.errors
      FROM moved AS m;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

CREATE FUNCTION @extschema@.queue_stats()
RETURNS TABLE (queue text, depth bigint, ready bigint, leased bigint, delayed bigint,
               oldest_age interval, dead bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH live AS (
        SELECT j.queue,
               count(*) AS depth,
               count(*) FILTER (WHERE j.visible_at <= now()
                                  AND (j.leased_until IS NULL OR j.leased_until <= now())) AS ready,
               count(*) FILTER (WHERE j.leased_until > now()) AS leased,
               count(*) FILTER (WHERE j.visible_at > now()
                                  AND (j.leased_until IS NULL OR j.leased_until <= now())) AS delayed,
               now() - min(j.enqueued_at) AS oldest_age
          FROM @extschema@.jobs AS j GROUP BY j.queue),
    dead AS (
        SELECT d.queue, count(*) AS dead FROM @extschema@.dead_jobs AS d GROUP BY d.queue)
    SELECT coalesce(l.queue, d.queue), coalesce(l.depth, 0), coalesce(l.ready, 0),
           coalesce(l.leased, 0), coalesce(l.delayed, 0), l.oldest_age, coalesce(d.dead, 0)
      FROM live AS l FULL JOIN dead AS d ON d.queue = l.queue
     ORDER BY 1
$$;

/* Monitoring views. */

CREATE VIEW @extschema@.partitions AS
SELECT p.stream,
       p.topic,
       p.partition,
       p.local_offset,
       r.remote_offset,
       r.group_offsets,
       p.state,
       CASE WHEN r.remote_offset IS NOT NULL AND p.local_offset IS NOT NULL
            THEN greatest(r.remote_offset - p.local_offset, 0) END AS lag,
       CASE WHEN p.high_watermark IS NOT NULL AND p.local_offset IS NOT NULL
            THEN greatest(p.high_watermark - p.local_offset, 0) END AS kafka_lag,
       p.worker_pid,
       p.last_error,
       p.updated_at
  FROM @extschema@.partition_state p
  JOIN @extschema@.streams s ON s.name = p.stream
  LEFT JOIN LATERAL (
       SELECT CASE WHEN count(*) = cardinality(s.synchronize_commit_groups)
                   THEN min(ro."offset") END AS remote_offset,
              jsonb_object_agg(ro.consumer_group, ro."offset") AS group_offsets
         FROM @extschema@.remote_offsets ro
        WHERE ro.stream = p.stream AND ro.partition = p.partition
          AND ro.consumer_group = ANY (s.synchronize_commit_groups)) r ON true;

CREATE VIEW @extschema@.workers AS
SELECT * FROM @extschema@._worker_status();

/*
 * Roles and privileges.  sentry_relay_worker may claim, complete and fail
 * jobs, and nothing else; sentry_relay_admin manages streams and offsets and
 * reads the monitoring views, dead letters and dead jobs.  Other roles can do
 * neither.  Kafka secrets live in a superuser-only setting.
 */
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'sentry_relay_worker') THEN
        CREATE ROLE sentry_relay_worker NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'sentry_relay_admin') THEN
        CREATE ROLE sentry_relay_admin NOLOGIN;
    END IF;
END $$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA @extschema@ FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.decode_commit_log_message(bytea, bytea, jsonb) TO PUBLIC;

-- everyone may use the decoders; everything else is revoked from PUBLIC above
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

GRANT EXECUTE ON FUNCTION @extschema@.claim_jobs(int, interval, text[]),
    @extschema@.complete_jobs(bigint[], int[]),
    @extschema@.fail_job(bigint, text, interval, int) TO sentry_relay_worker;

GRANT EXECUTE ON FUNCTION
    @extschema@.create_stream(text, text, text, text[], text, text, int, jsonb),
    @extschema@.alter_stream(text, text, text, text[], text, text, int, jsonb),
    @extschema@.start_stream(text),
    @extschema@.stop_stream(text),
    @extschema@.drop_stream(text, boolean),
    @extschema@.set_remote_offset(text, int, bigint, text),
    @extschema@.retry_dead_jobs(bigint[]),
    @extschema@.queue_stats(),
    @extschema@._worker_status() TO sentry_relay_admin;
-- streams.options may hold librdkafka properties, secrets among them: only
-- superusers read it (put secrets in sentry_relay.kafka_properties)
GRANT SELECT (name, topic, commit_log_topic, synchronize_commit_groups, consumer_group,
              initial_offset_reset, workers, enabled, created_at, updated_at)
    ON @extschema@.streams TO sentry_relay_admin;
GRANT SELECT ON @extschema@.partition_state, @extschema@.remote_offsets,
    @extschema@.commit_log_positions, @extschema@.jobs, @extschema@.dead_jobs,
    @extschema@.dead_letters, @extschema@.partitions, @extschema@.workers
    TO sentry_relay_admin;
GRANT DELETE ON @extschema@.dead_letters, @extschema@.dead_jobs TO sentry_relay_admin;

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
 * The event decoder comes last, after the REVOKE above, as the 0.2.0 -> 0.3.0
 * update recreates it: it keeps PostgreSQL's default privileges, which the
 * GRANT writes out, so that its ACL is the same, item for item, as in an
 * updated database.
 */
CREATE FUNCTION @extschema@.decode_event_message(
    value bytea,
    headers jsonb DEFAULT NULL,
    default_queue text DEFAULT 'post_process_errors')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'sr_decode_event_message'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.decode_event_message(bytea, jsonb, text) IS
'decode a Sentry events-topic message (and its Kafka headers) into the post-process job the relay would make; NULL when no job is due';

GRANT EXECUTE ON FUNCTION @extschema@.decode_event_message(bytea, jsonb, text) TO PUBLIC;
