--
-- guc: the sentry_relay.* settings.
--
-- sentry_relay.max_message_size: the largest event message body that is
-- decoded, in bytes (default 25MB, superuser only).  Messages decoded from
-- complete headers are not limited, since their body is not read.
--
\set SHOW_CONTEXT never
\pset null '<NULL>'

-- The default, and how the setting is defined.
SHOW sentry_relay.max_message_size;
SELECT name, setting, unit, context, vartype, min_val, max_val, boot_val, reset_val
FROM pg_settings
WHERE name = 'sentry_relay.max_message_size';

-- An insert whose body is exactly n bytes long (n >= 200), padded in a
-- field that is not read, and the complete headers of the same insert.
CREATE FUNCTION pg_temp.insert_body(n int) RETURNS bytea LANGUAGE sql AS $$
    SELECT convert_to(prefix || repeat('x', n - length(prefix) - length(suffix)) || suffix, 'UTF8')
    FROM (SELECT '[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":1,"group_id":null,"primary_hash":null,"message":"'::text AS prefix,
                 '"},{"is_new":true,"is_regression":false,"is_new_group_environment":false,"skip_consume":false}]'::text AS suffix) AS p
$$;
CREATE FUNCTION pg_temp.insert_headers() RETURNS jsonb LANGUAGE sql AS $$
    SELECT '{"version": "2", "operation": "insert",
             "event_id": "0123456789abcdef0123456789abcdef", "project_id": "1",
             "is_new": "1", "is_regression": "0", "is_new_group_environment": "0",
             "skip_consume": "0"}'::jsonb
$$;
SELECT octet_length(pg_temp.insert_body(3000)) AS body_bytes,
       sentry_relay.decode_event_message(pg_temp.insert_body(3000))->>'cache_key' AS cache_key;

-- Lower the limit to 2kB.
SET sentry_relay.max_message_size = '2kB';
SHOW sentry_relay.max_message_size;
SELECT current_setting('sentry_relay.max_message_size') AS max_message_size,
       (SELECT setting FROM pg_settings WHERE name = 'sentry_relay.max_message_size') AS bytes;

-- A 3 kB body without headers is now too large (SQLSTATE 54000) ...
SELECT sentry_relay.decode_event_message(pg_temp.insert_body(3000));
DO $$
BEGIN
    PERFORM sentry_relay.decode_event_message(pg_temp.insert_body(3000));
EXCEPTION WHEN program_limit_exceeded THEN
    RAISE NOTICE 'SQLSTATE %', SQLSTATE;
END
$$;

-- ... but the same message with complete headers still decodes: its body
-- is not read, so its size does not matter.
SELECT sentry_relay.decode_event_message(pg_temp.insert_body(3000), pg_temp.insert_headers())->>'cache_key' AS cache_key;

-- With incomplete headers the body is decoded, and limited again.
SELECT sentry_relay.decode_event_message(pg_temp.insert_body(3000), pg_temp.insert_headers() - 'skip_consume');

-- The limit is inclusive: 2048 bytes decode, 2049 do not.
SELECT sentry_relay.decode_event_message(pg_temp.insert_body(2048))->>'cache_key' AS cache_key;
SELECT sentry_relay.decode_event_message(pg_temp.insert_body(2049));

-- Replacement operations are limited like inserts.
SELECT sentry_relay.decode_event_message(convert_to('[2,"end_merge",{"pad":"' || repeat('x', 3000) || '"}]', 'UTF8'));

-- The setting takes units; values below 1kB are rejected.
SET sentry_relay.max_message_size = 4096;
SHOW sentry_relay.max_message_size;
SELECT sentry_relay.decode_event_message(pg_temp.insert_body(3000))->>'cache_key' AS cache_key;
SET sentry_relay.max_message_size = '1kB';
SHOW sentry_relay.max_message_size;
SET sentry_relay.max_message_size = 1023;
SET sentry_relay.max_message_size = '1GB';
SET sentry_relay.max_message_size = 'big';
SHOW sentry_relay.max_message_size;

-- A transaction-local setting ends with the transaction.
BEGIN;
SET LOCAL sentry_relay.max_message_size = '2kB';
SELECT sentry_relay.decode_event_message(pg_temp.insert_body(3000));
ROLLBACK;
SHOW sentry_relay.max_message_size;

-- RESET brings back the default, and 3 kB decode again.
RESET sentry_relay.max_message_size;
SHOW sentry_relay.max_message_size;
SELECT sentry_relay.decode_event_message(pg_temp.insert_body(3000))->>'cache_key' AS cache_key;

-- Only superusers may change the setting.
CREATE ROLE regress_sentry_relay_user;
SET ROLE regress_sentry_relay_user;
SET sentry_relay.max_message_size = '2kB';
SHOW sentry_relay.max_message_size;
RESET ROLE;
DROP ROLE regress_sentry_relay_user;

-- The sentry_relay prefix is reserved: an unknown sentry_relay.* setting
-- cannot be set, or shown.
SET sentry_relay.nonexistent = 1;
SET sentry_relay.max_message_sise = '2kB';
SHOW sentry_relay.nonexistent;
SELECT current_setting('sentry_relay.nonexistent', true) AS missing_ok;
