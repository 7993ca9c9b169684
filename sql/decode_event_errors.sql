--
-- decode_event_errors: every class of error decode_event_message() raises,
-- with its SQLSTATE.  Each case goes through event_error(), which returns
-- "SQLSTATE | message" (or "no error: <result>"); one case per class is also
-- shown raw, so that the HINT is visible.
--
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.event_error(value bytea, headers jsonb DEFAULT NULL,
                                    default_queue text DEFAULT 'post_process_errors')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    job jsonb;
BEGIN
    job := sentry_relay.decode_event_message(value, headers, default_queue);
    RETURN 'no error: ' || coalesce(job::text, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' | ' || SQLERRM;
END
$$;

-- The same, for a body given as text (encoded to UTF-8).
CREATE FUNCTION pg_temp.event_error(body text, headers jsonb DEFAULT NULL,
                                    default_queue text DEFAULT 'post_process_errors')
RETURNS text LANGUAGE sql AS $$
    SELECT pg_temp.event_error(convert_to(body, 'UTF8'), headers, default_queue)
$$;

-- Sanity check of the helper: a valid message is no error.
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]'::text);
SELECT pg_temp.event_error('[2,"end_merge"]'::text);

--
-- 22004 null_value_not_allowed: a NULL default_queue argument.  (A NULL
-- value is a Kafka tombstone: it is decoded from headers when they are
-- complete, as the relay does, and is 2203A otherwise, see below.)
--
SELECT pg_temp.event_error('[2,"end_merge"]'::text, NULL, NULL);
SELECT sentry_relay.decode_event_message('[2,"end_merge"]', NULL, NULL);

