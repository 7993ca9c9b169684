/*
 * decode_common.c - the decoder object, error reporting, the string arena,
 * input validation and typed field readers shared by both decoders, and the
 * known operations of each event version, which the event decoder and its
 * fast path both look up (so that decode_fast.c never calls back into
 * decode_event.c).
 *
 * Pure C over json-c: no PostgreSQL dependency, no exceptions.  Every
 * failure is reported through an sr_error.
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_internal.h"
#include "json_skim.h"
#include "json_text.h"

/* Timestamps must fall in [1970-01-01, 10000-01-01). */
#define SR_MAX_EPOCH_SECONDS INT64_C(253402300800)

static const struct
{
	const char *name;
	const char *sqlstate;
}			sr_errclasses[SR_ERR__COUNT] = {
	[SR_OK] = {"ok", "00000"},
	[SR_ERR_MESSAGE_TOO_LARGE] = {"message_too_large", "54000"},
	[SR_ERR_NESTING_TOO_DEEP] = {"nesting_too_deep", "54001"},
	[SR_ERR_INVALID_JSON] = {"invalid_json", "22032"},
	[SR_ERR_INVALID_UTF8] = {"invalid_utf8", "22021"},
	[SR_ERR_NUL_CHARACTER] = {"nul_character", "22P05"},
	[SR_ERR_WRONG_TYPE] = {"wrong_type", "22023"},
	[SR_ERR_MISSING_FIELD] = {"missing_field", "2203A"},
	[SR_ERR_OUT_OF_RANGE] = {"out_of_range", "22003"},
	[SR_ERR_INVALID_VALUE] = {"invalid_value", "22P02"},
	[SR_ERR_INVALID_TIMESTAMP] = {"invalid_timestamp", "22007"},
	[SR_ERR_UNSUPPORTED_VERSION] = {"unsupported_version", "0A000"},
	[SR_ERR_UNKNOWN_OPERATION] = {"unknown_operation", "0A000"},
	[SR_ERR_OUT_OF_MEMORY] = {"out_of_memory", "53200"},
};

static const char *const sr_v1_skip_ops[] = {
	"delete", "delete_groups", "merge", "unmerge", NULL
};

static const char *const sr_v2_skip_ops[] = {
	"start_delete_groups", "end_delete_groups",
	"start_merge", "end_merge",
	"start_unmerge", "end_unmerge",
	"start_unmerge_hierarchical", "end_unmerge_hierarchical",
	"start_delete_tag", "end_delete_tag",
	"tombstone_events", "replace_group", "exclude_groups",
	NULL
};

/*
 * The static name of a known operation of this version, or NULL: used by the
 * event decoder (decode_event.c) and its fast path (decode_fast.c).
 */
const char *
sr_event_lookup_op(int version, const char *op, size_t len)
{
	const char *const *list = version == 1 ? sr_v1_skip_ops : sr_v2_skip_ops;

	if (len == 6 && memcmp(op, "insert", 6) == 0)
		return "insert";
	for (; *list != NULL; list++)
		if (strlen(*list) == len && memcmp(*list, op, len) == 0)
			return *list;
	return NULL;
}

const char *
sr_errclass_name(sr_errclass cls)
{
	if ((int) cls < 0 || cls >= SR_ERR__COUNT)
		return "unknown";
	return sr_errclasses[cls].name;
}

const char *
sr_errclass_sqlstate(sr_errclass cls)
{
	if ((int) cls < 0 || cls >= SR_ERR__COUNT)
		return "XX000";
	return sr_errclasses[cls].sqlstate;
}

sr_decoder *
sr_decoder_create(size_t max_message_bytes)
{
	sr_decoder *dec = calloc(1, sizeof(sr_decoder));

	if (dec == NULL)
		return NULL;
	/* one level more than sr_json_validate allows: json-c counts objects one deeper */
	dec->tok = json_tokener_new_ex(SR_MAX_JSON_DEPTH + 1);
	if (dec->tok == NULL)
	{
		free(dec);
		return NULL;
	}
	json_tokener_set_flags(dec->tok, JSON_TOKENER_STRICT);
	dec->skim_min = SR_SKIM_MIN_MESSAGE;
	sr_decoder_set_max_message_bytes(dec, max_message_bytes);
	return dec;
}

