/*
 * test_decode.c - unit tests of the pure-C decoder API (no PostgreSQL):
 * the error-reporting contract, header-only decoding, fallback to the body,
 * arena lifetime and reuse of one decoder across many messages.  The SQL
 * behaviour is covered in depth by pg_regress (sql/decode_*.sql).
 */
#include <stdio.h>
#include <string.h>

#include "decode.h"
#include "tap.h"

#define EID "0123456789abcdef0123456789abcdef"

static const char *insert_v2 =
"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":7,\"group_id\":9,"
"\"primary_hash\":\"ph\",\"data\":{\"x\":[1,2,{\"y\":null}]}},"
"{\"is_new\":true,\"is_regression\":false,\"is_new_group_environment\":true,"
"\"queue\":\"q1\",\"group_states\":[{\"id\":9,\"is_new\":true,"
"\"is_regression\":false,\"is_new_group_environment\":true}]}]";

#define H(n, v) {n, sizeof(n) - 1, v, sizeof(v) - 1}

static const sr_header full_headers[] = {
	H("Received-Timestamp", "1707857566.8"),
	H("version", "2"),
	H("operation", "insert"),
	H("event_id", EID),
	H("project_id", "8"),
	H("group_id", "10"),
	H("primary_hash", "hh"),
	H("is_new", "0"),
	H("is_regression", "1"),
	H("is_new_group_environment", "0"),
	H("skip_consume", "0"),
	H("queue", "post_process_issue_platform"),
	H("group_states", "[{\"id\":10,\"is_new\":false,\"is_regression\":true,\"is_new_group_environment\":false}]"),
};
#define NFULL (sizeof(full_headers) / sizeof(full_headers[0]))

static void
test_body(sr_decoder *d)
{
	sr_job		j;
	sr_error	e;
	sr_decode_status st;

	st = sr_decode_event(d, insert_v2, strlen(insert_v2), NULL, 0, &j, &e);
	ok(st == SR_DECODE_JOB && e.cls == SR_OK, "v2 insert decodes from the body");
	ok(j.source == SR_SOURCE_BODY && j.version == 2 && strcmp(j.operation, "insert") == 0,
	   "source, version, operation");
	ok(j.project_id == 7 && j.has_group_id && j.group_id == 9, "ids");
	ok(strcmp(j.primary_hash, "ph") == 0 && strcmp(j.queue, "q1") == 0 &&
	   j.occurrence_id == NULL, "strings (arena) are intact after all pushes");
	ok(strcmp(j.cache_key, "e:" EID ":7") == 0, "cache key");
	ok(j.group_states != NULL && strcmp(j.group_states,
		"[{\"id\":9,\"is_new\":true,\"is_regression\":false,\"is_new_group_environment\":true}]") == 0,
	   "group_states: the value's text as sent");
	ok(j.is_new == SR_FLAG_TRUE && j.is_regression == SR_FLAG_FALSE &&
	   j.is_new_group_environment == SR_FLAG_TRUE, "flags");
}

static void
test_headers(sr_decoder *d)
{
	sr_job		j;
	sr_error	e;
	sr_decode_status st;
	sr_header	bad[NFULL];

	/* a NULL body with a length: reading it would crash */
	st = sr_decode_event(d, NULL, 5, full_headers, NFULL, &j, &e);
	ok(st == SR_DECODE_JOB && j.source == SR_SOURCE_HEADERS,
	   "complete headers decode without touching the body");
	ok(j.project_id == 8 && j.group_id == 10 && j.is_new == SR_FLAG_FALSE &&
	   j.is_regression == SR_FLAG_TRUE &&
	   strcmp(j.queue, "post_process_issue_platform") == 0 &&
	   strcmp(j.primary_hash, "hh") == 0, "header fields");
	ok(j.group_states && strstr(j.group_states, "\"id\":10") != NULL, "group_states from header");

	memcpy(bad, full_headers, sizeof(bad));
	bad[7].value = "yes";
	bad[7].value_len = 3;
	st = sr_decode_event(d, insert_v2, strlen(insert_v2), bad, NFULL, &j, &e);
	ok(st == SR_DECODE_JOB && j.source == SR_SOURCE_BODY && j.project_id == 7,
	   "an invalid header falls back to the body");
	st = sr_decode_event(d, NULL, 0, bad, NFULL, &j, &e);
	ok(st == SR_DECODE_ERROR && e.cls == SR_ERR_MISSING_FIELD,
	   "invalid headers and no body: an error, not a crash");

	memcpy(bad, full_headers, sizeof(bad));
	bad[2].value = "end_merge";
	bad[2].value_len = 9;
	st = sr_decode_event(d, NULL, 5, bad, NFULL, &j, &e);
	ok(st == SR_DECODE_SKIP && strcmp(j.operation, "end_merge") == 0,
	   "replacement operation in headers: skipped without the body");

	memcpy(bad, full_headers, sizeof(bad));
	bad[10].value = "1";
	st = sr_decode_event(d, NULL, 5, bad, NFULL, &j, &e);
	ok(st == SR_DECODE_SKIP && j.skip_consume, "skip_consume header: skipped");
}