--
-- 54000 program_limit_exceeded: a body larger than
-- sentry_relay.max_message_size (25MB by default, above the 25,000,000
-- bytes of the events topic's max.message.bytes; see also the guc test).
-- A 25 MB insert:
--
SELECT pg_temp.event_error(
    '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"data":"'
    || repeat('x', 25 * 1024 * 1024)
    || '","group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
-- The size is checked before anything else: 25 MB of garbage.
SELECT pg_temp.event_error(repeat('x', 25 * 1024 * 1024 + 1));
SELECT sentry_relay.decode_event_message(convert_to(repeat(' ', 25 * 1024 * 1024 + 1), 'UTF8'));

--
-- 54001 statement_too_complex: JSON nested deeper than 64 levels.
--
-- 10,000 open brackets
SELECT pg_temp.event_error(repeat('[', 10000));
-- a well-formed 10,000-level array
SELECT pg_temp.event_error(repeat('[', 10000) || repeat(']', 10000));
-- 65 levels: the outer array, event_data, and 63 nested arrays in data
-- (64 levels are accepted, see decode_event)
SELECT pg_temp.event_error(
    '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"data":'
    || repeat('[', 63) || repeat(']', 63)
    || ',"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
-- 65 levels of objects
SELECT pg_temp.event_error(
    '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"data":'
    || repeat('{"a":', 63) || '{}' || repeat('}', 63)
    || '},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT sentry_relay.decode_event_message(convert_to(repeat('[', 10000), 'UTF8'));

--
-- 22032 invalid_json_text: not JSON, truncated, or followed by garbage.
--
-- not JSON at all
SELECT pg_temp.event_error('not json');
SELECT pg_temp.event_error('x');
-- an empty body, or only whitespace
SELECT pg_temp.event_error('');
SELECT pg_temp.event_error(E' \n\t ');
-- truncated documents
SELECT pg_temp.event_error('[2,');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123');
SELECT pg_temp.event_error('[2,"insert"');
SELECT pg_temp.event_error('tru');
-- garbage after the document
SELECT pg_temp.event_error('[2,"insert"] x');
SELECT pg_temp.event_error('[2,"end_merge"][2,"end_merge"]');
SELECT pg_temp.event_error('[2,"end_merge"],');
-- not strict JSON: trailing comma, single quotes, unquoted key, comment
SELECT pg_temp.event_error('[2,"end_merge",]');
SELECT pg_temp.event_error('[2,''end_merge'']');
SELECT pg_temp.event_error('[2,"insert",{event_id:"0123456789abcdef0123456789abcdef"}]');
SELECT pg_temp.event_error('[2,"end_merge"] /* comment */');
-- not RFC 8259 either, although json-c (and for NaN, Python) would take it:
-- NaN and Infinity, a raw control character in a string, numbers such as
-- "1.", "-01" and "1.e5"
SELECT pg_temp.event_error('[2,"end_merge",NaN]');
SELECT pg_temp.event_error('[2,"end_merge",[Infinity, -Infinity]]');
SELECT pg_temp.event_error(E'[2,"end_merge","a\tb"]');
SELECT pg_temp.event_error('[2,"end_merge",1.]');
SELECT pg_temp.event_error('[2,"end_merge",-01]');
SELECT pg_temp.event_error('[2,"end_merge",1.e5]');
-- a byte-order mark is not JSON
SELECT pg_temp.event_error('\xefbbbf'::bytea || convert_to('[2,"end_merge"]', 'UTF8'));
SELECT sentry_relay.decode_event_message(convert_to('[2,"insert"] x', 'UTF8'));

--
-- 22021 character_not_in_repertoire: the body is not valid UTF-8, wherever
-- the bad byte is (the whole body is checked, read fields or not).
--
-- 0xff inside the queue string
SELECT pg_temp.event_error(
    convert_to('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"queue":"a', 'UTF8')
    || '\xff'::bytea || convert_to('","is_new_group_environment":false}]', 'UTF8'));
-- 0xff in a field that is not read
SELECT pg_temp.event_error(
    convert_to('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"message":"', 'UTF8')
    || '\xff'::bytea || convert_to('","group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]', 'UTF8'));
-- an overlong encoding of '/' (0xc0 0xaf)
SELECT pg_temp.event_error(convert_to('[2,"end_merge","', 'UTF8') || '\xc0af'::bytea || convert_to('"]', 'UTF8'));
-- an encoded UTF-16 surrogate (0xed 0xa0 0x80)
SELECT pg_temp.event_error(convert_to('[2,"end_merge","', 'UTF8') || '\xeda080'::bytea || convert_to('"]', 'UTF8'));
-- a code point above U+10FFFF (0xf4 0x90 0x80 0x80)
SELECT pg_temp.event_error(convert_to('[2,"end_merge","', 'UTF8') || '\xf4908080'::bytea || convert_to('"]', 'UTF8'));
-- a sequence cut short by the end of the body
SELECT pg_temp.event_error(convert_to('[2,"end_merge"]', 'UTF8') || '\xe282'::bytea);
-- Latin-1 instead of UTF-8 (0xe9 is e-acute)
SELECT pg_temp.event_error(convert_to('[2,"end_merge","caf', 'UTF8') || '\xe9'::bytea || convert_to('"]', 'UTF8'));
SELECT sentry_relay.decode_event_message(convert_to('[2,"end_merge","', 'UTF8') || '\xff'::bytea || convert_to('"]', 'UTF8'));

--
-- 22P05 untranslatable_character: a NUL byte in the body, or a \u0000
-- escape in a string field that is read.
--
-- raw NUL bytes
SELECT pg_temp.event_error('\x00'::bytea);
SELECT pg_temp.event_error(convert_to('[2,"end_merge"]', 'UTF8') || '\x00'::bytea);
SELECT pg_temp.event_error(convert_to('[2,"end_', 'UTF8') || '\x00'::bytea || convert_to('merge"]', 'UTF8'));
-- \u0000 in each string field that is read
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"queue":"post_\u0000process","is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"primary_hash":"\u0000","group_id":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"occurrence_id":"x\u0000","group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef\u00000123456789abcde","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"end_merge\u0000"]');
SELECT sentry_relay.decode_event_message(convert_to('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"queue":"post_\u0000process","is_new_group_environment":false}]', 'UTF8'));

--
-- 22023 invalid_parameter_value: a value of the wrong JSON type.
--
-- the body is not an array: object, number, string, null, boolean
SELECT pg_temp.event_error('{"version": 2, "operation": "insert"}');
SELECT pg_temp.event_error('2');
SELECT pg_temp.event_error('2 ');
SELECT pg_temp.event_error('1.5');
SELECT pg_temp.event_error('"insert"');
SELECT pg_temp.event_error('null');
SELECT pg_temp.event_error('true');
-- the version: null, an array (Python's int() takes neither; a fraction
-- or a boolean it takes, see decode_event)
SELECT pg_temp.event_error('[null,"end_merge"]');
SELECT pg_temp.event_error('[[2],"end_merge"]');
-- the operation is not a string
SELECT pg_temp.event_error('[2,5]');
SELECT pg_temp.event_error('[2,null]');
SELECT pg_temp.event_error('[2,["insert"]]');
-- event_data or task_state is not an object
SELECT pg_temp.event_error('[2,"insert",[],{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",null,{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert","{}",{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},null]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},[true,false]]');
-- event_data fields: event_id, project_id, group_id, primary_hash, occurrence_id
SELECT pg_temp.event_error('[2,"insert",{"event_id":123,"project_id":1},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":null,"project_id":1},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":"42","group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":42.0,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":null,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":"7","primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"primary_hash":5,"group_id":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null,"occurrence_id":{}},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
-- the queue is a string or null (the flags may be anything, see decode_event)
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"queue":7,"is_new_group_environment":false}]');
-- group_states that jsonb cannot hold: a \u0000 escape, an unpaired
-- surrogate, a number beyond numeric's range (any other value is kept
-- as sent, see decode_event)
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":["\u0000"]}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":[{"id":"\ud800"}]}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":["\udc00x"]}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":[1e1001]}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"group_states":{"a":-1E+2000}}]');
-- an insert of more than four elements (Sentry's insert takes exactly
-- event data and task state)
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false},{}]');
SELECT pg_temp.event_error('[1,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false},null,"x"]');
-- headers: not an object, or a value that is not a string or null
SELECT pg_temp.event_error('[2,"end_merge"]'::text, '[]');
SELECT pg_temp.event_error('[2,"end_merge"]'::text, '"x"');
SELECT pg_temp.event_error('[2,"end_merge"]'::text, '{"version": 2, "operation": "end_merge"}');
SELECT sentry_relay.decode_event_message(convert_to('{"version": 2, "operation": "insert"}', 'UTF8'));