void
sr_decoder_destroy(sr_decoder *dec)
{
	if (dec == NULL)
		return;
	json_tokener_free(dec->tok);
	free(dec->arena);
	free(dec->skim_buf);
	free(dec);
}

void
sr_decoder_set_max_message_bytes(sr_decoder *dec, size_t max)
{
	/* json-c takes an int length; keep well below it. */
	if (max == 0 || max > (size_t) INT_MAX / 2)
		max = (size_t) INT_MAX / 2;
	dec->max_message_bytes = max;
}

void
sr_set_error(sr_error *err, sr_errclass cls, const char *fmt, ...)
{
	va_list		ap;

	err->cls = cls;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/*
 * Copy a printable, bounded excerpt of untrusted text into dst, for use in
 * error messages: bytes outside printable ASCII become '?', so the result is
 * always valid UTF-8 whatever the input was.
 */
void
sr_excerpt(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t		max = 40;
	size_t		i,
				o = 0;

	if (dstlen == 0)
		return;
	for (i = 0; i < len && i < max && o + 1 < dstlen; i++)
	{
		unsigned char c = (unsigned char) s[i];

		dst[o++] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
	}
	if (i < len && o + 4 < dstlen)
	{
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

void
sr_arena_reset(sr_decoder *dec)
{
	dec->arena_len = 0;
}

/*
 * Append s[0..len), without a terminator, to the arena.  s may point into
 * the arena itself (a string already decoded, copied again).
 */
bool
sr_arena_append(sr_decoder *dec, const char *s, size_t len, sr_error *err)
{
	size_t		need = dec->arena_len + len + 1;	/* room for a NUL */
	uintptr_t	base = (uintptr_t) dec->arena;
	bool		inside = dec->arena != NULL && (uintptr_t) s >= base &&
		(uintptr_t) s < base + dec->arena_len;
	size_t		s_off = inside ? (size_t) ((uintptr_t) s - base) : 0;

	if (need < len)
		goto oom;
	if (need > dec->arena_cap)
	{
		size_t		cap = dec->arena_cap ? dec->arena_cap : 256;
		char	   *p;

		while (cap < need)
		{
			if (cap > SIZE_MAX / 2)
				goto oom;
			cap *= 2;
		}
		p = realloc(dec->arena, cap);
		if (p == NULL)
			goto oom;
		dec->arena = p;
		dec->arena_cap = cap;
		if (inside)
			s = dec->arena + s_off;
	}
	if (len > 0)
		memcpy(dec->arena + dec->arena_len, s, len);
	dec->arena_len += len;
	return true;

oom:
	sr_set_error(err, SR_ERR_OUT_OF_MEMORY, "out of memory while decoding");
	return false;
}

/* Append s[0..len) plus a NUL to the arena; *off receives its offset. */
bool
sr_arena_push(sr_decoder *dec, const char *s, size_t len, sr_aoff *off,
			  sr_error *err)
{
	size_t		start = dec->arena_len;

	if (!sr_arena_append(dec, s, len, err) ||
		!sr_arena_append(dec, "", 1, err))
		return false;
	*off = start;
	return true;
}

const char *
sr_arena_str(const sr_decoder *dec, sr_aoff off)
{
	return off == SR_ANULL ? NULL : dec->arena + off;
}

bool
sr_utf8_valid(const unsigned char *buf, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		size_t		l;

		if (buf[i] < 0x80)
		{
			i++;
			continue;
		}
		l = sr_utf8_seq_len(buf + i, len - i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

/* Check that buf is UTF-8 text without NUL bytes, in one pass. */
bool
sr_check_text(const char *what, const void *buf, size_t len, sr_error *err)
{
	const unsigned char *p = buf;
	size_t		i = 0;

	while (i < len)
	{
		size_t		l;

		/* eight plain ASCII bytes (no NUL, no high bit) at a time */
		while (len - i >= 8)
		{
			uint64_t	w;

			memcpy(&w, p + i, 8);
			if ((w & UINT64_C(0x8080808080808080)) != 0 ||
				((w - UINT64_C(0x0101010101010101)) & ~w & UINT64_C(0x8080808080808080)) != 0)
				break;
			i += 8;
		}
		if (i >= len)
			break;
		if (p[i] >= 0x80)
		{
			l = sr_utf8_seq_len(p + i, len - i);
			if (l == 0)
			{
				sr_set_error(err, SR_ERR_INVALID_UTF8,
							 "%s is not valid UTF-8 (bad byte 0x%02x at position %zu)",
							 what, p[i], i);
				return false;
			}
			i += l;
			continue;
		}
		if (p[i] == 0)
		{
			sr_set_error(err, SR_ERR_NUL_CHARACTER,
						 "%s contains a NUL byte at position %zu", what, i);
			return false;
		}
		i++;
	}
	return true;
}

/*
 * Parse buf as one strict JSON document (RFC 8259, checked by
 * sr_json_validate before json-c sees it).  The caller has already checked
 * size and text (sr_check_text).  Returns a new reference, or NULL with err
 * set.
 */
struct json_object *
sr_parse_json(sr_decoder *dec, const char *what, const char *buf, size_t len,
			  sr_error *err)
{
	struct json_object *obj;
	enum json_tokener_error jerr;
	bool		fed_end = false;
	size_t		at;
	const char *why;

	/* json-c accepts more than RFC 8259 (json_text.c): check first */
	switch (sr_json_validate(buf, len, SR_MAX_JSON_DEPTH, &at, &why))
	{
		case SR_JV_OK:
			break;
		case SR_JV_TOO_DEEP:
			sr_set_error(err, SR_ERR_NESTING_TOO_DEEP,
						 "%s is nested more than %d levels deep", what,
						 SR_MAX_JSON_DEPTH);
			return NULL;
		default:
			sr_set_error(err, SR_ERR_INVALID_JSON,
						 "%s is not valid JSON: %s at position %zu", what, why, at);
			return NULL;
	}
	json_tokener_reset(dec->tok);
	obj = json_tokener_parse_ex(dec->tok, buf, (int) len);
	jerr = json_tokener_get_error(dec->tok);
	if (obj == NULL && jerr == json_tokener_continue)
	{
		/* a bare scalar needs an explicit end of input; "" + NUL gives it */
		fed_end = true;
		obj = json_tokener_parse_ex(dec->tok, "", 1);
		jerr = json_tokener_get_error(dec->tok);
		if (obj == NULL && jerr == json_tokener_continue)
		{
			sr_set_error(err, SR_ERR_INVALID_JSON,
						 "%s is not valid JSON: unexpected end of input", what);
			return NULL;
		}
	}
	if (obj == NULL)
	{
		/* after the end-of-input feed, positions count from that feed */
		size_t		at = fed_end ? len : json_tokener_get_parse_end(dec->tok);

		if (jerr == json_tokener_error_depth)
			sr_set_error(err, SR_ERR_NESTING_TOO_DEEP,
						 "%s is nested more than %d levels deep", what,
						 SR_MAX_JSON_DEPTH);
		else if (jerr == json_tokener_error_parse_utf8_string)
			sr_set_error(err, SR_ERR_INVALID_UTF8,
						 "%s is not valid UTF-8", what);
		else if (jerr == json_tokener_success)
			/* "null" parses successfully to a NULL object */
			sr_set_error(err, SR_ERR_WRONG_TYPE,
						 "%s is JSON null", what);
		else
			sr_set_error(err, SR_ERR_INVALID_JSON,
						 "%s is not valid JSON: %s at position %zu", what,
						 json_tokener_error_desc(jerr), at);
		return NULL;
	}
	if (!fed_end && json_tokener_get_parse_end(dec->tok) < len)
	{
		size_t		at = json_tokener_get_parse_end(dec->tok);
		size_t		i;

		for (i = at; i < len; i++)
			if (!isspace((unsigned char) buf[i]))
				break;
		if (i < len)
		{
			json_object_put(obj);
			sr_set_error(err, SR_ERR_INVALID_JSON,
						 "%s is not valid JSON: unexpected data after the document at position %zu",
						 what, i);
			return NULL;
		}
	}
	return obj;
}

/* A non-negative JSON integer that fits in int64. */
bool
sr_json_int64(struct json_object *v, const char *field, int64_t *out,
			  sr_error *err)
{
	int64_t		i;

	if (v == NULL || !json_object_is_type(v, json_type_int))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "field \"%s\" must be an integer, not %s", field,
					 v == NULL ? "null" : json_type_to_name(json_object_get_type(v)));
		return false;
	}
	/* json-c clamps out-of-range integers; detect the clamp. */
	i = json_object_get_int64(v);
	if (i < 0 || (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t) INT64_MAX))
	{
		sr_set_error(err, SR_ERR_OUT_OF_RANGE,
					 "field \"%s\" is out of range: %s", field,
					 i < 0 ? "it must not be negative" : "it does not fit in 64 bits");
		return false;
	}
	*out = i;
	return true;
}

/* A JSON string that holds no NUL (from \u0000) and is valid UTF-8. */
bool
sr_json_string(struct json_object *v, const char *field, const char **s,
			   size_t *len, sr_error *err)
{
	const char *p;
	int			l;

	if (v == NULL || !json_object_is_type(v, json_type_string))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "field \"%s\" must be a string, not %s", field,
					 v == NULL ? "null" : json_type_to_name(json_object_get_type(v)));
		return false;
	}
	p = json_object_get_string(v);
	l = json_object_get_string_len(v);
	if (memchr(p, '\0', (size_t) l) != NULL)
	{
		sr_set_error(err, SR_ERR_NUL_CHARACTER,
					 "field \"%s\" contains a NUL character", field);
		return false;
	}
	/* escapes such as a lone \ud800 can decode to invalid UTF-8 */
	if (!sr_utf8_valid((const unsigned char *) p, (size_t) l))
	{
		sr_set_error(err, SR_ERR_INVALID_UTF8,
					 "field \"%s\" is not valid UTF-8", field);
		return false;
	}
	*s = p;
	*len = (size_t) l;
	return true;
}

