/*
 * fuzz_event.c - libFuzzer target for sr_decode_event.
 *
 * Input layout: a header block (see fuzz_headers) then the message body.
 * Checks that every outcome is well formed: an error has a class and a
 * UTF-8 message; a job has UTF-8 strings, its cache key, and group_states
 * that is JSON jsonb can hold.
 */
#include <json-c/json.h>

#include "fuzz_common.h"
#include "json_text.h"

static sr_decoder *fuzz_dec;

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_cursor c = {data, size};
	sr_header	hs[16];
	size_t		nh;
	const uint8_t *body;
	size_t		blen;
	sr_job		job;
	sr_error	err;
	sr_decode_status st;

	if (fuzz_dec == NULL)
	{
		fuzz_dec = sr_decoder_create(1024 * 1024);
		if (fuzz_dec == NULL)
			abort();
	}
	nh = fuzz_headers(&c, hs);
	blen = fuzz_take(&c, c.n, &body);

	st = sr_decode_event(fuzz_dec, body, blen, hs, nh, &job, &err);
	switch (st)
	{
		case SR_DECODE_ERROR:
			fuzz_check_error(&err);
			break;
		case SR_DECODE_SKIP:
			if (job.operation == NULL || (job.version != 1 && job.version != 2))
				abort();
			break;
		case SR_DECODE_JOB:
			if (job.event_id == NULL || job.cache_key == NULL ||
				strncmp(job.cache_key, "e:", 2) != 0 ||
				strncmp(job.cache_key + 2, job.event_id, strlen(job.event_id)) != 0)
				abort();
			fuzz_check_text(job.event_id);
			fuzz_check_text(job.primary_hash);
			fuzz_check_text(job.occurrence_id);
			fuzz_check_text(job.queue);
			fuzz_check_text(job.group_states);
			if (job.group_states != NULL)
			{
				struct json_object *gs = json_tokener_parse(job.group_states);

				/* "null" is no group_states: the decoder gives SQL NULL */
				if (gs == NULL ||
					!sr_json_jsonb_safe(job.group_states, strlen(job.group_states)))
					abort();
				json_object_put(gs);
			}
			break;
		default:
			abort();
	}
	return 0;
}
