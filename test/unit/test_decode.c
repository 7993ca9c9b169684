/*
 * test_decode.c - unit tests of the pure-C decoder API (no PostgreSQL):
 * the error-reporting contract, header-only decoding, fallback to the body,
 * arena lifetime and reuse of one decoder across many messages.  The SQL
 * behaviour is covered in depth by pg_regress (sql/decode_*.sql).
 */
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
	   "group_states canonical JSON");
	ok(j.is_new && !j.is_regression && j.is_new_group_environment, "flags");
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
	ok(j.project_id == 8 && j.group_id == 10 && !j.is_new && j.is_regression &&
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
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":99999999999999999999},{\"is_new\":true,\"is_regression\":true}]", SR_ERR_OUT_OF_RANGE},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":-1},{\"is_new\":true,\"is_regression\":true}]", SR_ERR_OUT_OF_RANGE},
		{"[2,\"insert\",{\"event_id\":\"xyz\",\"project_id\":1},{\"is_new\":true,\"is_regression\":true}]", SR_ERR_INVALID_VALUE},
		{"[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":1},{\"is_new\":true,\"is_regression\":true,\"queue\":\"a\\u0000b\"}]", SR_ERR_NUL_CHARACTER},
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
		test_commit_log(d);
	}
	sr_decoder_destroy(d);
	return tap_done();
}
