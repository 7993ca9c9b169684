/*
 * fuzz_commit_log.c - libFuzzer target for sr_decode_commit_log.
 *
 * Input layout: a key-length byte (255 = null key), the key, a header block
 * (see fuzz_headers), then the value.  Checks that errors are well formed
 * and that a decoded entry has a non-empty topic and group and a
 * non-negative partition and offset.
 */
#include "fuzz_common.h"

static sr_decoder *fuzz_dec;

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_cursor c = {data, size};
	sr_header	hs[16];
	size_t		nh;
	const uint8_t *key = NULL,
			   *value;
	size_t		klen = 0,
				vlen;
	int			kl;
	sr_commit	cl;
	sr_error	err;

	if (fuzz_dec == NULL)
	{
		fuzz_dec = sr_decoder_create(1024 * 1024);
		if (fuzz_dec == NULL)
			abort();
	}
	kl = fuzz_byte(&c);
	if (kl >= 0 && kl != 255)
		klen = fuzz_take(&c, (size_t) kl, &key);
	nh = fuzz_headers(&c, hs);
	vlen = fuzz_take(&c, c.n, &value);

	switch (sr_decode_commit_log(fuzz_dec, key, klen, value, vlen, hs, nh, &cl, &err))
	{
		case SR_DECODE_ERROR:
			fuzz_check_error(&err);
			break;
		case SR_DECODE_JOB:
			if (cl.topic == NULL || cl.topic[0] == '\0' || cl.group == NULL ||
				cl.group[0] == '\0' || cl.partition < 0 || cl.offset < 0)
				abort();
			fuzz_check_text(cl.topic);
			fuzz_check_text(cl.group);
			if ((cl.has_orig_message_ts && cl.orig_message_ts_us < 0) ||
				(cl.has_received_p99 && cl.received_p99_us < 0))
				abort();
			break;
		default:
			abort();
	}
	return 0;
}
