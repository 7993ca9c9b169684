/*
 * sentry_relay 0.1.0: the first version, the start of the upgrade chain,
 * run only when an older version is asked for (CREATE EXTENSION sentry_relay
 * VERSION '0.1.0' or '0.2.0'); a fresh install runs sentry_relay--0.4.0.sql.
 * The wire-format decoders, the relay's tables, the stream functions, the
 * job queue interface, the monitoring views, and the roles and their
 * privileges.
 */

\echo Use "CREATE EXTENSION sentry_relay" to load this file. \quit

CREATE FUNCTION @extschema@.decode_event_message(value bytea, headers jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'sr_decode_event_message'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION @extschema@.decode_event_message(bytea, jsonb) IS
'decode a Sentry events-topic message (and its Kafka headers) into a post-process job; NULL when no job is due';

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

-- The job queue: one row per post-process job, inserted exactly once.
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
    is_new boolean NOT NULL,
    is_regression boolean NOT NULL,
    is_new_group_environment boolean NOT NULL,
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
 * A queue deletes as fast as it inserts.  Room left in each page lets a
 * claim (which changes only unindexed columns) be a HOT update, and vacuum
 * runs after a fixed number of dead rows instead of a fraction of the table,
 * without throttling.  The only index is the primary key: claims walk it from
 * its low end, where btree deduplication and killed-tuple hints keep it
 * small and fast.
 */
WITH (fillfactor = 70,
      autovacuum_vacuum_scale_factor = 0,
      autovacuum_vacuum_threshold = 10000,
      autovacuum_vacuum_insert_scale_factor = 0,
      autovacuum_vacuum_insert_threshold = 100000,
      autovacuum_vacuum_cost_delay = 0,
      autovacuum_analyze_scale_factor = 0.05);

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
    OUT started_at timestamptz, OUT restarts int)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'sr_worker_status'
LANGUAGE C STRICT;

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
    IF attempts IS NOT NULL AND cardinality(attempts) <> cardinality(ids) THEN
        RAISE EXCEPTION 'attempts must have one entry per id (% ids, % attempts)',
                cardinality(ids), cardinality(attempts)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass each job''s attempts as claim_jobs returned it, or no attempts at all.';
    END IF;
    IF attempts IS NULL THEN
        DELETE FROM @extschema@.jobs AS j
         WHERE j.id = ANY (ids) AND j.leased_until IS NOT NULL;
    ELSE
        -- with lease tokens, a completion from an expired lease that was
        -- claimed again is rejected
        -- no join (see claim_jobs); a repeated id matches its first token
        DELETE FROM @extschema@.jobs AS j
         WHERE j.id = ANY (ids) AND j.leased_until IS NOT NULL
           AND j.attempts = (complete_jobs.attempts)[array_position(ids, j.id)];
    END IF;
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
    IF retry_in IS NOT NULL AND retry_in < interval '0' THEN
        RAISE EXCEPTION 'retry_in must not be negative, not %', retry_in
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass NULL for the default exponential backoff.';
    END IF;
    SELECT * INTO j FROM @extschema@.jobs AS t WHERE t.id = fail_job.id FOR UPDATE;
    IF NOT FOUND OR j.leased_until IS NULL THEN
        RETURN false;           -- completed, dead, or never claimed
    END IF;
    IF attempt IS NOT NULL AND attempt <> j.attempts THEN
        RETURN false;           -- a late report from an expired, re-claimed lease
    END IF;
    IF attempt IS NULL AND j.leased_until <= now() THEN
        RETURN false;           -- the lease expired: the job may be claimed again
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
GRANT EXECUTE ON FUNCTION @extschema@.decode_event_message(bytea, jsonb),
    @extschema@.decode_commit_log_message(bytea, bytea, jsonb) TO PUBLIC;

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
