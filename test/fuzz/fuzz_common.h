/*
 * fuzz_common.h - shared helpers of the libFuzzer targets: a cursor over the
 * fuzz input, and invariant checks on decoder output.  A violated invariant
 * aborts, so libFuzzer records the input as a crash.
 */
#ifndef SR_FUZZ_COMMON_H
#define SR_FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

typedef struct fuzz_cursor
{
	const uint8_t *p;
	size_t		n;
} fuzz_cursor;

static inline int
fuzz_byte(fuzz_cursor *c)
{
	if (c->n == 0)
		return -1;
	c->n--;
	return *c->p++;
}

/* Take up to len bytes; returns how many were taken. */
static inline size_t
fuzz_take(fuzz_cursor *c, size_t len, const uint8_t **out)
{
	if (len > c->n)
		len = c->n;
	*out = c->p;
	c->p += len;
	c->n -= len;
	return len;
}

/*
 * Read up to 15 headers: count byte, then per header a name-length byte,
 * the name, a value-length byte (255 = null value) and the value.
 */
static inline size_t
fuzz_headers(fuzz_cursor *c, sr_header *hs)
{
	int			n = fuzz_byte(c);
	size_t		count = 0;

	if (n < 0)
		return 0;
	n &= 15;
	for (int i = 0; i < n && c->n > 0; i++)
	{
		const uint8_t *name,
				   *value;
		int			nl = fuzz_byte(c);
		int			vl;

		hs[count].name_len = fuzz_take(c, nl < 0 ? 0 : (size_t) nl, &name);
		hs[count].name = (const char *) name;
		vl = fuzz_byte(c);
		if (vl == 255 || vl < 0)
		{
			hs[count].value = NULL;
			hs[count].value_len = 0;
		}
		else
		{
			hs[count].value_len = fuzz_take(c, (size_t) vl, &value);
			hs[count].value = value;
		}
		count++;
	}
	return count;
}

static inline void
fuzz_check_text(const char *s)
{
	if (s != NULL && !sr_utf8_valid((const unsigned char *) s, strlen(s)))
		abort();
}

static inline void
fuzz_check_error(const sr_error *err)
{
	if (err->cls <= SR_OK || err->cls >= SR_ERR__COUNT)
		abort();
	if (err->message[0] == '\0' ||
		memchr(err->message, '\0', sizeof(err->message)) == NULL)
		abort();
	fuzz_check_text(err->message);
}

#endif