--
-- 2203A sql_json_member_not_found: a required field is missing.
--
-- no operation
SELECT pg_temp.event_error('[2]');
SELECT pg_temp.event_error('[]');
-- an insert without event_data or task_state
SELECT pg_temp.event_error('[2,"insert"]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null}]');
-- required members of event_data and task_state
SELECT pg_temp.event_error('[2,"insert",{"project_id":1},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef"},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_regression":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true}]');
SELECT pg_temp.event_error('[1,"insert",{},{}]');
-- group_id and primary_hash, which Sentry reads as event_data[name]
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
-- is_new_group_environment, which Sentry reads as task_state[name]
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_sample":false}]');
-- a NULL value (a tombstone) without complete headers
SELECT pg_temp.event_error(NULL::bytea);
SELECT pg_temp.event_error(NULL::bytea, '{"version": "2", "operation": "insert"}');
SELECT sentry_relay.decode_event_message(NULL);
SELECT sentry_relay.decode_event_message(convert_to('[2]', 'UTF8'));

--
-- 22003 numeric_value_out_of_range: ids must fit in 64 bits (negative ids
-- are kept, as Sentry keeps them, see decode_event).
--
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":99999999999999999999,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":9223372036854775808,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":-99999999999999999999,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT pg_temp.event_error('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":18446744073709551616,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]');
SELECT sentry_relay.decode_event_message(convert_to('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":99999999999999999999,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]', 'UTF8'));

--
-- 22P02 invalid_text_representation: group_states that jsonb cannot hold
-- (above, with 22023) and an insert of more than four elements.  The
-- event id is kept as sent, whatever its shape (see decode_event).
--
SELECT sentry_relay.decode_event_message(convert_to('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false},{}]', 'UTF8'));

--
-- 0A000 feature_not_supported: a version other than 1 and 2 ...
--
SELECT pg_temp.event_error('[0,"insert"]');
SELECT pg_temp.event_error('[3,"insert"]');
SELECT pg_temp.event_error('[100,"end_merge"]');
SELECT pg_temp.event_error('["3","insert"]');
SELECT pg_temp.event_error('["abc","insert"]');
SELECT pg_temp.event_error('["2.0","insert"]');
SELECT sentry_relay.decode_event_message(convert_to('[3,"insert",{},{}]', 'UTF8'));

--
-- ... and an operation that the version does not have.
--
SELECT pg_temp.event_error('[2,"explode",{}]');
SELECT pg_temp.event_error('[1,"tombstone_events"]');
SELECT pg_temp.event_error('[1,"start_merge",{}]');
SELECT pg_temp.event_error('[2,"delete",{}]');
SELECT pg_temp.event_error('[2,"merge"]');
SELECT pg_temp.event_error('[2,"INSERT",{},{}]');
SELECT pg_temp.event_error('[2,""]');
SELECT sentry_relay.decode_event_message(convert_to('[2,"explode",{}]', 'UTF8'));

--
-- Checks come in order: size, text, JSON, then structure.  A message with
-- several problems reports the first one.
--
-- too large and not UTF-8: too large
SELECT pg_temp.event_error('\xff'::bytea || convert_to(repeat(' ', 25 * 1024 * 1024), 'UTF8'));
-- not UTF-8 and not JSON: not UTF-8
SELECT pg_temp.event_error('\xff'::bytea || convert_to('not json', 'UTF8'));
-- an unknown version and an unknown operation: the version
SELECT pg_temp.event_error('[3,"explode"]');
-- an insert with several bad fields: event_id first
SELECT pg_temp.event_error('[2,"insert",{"event_id":5,"project_id":"x"},{"queue":1}]');

--
-- After an error the decoder is reusable: the next message decodes.
--
SELECT pg_temp.event_error('[2,');
SELECT sentry_relay.decode_event_message(convert_to('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]', 'UTF8'))->>'cache_key' AS cache_key;
