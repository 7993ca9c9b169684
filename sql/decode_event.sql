--
-- decode_event: sentry_relay.decode_event_message() on events-topic message
-- bodies, without Kafka headers.  Errors are in decode_event_errors, the
-- header path in decode_event_headers.
--
-- A body is a JSON array [version, operation, event_data, task_state].
-- Inserts give a post-process job (jsonb); replacement operations and
-- skip_consume inserts give NULL.
--
\set SHOW_CONTEXT never
\pset null '<NULL>'

-- Sample messages shaped like the ones Sentry publishes, kept in a temporary
-- table (this test runs in parallel with others in the same database).
CREATE TEMP TABLE sample_message (name text PRIMARY KEY, body text NOT NULL);

-- An error event, version 2, as Sentry's KafkaEventStream.insert sends it:
-- the whole event in event_data.data (nested a few levels deep), and the
-- task state with group_states for several groups.
INSERT INTO sample_message VALUES ('error_v2', $json$
[
  2,
  "insert",
  {
    "group_id": 4015,
    "group_ids": [4015, 4016],
    "event_id": "5c1a4b8e0e3f4d6b9a7c2e1f0d3b8a64",
    "organization_id": 1,
    "project_id": 42,
    "message": "ZeroDivisionError division by zero app.views in divide",
    "platform": "python",
    "datetime": "2024-02-13T20:52:46.831390Z",
    "data": {
      "event_id": "5c1a4b8e0e3f4d6b9a7c2e1f0d3b8a64",
      "level": "error",
      "logger": "",
      "platform": "python",
      "timestamp": 1707857566.83139,
      "received": 1707857567.02,
      "environment": "production",
      "release": "backend@1.4.2",
      "culprit": "app.views in divide",
      "exception": {
        "values": [
          {
            "type": "ZeroDivisionError",
            "value": "division by zero",
            "module": "builtins",
            "mechanism": {"type": "django", "handled": false},
            "stacktrace": {
              "frames": [
                {"filename": "django/core/handlers/base.py", "function": "_get_response",
                 "module": "django.core.handlers.base", "lineno": 197, "in_app": false},
                {"filename": "app/views.py", "function": "divide", "module": "app.views",
                 "lineno": 17, "in_app": true, "context_line": "    return a / b",
                 "vars": {"a": "1", "b": "0", "request": "<WSGIRequest: GET '/divide'>"}}
              ]
            }
          }
        ]
      },
      "tags": [["environment", "production"], ["level", "error"],
               ["release", "backend@1.4.2"], ["url", "https://example.com/divide"]],
      "contexts": {
        "runtime": {"name": "CPython", "version": "3.11.7", "type": "runtime"},
        "trace": {"trace_id": "8f3c2a1b0e9d4c7b6a5f4e3d2c1b0a99", "span_id": "a1b2c3d4e5f60718",
                  "op": "http.server", "type": "trace"}
      },
      "user": {"id": "1234", "ip_address": "203.0.113.7"},
      "sdk": {"name": "sentry.python.django", "version": "1.40.3"},
      "fingerprint": ["{{ default }}"],
      "hashes": ["c9a1f4e2b7d84e0f9a3b6c5d2e1f0a9b"],
      "grouping_config": {"id": "newstyle:2023-01-11", "enhancements": "eJybzDRxY3J-bmBxSWpRXn5-QWpeSWpeiV5pcW5+UWJJZl66XnFmlkp+vkJJUWlqbn5+UX5yflF+"}
    },
    "primary_hash": "c9a1f4e2b7d84e0f9a3b6c5d2e1f0a9b",
    "retention_days": 90
  },
  {
    "is_new": false,
    "is_regression": true,
    "is_new_group_environment": false,
    "queue": "post_process_errors",
    "skip_consume": false,
    "group_states": [
      {"id": 4015, "is_new": false, "is_regression": true, "is_new_group_environment": false},
      {"id": 4016, "is_new": true, "is_regression": false, "is_new_group_environment": true}
    ]
  }
]
$json$);