static void
test_errors(sr_decoder *d)
{
	static const struct
	{
		const char *msg;
		sr_errclass cls;
	}			cases[] = {
		{"not json", SR_ERR_INVALID_JSON},
		{"[2,\"insert\"", SR_ERR_INVALID_JSON},
		{"{\"a\":1}", SR_ERR_WRONG_TYPE},
		{"null", SR_ERR_WRONG_TYPE},
		{"42", SR_ERR_WRONG_TYPE},
		{"[3,\"insert\",{},{}]", SR_ERR_UNSUPPORTED_VERSION},
		{"[2,\"explode\"]", SR_ERR_UNKNOWN_OPERATION},
		{"[2]", SR_ERR_MISSING_FIELD},
#define REQ_ED "\"group_id\":null,\"primary_hash\":null"
#define REQ_TS "\"is_new\":true,\"is_regression\":true,\"is_new_group_environment\":null"
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":99999999999999999999," REQ_ED "},{" REQ_TS "}]", SR_ERR_OUT_OF_RANGE},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":\"7\"," REQ_ED "},{" REQ_TS "}]", SR_ERR_WRONG_TYPE},
		{"[2,\"insert\",{\"event_id\":null,\"project_id\":1," REQ_ED "},{" REQ_TS "}]", SR_ERR_WRONG_TYPE},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":1," REQ_ED "},{" REQ_TS ",\"queue\":\"a\\u0000b\"}]", SR_ERR_NUL_CHARACTER},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":1,\"primary_hash\":null},{" REQ_TS "}]", SR_ERR_MISSING_FIELD},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":1,\"group_id\":null},{" REQ_TS "}]", SR_ERR_MISSING_FIELD},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":1," REQ_ED "},{\"is_new\":true,\"is_regression\":true}]", SR_ERR_MISSING_FIELD},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":1," REQ_ED "},{" REQ_TS "},{}]", SR_ERR_INVALID_VALUE},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":1," REQ_ED "},[1]]", SR_ERR_WRONG_TYPE},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":1," REQ_ED "},{" REQ_TS ",\"group_states\":[\"\\u0000\"]}]", SR_ERR_INVALID_VALUE},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":1," REQ_ED "},{" REQ_TS ",\"group_states\":[1e1001]}]", SR_ERR_INVALID_VALUE},
		{"[\"2.0\",\"insert\",{},{}]", SR_ERR_UNSUPPORTED_VERSION},
		{"[null,\"insert\",{},{}]", SR_ERR_WRONG_TYPE},
		{"[false,\"insert\",{},{}]", SR_ERR_UNSUPPORTED_VERSION},
		{"[2,\"\xff\"]", SR_ERR_INVALID_UTF8},
	};
	char		deep[20001];
	sr_job		j;
	sr_error	e;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		sr_decode_status st = sr_decode_event(d, cases[i].msg, strlen(cases[i].msg),
											  NULL, 0, &j, &e);

		ok(st == SR_DECODE_ERROR && e.cls == cases[i].cls && e.message[0] != '\0',
		   "error class %s for case %zu (%s)", sr_errclass_name(cases[i].cls), i,
		   e.message);
	}
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	ok(sr_decode_event(d, deep, strlen(deep), NULL, 0, &j, &e) == SR_DECODE_ERROR &&
	   e.cls == SR_ERR_NESTING_TOO_DEEP, "20,000 levels: nesting_too_deep");
	ok(sr_decode_event(d, "[1,\0]", 5, NULL, 0, &j, &e) == SR_DECODE_ERROR &&
	   e.cls == SR_ERR_NUL_CHARACTER, "NUL byte: nul_character");
	sr_decoder_set_max_message_bytes(d, 200);
	ok(sr_decode_event(d, insert_v2, strlen(insert_v2), NULL, 0, &j, &e) == SR_DECODE_ERROR &&
	   e.cls == SR_ERR_MESSAGE_TOO_LARGE, "over the size limit: message_too_large");
	ok(sr_decode_event(d, "x", 1, full_headers, NFULL, &j, &e) == SR_DECODE_JOB,
	   "the size limit does not apply to header decoding");
	sr_decoder_set_max_message_bytes(d, SR_DEFAULT_MAX_MESSAGE_BYTES);
	ok(strcmp(sr_errclass_sqlstate(SR_ERR_INVALID_JSON), "22032") == 0 &&
	   strcmp(sr_errclass_sqlstate(SR_ERR__COUNT), "XX000") == 0, "sqlstate table");
}


