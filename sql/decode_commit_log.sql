--
-- decode_commit_log: sentry_relay.decode_commit_log_message(key, value,
-- headers) on Snuba commit-log messages.
--
-- Key: "topic:partition:group", split at the first two colons.  Value:
-- JSON {"offset": N, "orig_message_ts": secs, "received_p99": secs|null},
-- or the legacy ASCII integer with an optional orig_message_ts header.
-- Errors go through commit_error(), which returns "SQLSTATE | message".
--
\set SHOW_CONTEXT never
\pset null '<NULL>'
-- Timestamps are shown in UTC, in ISO format.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE FUNCTION pg_temp.commit_error(key bytea, value bytea, headers jsonb DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO r FROM sentry_relay.decode_commit_log_message(key, value, headers);
    RETURN 'no error: ' || r::text;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' | ' || SQLERRM;
END
$$;

-- The same, for a key and a value given as text (encoded to UTF-8).
CREATE FUNCTION pg_temp.commit_error(key text, value text, headers jsonb DEFAULT NULL)
RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.commit_error(convert_to(key, 'UTF8'), convert_to(value, 'UTF8'), headers)
$$;

--
-- Current JSON format.
--

-- A commit of Snuba's errors consumer, as published today.
SELECT * FROM sentry_relay.decode_commit_log_message(
    convert_to('events:0:snuba-consumers', 'UTF8'),
    convert_to('{"offset": 12346, "orig_message_ts": 1707857566.83139, "received_p99": 1707857569.83139}', 'UTF8'));

-- The other streams Sentry runs, and their writer groups.
SELECT c.*
FROM (VALUES
  ('events:15:snuba-consumers', '{"offset": 0, "orig_message_ts": 1707857566.5, "received_p99": 1707857566.75}'),
  ('transactions:3:transactions_group', '{"offset": 987654321, "orig_message_ts": 1707857570, "received_p99": 1707857571}'),
  ('generic-events:0:generic_events_group', '{"offset": 42, "orig_message_ts": 1707857572.000001, "received_p99": null}')
) AS m(key, value)
CROSS JOIN LATERAL sentry_relay.decode_commit_log_message(
    convert_to(m.key, 'UTF8'), convert_to(m.value, 'UTF8')) AS c;

-- received_p99 null or absent, orig_message_ts null or absent: NULL
-- timestamps; unknown keys are ignored; timestamps may be integers.
SELECT m.note, c."offset", c.orig_message_ts, c.received_p99
FROM (VALUES
  (1, 'received_p99 null', '{"offset": 12346, "orig_message_ts": 1707857566.83139, "received_p99": null}'),
  (2, 'received_p99 absent', '{"offset": 12346, "orig_message_ts": 1707857566.83139}'),
  (3, 'orig_message_ts null', '{"offset": 12346, "orig_message_ts": null, "received_p99": null}'),
  (4, 'offset only', '{"offset": 12346}'),
  (5, 'integer seconds', '{"offset": 12346, "orig_message_ts": 1707857566, "received_p99": 1707857569}'),
  (6, 'unknown keys', '{"offset": 12346, "orig_message_ts": 1707857566.83139, "schema": 2, "extra": {"a": [1]}}'),
  (7, 'key order', '{"received_p99": 1707857569.83139, "orig_message_ts": 1707857566.83139, "offset": 12346}'),
  (8, 'whitespace', E'\n {\n  "offset" : 12346 ,\n  "orig_message_ts" : 1707857566.83139\n }\n'),
  (9, 'offset 0', '{"offset": 0}'),
  (10, 'offset 2^63-1', '{"offset": 9223372036854775807}'),
  (11, 'epoch', '{"offset": 1, "orig_message_ts": 0, "received_p99": 0.0}'),
  (12, 'microseconds', '{"offset": 1, "orig_message_ts": 1707857566.000001, "received_p99": 1707857566.999999}'),
  (13, 'year 9999', '{"offset": 1, "orig_message_ts": 253402300799.5}'),
  (14, 'exponent', '{"offset": 1, "orig_message_ts": 1.70785756683139e9}')
) AS m(n, note, value)
CROSS JOIN LATERAL sentry_relay.decode_commit_log_message(
    convert_to('events:0:snuba-consumers', 'UTF8'), convert_to(m.value, 'UTF8')) AS c
ORDER BY m.n;

-- Headers are not read for the JSON format: orig_message_ts comes from the
-- value.
SELECT "offset", orig_message_ts
FROM sentry_relay.decode_commit_log_message(
    convert_to('events:0:snuba-consumers', 'UTF8'),
    convert_to('{"offset": 12346, "orig_message_ts": 1707857566.83139}', 'UTF8'),
    '{"orig_message_ts": "2021-09-20T12:34:56.789000Z"}');

--
-- Legacy format: the offset in ASCII, orig_message_ts in a header.
--

-- A legacy commit with its header.
SELECT * FROM sentry_relay.decode_commit_log_message(
    convert_to('events:0:snuba-consumers', 'UTF8'),
    convert_to('12346', 'UTF8'),
    '{"orig_message_ts": "2021-09-20T12:34:56.789000Z"}');

-- Without the header, or with a null one: no timestamp.  Other headers are
-- ignored.
SELECT m.note, c."offset", c.orig_message_ts, c.received_p99
FROM (VALUES
  (1, 'no headers', NULL::jsonb),
  (2, 'empty headers', '{}'),
  (3, 'null header', '{"orig_message_ts": null}'),
  (4, 'other headers', '{"x-producer": "snuba", "orig-message-ts": "garbage"}')
) AS m(n, note, headers)
CROSS JOIN LATERAL sentry_relay.decode_commit_log_message(
    convert_to('events:0:snuba-consumers', 'UTF8'), convert_to('12346', 'UTF8'), m.headers) AS c
ORDER BY m.n;

-- The header timestamp forms accepted: with 6, 3, 1 or 9 (truncated to
-- microseconds) fractional digits, none, and +00:00 in place of Z.
SELECT h.ts AS header, c.orig_message_ts
FROM (VALUES ('2021-09-20T12:34:56.789000Z'), ('2021-09-20T12:34:56.789Z'),
             ('2021-09-20T12:34:56.7Z'), ('2021-09-20T12:34:56.123456789Z'),
             ('2021-09-20T12:34:56Z'), ('2021-09-20T12:34:56.789000+00:00'),
             ('2024-02-29T23:59:59.999999Z'), ('1970-01-01T00:00:00.000000Z'),
             ('9999-12-31T23:59:59.999999Z')) AS h(ts)
CROSS JOIN LATERAL sentry_relay.decode_commit_log_message(
    convert_to('events:0:snuba-consumers', 'UTF8'), convert_to('7', 'UTF8'),
    jsonb_build_object('orig_message_ts', h.ts)) AS c;

-- Legacy offsets: 0 and the largest 64-bit integer.
SELECT c."offset"
FROM (VALUES ('0'), ('9223372036854775807')) AS v(value)
CROSS JOIN LATERAL sentry_relay.decode_commit_log_message(
    convert_to('events:0:snuba-consumers', 'UTF8'), convert_to(v.value, 'UTF8')) AS c;

--
-- Keys.
--

-- The key is split at the first two colons: the group may hold colons,
-- the topic dots and dashes; partitions up to 2^31-1.
SELECT k.key, c.topic, c.partition, c.consumer_group
FROM (VALUES ('events:0:snuba-consumers'),
             ('events:7:group:with:colons'),
             ('events:7::'),
             ('ingest.events-v2:12:g'),
             ('t:2147483647:g'),
             ('t:007:g')) AS k(key)
CROSS JOIN LATERAL sentry_relay.decode_commit_log_message(
    convert_to(k.key, 'UTF8'), convert_to('1', 'UTF8')) AS c;

-- UTF-8 in the key is kept (a group named "gr\u00fcn", raw UTF-8 bytes,
-- shown in hex).
SELECT c.topic, c.partition, encode(convert_to(c.consumer_group, 'UTF8'), 'hex') AS group_hex
FROM sentry_relay.decode_commit_log_message(
    convert_to('events:1:gr', 'UTF8') || '\xc3bc6e'::bytea, convert_to('1', 'UTF8')) AS c;

--
-- Errors, one SQLSTATE per class.
--

-- 22004: a NULL key or value.
SELECT pg_temp.commit_error(NULL::bytea, convert_to('1', 'UTF8'));
SELECT pg_temp.commit_error(convert_to('events:0:g', 'UTF8'), NULL::bytea);
SELECT * FROM sentry_relay.decode_commit_log_message(NULL, convert_to('1', 'UTF8'));

-- 54000: a value over 64 kB or a key over 4 kB is not a commit log message.
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1, "pad": "' || repeat('x', 70000) || '"}');
SELECT pg_temp.commit_error('events:0:' || repeat('g', 5000), '1');
SELECT * FROM sentry_relay.decode_commit_log_message(convert_to('events:0:' || repeat('g', 5000), 'UTF8'), convert_to('1', 'UTF8'));