-- An issue-platform (generic-events) occurrence: group_id null, an
-- occurrence_id and the occurrence_data, no primary_hash.
INSERT INTO sample_message VALUES ('occurrence_v2', $json$
[2, "insert",
 {"group_id": null, "group_ids": [], "event_id": "a4f6c3e9b2d14f08a1e7c6b5d4f3e2a1",
  "organization_id": 1, "project_id": 42,
  "message": "N+1 Query SELECT books_author.id FROM books_author WHERE id = %s",
  "platform": "python", "datetime": "2024-02-13T20:52:47.104000Z",
  "data": {"event_id": "a4f6c3e9b2d14f08a1e7c6b5d4f3e2a1", "platform": "python",
           "type": "transaction", "transaction": "/books/", "level": "info",
           "contexts": {"trace": {"trace_id": "8f3c2a1b0e9d4c7b6a5f4e3d2c1b0a99", "op": "http.server"}},
           "spans": [{"span_id": "b1c2d3e4f5a60718", "op": "db", "description": "SELECT books_author.id FROM books_author WHERE id = %s"}]},
  "primary_hash": null, "retention_days": 90,
  "occurrence_id": "3e9f0c1d8b7a4e6f9d2c5b8a7e6f4d3c",
  "occurrence_data": {"id": "3e9f0c1d8b7a4e6f9d2c5b8a7e6f4d3c", "project_id": 42,
                      "event_id": "a4f6c3e9b2d14f08a1e7c6b5d4f3e2a1",
                      "fingerprint": ["d6e4a3c2b1f0e9d8c7b6a5f4e3d2c1b0"],
                      "issue_title": "N+1 Query", "subtitle": "SELECT books_author.id FROM books_author WHERE id = %s",
                      "resource_id": null, "type": 1006, "level": "info", "culprit": "/books/",
                      "detection_time": 1707857567.104,
                      "evidence_data": {"op": "db", "offender_span_ids": ["b1c2d3e4f5a60718"]},
                      "evidence_display": [{"name": "Offending Spans", "value": "db - SELECT books_author.id ...", "important": true}]}},
 {"is_new": true, "is_regression": false, "is_new_group_environment": true,
  "queue": "post_process_issue_platform", "skip_consume": false, "group_states": null}]
$json$);

-- A transaction, sent to the transactions topic with its own queue; no
-- group, and an empty group_states list (no performance issue detected).
INSERT INTO sample_message VALUES ('transaction_v2', $json$
[2, "insert",
 {"group_id": null, "group_ids": [], "event_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
  "organization_id": 1, "project_id": 7, "message": "/api/0/projects/",
  "platform": "javascript", "datetime": "2024-02-13T20:52:48.500000Z",
  "data": {"type": "transaction", "transaction": "/api/0/projects/",
           "start_timestamp": 1707857568.1, "timestamp": 1707857568.5,
           "contexts": {"trace": {"trace_id": "11112222333344445555666677778888", "span_id": "aaaabbbbccccdddd", "op": "pageload", "status": "ok"}},
           "spans": [], "measurements": {"lcp": {"value": 812.5, "unit": "millisecond"}}},
  "primary_hash": null, "retention_days": 30},
 {"is_new": false, "is_regression": false, "is_new_group_environment": false,
  "queue": "post_process_transactions", "skip_consume": false, "group_states": []}]
$json$);

-- Version 1, as older Sentry sent it: is_sample in the task state, no
-- queue, skip_consume nor group_states.
INSERT INTO sample_message VALUES ('error_v1', $json$
[1, "insert",
 {"group_id": 17, "event_id": "00aa11bb22cc33dd44ee55ff66778899", "organization_id": 1,
  "project_id": 3, "message": "TypeError: undefined is not a function",
  "platform": "javascript", "datetime": "2019-03-01T10:00:00.000000Z",
  "data": {"platform": "javascript", "exception": {"values": [{"type": "TypeError", "value": "undefined is not a function"}]}},
  "primary_hash": "7d3a9e2c1b0f4e8d9c6a5b4e3f2d1c0a", "retention_days": 90},
 {"is_new": true, "is_sample": false, "is_regression": false, "is_new_group_environment": true}]
$json$);

-- A version 2 insert with is_sample and without is_new_group_environment,
-- queue or skip_consume.  Sentry reads task_state["is_new_group_environment"],
-- so this one is an error there, and here.
INSERT INTO sample_message VALUES ('error_v2_early', $json$
[2, "insert",
 {"group_id": 99, "event_id": "ffeeddccbbaa99887766554433221100", "organization_id": 2,
  "project_id": 5, "message": "KeyError 'user'", "platform": "python",
  "datetime": "2020-06-15T08:30:00.250000Z", "data": {"level": "error"},
  "primary_hash": "0123456789abcdef0123456789abcdef", "retention_days": 90},
 {"is_new": false, "is_sample": true, "is_regression": false}]
$json$);