/* Decode a body; the status. */
static sr_decode_status
body(sr_decoder *d, const char *msg, sr_job *j)
{
	sr_error	e;

	return sr_decode_event(d, msg, strlen(msg), NULL, 0, j, &e);
}

#define ED_OK "{\"event_id\":\"" EID "\",\"project_id\":7,\"group_id\":null,\"primary_hash\":null}"
#define TS_OK "\"is_new\":true,\"is_regression\":false,\"is_new_group_environment\":false"

/* Sentry's rules (docs/decoding.md) where they are loose. */
static void
test_sentry_rules(sr_decoder *d)
{
	static const char *const versions[] = {
		"\" 2 \"", "\"+2\"", "\"0_2\"", "\"002\"", "2.9", "2e0", "true", NULL
	};
	static const char *const falsy[] = {
		"null", "false", "0", "0.0", "\"\"", "[]", "{}", NULL
	};
	static const char *const truthy[] = {
		"true", "1", "-1", "0.5", "\"0\"", "\"false\"", "[0]", "{\"a\":1}", NULL
	};
	char		msg[1024];
	sr_job		j;
	sr_error	e;
	sr_header	hs[NFULL];

	_Static_assert(sizeof(msg) >= 900, "room for the long event ids");

	for (int i = 0; versions[i] != NULL; i++)
	{
		snprintf(msg, sizeof(msg), "[%s,\"insert\"," ED_OK ",{" TS_OK "}]", versions[i]);
		ok(body(d, msg, &j) == SR_DECODE_JOB && j.version == (strcmp(versions[i], "true") == 0 ? 1 : 2),
		   "version %s is read as Python's int() reads it", versions[i]);
	}
	for (int i = 0; falsy[i] != NULL; i++)
	{
		snprintf(msg, sizeof(msg), "[2,\"insert\"," ED_OK ",{" TS_OK ",\"skip_consume\":%s}]", falsy[i]);
		ok(body(d, msg, &j) == SR_DECODE_JOB, "skip_consume %s is falsy: a job", falsy[i]);
	}
	for (int i = 0; truthy[i] != NULL; i++)
	{
		snprintf(msg, sizeof(msg), "[2,\"insert\",42,{\"skip_consume\":%s}]", truthy[i]);
		ok(body(d, msg, &j) == SR_DECODE_SKIP && j.skip_consume,
		   "skip_consume %s is truthy: skipped before event data is read", truthy[i]);
	}
	ok(body(d, "[2,\"insert\",{\"event_id\":\"ABC-def\",\"project_id\":-3,\"group_id\":5,"
			"\"primary_hash\":\"h\"},{\"is_new\":null,\"is_regression\":1,"
			"\"is_new_group_environment\":\"\",\"group_states\":[{\"id\":\"124\",\"x\":null}]}]", &j) == SR_DECODE_JOB &&
	   strcmp(j.event_id, "ABC-def") == 0 && strcmp(j.cache_key, "e:ABC-def:-3") == 0 &&
	   j.is_new == SR_FLAG_NULL && j.is_regression == SR_FLAG_TRUE &&
	   j.is_new_group_environment == SR_FLAG_FALSE && j.queue == NULL &&
	   strcmp(j.group_states, "[{\"id\":\"124\",\"x\":null}]") == 0,
	   "event id as sent, negative project id, None and truthy flags, string group ids as sent, no queue");
	/* the same through json-c: an escape in a key declines the fast path */
	ok(body(d, "[2,\"insert\",{\"event_id\":\"e\",\"project_id\":1,\"group_id\":5,"
			"\"primary_hash\":\"h\",\"d\\u0061ta\":1},{\"is_new\":[],\"is_regression\":1,"
			"\"is_new_group_environment\":null,\"group_states\":\"x\",\"gr\\u006fup_states\" : {\"k\": [1, 2.50]} }]", &j) == SR_DECODE_JOB &&
	   j.is_new == SR_FLAG_FALSE && strcmp(j.group_states, "{\"k\": [1, 2.50]}") == 0,
	   "whole parse: the last group_states (an escaped name) is kept as sent");
	ok(body(d, "[2,\"insert\"," ED_OK ",{" TS_OK ",\"group_states\":[{\"id\":99999999999999999999999}]}]", &j) == SR_DECODE_JOB &&
	   strcmp(j.group_states, "[{\"id\":99999999999999999999999}]") == 0,
	   "group_states: a 23-digit id (declined by the skim) is kept as sent");
	ok(body(d, "[1,\"delete\",5,6,7]", &j) == SR_DECODE_SKIP, "a skipped operation takes any elements");

	/* the cache key copies the event id within the arena, across its growth */
	{
		static char eid[700];
		bool		all = true;
		sr_decoder *fresh = sr_decoder_create(SR_DEFAULT_MAX_MESSAGE_BYTES);

		for (int len = 0; len < 650 && all; len++)
		{
			char		want[720];

			memset(eid, 'a' + len % 26, (size_t) len);
			eid[len] = '\0';
			snprintf(msg, sizeof(msg), "[2,\"insert\",{\"event_id\":\"%s\",\"project_id\":7,"
					 "\"group_id\":null,\"primary_hash\":null},{" TS_OK "}]", eid);
			snprintf(want, sizeof(want), "e:%s:7", eid);
			/* a new decoder per length, whose arena starts small */
			sr_decoder_destroy(fresh);
			fresh = sr_decoder_create(SR_DEFAULT_MAX_MESSAGE_BYTES);
			all = body(fresh, msg, &j) == SR_DECODE_JOB && strcmp(j.event_id, eid) == 0 &&
				strcmp(j.cache_key, want) == 0;
			if (!all)
				printf("# event id of %d characters\n", len);
		}
		sr_decoder_destroy(fresh);
		ok(all, "event ids of 0 to 649 characters: event id and cache key intact");
	}

	/* headers */
	memcpy(hs, full_headers, sizeof(hs));
	hs[7].value = " 10 ";
	hs[7].value_len = 4;
	hs[8].value = "-0";
	hs[8].value_len = 2;
	hs[9].value = "0_0";
	hs[9].value_len = 3;
	hs[1].value = "\t+2\n";
	hs[1].value_len = 4;
	ok(sr_decode_event(d, NULL, 0, hs, NFULL, &j, &e) == SR_DECODE_JOB &&
	   j.source == SR_SOURCE_HEADERS && j.is_new == SR_FLAG_TRUE &&
	   j.is_regression == SR_FLAG_FALSE && j.is_new_group_environment == SR_FLAG_FALSE,
	   "flag headers are bool(int(value)); the version int(value)");
	memcpy(hs, full_headers, sizeof(hs));
	hs[12].value = "{\"id\": 1}";
	hs[12].value_len = 9;
	ok(sr_decode_event(d, NULL, 0, hs, NFULL, &j, &e) == SR_DECODE_JOB &&
	   j.source == SR_SOURCE_HEADERS && j.group_states == NULL,
	   "a group_states header that is not a list: NULL, and the body is not read");
	hs[12].value = "[1,";
	hs[12].value_len = 3;
	ok(sr_decode_event(d, NULL, 0, hs, NFULL, &j, &e) == SR_DECODE_JOB &&
	   j.group_states == NULL, "a group_states header that is not JSON: NULL");
	hs[12].value = " [{\"id\": \"7\"}] ";
	hs[12].value_len = 15;
	ok(sr_decode_event(d, NULL, 0, hs, NFULL, &j, &e) == SR_DECODE_JOB &&
	   strcmp(j.group_states, " [{\"id\": \"7\"}] ") == 0, "a group_states header is kept as sent");
	hs[12].value = "[\"\xff\"]";
	hs[12].value_len = 4;
	ok(sr_decode_event(d, insert_v2, strlen(insert_v2), hs, NFULL, &j, &e) == SR_DECODE_JOB &&
	   j.source == SR_SOURCE_BODY, "a group_states header that is not UTF-8: the body");
	memcpy(hs, full_headers, sizeof(hs));
	hs[11].value = NULL;
	ok(sr_decode_event(d, insert_v2, strlen(insert_v2), hs, NFULL, &j, &e) == SR_DECODE_JOB &&
	   j.source == SR_SOURCE_BODY, "a queue header with a null value: the body");
	ok(sr_decode_event(d, NULL, 0, full_headers, NFULL - 2, &j, &e) == SR_DECODE_JOB &&
	   j.queue == NULL && j.group_states == NULL, "no queue header: no queue named");
}

