--
-- init: create the extension once for the whole schedule, and check what
-- it installs.  The other tests of the schedule run after this one, in
-- parallel, against the same database.
--
\set SHOW_CONTEXT never

CREATE EXTENSION sentry_relay;

-- The extension, its version and its (fixed, non-relocatable) schema.
SELECT extname, extversion, extnamespace::regnamespace AS schema, extrelocatable
FROM pg_extension
WHERE extname = 'sentry_relay';

-- The SQL functions of schema sentry_relay, with their full signatures
-- (defaults and OUT parameters included), result types and properties:
-- the decoders are STABLE (they read sentry_relay.max_message_size),
-- parallel safe, and not strict (a NULL argument is a clear error).
\x on
SELECT p.proname,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result,
       p.provolatile, p.proparallel, p.proisstrict,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment
FROM pg_proc p
WHERE p.pronamespace = 'sentry_relay'::regnamespace
ORDER BY p.proname, arguments;
\x off

-- The functions are members of the extension (DROP EXTENSION removes them).
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS member
FROM pg_depend d
JOIN pg_extension e ON e.oid = d.refobjid
WHERE d.refclassid = 'pg_extension'::regclass
  AND e.extname = 'sentry_relay'
  AND d.deptype = 'e'
  AND d.classid = 'pg_proc'::regclass
ORDER BY member;
