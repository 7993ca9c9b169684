/*
 * test_row.c - unit tests of job_row.c: a decoded job as a row of COPY's
 * binary format, read back field by field.  The same rows go into
 * sentry_relay.jobs in the TAP tests (033 compares what the table holds).
 */
#include <stdint.h>
#include <string.h>

#include "decode.h"
#include "job_row.h"
#include "tap.h"

/* A reader over one row: each field as a length and a pointer. */
typedef struct row_reader
{
	const unsigned char *p;
	const unsigned char *end;
} row_reader;

static uint32_t
be32(const unsigned char *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

static int64_t
be64(const unsigned char *p)
{
	return (int64_t) (((uint64_t) be32(p) << 32) | be32(p + 4));
}

/* The next field: its length (-1 for NULL), with *val at its bytes. */
static int32_t
next_field(row_reader *r, const unsigned char **val)
{
	int32_t		len;

	if (r->end - r->p < 4)
		return -2;
	len = (int32_t) be32(r->p);
	r->p += 4;
	*val = r->p;
	if (len > 0)
	{
		if (r->end - r->p < len)
			return -2;
		r->p += len;
	}
	return len;
}

static int
text_is(row_reader *r, const char *want)
{
	const unsigned char *v;
	int32_t		len = next_field(r, &v);

	if (want == NULL)
		return len == -1;
	return len == (int32_t) strlen(want) && memcmp(v, want, len) == 0;
}

static int
int_is(row_reader *r, int width, int64_t want)
{
	const unsigned char *v;
	int32_t		len = next_field(r, &v);

	if (len != width)
		return 0;
	return width == 4 ? (int32_t) be32(v) == want : be64(v) == want;
}

static int
bool_is(row_reader *r, int want)
{
	const unsigned char *v;

	return next_field(r, &v) == 1 && v[0] == want;
}

static int
is_null(row_reader *r)
{
	const unsigned char *v;

	return next_field(r, &v) == -1;
}

/* Write a row into a buffer with guard bytes after it; check the guard. */
static size_t
write_row(unsigned char *buf, size_t cap, const sr_row_ctx *ctx, int32_t partition,
		  int64_t offset, const sr_job *job, int has_ts, int64_t ts,
		  const void *body, size_t body_len, int *guard_ok)
{
	size_t		n = sr_job_row_size(ctx, job, has_ts, body, body_len);

	memset(buf, 0xA5, cap);
	if (n == 0 || n + 16 > cap)
		return n;
	sr_job_row_write((char *) buf, ctx, partition, offset, job, has_ts, ts, body, body_len);
	*guard_ok = 1;
	for (size_t i = n; i < n + 16; i++)
		if (buf[i] != 0xA5)
			*guard_ok = 0;
	return n;
}

static void
test_full_row(void)
{
	sr_row_ctx	ctx = {"s1", "events", "error", false};
	sr_job		job;
	unsigned char buf[1024];
	row_reader	r;
	int			guard = 0;
	size_t		n;

	memset(&job, 0, sizeof(job));
	job.queue = "post_process_errors";
	job.project_id = 42;
	job.has_group_id = true;
	job.group_id = 9007199254740993LL;
	strcpy(job.event_id, "00112233445566778899aabbccddeeff");
	job.primary_hash = "abc";
	job.group_states = "[{\"id\":1}]";
	job.occurrence_id = NULL;
	strcpy(job.cache_key, "e:00112233445566778899aabbccddeeff:42");
	job.is_new = true;
	job.is_regression = false;
	job.is_new_group_environment = true;

	n = write_row(buf, sizeof(buf), &ctx, 7, 123456789012LL, &job, 1,
				  sr_job_row_timestamp(946684800123LL), "body", 4, &guard);
	ok(n > 0 && guard, "the row is exactly sr_job_row_size bytes (%zu)", n);
	r.p = buf;
	r.end = buf + n;
	ok(be32(buf) >> 16 == SR_JOB_NCOLUMNS, "it starts with the field count");
	r.p += 2;
	ok(text_is(&r, "s1") && text_is(&r, "events") && text_is(&r, "error"),
	   "stream, topic and eventstream_type come from the stream");
	ok(int_is(&r, 4, 7) && int_is(&r, 8, 123456789012LL), "partition (int4) and offset (int8)");
	ok(text_is(&r, "post_process_errors"), "queue");
	ok(int_is(&r, 8, 42) && int_is(&r, 8, 9007199254740993LL), "project_id and group_id, past 2^53");
	ok(text_is(&r, "00112233445566778899aabbccddeeff") && text_is(&r, "abc"),
	   "event_id and primary_hash");
	ok(bool_is(&r, 1) && bool_is(&r, 0) && bool_is(&r, 1), "the three flags");
	{
		const unsigned char *v;
		int32_t		len = next_field(&r, &v);

		ok(len == 11 && v[0] == 1 && memcmp(v + 1, "[{\"id\":1}]", 10) == 0,
		   "group_states as jsonb: version byte 1, then the text");
	}
	ok(is_null(&r), "occurrence_id NULL");
	ok(text_is(&r, "e:00112233445566778899aabbccddeeff:42"), "cache_key");
	ok(int_is(&r, 8, 123000), "message_timestamp in microseconds since 2000-01-01");
	ok(is_null(&r), "no body unless the stream keeps bodies");
	ok(r.p == r.end, "nothing follows the last field");
}

static void
test_nulls_and_body(void)
{
	sr_row_ctx	ctx = {"stream", "t", "transaction", true};
	sr_job		job;
	unsigned char buf[512];
	row_reader	r;
	int			guard = 0;
	size_t		n;
	const unsigned char *v;

	memset(&job, 0, sizeof(job));
	job.queue = "q";
	job.has_group_id = false;
	strcpy(job.event_id, "ffffffffffffffffffffffffffffffff");
	strcpy(job.cache_key, "k");

	n = write_row(buf, sizeof(buf), &ctx, 0, 0, &job, 0, 0, "{\"a\":1}", 7, &guard);
	ok(n > 0 && guard, "a row with NULLs is exactly its size (%zu)", n);
	r.p = buf + 2;
	r.end = buf + n;
	(void) text_is(&r, "stream");
	(void) text_is(&r, "t");
	(void) text_is(&r, "transaction");
	(void) next_field(&r, &v);
	(void) next_field(&r, &v);
	(void) next_field(&r, &v);
	(void) next_field(&r, &v);
	ok(is_null(&r), "group_id NULL without a group");
	(void) next_field(&r, &v);
	ok(is_null(&r), "primary_hash NULL");
	(void) next_field(&r, &v);
	(void) next_field(&r, &v);
	(void) next_field(&r, &v);
	ok(is_null(&r), "group_states NULL");
	ok(is_null(&r), "occurrence_id NULL");
	(void) next_field(&r, &v);
	ok(is_null(&r), "message_timestamp NULL without a Kafka timestamp");
	ok(next_field(&r, &v) == 7 && memcmp(v, "{\"a\":1}", 7) == 0,
	   "the body, kept by the stream");
	ok(r.p == r.end, "nothing follows the body");

	n = write_row(buf, sizeof(buf), &ctx, 0, 0, &job, 0, 0, NULL, 0, &guard);
	r.p = buf + n - 4;
	r.end = buf + n;
	ok(n > 0 && is_null(&r), "a null message value is a NULL body");
}

static void
test_limits(void)
{
	sr_row_ctx	ctx = {"s", "t", "error", true};
	sr_job		job;

	memset(&job, 0, sizeof(job));
	job.queue = "q";
	ok(sr_job_row_size(&ctx, &job, true, "x", SR_JOB_FIELD_MAX + 1) == 0,
	   "a body over PostgreSQL's largest value makes no row");
	ok(sr_job_row_size(&ctx, &job, true, "x", 1) > 0, "a small body does");
	ctx.keep_body = false;
	ok(sr_job_row_size(&ctx, &job, true, "x", SR_JOB_FIELD_MAX + 1) > 0,
	   "the body's size does not matter when the stream drops bodies");
	ok(sr_job_row_timestamp(946684800000LL) == 0 &&
	   sr_job_row_timestamp(0) == -INT64_C(946684800000000),
	   "Kafka timestamps convert to PostgreSQL's epoch");
}

/* A real message, decoded, then written: the decoder's strings carry over. */
static void
test_decoded(void)
{
	const char *msg = "[2, \"insert\", {\"group_id\": 43, \"event_id\": "
		"\"fe0ee9a2bc3b415497bad68aaf70dc7f\", \"organization_id\": 1, "
		"\"project_id\": 1, \"primary_hash\": \"311ee66a5b8e697929804ceb1c456ffe\", "
		"\"data\": {\"received\": 1}}, {\"is_new\": false, \"is_regression\": false, "
		"\"is_new_group_environment\": false, \"skip_consume\": false, "
		"\"group_states\": [{\"id\": 43, \"is_new\": false, \"is_regression\": false, "
		"\"is_new_group_environment\": false}]}]";
	sr_decoder *dec = sr_decoder_create(SR_DEFAULT_MAX_MESSAGE_BYTES);
	sr_row_ctx	ctx = {"s", "events", "error", false};
	sr_job		job;
	sr_error	err;
	unsigned char buf[2048];
	row_reader	r;
	int			guard = 0;
	size_t		n;
	const unsigned char *v;

	ok(dec != NULL && sr_decode_event(dec, msg, strlen(msg), NULL, 0, &job, &err) == SR_DECODE_JOB,
	   "the sample message decodes to a job");
	n = write_row(buf, sizeof(buf), &ctx, 3, 10, &job, 0, 0, msg, strlen(msg), &guard);
	ok(n > 0 && guard, "its row is exactly its size");
	r.p = buf + 2;
	r.end = buf + n;
	for (int i = 0; i < 6; i++)
		(void) next_field(&r, &v);
	ok(int_is(&r, 8, 1) && int_is(&r, 8, 43), "project_id and group_id from the body");
	ok(text_is(&r, "fe0ee9a2bc3b415497bad68aaf70dc7f"), "event_id from the body");
	sr_decoder_destroy(dec);
}

int
main(void)
{
	test_full_row();
	test_nulls_and_body();
	test_limits();
	test_decoded();
	return tap_done();
}
