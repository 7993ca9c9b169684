/*
 * test_skim.c - unit tests of the skim fast path (src/json_skim.c): what it
 * drops, what it declines (so that json-c decides), and that the event
 * decoder gives the same result with and without it.  The differential
 * fuzzer (test/fuzz/fuzz_skim.c) explores the rest.
 */
#include <stdio.h>
#include <string.h>

#include "decode.h"
#include "json_skim.h"
#include "tap.h"

#define EID "0123456789abcdef0123456789abcdef"

static const char *const keep[] = {"event_id", "project_id", "group_id", NULL};

static bool
skim(const char *s, int *ndrop, sr_skim_span *drop)
{
	return sr_json_skim(s, strlen(s), keep, 16, drop, 8, ndrop);
}

static void
test_drops(void)
{
	sr_skim_span d[8];
	int			n;
	const char *m =
		"[2, \"insert\", {\"event_id\": \"" EID "\", \"data\": {\"exception\": [1, 2, 3, 4, 5]},"
		" \"project_id\": 123456789012345678, \"short\": 1, \"message\": \"a long message text\","
		" \"gro\\u0075p_x\": [\"escaped key, kept\"]}, {\"is_new\": true}]";

	ok(skim(m, &n, d), "a realistic insert is strict JSON");
	ok(n == 2, "two values dropped (data, message), got %d", n);
	ok(n >= 1 && strncmp(m + d[0].start, "{\"exception\"", 12) == 0 &&
	   m[d[0].start + d[0].len - 1] == '}', "first span is exactly the data object");
	ok(n >= 2 && strncmp(m + d[1].start, "\"a long", 7) == 0 && d[1].len == 21,
	   "second span is exactly the message string");
	ok(skim("[2,\"insert\",[{\"data\":\"a long value here!\"}],{}]", &n, d) && n == 0,
	   "element 2 not an object: nothing dropped");
	ok(skim("{\"a\": {\"data\": \"a long value here!\"}}", &n, d) && n == 0,
	   "not an array: nothing dropped");
	ok(skim(" [1, 2, {\"data\": \"a long value here!\"}] \n", &n, d) && n == 1,
	   "whitespace around the document");
}

static void
test_declines(void)
{
	static const char *const bad[] = {
		"", "[", "[1,]", "[1 2]", "{\"a\" 1}", "{\"a\":1,}", "[01]", "[1.]", "[.5]",
		"[1e]", "[1e999]", "[-]", "[+1]", "[NaN]", "[Infinity]", "[True]", "[nul]",
		"[\"\\u0000\"]", "[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]",
		"[\"\\x\"]", "[\"tab\there\"]", "['single']", "[1] /* c */", "[1] x",
		"[12345678901234567890123456789012345]", "[\"unterminated]",
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	};
	static const char *const good[] = {
		"[]", "{}", "0", "-0", "-1.5e+10", "1E5", "\"\\ud83d\\ude00\"", "[true,false,null]",
		"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"]", "{\"\":[{}]}",
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	};
	sr_skim_span d[8];
	int			n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(!skim(bad[i], &n, d), "declines %s", bad[i]);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(skim(good[i], &n, d), "accepts %s", good[i]);
}

/* Decode with and without the skim; the results must be identical. */
static void
same(sr_decoder *with, sr_decoder *without, const char *m, const char *what)
{
	sr_job		a,
				b;
	sr_error	ea,
				eb;
	sr_decode_status sa = sr_decode_event(with, m, strlen(m), NULL, 0, &a, &ea);
	sr_decode_status sb = sr_decode_event(without, m, strlen(m), NULL, 0, &b, &eb);
	bool		eq = sa == sb;

	if (eq && sa == SR_DECODE_ERROR)
		eq = ea.cls == eb.cls && strcmp(ea.message, eb.message) == 0;
	else if (eq && sa == SR_DECODE_JOB)
		eq = strcmp(a.event_id, b.event_id) == 0 && a.project_id == b.project_id &&
			a.has_group_id == b.has_group_id && a.group_id == b.group_id &&
			(a.primary_hash == NULL) == (b.primary_hash == NULL) &&
			(a.occurrence_id == NULL) == (b.occurrence_id == NULL) &&
			strcmp(a.queue, b.queue) == 0;
	ok(eq, "same result with and without the skim: %s", what);
}

static void
test_decoder(void)
{
	sr_decoder *with = sr_decoder_create(1 << 20);
	sr_decoder *without = sr_decoder_create(1 << 20);
	char		pad[600];
	char		m[2048];

	sr_decoder_set_skim(with, 1);
	sr_decoder_set_skim(without, 0);
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';

#define CASE(fmt, what) \
	do { snprintf(m, sizeof(m), fmt, pad); same(with, without, m, what); } while (0)
	CASE("[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":7,\"data\":\"%s\"},"
		 "{\"is_new\":true,\"is_regression\":false}]", "a good insert");
	CASE("[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":7,\"data\":\"%s\","
		 "\"group_id\":\"not a number\"},{\"is_new\":true,\"is_regression\":false}]",
		 "a kept member with the wrong type");
	CASE("[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":7,\"data\":[\"%s\",1e999]},"
		 "{\"is_new\":true,\"is_regression\":false}]", "a huge number inside dropped data");
	CASE("[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":7,\"data\":\"%s\\u0000\"},"
		 "{\"is_new\":true,\"is_regression\":false}]", "a NUL escape inside dropped data");
	CASE("[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":7,\"data\":\"%s\","
		 "\"event\\u005fid\":\"bad\"},{\"is_new\":true,\"is_regression\":false}]",
		 "an escaped duplicate of a kept member");
	CASE("[2,\"insert\",{\"data\":\"%s\",\"project_id\":7},{\"is_new\":true,\"is_regression\":false}]",
		 "a missing event_id");
	CASE("[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":7,\"data\":\"%s\"},"
		 "{\"is_new\":true,\"is_regression\":false},]", "a trailing comma");
	CASE("[2,\"start_merge\",{\"data\":\"%s\"}]", "a replacement");
#undef CASE
	sr_decoder_destroy(with);
	sr_decoder_destroy(without);
}

int
main(void)
{
	test_drops();
	test_declines();
	test_decoder();
	return tap_done();
}
