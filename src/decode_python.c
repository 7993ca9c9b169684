/*
 * decode_python.c - the Python conversions that Sentry's event decoder
 * applies to a message, so that the relay accepts exactly what Sentry does:
 * int() of text (versions, ids and "0"/"1" flags) and truthiness
 * (skip_consume and the task flags).  See docs/decoding.md.
 *
 * Pure C over json-c, no PostgreSQL dependency.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "decode_internal.h"

/*
 * Python's int(text) in base 10: surrounding ASCII whitespace (" \t\n\v\f\r",
 * for a str as for bytes: int() does not take \x1c-\x1f, although
 * str.isspace() does), an optional sign, then digits with single
 * underscores between them.  Non-ASCII digits and spaces, which int() of a
 * str also allows, are refused (docs/decoding.md, deviation 6).  *fits says
 * whether the value fits in int64 (then it is in *out); *zero whether it is
 * zero.  Returns false when the text is no integer at all.
 */
bool
sr_py_int(const char *s, size_t len, int64_t *out, bool *fits, bool *zero)
{
	size_t		i = 0,
				end = len;
	bool		neg = false,
				digit_before = false;
	uint64_t	v = 0;

#define SR_PY_SPACE(c) ((c) == ' ' || ((c) >= '\t' && (c) <= '\r'))
	while (i < end && SR_PY_SPACE((unsigned char) s[i]))
		i++;
	while (end > i && SR_PY_SPACE((unsigned char) s[end - 1]))
		end--;
#undef SR_PY_SPACE
	if (i < end && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	*fits = true;
	*zero = true;
	if (i >= end)
		return false;
	for (; i < end; i++)
	{
		char		c = s[i];

		if (c == '_')
		{
			/* one underscore, between two digits */
			if (!digit_before || i + 1 >= end || s[i + 1] < '0' || s[i + 1] > '9')
				return false;
			digit_before = false;
			continue;
		}
		if (c < '0' || c > '9')
			return false;
		digit_before = true;
		if (c != '0')
			*zero = false;
		if (*fits)
		{
			if (v > (UINT64_C(1) << 63) / 10 ||
				v * 10 + (uint64_t) (c - '0') > (UINT64_C(1) << 63))
				*fits = false;
			else
				v = v * 10 + (uint64_t) (c - '0');
		}
	}
	if (*fits && !neg && v > (uint64_t) INT64_MAX)
		*fits = false;
	if (*fits)
		*out = neg ? (int64_t) (0 - v) : (int64_t) v;
	return true;
}

/* Python's bool() of a decoded JSON value (NULL is JSON null). */
bool
sr_json_truthy(struct json_object *v)
{
	switch (json_object_get_type(v))
	{
		case json_type_null:
			return false;
		case json_type_boolean:
			return json_object_get_boolean(v) != 0;
		case json_type_int:
			/* json-c clamps large integers, never to zero */
			return json_object_get_int64(v) != 0;
		case json_type_double:
			return json_object_get_double(v) != 0.0;
		case json_type_string:
			return json_object_get_string_len(v) > 0;
		case json_type_array:
			return json_object_array_length(v) > 0;
		case json_type_object:
			return json_object_object_length(v) > 0;
	}
	return true;
}

/*
 * Python's int() of a JSON value, as Sentry reads the message version:
 * integers as they are, fractions truncated toward zero, booleans as 0 and
 * 1, strings by int()'s rules.  *fits is false for a value beyond int64 (no
 * version).  Returns false for the types int() refuses (null, arrays,
 * objects) and for strings that are no integer.
 */
bool
sr_py_int_json(struct json_object *v, int64_t *out, bool *fits)
{
	bool		zero;

	*fits = true;
	switch (json_object_get_type(v))
	{
		case json_type_int:
			*out = json_object_get_int64(v);	/* clamped: never 1 or 2 */
			return true;
		case json_type_boolean:
			*out = json_object_get_boolean(v) ? 1 : 0;
			return true;
		case json_type_double:
			{
				double		d = trunc(json_object_get_double(v));

				if (!isfinite(d) || fabs(d) >= 9.0e18)
					*fits = false;
				else
					*out = (int64_t) d;
				return true;
			}
		case json_type_string:
			return sr_py_int(json_object_get_string(v),
							 (size_t) json_object_get_string_len(v), out, fits, &zero);
		default:
			return false;
	}
}
