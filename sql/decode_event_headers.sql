--
-- decode_event_headers: decode_event_message(value, headers).
--
-- Current Sentry producers repeat the task fields in Kafka headers.  When
-- the headers are complete and valid, the job comes from them alone and the
-- body is never read; when they are incomplete or any of them is invalid,
-- the body is decoded instead.  headers is a jsonb object of header name to
-- string (or null).
--
\set SHOW_CONTEXT never
\pset null '<NULL>'

-- The headers Sentry's KafkaEventStream sends with an error event insert
-- (None values are left out by the producer), and a body that disagrees
-- with them on purpose (project 1, another event id, no group), so that each
-- result shows where the job came from: project_id 42 = headers, 1 = body.
CREATE TEMP TABLE fixture (name text PRIMARY KEY, headers jsonb, body text);
INSERT INTO fixture VALUES
('complete', '{
   "Received-Timestamp": "1707857566.83139",
   "version": "2",
   "operation": "insert",
   "event_id": "5c1a4b8e0e3f4d6b9a7c2e1f0d3b8a64",
   "project_id": "42",
   "group_id": "4015",
   "primary_hash": "c9a1f4e2b7d84e0f9a3b6c5d2e1f0a9b",
   "is_new": "0",
   "is_regression": "1",
   "is_new_group_environment": "0",
   "skip_consume": "0",
   "group_states": "[{\"id\": 4015, \"is_new\": false, \"is_regression\": true, \"is_new_group_environment\": false}, {\"id\": 4016, \"is_new\": true, \"is_regression\": false, \"is_new_group_environment\": true}]"
 }', NULL),
('body', NULL,
 '[2, "insert", {"event_id": "0123456789abcdef0123456789abcdef", "project_id": 1, "group_id": null, "primary_hash": null, "message": "from the body", "data": {}}, {"is_new": true, "is_regression": false, "is_new_group_environment": true, "queue": "from_body", "skip_consume": false, "group_states": null}]');

-- Complete headers and a body that is not JSON at all: the job is decoded
-- from the headers, so the body was not read.
SELECT jsonb_pretty(sentry_relay.decode_event_message(convert_to('not json', 'UTF8'), headers))
FROM fixture WHERE name = 'complete';

-- The same with an empty body.
SELECT sentry_relay.decode_event_message('', headers)->>'event_id' AS event_id
FROM fixture WHERE name = 'complete';

-- Complete headers win over a valid body that says something else.
SELECT j->>'project_id' AS project_id, j->>'event_id' AS event_id,
       j->>'group_id' AS group_id, j->>'queue' AS queue
FROM fixture h, fixture b,
     LATERAL sentry_relay.decode_event_message(convert_to(b.body, 'UTF8'), h.headers) AS j
WHERE h.name = 'complete' AND b.name = 'body';

