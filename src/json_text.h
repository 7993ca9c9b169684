/*
 * json_text.h - JSON read as text: a strict RFC 8259 check, a member's value
 * span, a string's or an integer's value from its text, and whether a
 * value's text fits PostgreSQL's jsonb (see json_text.c).  Pure C.
 */
#ifndef SR_JSON_TEXT_H
#define SR_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json_skim.h"

/* sr_json_validate results */
#define SR_JV_OK 0
#define SR_JV_INVALID 1
#define SR_JV_TOO_DEEP 2

/*
 * Check buf[0..len), already known to be UTF-8, as one strict JSON document
 * (RFC 8259: no NaN, no raw control character in a string, no "1." or
 * "01") nested at most max_depth levels.  On failure *at is the byte
 * position of the problem and *why says what it is.
 */
extern int	sr_json_validate(const char *buf, size_t len, int max_depth,
							 size_t *at, const char **why);

/*
 * The span of the value of the last member called name (compared after
 * unescaping) of element index of the top-level array, which must be an
 * object.  False if there is none.  buf must be valid JSON.
 */
extern bool sr_json_member_span(const char *buf, size_t len, int index,
								const char *name, sr_skim_span *out);

/* sr_json_string_value problems */
#define SR_JS_OK 0
#define SR_JS_NUL 1				/* a \u0000 escape */
#define SR_JS_SURROGATE 2		/* half of a surrogate pair */

/*
 * The value of the JSON string whose text (quotes included) is
 * span[0..len), written to out (room for len bytes); *outlen is its length.
 * Returns SR_JS_OK, or the first problem that text cannot hold.
 */
extern int	sr_json_string_value(const char *span, size_t len, char *out,
								 size_t *outlen);

/* True if jsonb_in would accept this valid JSON text. */
extern bool sr_json_jsonb_safe(const char *buf, size_t len);

#endif							/* SR_JSON_TEXT_H */
