/*
 * sentry_relay 0.1.0 -> 0.2.0
 *
 * There is no separate 0.2.0 install script: CREATE EXTENSION runs
 * sentry_relay--0.1.0.sql and then this file, so every fresh install also
 * exercises the upgrade path.  Each later version ships one more
 * sentry_relay--A--B.sql script in the same way.
 */
\echo Use "ALTER EXTENSION sentry_relay UPDATE TO '0.2.0'" to load this file. \quit

/* ---- job queue (issue #4) ---------------------------------------------- */

/* ---- security (issue #6) ------------------------------------------------ */