-- 54001: JSON nested deeper than 64 levels.
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1, "x": ' || repeat('[', 100) || repeat(']', 100) || '}');
SELECT pg_temp.commit_error('events:0:g', repeat('[', 10000));

-- 22032: a JSON value that is truncated or followed by garbage.
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1} 2');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1,}');
SELECT pg_temp.commit_error('events:0:g', '{offset: 1}');
SELECT * FROM sentry_relay.decode_commit_log_message(convert_to('events:0:g', 'UTF8'), convert_to('{"offset": 1} 2', 'UTF8'));

-- 22021: invalid UTF-8 in the key or the value.
SELECT pg_temp.commit_error(convert_to('events:0:', 'UTF8') || '\xff'::bytea, convert_to('1', 'UTF8'));
SELECT pg_temp.commit_error(convert_to('events:0:g', 'UTF8'), convert_to('{"offset": 1, "x": "', 'UTF8') || '\xc0af'::bytea || convert_to('"}', 'UTF8'));
SELECT pg_temp.commit_error(convert_to('events:0:g', 'UTF8'), '\xff'::bytea);
SELECT * FROM sentry_relay.decode_commit_log_message(convert_to('events:0:', 'UTF8') || '\xff'::bytea, convert_to('1', 'UTF8'));

-- 22P05: a NUL byte in the key or the value.
SELECT pg_temp.commit_error(convert_to('events:0:g', 'UTF8') || '\x00'::bytea, convert_to('1', 'UTF8'));
SELECT pg_temp.commit_error(convert_to('events:0:g', 'UTF8'), convert_to('1', 'UTF8') || '\x00'::bytea);
SELECT * FROM sentry_relay.decode_commit_log_message(convert_to('events:0:g', 'UTF8'), convert_to('1', 'UTF8') || '\x00'::bytea);

