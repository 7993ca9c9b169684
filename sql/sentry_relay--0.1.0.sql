/* sentry_relay 0.1.0: the wire-format decoders */

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