-- The minimal complete set: version, operation, event_id, project_id and
-- the four "0"/"1" flags.  group_id, primary_hash, occurrence_id and
-- group_states are then null; no queue is named, so the default_queue
-- argument applies (post_process_errors unless given).  The event id is
-- kept as sent.
SELECT jsonb_pretty(sentry_relay.decode_event_message(convert_to('not json', 'UTF8'),
  '{"version": "2", "operation": "insert", "event_id": "0123456789ABCDEF0123456789ABCDEF",
    "project_id": "7", "is_new": "1", "is_regression": "0",
    "is_new_group_environment": "1", "skip_consume": "0"}'));

-- Optional headers present with a null value are the same as absent
-- (except queue, see below).
SELECT jsonb_pretty(sentry_relay.decode_event_message(convert_to('not json', 'UTF8'),
  '{"version": "2", "operation": "insert", "event_id": "0123456789abcdef0123456789abcdef",
    "project_id": "7", "is_new": "0", "is_regression": "0",
    "is_new_group_environment": "0", "skip_consume": "0",
    "group_id": null, "primary_hash": null, "occurrence_id": null, "group_states": null}'));

-- An issue-platform occurrence from headers: occurrence_id and queue.
SELECT jsonb_pretty(sentry_relay.decode_event_message(convert_to('not json', 'UTF8'),
  '{"version": "2", "operation": "insert", "event_id": "a4f6c3e9b2d14f08a1e7c6b5d4f3e2a1",
    "project_id": "42", "is_new": "1", "is_regression": "0",
    "is_new_group_environment": "1", "skip_consume": "0",
    "occurrence_id": "3e9f0c1d8b7a4e6f9d2c5b8a7e6f4d3c",
    "queue": "post_process_issue_platform", "Received-Timestamp": "1707857567.104"}'));

-- A transaction from headers, with its queue and an empty group_states list.
SELECT j->>'queue' AS queue, j->'group_states' AS group_states, j->>'group_id' AS group_id
FROM sentry_relay.decode_event_message(convert_to('not json', 'UTF8'),
  '{"version": "2", "operation": "insert", "event_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "project_id": "7", "is_new": "0", "is_regression": "0",
    "is_new_group_environment": "0", "skip_consume": "0", "group_states": "[]",
    "queue": "post_process_transactions"}') AS j;

-- A version 1 insert from headers.
SELECT j->>'version' AS version, j->>'operation' AS operation, j->>'project_id' AS project_id
FROM sentry_relay.decode_event_message(convert_to('not json', 'UTF8'),
  '{"version": "1", "operation": "insert", "event_id": "0123456789abcdef0123456789abcdef",
    "project_id": "3", "is_new": "1", "is_regression": "0",
    "is_new_group_environment": "0", "skip_consume": "0"}') AS j;

-- group_states from a header is passed on as sent (as jsonb: extra keys
-- kept, whitespace and key order jsonb's own).
SELECT sentry_relay.decode_event_message(convert_to('not json', 'UTF8'),
  '{"version": "2", "operation": "insert", "event_id": "0123456789abcdef0123456789abcdef",
    "project_id": "7", "is_new": "0", "is_regression": "0",
    "is_new_group_environment": "0", "skip_consume": "0",
    "group_states": " [ {\"is_new_group_environment\": true, \"extra\": [1], \"is_regression\": false, \"is_new\": true, \"id\": 5} ] "}')->'group_states' AS group_states;

-- skip_consume "1" in the headers: no job, and the body is not read.
SELECT sentry_relay.decode_event_message(convert_to('not json', 'UTF8'),
         headers || '{"skip_consume": "1"}') AS job
FROM fixture WHERE name = 'complete';

-- Replacement operations in the headers: no job, without the body (only
-- version and operation are needed).  Also a version 1 operation.
SELECT h.headers->>'version' AS version, h.headers->>'operation' AS operation,
       sentry_relay.decode_event_message(convert_to('not json', 'UTF8'), h.headers) AS job
FROM (VALUES ('{"version": "2", "operation": "end_merge"}'::jsonb),
             ('{"version": "2", "operation": "tombstone_events"}'),
             ('{"version": "2", "operation": "exclude_groups"}'),
             ('{"version": "1", "operation": "merge"}')) AS h(headers);

-- Each row changes the complete header set in one way.  Where Sentry's
-- header decoder would raise, the body is decoded instead: project_id 1,
-- queue "from_body" and source "body" show that, and same_as_body that
-- nothing read from the headers leaked into the job.  Where Sentry takes
-- the headers as they are (its rules are loose: bool(int(value)) for the
-- flags, any event id, a group_states that is not a list is None), the job
-- comes from the headers: project_id 42.
SELECT t.note, j->>'source' AS source, j->>'project_id' AS project_id, j->>'queue' AS queue,
       j->>'is_new' AS is_new, j->>'is_regression' AS is_reg, j->>'event_id' AS event_id,
       left(j->>'group_states', 24) AS group_states,
       j = sentry_relay.decode_event_message(convert_to(b.body, 'UTF8')) AS same_as_body
FROM fixture h, fixture b,
     (VALUES
       -- the complete set itself, for reference: headers
       (1, 'complete (reference)', '{}'::jsonb, NULL::text),
       -- a header left out: every required one in turn
       (2, 'no version', '{}', 'version'),
       (3, 'no operation', '{}', 'operation'),
       (4, 'no event_id', '{}', 'event_id'),
       (5, 'no project_id', '{}', 'project_id'),
       (6, 'no is_new', '{}', 'is_new'),
       (7, 'no is_regression', '{}', 'is_regression'),
       (8, 'no is_new_group_environment', '{}', 'is_new_group_environment'),
       (9, 'no skip_consume', '{}', 'skip_consume'),
       -- a required header present but null
       (10, 'version null', '{"version": null}', NULL),
       (11, 'operation null', '{"operation": null}', NULL),
       (12, 'event_id null', '{"event_id": null}', NULL),
       (13, 'project_id null', '{"project_id": null}', NULL),
       (14, 'is_new null', '{"is_new": null}', NULL),
       (15, 'skip_consume null', '{"skip_consume": null}', NULL),
       -- invalid values
       (16, 'version "3"', '{"version": "3"}', NULL),
       (17, 'version "0"', '{"version": "0"}', NULL),
       (18, 'version "abc"', '{"version": "abc"}', NULL),
       (19, 'version ""', '{"version": ""}', NULL),
       (20, 'unknown operation', '{"operation": "explode"}', NULL),
       (21, 'v1 operation under v2', '{"operation": "delete"}', NULL),
       (22, 'operation "INSERT"', '{"operation": "INSERT"}', NULL),
       (23, 'event_id 31 hex digits', '{"event_id": "5c1a4b8e0e3f4d6b9a7c2e1f0d3b8a6"}', NULL),
       (24, 'event_id not hex', '{"event_id": "5c1a4b8e0e3f4d6b9a7c2e1f0d3b8a6g"}', NULL),
       (25, 'event_id with dashes', '{"event_id": "5c1a4b8e-0e3f-4d6b-9a7c-2e1f0d3b8a64"}', NULL),
       (26, 'project_id negative', '{"project_id": "-42"}', NULL),
       (27, 'project_id not a number', '{"project_id": "forty-two"}', NULL),
       (28, 'project_id beyond 64 bits', '{"project_id": "99999999999999999999"}', NULL),
       (29, 'project_id empty', '{"project_id": ""}', NULL),
       (30, 'group_id not a number', '{"group_id": "x"}', NULL),
       (31, 'group_id empty', '{"group_id": ""}', NULL),
       (32, 'is_new "yes"', '{"is_new": "yes"}', NULL),
       (33, 'is_new "true"', '{"is_new": "true"}', NULL),
       (34, 'is_regression "2"', '{"is_regression": "2"}', NULL),
       (35, 'is_new_group_environment ""', '{"is_new_group_environment": ""}', NULL),
       (36, 'skip_consume "01"', '{"skip_consume": "01"}', NULL),
       (37, 'group_states an object', '{"group_states": "{\"id\": 1}"}', NULL),
       (38, 'group_states a number', '{"group_states": "5"}', NULL),
       (39, 'group_states not JSON', '{"group_states": "[{"}', NULL),
       (40, 'group_states element incomplete', '{"group_states": "[{\"id\": 1}]"}', NULL),
       (41, 'group_states element not an object', '{"group_states": "[1]"}', NULL),
       (42, 'group_states JSON null', '{"group_states": "null"}', NULL),
       (43, 'queue present but null', '{"queue": null}', NULL),
       -- only version and operation of an insert
       (44, 'only version and operation', NULL, NULL),
       -- Python's int() of the flags and the version: spaces, a sign,
       -- leading zeros, underscores, any non-zero integer
       (45, 'is_new " 1 "', '{"is_new": " 1 "}', NULL),
       (46, 'is_new "-0"', '{"is_new": "-0"}', NULL),
       (47, 'is_new "+10"', '{"is_new": "+10"}', NULL),
       (48, 'is_new "1_000"', '{"is_new": "1_000"}', NULL),
       (49, 'is_new 30 digits', '{"is_new": "123456789012345678901234567890"}', NULL),
       (50, 'is_new "1__0"', '{"is_new": "1__0"}', NULL),
       (51, 'is_new "_1"', '{"is_new": "_1"}', NULL),
       (52, 'is_new "0x1"', '{"is_new": "0x1"}', NULL),
       (53, 'version " +2 "', '{"version": " +2 "}', NULL),
       (54, 'version "02"', '{"version": "02"}', NULL),
       (55, 'project_id "0_42"', '{"project_id": "0_42"}', NULL),
       (56, 'group_states string ids', '{"group_states": "[{\"id\": \"4015\"}]"}', NULL),
       -- a group_states that is not strict JSON, or that jsonb cannot hold:
       -- NULL, as for any header that is not a JSON list
       (58, 'group_states [NaN]', '{"group_states": "[NaN]"}', NULL),
       (59, 'group_states [1.]', '{"group_states": "[1.]"}', NULL),
       (60, 'group_states a raw tab', '{"group_states": "[\"\t\"]"}', NULL),
       (61, 'group_states a \u0000 escape', '{"group_states": "[\"\\u0000\"]"}', NULL),
       (57, 'no queue header', '{}', 'queue')
     ) AS t(n, note, patch, drop_key),
     LATERAL sentry_relay.decode_event_message(
       convert_to(b.body, 'UTF8'),
       CASE WHEN t.patch IS NULL THEN '{"version": "2", "operation": "insert"}'
            WHEN t.drop_key IS NULL THEN h.headers || t.patch
            ELSE h.headers - t.drop_key END) AS j
WHERE h.name = 'complete' AND b.name = 'body'
ORDER BY t.n;

-- A valid queue header is used, and unknown headers are ignored.
SELECT j->>'project_id' AS project_id, j->>'queue' AS queue
FROM fixture h, fixture b,
     LATERAL sentry_relay.decode_event_message(convert_to(b.body, 'UTF8'),
       h.headers || '{"queue": "post_process_errors_high", "sentry-trace": "abc-def-1", "baggage": null}') AS j
WHERE h.name = 'complete' AND b.name = 'body';

-- Empty headers ({}) and SQL NULL headers both mean: decode the body.
SELECT sentry_relay.decode_event_message(convert_to(body, 'UTF8'), '{}')->>'project_id' AS empty_headers,
       sentry_relay.decode_event_message(convert_to(body, 'UTF8'), NULL)->>'project_id' AS null_headers,
       sentry_relay.decode_event_message(convert_to(body, 'UTF8'))->>'project_id' AS no_headers
FROM fixture WHERE name = 'body';

-- Invalid headers fall back to the body; when the body is bad too, the
-- error is the body's.
SELECT sentry_relay.decode_event_message(convert_to('not json', 'UTF8'),
         headers || '{"is_new": "yes"}')
FROM fixture WHERE name = 'complete';

-- Replacement operation headers with a version the body does not have: the
-- body is not needed, and not checked.
SELECT sentry_relay.decode_event_message(convert_to('[3, "explode"]', 'UTF8'),
         '{"version": "2", "operation": "end_unmerge"}') AS job;

-- Headers that do not describe a known operation fall back to the body,
-- here a valid replacement operation.
SELECT sentry_relay.decode_event_message(convert_to('[2, "end_unmerge", {}]', 'UTF8'),
         '{"version": "2", "operation": "explode"}') AS job;

-- Argument errors, raised whatever the body: headers must be a jsonb
-- object whose values are strings or null (SQLSTATE 22023).
SELECT sentry_relay.decode_event_message(convert_to(body, 'UTF8'), '[]') FROM fixture WHERE name = 'body';
SELECT sentry_relay.decode_event_message(convert_to(body, 'UTF8'), '"x"') FROM fixture WHERE name = 'body';
SELECT sentry_relay.decode_event_message(convert_to(body, 'UTF8'), 'null') FROM fixture WHERE name = 'body';
SELECT sentry_relay.decode_event_message(convert_to(body, 'UTF8'), '{"project_id": 42}') FROM fixture WHERE name = 'body';
SELECT sentry_relay.decode_event_message(convert_to(body, 'UTF8'), '{"is_new": true}') FROM fixture WHERE name = 'body';
SELECT sentry_relay.decode_event_message(convert_to(body, 'UTF8'), '{"group_states": []}') FROM fixture WHERE name = 'body';
-- ... even for a header that the decoder does not use
SELECT sentry_relay.decode_event_message(convert_to(body, 'UTF8'), '{"x-custom": {"a": "b"}}') FROM fixture WHERE name = 'body';

-- A NULL value (a Kafka tombstone) with complete headers is decoded from
-- them, as the relay does.
SELECT sentry_relay.decode_event_message(NULL, headers) FROM fixture WHERE name = 'complete';