static void
test_commit_log(sr_decoder *d)
{
	sr_commit	c;
	sr_error	e;
	const char *key = "events:12:snuba:consumers";
	const char *js = "{\"offset\": 12346, \"orig_message_ts\": 1707857566.83139, \"received_p99\": null}";
	sr_header	ts = H("orig_message_ts", "2021-09-20T12:34:56.789000Z");

	ok(sr_decode_commit_log(d, key, strlen(key), js, strlen(js), NULL, 0, &c, &e) == SR_DECODE_JOB,
	   "JSON commit log value");
	ok(strcmp(c.topic, "events") == 0 && c.partition == 12 &&
	   strcmp(c.group, "snuba:consumers") == 0 && c.offset == 12346,
	   "key split at the first two colons");
	ok(c.has_orig_message_ts && c.orig_message_ts_us == INT64_C(1707857566831390) &&
	   !c.has_received_p99, "timestamps");
	ok(sr_decode_commit_log(d, key, strlen(key), "77", 2, &ts, 1, &c, &e) == SR_DECODE_JOB &&
	   c.offset == 77 && c.orig_message_ts_us == INT64_C(1632141296789000),
	   "legacy value with orig_message_ts header");
	ok(sr_decode_commit_log(d, "events:0", 8, "1", 1, NULL, 0, &c, &e) == SR_DECODE_ERROR &&
	   e.cls == SR_ERR_INVALID_VALUE, "key without a group");
	ok(sr_decode_commit_log(d, key, strlen(key), "-1", 2, NULL, 0, &c, &e) == SR_DECODE_ERROR &&
	   e.cls == SR_ERR_OUT_OF_RANGE, "negative legacy offset");
	ok(sr_decode_commit_log(d, key, strlen(key), NULL, 0, NULL, 0, &c, &e) == SR_DECODE_ERROR &&
	   e.cls == SR_ERR_MISSING_FIELD, "null value (tombstone)");
	ok(sr_decode_commit_log(d, NULL, 0, "1", 1, NULL, 0, &c, &e) == SR_DECODE_ERROR &&
	   e.cls == SR_ERR_MISSING_FIELD, "null key");
}

int
main(void)
{
	sr_decoder *d = sr_decoder_create(SR_DEFAULT_MAX_MESSAGE_BYTES);

	ok(d != NULL, "decoder created");
	/* one decoder is reused: run everything twice */
	for (int round = 0; round < 2; round++)
	{
		test_body(d);
		test_headers(d);
		test_errors(d);
		test_sentry_rules(d);
		test_commit_log(d);
	}
	sr_decoder_destroy(d);
	return tap_done();
}
