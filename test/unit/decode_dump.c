/*
 * decode_dump.c - decode every message of a cases file with sr_decode_event
 * and print one JSON line per message, for the differential test against
 * the Python reference decoder (test/t/076_decoder_differential.pl,
 * test/reference/differential.py).  Links the pure decoder only.
 *
 *   decode_dump CASES
 *
 * CASES is a sequence of records: a 4-byte big-endian length word, then the
 * record's bytes.
 *
 *   - Length word below 2^31: the record is in the fuzz_event layout, read by
 *     fuzz_headers() of test/fuzz/fuzz_common.h itself (a count byte & 15,
 *     per header a name-length byte, the name, a value-length byte with 255
 *     for a null value, the value; the rest is the body).  A fuzz corpus file
 *     is such a record as it is.
 *   - Length word with bit 31 set: the escape for what that layout cannot
 *     hold (values over 254 bytes, more than 15 headers, a message without a
 *     value).  The record is (word & 0x7fffffff) bytes of: a flags byte (bit
 *     0: the message has no value), a 2-byte header count, per header a
 *     4-byte name length, the name, a 4-byte value length (0xffffffff: a null
 *     value) and the value, all big-endian; the rest is the body.
 *
 * Each output line:
 *   {"result": "job"|"skip"|"error", "error_class": name or null,
 *    "error": message or null, "job": {...} or null}
 * with, for a job, every sr_job field: version, operation, skip_consume,
 * source ("headers"|"body"), project_id, group_id (null without one),
 * event_id, primary_hash, occurrence_id, queue, cache_key, the three flags as
 * true/false/null, and group_states as its raw JSON text in
 * "group_states_text" (null when NULL).  A skip's "job" has version,
 * operation and skip_consume.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "decode.h"
#include "../fuzz/fuzz_common.h"

#define DUMP_EXTENDED 0x80000000u
#define DUMP_NULL_VALUE 0xffffffffu

static uint32_t
be32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}

static json_object *
str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static json_object *
flag(sr_flag f)
{
	return f == SR_FLAG_NULL ? NULL : json_object_new_boolean(f == SR_FLAG_TRUE);
}

static json_object *
job_object(const sr_job *job)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "version", json_object_new_int(job->version));
	json_object_object_add(o, "operation", str_or_null(job->operation));
	json_object_object_add(o, "skip_consume", json_object_new_boolean(job->skip_consume));
	json_object_object_add(o, "source",
						   json_object_new_string(job->source == SR_SOURCE_HEADERS ? "headers" : "body"));
	json_object_object_add(o, "project_id", json_object_new_int64(job->project_id));
	json_object_object_add(o, "group_id",
						   job->has_group_id ? json_object_new_int64(job->group_id) : NULL);
	json_object_object_add(o, "event_id", str_or_null(job->event_id));
	json_object_object_add(o, "primary_hash", str_or_null(job->primary_hash));
	json_object_object_add(o, "group_states_text", str_or_null(job->group_states));
	json_object_object_add(o, "occurrence_id", str_or_null(job->occurrence_id));
	json_object_object_add(o, "queue", str_or_null(job->queue));
	json_object_object_add(o, "cache_key", str_or_null(job->cache_key));
	json_object_object_add(o, "is_new", flag(job->is_new));
	json_object_object_add(o, "is_regression", flag(job->is_regression));
	json_object_object_add(o, "is_new_group_environment", flag(job->is_new_group_environment));
	return o;
}

/* The headers and body of an extended record; false if it is malformed. */
static bool
extended_record(const uint8_t *p, size_t n, sr_header **hs, size_t *nh,
				const void **body, size_t *blen)
{
	size_t		pos = 3,
				count;

	if (n < 3)
		return false;
	count = ((size_t) p[1] << 8) | p[2];
	*hs = calloc(count ? count : 1, sizeof(sr_header));
	if (*hs == NULL)
		return false;
	for (size_t i = 0; i < count; i++)
	{
		uint32_t	nl,
					vl;

		if (n - pos < 4 || (nl = be32(p + pos)) > n - pos - 4)
			return false;
		(*hs)[i].name = (const char *) p + pos + 4;
		(*hs)[i].name_len = nl;
		pos += 4 + (size_t) nl;
		if (n - pos < 4)
			return false;
		vl = be32(p + pos);
		pos += 4;
		if (vl == DUMP_NULL_VALUE)
		{
			(*hs)[i].value = NULL;
			(*hs)[i].value_len = 0;
			continue;
		}
		if (vl > n - pos)
			return false;
		(*hs)[i].value = p + pos;
		(*hs)[i].value_len = vl;
		pos += vl;
	}
	*nh = count;
	*body = (p[0] & 1) ? NULL : (const void *) (p + pos);
	*blen = (p[0] & 1) ? 0 : n - pos;
	return true;
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	uint8_t    *buf = NULL;
	size_t		cap = 0,
				n = 0;

	if (f == NULL)
		return NULL;
	for (;;)
	{
		size_t		got;

		if (n == cap)
		{
			uint8_t    *nb;

			cap = cap ? cap * 2 : 1 << 20;
			nb = realloc(buf, cap);
			if (nb == NULL)
			{
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f))
	{
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

int
main(int argc, char **argv)
{
	uint8_t    *data;
	size_t		len,
				pos = 0,
				records = 0;
	sr_decoder *dec;

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s CASES\n", argv[0]);
		return 2;
	}
	data = slurp(argv[1], &len);
	if (data == NULL)
	{
		perror(argv[1]);
		return 2;
	}
	dec = sr_decoder_create(25000000);
	if (dec == NULL)
	{
		fprintf(stderr, "out of memory\n");
		return 2;
	}
	while (pos < len)
	{
		uint32_t	word;
		size_t		rlen;
		const uint8_t *rec;
		sr_header	fuzz_hs[16];
		sr_header  *hs = fuzz_hs,
				   *ext_hs = NULL;
		size_t		nh;
		const void *body;
		size_t		blen;
		sr_job		job;
		sr_error	err;
		sr_decode_status st;
		json_object *line;

		if (len - pos < 4)
		{
			fprintf(stderr, "%s: truncated length word at byte %zu\n", argv[1], pos);
			return 2;
		}
		word = be32(data + pos);
		rlen = word & ~DUMP_EXTENDED;
		if (rlen > len - pos - 4)
		{
			fprintf(stderr, "%s: truncated record at byte %zu\n", argv[1], pos);
			return 2;
		}
		rec = data + pos + 4;
		pos += 4 + rlen;
		if (word & DUMP_EXTENDED)
		{
			if (!extended_record(rec, rlen, &ext_hs, &nh, &body, &blen))
			{
				fprintf(stderr, "%s: malformed extended record %zu\n", argv[1], records);
				return 2;
			}
			hs = ext_hs;
		}
		else
		{
			fuzz_cursor c = {rec, rlen};
			const uint8_t *b;

			nh = fuzz_headers(&c, fuzz_hs);
			blen = fuzz_take(&c, c.n, &b);
			body = b;
		}

		memset(&job, 0, sizeof(job));
		memset(&err, 0, sizeof(err));
		st = sr_decode_event(dec, body, blen, hs, nh, &job, &err);

		line = json_object_new_object();
		switch (st)
		{
			case SR_DECODE_JOB:
				json_object_object_add(line, "result", json_object_new_string("job"));
				json_object_object_add(line, "error_class", NULL);
				json_object_object_add(line, "error", NULL);
				json_object_object_add(line, "job", job_object(&job));
				break;
			case SR_DECODE_SKIP:
				{
					json_object *j = json_object_new_object();

					json_object_object_add(j, "version", json_object_new_int(job.version));
					json_object_object_add(j, "operation", str_or_null(job.operation));
					json_object_object_add(j, "skip_consume", json_object_new_boolean(job.skip_consume));
					json_object_object_add(line, "result", json_object_new_string("skip"));
					json_object_object_add(line, "error_class", NULL);
					json_object_object_add(line, "error", NULL);
					json_object_object_add(line, "job", j);
				}
				break;
			case SR_DECODE_ERROR:
				err.message[sizeof(err.message) - 1] = '\0';
				json_object_object_add(line, "result", json_object_new_string("error"));
				json_object_object_add(line, "error_class",
									   json_object_new_string(sr_errclass_name(err.cls)));
				json_object_object_add(line, "error", json_object_new_string(err.message));
				json_object_object_add(line, "job", NULL);
				break;
			default:
				json_object_object_add(line, "result", json_object_new_string("bad_status"));
				json_object_object_add(line, "error_class", json_object_new_int((int) st));
				break;
		}
		fputs(json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN |
											 JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
		fputc('\n', stdout);
		json_object_put(line);
		free(ext_hs);
		records++;
	}
	sr_decoder_destroy(dec);
	free(data);
	if (fflush(stdout) != 0 || ferror(stdout))
	{
		perror("stdout");
		return 2;
	}
	return 0;
}