-- 22023: wrong JSON types: the value is not an object, offset is not an
-- integer, a timestamp is not a number; headers of the wrong shape.
SELECT pg_temp.commit_error('events:0:g', '[12346]');
SELECT pg_temp.commit_error('events:0:g', '{"offset": "12346"}');
SELECT pg_temp.commit_error('events:0:g', '{"offset": null}');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 12346.0}');
SELECT pg_temp.commit_error('events:0:g', '{"offset": true}');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1, "orig_message_ts": "2021-09-20T12:34:56.789000Z"}');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1, "orig_message_ts": 1707857566, "received_p99": true}');
SELECT pg_temp.commit_error('events:0:g', '1', '[]');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": 1632141296}');
SELECT * FROM sentry_relay.decode_commit_log_message(convert_to('events:0:g', 'UTF8'), convert_to('{"offset": "12346"}', 'UTF8'));

-- 2203A: a JSON value without offset.
SELECT pg_temp.commit_error('events:0:g', '{}');
SELECT pg_temp.commit_error('events:0:g', '{"orig_message_ts": 1707857566.83139, "received_p99": null}');
SELECT * FROM sentry_relay.decode_commit_log_message(convert_to('events:0:g', 'UTF8'), convert_to('{}', 'UTF8'));

-- 22003: negative or too large offsets and partitions, timestamps outside
-- 1970..9999.
SELECT pg_temp.commit_error('events:0:g', '{"offset": -1}');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 99999999999999999999}');
SELECT pg_temp.commit_error('events:0:g', '-1');
SELECT pg_temp.commit_error('events:0:g', '9223372036854775808');
SELECT pg_temp.commit_error('events:0:g', '99999999999999999999');
SELECT pg_temp.commit_error('events:2147483648:g', '1');
SELECT pg_temp.commit_error('events:99999999999999999999:g', '1');
SELECT pg_temp.commit_error('events:-1:g', '1');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1, "orig_message_ts": -1}');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1, "orig_message_ts": -0.5}');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1, "orig_message_ts": 1707857566, "received_p99": -1707857566}');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1, "orig_message_ts": 253402300800}');
SELECT pg_temp.commit_error('events:0:g', '{"offset": 1, "orig_message_ts": 1e300}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "1969-12-31T23:59:59.999999Z"}');
SELECT * FROM sentry_relay.decode_commit_log_message(convert_to('events:0:g', 'UTF8'), convert_to('-1', 'UTF8'));