-- The error event gives a job with every field of Sentry's
-- post_process_group task, group_states as sent, the cache key, and where
-- the fields were read from (the body).
SELECT jsonb_pretty(sentry_relay.decode_event_message(convert_to(body, 'UTF8')))
FROM sample_message WHERE name = 'error_v2';

-- The issue-platform occurrence: group_id null, occurrence_id kept,
-- occurrence_data ignored, its queue.
SELECT jsonb_pretty(sentry_relay.decode_event_message(convert_to(body, 'UTF8')))
FROM sample_message WHERE name = 'occurrence_v2';

-- The transaction: queue post_process_transactions, empty group_states.
SELECT jsonb_pretty(sentry_relay.decode_event_message(convert_to(body, 'UTF8')))
FROM sample_message WHERE name = 'transaction_v2';

-- Version 1 with is_sample: is_sample is accepted and ignored, the queue
-- defaults to post_process_errors, group_states is null.
SELECT jsonb_pretty(sentry_relay.decode_event_message(convert_to(body, 'UTF8')))
FROM sample_message WHERE name = 'error_v1';

-- Without is_new_group_environment: an error, as in Sentry.
SELECT jsonb_pretty(sentry_relay.decode_event_message(convert_to(body, 'UTF8')))
FROM sample_message WHERE name = 'error_v2_early';

-- The job always has the same 14 keys, whatever the producer's version.
SELECT name, array_agg(k ORDER BY k) = ARRAY['cache_key', 'event_id', 'group_id',
         'group_states', 'is_new', 'is_new_group_environment', 'is_regression',
         'occurrence_id', 'operation', 'primary_hash', 'project_id', 'queue',
         'source', 'version'] AS all_keys
FROM sample_message
CROSS JOIN LATERAL jsonb_object_keys(sentry_relay.decode_event_message(convert_to(body, 'UTF8'))) AS k
WHERE name <> 'error_v2_early'
GROUP BY name
ORDER BY name;

-- skip_consume true: no job (NULL), for every kind of insert.
SELECT name,
       sentry_relay.decode_event_message(convert_to(
           jsonb_set(body::jsonb, '{3,skip_consume}', 'true')::text, 'UTF8')) AS job
FROM sample_message
ORDER BY name;

-- skip_consume short-circuits the insert as in Sentry: the rest of the
-- event data and task state is not looked at.
SELECT sentry_relay.decode_event_message(convert_to(
    '[2, "insert", {}, {"skip_consume": true}]', 'UTF8')) AS job;

-- Minimal inserts, one feature at a time.  Each row is one case.
SELECT t.note, j.job->>'version' AS version, j.job->>'project_id' AS project_id,
       j.job->>'group_id' AS group_id, j.job->>'event_id' AS event_id,
       j.job->>'primary_hash' AS primary_hash, j.job->>'occurrence_id' AS occurrence_id,
       j.job->>'queue' AS queue
