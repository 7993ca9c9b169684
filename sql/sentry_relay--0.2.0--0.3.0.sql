/*
 * sentry_relay 0.2.0 -> 0.3.0: decoding follows Sentry's forwarder (see
 * docs/decoding.md).
 *
 * - A task flag that a message sends as null is stored as NULL, as Sentry
 *   passes None on: the flag columns of the queue accept NULL.
 * - decode_event_message takes the queue for messages that name none, and
 *   decodes a NULL value (a tombstone) from complete headers, as the relay
 *   does.
 *
 * Existing rows are kept as they are.
 */
\echo Use "ALTER EXTENSION sentry_relay UPDATE TO '0.3.0'" to load this file. \quit

ALTER TABLE @extschema@.jobs
    ALTER COLUMN is_new DROP NOT NULL,
    ALTER COLUMN is_regression DROP NOT NULL,
    ALTER COLUMN is_new_group_environment DROP NOT NULL;
ALTER TABLE @extschema@.dead_jobs
    ALTER COLUMN is_new DROP NOT NULL,
    ALTER COLUMN is_regression DROP NOT NULL,
    ALTER COLUMN is_new_group_environment DROP NOT NULL;

DROP FUNCTION @extschema@.decode_event_message(bytea, jsonb);
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