-- 22P02: a key that is not topic:partition:group, a legacy value that is
-- not a decimal integer.
SELECT pg_temp.commit_error('events:0', '1');
SELECT pg_temp.commit_error('events', '1');
SELECT pg_temp.commit_error('', '1');
SELECT pg_temp.commit_error(':0:g', '1');
SELECT pg_temp.commit_error('events:0:', '1');
SELECT pg_temp.commit_error('events::g', '1');
SELECT pg_temp.commit_error('events:x:g', '1');
SELECT pg_temp.commit_error('events:1a:g', '1');
SELECT pg_temp.commit_error('events: 1:g', '1');
SELECT pg_temp.commit_error('events:0:g', '12a');
SELECT pg_temp.commit_error('events:0:g', '');
SELECT pg_temp.commit_error('events:0:g', '1.5');
SELECT pg_temp.commit_error('events:0:g', '+5');
SELECT pg_temp.commit_error('events:0:g', '0x10');
SELECT pg_temp.commit_error('events:0:g', 'null');
SELECT * FROM sentry_relay.decode_commit_log_message(convert_to('events-0-g', 'UTF8'), convert_to('1', 'UTF8'));
SELECT * FROM sentry_relay.decode_commit_log_message(convert_to('events:0:g', 'UTF8'), convert_to('12a', 'UTF8'));

-- 22007: a legacy orig_message_ts header that is not a UTC timestamp.
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "2021-13-40T00:00:00Z"}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "yesterday"}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "2021-02-29T00:00:00Z"}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "2021-09-20T24:00:00Z"}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "2021-09-20T12:34:60Z"}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "2021-09-20T12:34:56.789000"}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "2021-09-20T12:34:56.789000+02:00"}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "2021-09-20T12:34:56.Z"}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "2021-09-20"}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": "1632141296.789"}');
SELECT pg_temp.commit_error('events:0:g', '1', '{"orig_message_ts": ""}');
SELECT * FROM sentry_relay.decode_commit_log_message(convert_to('events:0:g', 'UTF8'), convert_to('1', 'UTF8'), '{"orig_message_ts": "2021-13-40T00:00:00Z"}');

-- The key is checked before the value.
SELECT pg_temp.commit_error('events:0', 'not an offset');
