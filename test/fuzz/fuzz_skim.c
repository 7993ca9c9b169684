/*
 * fuzz_skim.c - differential libFuzzer target for the skim fast path
 * (src/json_skim.c).  Each input is decoded twice, by a decoder that skims
 * every message and by one that never does; the results must be identical:
 * status, error class and message, and every field of the job.  A
 * difference means the skim accepted JSON that json-c rejects, or dropped a
 * value the decoder reads.
 */
#include <stdio.h>

#include "fuzz_common.h"
#include "decode_internal.h"	/* skim_min: the skim on or off */

static sr_decoder *fuzz_skim_dec;
static sr_decoder *fuzz_whole_dec;

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_same_str(const char *a, const char *b, const char *what)
{
	if ((a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0))
	{
		fprintf(stderr, "skim and whole parse differ in %s: %s / %s\n", what,
				a ? a : "NULL", b ? b : "NULL");
		abort();
	}
}

static void
fuzz_same(bool same, const char *what)
{
	if (!same)
	{
		fprintf(stderr, "skim and whole parse differ in %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_cursor c = {data, size};
	sr_header	hs[16];
	size_t		nh;
	const uint8_t *body;
	size_t		blen;
	sr_job		a,
				b;
	sr_error	ea,
				eb;
	sr_decode_status sa,
				sb;

	if (fuzz_skim_dec == NULL)
	{
		fuzz_skim_dec = sr_decoder_create(1024 * 1024);
		fuzz_whole_dec = sr_decoder_create(1024 * 1024);
		if (fuzz_skim_dec == NULL || fuzz_whole_dec == NULL)
			abort();
		fuzz_skim_dec->skim_min = 1;
		fuzz_whole_dec->skim_min = 0;
	}
	nh = fuzz_headers(&c, hs);
	blen = fuzz_take(&c, c.n, &body);

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	sa = sr_decode_event(fuzz_skim_dec, body, blen, hs, nh, &a, &ea);
	sb = sr_decode_event(fuzz_whole_dec, body, blen, hs, nh, &b, &eb);
	fuzz_same(sa == sb, "status");
	if (sa == SR_DECODE_ERROR)
	{
		fuzz_same(ea.cls == eb.cls, "error class");
		fuzz_same_str(ea.message, eb.message, "error message");
		return 0;
	}
	fuzz_same(a.version == b.version, "version");
	fuzz_same_str(a.operation, b.operation, "operation");
	fuzz_same(a.skip_consume == b.skip_consume, "skip_consume");
	if (sa == SR_DECODE_SKIP)
		return 0;
	fuzz_same(a.source == b.source, "source");
	fuzz_same(a.project_id == b.project_id, "project_id");
	fuzz_same(a.has_group_id == b.has_group_id, "has_group_id");
	fuzz_same(!a.has_group_id || a.group_id == b.group_id, "group_id");
	fuzz_same_str(a.event_id, b.event_id, "event_id");
	fuzz_same_str(a.primary_hash, b.primary_hash, "primary_hash");
	fuzz_same_str(a.group_states, b.group_states, "group_states");
	fuzz_same_str(a.occurrence_id, b.occurrence_id, "occurrence_id");
	fuzz_same_str(a.queue, b.queue, "queue");
	fuzz_same_str(a.cache_key, b.cache_key, "cache_key");
	fuzz_same(a.is_new == b.is_new && a.is_regression == b.is_regression &&
			  a.is_new_group_environment == b.is_new_group_environment, "flags");
	return 0;
}
