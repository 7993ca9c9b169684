/*
 * test_skim.c - unit tests of the skim fast path (src/json_skim.c): what it
 * drops, what it declines (so that json-c decides), and that the event
 * decoder gives the same result with and without it.  The differential
 * fuzzer (test/fuzz/fuzz_skim.c) explores the rest.
 */
#include <stdio.h>
#include <string.h>

#include "decode.h"
#include "decode_internal.h"	/* skim_min: the skim on or off */
#include "json_skim.h"
#include "tap.h"

#define EID "0123456789abcdef0123456789abcdef"

static const char *const keep[] = {"event_id", "project_id", "group_id", NULL};

static bool
skim(const char *s, int *ndrop, sr_skim_span *drop)
{
	return sr_json_skim(s, strlen(s), keep, 16, drop, 8, ndrop, NULL);
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

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

/*
 * Decode with and without the skim (and so the fast path); the results must
 * be identical, field by field.
 */
static void
same_hdr(sr_decoder *with, sr_decoder *without, const char *m,
		 const sr_header *hs, size_t nh, const char *what)
{
	sr_job		a,
				b;
	sr_error	ea,
				eb;
	sr_decode_status sa = sr_decode_event(with, m, strlen(m), hs, nh, &a, &ea);
	sr_decode_status sb = sr_decode_event(without, m, strlen(m), hs, nh, &b, &eb);
	bool		eq = sa == sb;

	if (eq && sa == SR_DECODE_ERROR)
		eq = ea.cls == eb.cls && strcmp(ea.message, eb.message) == 0;
	else if (eq)
		eq = a.version == b.version && same_str(a.operation, b.operation) &&
			a.skip_consume == b.skip_consume && a.source == b.source;
	if (eq && sa == SR_DECODE_JOB)
		eq = strcmp(a.event_id, b.event_id) == 0 && a.project_id == b.project_id &&
			a.has_group_id == b.has_group_id && a.group_id == b.group_id &&
			same_str(a.primary_hash, b.primary_hash) &&
			same_str(a.occurrence_id, b.occurrence_id) &&
			same_str(a.group_states, b.group_states) &&
			same_str(a.queue, b.queue) && strcmp(a.cache_key, b.cache_key) == 0 &&
			a.is_new == b.is_new && a.is_regression == b.is_regression &&
			a.is_new_group_environment == b.is_new_group_environment;
	ok(eq, "same result with and without the skim: %s", what);
	if (!eq)
		fprintf(stderr, "# %d/%d: %s / %s\n", sa, sb, sa == SR_DECODE_ERROR ? ea.message : "",
				sb == SR_DECODE_ERROR ? eb.message : "");
}

static void
same(sr_decoder *with, sr_decoder *without, const char *m, const char *what)
{
	same_hdr(with, without, m, NULL, 0, what);
}

/*
 * An insert with the given event data and task state members, plus those
 * Sentry requires that they leave out (group_id, primary_hash,
 * is_new_group_environment), so that each case tests what it names.
 */
static void
fast_msg(char *m, size_t size, const char *ed, const char *ts)
{
	snprintf(m, size, "[2,\"insert\",{%s%s%s},{%s%s}]", ed,
			 strstr(ed, "\"group_id\"") ? "" : ",\"group_id\":null",
			 strstr(ed, "\"primary_hash\"") ? "" : ",\"primary_hash\":null", ts,
			 strstr(ts, "\"is_new_group_environment\"") ? "" : ",\"is_new_group_environment\":false");
}

/*
 * The fast path (decode_fast.c) against a whole parse: what it reads
 * itself, and the irregular cases it must decline to json-c.
 */
static void
test_fast(void)
{
	sr_decoder *with = sr_decoder_create(1 << 20);
	sr_decoder *without = sr_decoder_create(1 << 20);
	char		m[2048];
	sr_job		job;
	sr_error	err;

	with->skim_min = 1;
	without->skim_min = 0;

#define ED "\"event_id\":\"" EID "\",\"project_id\":7"
#define TS "\"is_new\":true,\"is_regression\":false"
#define FAST(ed, ts, what) \
	do { fast_msg(m, sizeof(m), ed, ts); same(with, without, m, what); } while (0)
	FAST(ED, TS, "a minimal insert");
	FAST(ED ",\"group_id\":42,\"primary_hash\":\"abc\",\"occurrence_id\":\"o-1\"",
		 TS ",\"is_new_group_environment\":true,\"is_sample\":false,\"queue\":\"q\"",
		 "every member");
	FAST(ED ",\"group_id\":null,\"primary_hash\":null,\"occurrence_id\":null",
		 TS ",\"is_new_group_environment\":null,\"is_sample\":null,\"queue\":null,"
		 "\"group_states\":null", "every optional member null");
	FAST(ED ",\"project_id\":8", TS, "a repeated member: json-c keeps the last");
	FAST(ED, TS ",\"is_new\":false", "a repeated task member");
	FAST(ED ",\"pro\\u006aect_id\":9", TS, "an escaped key");
	FAST(ED, TS ",\"qu\\u0065ue\":\"x\"", "an escaped task key");
	FAST(ED ",\"primary_hash\":\"a\\\"b\"", TS, "an escaped string value");
	FAST(ED, TS ",\"queue\":\"\\u0070ost\"", "an escaped queue");
	FAST(ED ",\"primary_hash\":5", TS, "a number for a string");
	FAST("\"event_id\":\"0123456789ABCDEF0123456789ABCDEF\",\"project_id\":7", TS,
		 "an upper-case event id");
	FAST("\"event_id\":\"0123\",\"project_id\":7", TS, "a short event id");
	FAST("\"event_id\":null,\"project_id\":7", TS, "a null event id");
	FAST("\"event_id\":\"" EID "\"", TS, "no project id");
	FAST("\"event_id\":\"" EID "\",\"project_id\":0", TS, "project id 0");
	FAST("\"event_id\":\"" EID "\",\"project_id\":-1", TS, "a negative project id");
	FAST("\"event_id\":\"" EID "\",\"project_id\":-0", TS, "project id -0");
	FAST("\"event_id\":\"" EID "\",\"project_id\":7.0", TS, "a fractional project id");
	FAST("\"event_id\":\"" EID "\",\"project_id\":7e2", TS, "an exponent");
	FAST("\"event_id\":\"" EID "\",\"project_id\":123456789012345678", TS, "18 digits");
	FAST("\"event_id\":\"" EID "\",\"project_id\":1234567890123456789", TS, "19 digits");
	FAST("\"event_id\":\"" EID "\",\"project_id\":9223372036854775808", TS,
		 "beyond 64 bits");
	FAST("\"event_id\":\"" EID "\",\"project_id\":\"7\"", TS, "a string project id");
	FAST(ED, "\"is_regression\":false", "no is_new");
	FAST(ED, "\"is_new\":null,\"is_regression\":false", "a null is_new");
	FAST(ED, "\"is_new\":1,\"is_regression\":false", "a number for a boolean");
	FAST(ED, TS ",\"is_sample\":\"no\"", "a string is_sample");
	FAST(ED, TS ",\"skip_consume\":true", "skip_consume");
	FAST(ED, TS ",\"skip_consume\":false", "skip_consume false");
	FAST(ED, TS ",\"skip_consume\":null", "skip_consume null");
	FAST(ED, TS ",\"skip_consume\":1", "skip_consume a number");
	FAST("\"project_id\":\"bad\"", "\"skip_consume\":true", "skip_consume before anything");
	FAST(ED, TS ",\"group_states\":[]", "no group states");
	FAST(ED, TS ",\"group_states\":[{\"id\":1,\"is_new\":true,\"is_regression\":false,"
		 "\"is_new_group_environment\":true}]", "one group state");
	FAST(ED, TS ",\"group_states\": [ {\"is_new_group_environment\" : false, \"x\": "
		 "{\"a\": [1, \"]}\\\"\", {}]}, \"is_regression\":true, \"id\": 2,"
		 "\"is_new\":false} , {\"id\":3,\"is_new\":true,\"is_regression\":true,"
		 "\"is_new_group_environment\":true,\"y\":null} ]", "spaces, other members and nesting");
	FAST(ED, TS ",\"group_states\":[{\"id\":1,\"is_new\":true,\"is_regression\":false}]",
		 "a group state without a flag");
	FAST(ED, TS ",\"group_states\":[{\"id\":1,\"id\":2,\"is_new\":true,"
		 "\"is_regression\":false,\"is_new_group_environment\":true}]", "a repeated id");
	FAST(ED, TS ",\"group_states\":[{\"id\":-1,\"is_new\":true,\"is_regression\":false,"
		 "\"is_new_group_environment\":true}]", "a negative id");
	FAST(ED, TS ",\"group_states\":[{\"id\":\"1\",\"is_new\":true,\"is_regression\":false,"
		 "\"is_new_group_environment\":true}]", "a string id");
	FAST(ED, TS ",\"group_states\":[{\"\\u0069d\":1,\"is_new\":true,\"is_regression\":false,"
		 "\"is_new_group_environment\":true}]", "an escaped key in a group state");
	FAST(ED, TS ",\"group_states\":[{\"id\":1,\"is_new\":null,\"is_regression\":false,"
		 "\"is_new_group_environment\":true}]", "a null flag");
	FAST(ED, TS ",\"group_states\":[{}]", "an empty group state");
	FAST(ED, TS ",\"group_states\":[1]", "a group state that is not an object");
	FAST(ED, TS ",\"group_states\":{}", "group states not an array");
#undef FAST
	same(with, without, "[2,\"insert\",{" ED ",\"group_id\":1,\"primary_hash\":\"h\"}]", "no task state");
	same(with, without, "[2,\"insert\",[" ED ",\"group_id\":1,\"primary_hash\":\"h\"],{" TS ",\"is_new_group_environment\":true}]", "event data an array");
	same(with, without, "[2,\"insert\",{" ED ",\"group_id\":1,\"primary_hash\":\"h\"},[" TS ",\"is_new_group_environment\":true]]", "task state an array");
	same(with, without, "[2,\"insert\",{" ED ",\"group_id\":1,\"primary_hash\":\"h\"},{" TS ",\"is_new_group_environment\":true},\"extra\"]", "a fifth element");
	same(with, without, "[\"2\",\"insert\",{" ED ",\"group_id\":1,\"primary_hash\":\"h\"},{" TS ",\"is_new_group_environment\":true}]", "a string version");
	same(with, without, "[2.0,\"insert\",{" ED ",\"group_id\":1,\"primary_hash\":\"h\"},{" TS ",\"is_new_group_environment\":true}]", "a fractional version");
	same(with, without, "[3,\"insert\",{" ED ",\"group_id\":1,\"primary_hash\":\"h\"},{" TS ",\"is_new_group_environment\":true}]", "version 3");
	same(with, without, "[1,\"insert\",{" ED ",\"group_id\":1,\"primary_hash\":\"h\"},{" TS ",\"is_new_group_environment\":true}]", "version 1");
	same(with, without, "[2,\"ins\\u0065rt\",{" ED ",\"group_id\":1,\"primary_hash\":\"h\"},{" TS ",\"is_new_group_environment\":true}]", "an escaped operation");
	same(with, without, "[2,\"upsert\",{" ED ",\"group_id\":1,\"primary_hash\":\"h\"},{" TS ",\"is_new_group_environment\":true}]", "an unknown operation");
	same(with, without, "[2,\"end_merge\",{}]", "a replacement");
	same(with, without, "[1,\"end_merge\",{}]", "a version 2 operation in version 1");
	same(with, without, "[2]", "no operation");
	same(with, without, "{\"event_id\":\"" EID "\",\"is_new\":true}", "an object");

	/* the group_states header, read directly when it is plain */
	{
		static const char *const gs[] = {
			"[{\"id\":5,\"is_new\":false,\"is_regression\":true,\"is_new_group_environment\":false}]",
			"[]", "[{\"id\":5}]", "[{\"id\":5,\"is_new\":false,\"is_regression\":true,"
			"\"is_new_group_environment\":false,\"is_new\":true}]", "{}", "[1,2]", "nul",
			"[{\"id\":5,\"is_new\":false,\"is_regression\":true,\"is_new_group_environment\":0}]",
		};

		for (size_t i = 0; i < sizeof(gs) / sizeof(gs[0]); i++)
		{
			sr_header	hs[] = {
				{"version", 7, "2", 1}, {"operation", 9, "insert", 6},
				{"event_id", 8, EID, 32}, {"project_id", 10, "7", 1},
				{"skip_consume", 12, "0", 1}, {"is_new", 6, "1", 1},
				{"is_regression", 13, "0", 1}, {"is_new_group_environment", 24, "1", 1},
				{"group_states", 12, gs[i], strlen(gs[i])},
			};

			snprintf(m, sizeof(m), "[2,\"insert\",{" ED "},{" TS "}]");
			same_hdr(with, without, m, hs, sizeof(hs) / sizeof(hs[0]), gs[i]);
		}
	}

	/* and the fast path's own output, checked against known values */
	snprintf(m, sizeof(m), "[2,\"insert\",{\"event_id\":\"" EID "\",\"project_id\":123456789,"
			 "\"group_id\":9,\"primary_hash\":null,\"data\":{\"x\":[1,2]}},{\"is_new\":false,"
			 "\"is_regression\":true,\"is_new_group_environment\":null,"
			 "\"group_states\":[{\"id\":\"9\", \"is_new\":true,\"is_regression\":false,"
			 "\"is_new_group_environment\":true}]}]");
	ok(sr_decode_event(with, m, strlen(m), NULL, 0, &job, &err) == SR_DECODE_JOB &&
	   strcmp(job.cache_key, "e:" EID ":123456789") == 0 && job.group_id == 9 &&
	   job.is_new == SR_FLAG_FALSE && job.is_regression == SR_FLAG_TRUE &&
	   job.is_new_group_environment == SR_FLAG_NULL && job.queue == NULL &&
	   strcmp(job.group_states, "[{\"id\":\"9\", \"is_new\":true,\"is_regression\":false,"
			  "\"is_new_group_environment\":true}]") == 0,
	   "the fast path's job: cache key, group id, flags, no queue, group states as sent");
#undef ED
#undef TS
	sr_decoder_destroy(with);
	sr_decoder_destroy(without);
}

static void
test_decoder(void)
{
	sr_decoder *with = sr_decoder_create(1 << 20);
	sr_decoder *without = sr_decoder_create(1 << 20);
	char		pad[600];
	char		m[2048];

	with->skim_min = 1;
	without->skim_min = 0;
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

/*
 * UTF-8 and NUL: the skim checks them itself, so that a skimmed message
 * skips sr_check_text.  It must accept exactly what sr_check_text accepts,
 * and a message it refuses must get sr_check_text's error.
 */
static void
test_utf8(void)
{
	static const struct
	{
		const char *s;
		size_t		len;
		bool		valid;			/* the skim accepts it */
		const char *what;
		bool		parses;			/* json-c parses it (see below) */
	}			cases[] = {
		{"[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 0123456789abcdef\"]", 0, true, "2, 3 and 4-byte sequences", false},
		{"[\"\xc3\"]", 0, false, "a truncated sequence before the quote", false},
		{"[\"0123456789abcdef\xc0\xaf\"]", 0, false, "an overlong form", false},
		{"[\"\xed\xa0\x80\"]", 0, false, "a UTF-16 surrogate", false},
		{"[\"\xf4\x90\x80\x80\"]", 0, false, "above U+10FFFF", false},
		{"[\"\x80\"]", 0, false, "a lone continuation byte", false},
		{"[\"\xff\"]", 0, false, "0xff", false},
		{"[1,\xc3\xa9]", 0, false, "non-ASCII outside a string", false},
		{"[\"a\0b\"]", 7, false, "a NUL byte in a string", false},
		{"[1,\0]", 6, false, "a NUL byte outside a string", false},
		{"[\"0123456789abcdef0123456789abcdef\x1f\"]", 0, false, "a control byte after 32 plain ones", false},
		{"[\"0123456789abcdef0123456789abcdef\x7f\"]", 0, true, "DEL is plain", false},
	};
	sr_decoder *with = sr_decoder_create(1 << 20);
	sr_decoder *without = sr_decoder_create(1 << 20);
	char		m[512];

	with->skim_min = 1;
	without->skim_min = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		size_t		len = cases[i].len ? cases[i].len : strlen(cases[i].s);
		sr_skim_span d[4];
		int			n;
		sr_job		a,
					b;
		sr_error	ea,
					eb;
		sr_decode_status sa,
					sb;

		ok(sr_json_skim(cases[i].s, len, keep, 16, d, 4, &n, NULL) == cases[i].valid,
		   "the skim %s %s", cases[i].valid ? "accepts" : "refuses", cases[i].what);

		/* the same bytes as the event id of an insert, whole and skimmed */
		{
			static const char head[] = "[2,\"insert\",{\"project_id\":1,\"event_id\":";
			static const char tail[] = "},{\"is_new\":true,\"is_regression\":true}]";
			size_t		mlen = strlen(head) + len + strlen(tail);

			memcpy(m, head, strlen(head));
			memcpy(m + strlen(head), cases[i].s, len);
			memcpy(m + strlen(head) + len, tail, strlen(tail));
			sa = sr_decode_event(with, m, mlen, NULL, 0, &a, &ea);
			sb = sr_decode_event(without, m, mlen, NULL, 0, &b, &eb);
		}
		/*
		 * An array is never a valid event id, so every case is an error: a
		 * wrong type where the text parses.  (json-c would take a raw
		 * control byte in a string; the strict check before it does not.)
		 */
		ok(sa == sb && sa == SR_DECODE_ERROR && ea.cls == eb.cls &&
		   strcmp(ea.message, eb.message) == 0 &&
		   (ea.cls == SR_ERR_WRONG_TYPE) == (cases[i].valid || cases[i].parses),
		   "the same error with and without the skim: %s (%s)", cases[i].what, eb.message);
	}
	sr_decoder_destroy(with);
	sr_decoder_destroy(without);
}

int
main(void)
{
	test_drops();
	test_declines();
	test_decoder();
	test_fast();
	test_utf8();
	return tap_done();
}