FROM (VALUES
  -- the minimum Sentry reads: event_id, project_id, group_id, primary_hash,
  -- is_new, is_regression, is_new_group_environment
  (1, 'minimal v2',
   '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  (2, 'minimal v1',
   '[1,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  -- a version given as a decimal string, as Python's int() takes it
  (3, 'version "2"',
   '["2","insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  (4, 'version "1"',
   '["1","insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  -- the event id is kept as sent, as Sentry keeps it (in the cache key too)
  (5, 'upper-case event_id',
   '[2,"insert",{"event_id":"0123456789ABCDEF0123456789ABCDEF","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  -- explicit nulls for every optional field give the defaults
  (6, 'null optionals',
   '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null,"occurrence_id":null},{"is_new":true,"is_regression":false,"is_new_group_environment":null,"queue":null,"skip_consume":null,"group_states":null}]'),
  -- project_id and group_id limits: 0 and the largest 64-bit integer
  (7, 'project_id 0',
   '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":0,"group_id":0,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  (8, 'ids at 2^63-1',
   '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":9223372036854775807,"group_id":9223372036854775807,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  -- skip_consume false is a job
  (9, 'skip_consume false',
   '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"skip_consume":false,"is_new_group_environment":false}]'),
  -- unknown keys in event_data and task_state are ignored, whatever their type
  (11, 'unknown keys',
   '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null,"new_field":[1,{"a":null}],"message":null,"data":"not an object"},{"is_new":true,"is_regression":false,"new_flag":"x","is_new_group_environment":false}]'),
  -- a NUL (\u0000) in a field that is not read does not matter
  (12, 'NUL in ignored field',
   '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"message":"a\u0000b","group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  -- JSON escapes in read strings are decoded
  (13, 'escaped strings',
   '[2,"insert",{"event_id":"0123456789abcdef0123456789abcde\u0066","project_id":1,"primary_hash":"a\"b\\c\/d","occurrence_id":"\u0041BC","group_id":null},{"is_new":true,"is_regression":false,"queue":"q\u0041","is_new_group_environment":false}]'),
  -- empty strings are kept as they are
  (14, 'empty strings',
   '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"primary_hash":"","occurrence_id":"","group_id":null},{"is_new":true,"is_regression":false,"queue":"","is_new_group_environment":false}]'),
  -- whitespace around and inside the document is fine
  (15, 'whitespace',
   E' \n\t[ 2 , "insert" , { "event_id" : "0123456789abcdef0123456789abcdef" , "project_id" : 1 , "group_id" : null , "primary_hash" : null } , { "is_new" : true , "is_regression" : false , "is_new_group_environment" : false } ] \r\n'),
  -- a repeated key: the last one wins, as in jsonb
  (16, 'repeated key',
   '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"project_id":2,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]')
) AS t(n, note, body)
CROSS JOIN LATERAL (SELECT sentry_relay.decode_event_message(convert_to(t.body, 'UTF8')) AS job) AS j
ORDER BY t.n;

-- The cache key is e:{event_id}:{project_id}, with the event id as sent.
SELECT sentry_relay.decode_event_message(convert_to(
    '[2,"insert",{"event_id":"0123456789ABCDEF0123456789ABCDEF","project_id":9223372036854775807,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]',
    'UTF8'))->>'cache_key' AS cache_key;

-- The three flags come through independently.
SELECT f.is_new, f.is_regression, f.is_new_group_environment,
       j->'is_new' AS job_is_new, j->'is_regression' AS job_is_regression,
       j->'is_new_group_environment' AS job_is_new_group_environment
FROM (VALUES (false, false, false), (true, false, false), (false, true, false),
             (false, false, true), (true, true, true)) AS f(is_new, is_regression, is_new_group_environment)
CROSS JOIN LATERAL sentry_relay.decode_event_message(convert_to(format(
    '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":%s,"is_regression":%s,"is_new_group_environment":%s}]',
    to_jsonb(f.is_new), to_jsonb(f.is_regression), to_jsonb(f.is_new_group_environment)), 'UTF8')) AS j;

-- group_states is passed on as sent: extra keys and the order of the groups
-- are kept (as jsonb, which keeps JSON's meaning: key order is its own).
SELECT sentry_relay.decode_event_message(convert_to(
    '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":[{"is_new_group_environment":false,"is_regression":true,"is_new":false,"id":30,"extra":"kept"},{"id":10,"is_new":true,"is_regression":false,"is_new_group_environment":true},{"id":20,"is_new":false,"is_regression":false,"is_new_group_environment":false}]}]',
    'UTF8'))->'group_states' AS group_states;

-- UTF-8 text in read fields is kept byte for byte (here the queue name
-- "fila-a\u00e7\u00e3o", sent as raw UTF-8 bytes; shown in hex).
SELECT encode(convert_to(sentry_relay.decode_event_message(
    convert_to('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"queue":"fila-a', 'UTF8')
    || '\xc3a7c3a36f'::bytea
    || convert_to('","is_new_group_environment":false}]', 'UTF8'))->>'queue', 'UTF8'), 'hex') AS queue_hex;

-- Nesting up to 64 levels is accepted: the outer array, event_data, and 62
-- nested arrays in data make 64 (65 is an error, see decode_event_errors).
SELECT sentry_relay.decode_event_message(convert_to(
    '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"data":'
    || repeat('[', 62) || repeat(']', 62)
    || ',"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]', 'UTF8'))->>'event_id' AS event_id;

-- Objects nest as deep as arrays: 64 levels (the outer array, event_data,
-- and 62 objects in data).
SELECT sentry_relay.decode_event_message(convert_to(
    '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null,"data":'
    || repeat('{"a":', 61) || '{}' || repeat('}', 61)
    || '},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]', 'UTF8'))->>'event_id' AS event_id;

-- A large body (5 MB of event data) under the default 25MB limit decodes.
SELECT sentry_relay.decode_event_message(convert_to(
    '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null,"data":{"message":"'
    || repeat('x', 5 * 1024 * 1024)
    || '"}},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]', 'UTF8'))->>'event_id' AS event_id;

-- Sentry's own rules, which are loose: what its decoder accepts, and how
-- (docs/decoding.md).  Each row is one case: the job's fields, or NULL when
-- there is no job (a skip).
SELECT t.note, j.job->>'version' AS v, j.job->>'event_id' AS event_id,
       j.job->>'project_id' AS project, j.job->>'group_id' AS "group",
       j.job->'is_new' AS is_new, j.job->'is_regression' AS is_reg,
       j.job->'is_new_group_environment' AS is_nge, j.job->'group_states' AS group_states,
       j.job->>'cache_key' AS cache_key
FROM (VALUES
  -- the version as Python's int() reads it: fractions truncated, booleans,
  -- strings with spaces, a sign, leading zeros or underscores
  (1, 'version 2.9', '[2.9,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  (2, 'version 2e0', '[2e0,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  (3, 'version true', '[true,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  (4, 'version " +2 "', '[" +2 ","insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  (5, 'version "0_2"', '["0_2","insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  -- the flags are passed on: null stays null, anything else is its truth value
  (6, 'null flags', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":null,"is_regression":null,"is_new_group_environment":null}]'),
  (7, 'truthy flags', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":1,"is_regression":"false","is_new_group_environment":[0]}]'),
  (8, 'falsy flags', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":0,"is_regression":"","is_new_group_environment":{}}]'),
  -- skip_consume is truthiness: "0" is a skip, 0 is not
  (9, 'skip_consume "0"', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"skip_consume":"0"}]'),
  (10, 'skip_consume 1', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"skip_consume":1}]'),
  (11, 'skip_consume 0', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"skip_consume":0}]'),
  (12, 'skip_consume []', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"skip_consume":[]}]'),
  -- is_sample is not read at all
  (13, 'is_sample "no"', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"is_sample":"no"}]'),
  -- ids: any event id string, negative project and group ids
  (14, 'a uuid event id', '[2,"insert",{"event_id":"01234567-89AB-cdef-0123-456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  (15, 'an empty event id', '[2,"insert",{"event_id":"","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  (16, 'negative ids', '[2,"insert",{"event_id":"e","project_id":-1,"group_id":-5,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
  -- group_states: any value, as sent
  (17, 'string group ids', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":[{"id":"124","is_new":true,"is_regression":false,"is_new_group_environment":true}]}]'),
  (18, 'a group state without flags', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":[{"id":1},null,7]}]'),
  (19, 'group_states an object', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":{"id":1}}]'),
  (20, 'group_states a string', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":"[]"}]'),
  (21, 'a long id and a negative one', '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":[{"id":123456789012345678901234567890},{"id":-1}]}]')
) AS t(n, note, body)
CROSS JOIN LATERAL (SELECT sentry_relay.decode_event_message(convert_to(t.body, 'UTF8')) AS job) AS j
ORDER BY t.n;

-- The queue: the message's, else the default_queue argument (the relay uses
-- its stream's default_queue option).
SELECT sentry_relay.decode_event_message(convert_to(b, 'UTF8'), NULL, 'post_process_transactions')->>'queue' AS queue
FROM (VALUES ('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'),
             ('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"queue":null}]'),
             ('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"queue":"mine"}]')) AS t(b);

-- Replacement operations give no job (NULL): every operation of each
-- version, once with a payload shaped like Sentry's and once bare (they need
-- no payload).
SELECT r.version, r.operation,
       sentry_relay.decode_event_message(convert_to(
           jsonb_build_array(r.version, r.operation, r.payload::jsonb)::text, 'UTF8')) AS with_payload,
       sentry_relay.decode_event_message(convert_to(
           jsonb_build_array(r.version, r.operation)::text, 'UTF8')) AS bare
FROM (VALUES
  (1, 'delete', '{"event_id": "5c1a4b8e0e3f4d6b9a7c2e1f0d3b8a64", "project_id": 42, "deleted": true, "group_id": null, "primary_hash": null}'),
  (1, 'delete_groups', '{"project_id": 42, "group_ids": [4015]}'),
  (1, 'merge', '{"project_id": 42, "previous_group_id": 4016, "new_group_id": 4015}'),
  (1, 'unmerge', '{"project_id": 42, "previous_group_id": 4015, "new_group_id": 4099, "hashes": ["c9a1f4e2b7d84e0f9a3b6c5d2e1f0a9b"]}'),
  (2, 'start_delete_groups', '{"transaction_id": "6f0e5d4c3b2a19081726354453627180", "project_id": 42, "group_ids": [4015, 4016], "datetime": "2024-02-13T21:00:00.000000Z"}'),
  (2, 'end_delete_groups', '{"transaction_id": "6f0e5d4c3b2a19081726354453627180", "project_id": 42, "group_ids": [4015, 4016], "datetime": "2024-02-13T21:00:01.000000Z"}'),
  (2, 'start_merge', '{"transaction_id": "7a6b5c4d3e2f10213243546576879809", "project_id": 42, "previous_group_ids": [4016], "new_group_id": 4015, "datetime": "2024-02-13T21:01:00.000000Z"}'),
  (2, 'end_merge', '{"transaction_id": "7a6b5c4d3e2f10213243546576879809", "project_id": 42, "previous_group_ids": [4016], "new_group_id": 4015, "datetime": "2024-02-13T21:01:01.000000Z"}'),
  (2, 'start_unmerge', '{"transaction_id": "8b7c6d5e4f3a21324354657687980a1b", "project_id": 42, "previous_group_id": 4015, "new_group_id": 4099, "hashes": ["c9a1f4e2b7d84e0f9a3b6c5d2e1f0a9b"], "datetime": "2024-02-13T21:02:00.000000Z"}'),
  (2, 'end_unmerge', '{"transaction_id": "8b7c6d5e4f3a21324354657687980a1b", "project_id": 42, "previous_group_id": 4015, "new_group_id": 4099, "hashes": ["c9a1f4e2b7d84e0f9a3b6c5d2e1f0a9b"], "datetime": "2024-02-13T21:02:01.000000Z"}'),
  (2, 'start_unmerge_hierarchical', '{"transaction_id": "9c8d7e6f5a4b32435465768798a9b0c1", "project_id": 42, "previous_group_id": 4015, "new_group_id": 4100, "primary_hash": "c9a1f4e2b7d84e0f9a3b6c5d2e1f0a9b", "hierarchical_hash": "e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6", "datetime": "2024-02-13T21:03:00.000000Z"}'),
  (2, 'end_unmerge_hierarchical', '{"transaction_id": "9c8d7e6f5a4b32435465768798a9b0c1", "project_id": 42, "previous_group_id": 4015, "new_group_id": 4100, "primary_hash": "c9a1f4e2b7d84e0f9a3b6c5d2e1f0a9b", "hierarchical_hash": "e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6", "datetime": "2024-02-13T21:03:01.000000Z"}'),
  (2, 'start_delete_tag', '{"transaction_id": "ad9e8f7a6b5c43546576879809a1b2c3", "project_id": 42, "tag": "browser.name", "datetime": "2024-02-13T21:04:00.000000Z"}'),
  (2, 'end_delete_tag', '{"transaction_id": "ad9e8f7a6b5c43546576879809a1b2c3", "project_id": 42, "tag": "browser.name", "datetime": "2024-02-13T21:04:01.000000Z"}'),
  (2, 'tombstone_events', '{"project_id": 42, "event_ids": ["5c1a4b8e0e3f4d6b9a7c2e1f0d3b8a64", "a4f6c3e9b2d14f08a1e7c6b5d4f3e2a1"], "old_primary_hash": null, "from_timestamp": "2024-02-13T00:00:00.000000Z", "to_timestamp": "2024-02-14T00:00:00.000000Z"}'),
  (2, 'replace_group', '{"project_id": 42, "event_ids": ["5c1a4b8e0e3f4d6b9a7c2e1f0d3b8a64"], "new_group_id": 4101, "from_timestamp": "2024-02-13T00:00:00.000000Z", "to_timestamp": "2024-02-14T00:00:00.000000Z"}'),
  (2, 'exclude_groups', '{"project_id": 42, "group_ids": [4015, 4016]}')
) AS r(version, operation, payload)
ORDER BY r.version, r.operation;

-- A replacement operation is skipped without looking at the payload, which
-- may be anything, and with a version given as a string.
SELECT sentry_relay.decode_event_message(convert_to(b, 'UTF8')) AS job
FROM (VALUES ('[2, "end_merge", null, "anything", [1, 2]]'),
             ('["2", "tombstone_events"]'),
             ('["1", "delete_groups", 42]')) AS t(b);