/* A Unix timestamp in seconds, integer or fractional, to microseconds. */
bool
sr_json_timestamp(struct json_object *v, const char *field, int64_t *us,
				  sr_error *err)
{
	double		d;

	if (v != NULL && json_object_is_type(v, json_type_int))
	{
		int64_t		s;

		if (!sr_json_int64(v, field, &s, err))
			return false;
		d = (double) s;
	}
	else if (v != NULL && json_object_is_type(v, json_type_double))
		d = json_object_get_double(v);
	else
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "field \"%s\" must be a number of seconds, not %s", field,
					 v == NULL ? "null" : json_type_to_name(json_object_get_type(v)));
		return false;
	}
	if (!isfinite(d) || d < 0 || d >= (double) SR_MAX_EPOCH_SECONDS)
	{
		sr_set_error(err, SR_ERR_OUT_OF_RANGE,
					 "field \"%s\" is out of range: a timestamp must lie between 1970 and 9999",
					 field);
		return false;
	}
	*us = (int64_t) llround(d * 1000000.0);
	return true;
}

/* ASCII decimal digits only, non-negative, fitting in int64. */
bool
sr_parse_decimal(const char *s, size_t len, const char *field, int64_t *out,
				 sr_error *err)
{
	char		ex[64];
	uint64_t	v = 0;
	size_t		i;

	if (len > 0 && s[0] == '-')
	{
		bool		digits = len > 1;

		for (i = 1; i < len; i++)
			if (s[i] < '0' || s[i] > '9')
				digits = false;
		if (digits)
		{
			sr_set_error(err, SR_ERR_OUT_OF_RANGE,
						 "%s is out of range: it must not be negative", field);
			return false;
		}
	}
	for (i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			break;
		if (v > (uint64_t) INT64_MAX / 10 ||
			v * 10 + (uint64_t) (s[i] - '0') > (uint64_t) INT64_MAX)
		{
			/* keep scanning so that "99...9x" reports a syntax error */
			size_t		j;

			for (j = i; j < len && s[j] >= '0' && s[j] <= '9'; j++)
				;
			if (j == len)
			{
				sr_set_error(err, SR_ERR_OUT_OF_RANGE,
							 "%s is out of range: it does not fit in 64 bits", field);
				return false;
			}
			i = j;
			break;
		}
		v = v * 10 + (uint64_t) (s[i] - '0');
	}
	if (len == 0 || i < len)
	{
		sr_excerpt(ex, sizeof(ex), s, len);
		sr_set_error(err, SR_ERR_INVALID_VALUE,
					 "%s must be a decimal integer, not \"%s\"", field, ex);
		return false;
	}
	*out = (int64_t) v;
	return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t
sr_days_from_civil(int64_t y, int m, int d)
{
	int64_t		era;
	int64_t		yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool
sr_digits(const char *s, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/*
 * Parse Snuba's commit-log header timestamp, YYYY-MM-DDTHH:MM:SS[.ffffff]Z
 * (a +00:00 suffix is accepted in place of Z), to microseconds since 1970.
 */
bool
sr_parse_iso8601(const char *s, size_t len, const char *field, int64_t *us,
				 sr_error *err)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			y,
				mo,
				d,
				h,
				mi,
				se;
	int64_t		frac = 0;
	size_t		i = 19;
	char		ex[64];

	if (len < 20 || !sr_digits(s, 4, &y) || s[4] != '-' ||
		!sr_digits(s + 5, 2, &mo) || s[7] != '-' ||
		!sr_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != ' ') ||
		!sr_digits(s + 11, 2, &h) || s[13] != ':' ||
		!sr_digits(s + 14, 2, &mi) || s[16] != ':' ||
		!sr_digits(s + 17, 2, &se))
		goto bad;
	if (s[i] == '.')
	{
		int			n = 0;

		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++)
			if (n < 6)
				frac = frac * 10 + (s[i] - '0');
		if (n == 0 || n > 9)
			goto bad;
		for (; n < 6; n++)
			frac *= 10;
	}
	if (!((len - i == 1 && s[i] == 'Z') ||
		  (len - i == 6 && memcmp(s + i, "+00:00", 6) == 0)))
		goto bad;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
		se > 59 ||
		(mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
		goto bad;
	if (y < 1970)
	{
		sr_set_error(err, SR_ERR_OUT_OF_RANGE,
					 "%s is out of range: a timestamp must lie between 1970 and 9999",
					 field);
		return false;
	}
	*us = ((sr_days_from_civil(y, mo, d) * 86400) + h * 3600 + mi * 60 + se) *
		INT64_C(1000000) + frac;
	return true;

bad:
	sr_excerpt(ex, sizeof(ex), s, len);
	sr_set_error(err, SR_ERR_INVALID_TIMESTAMP,
				 "%s must be a UTC timestamp like 2021-09-20T12:34:56.789000Z, not \"%s\"",
				 field, ex);
	return false;
}

/* The last header named name (Kafka allows repeats; the last one wins). */
const sr_header *
sr_find_header(const sr_header *headers, size_t nheaders, const char *name)
{
	size_t		nlen = strlen(name);
	const sr_header *found = NULL;

	for (size_t i = 0; i < nheaders; i++)
		if (headers[i].name_len == nlen &&
			memcmp(headers[i].name, name, nlen) == 0)
			found = &headers[i];
	return found;
}
