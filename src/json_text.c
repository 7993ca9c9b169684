/*
 * json_text.c - JSON read as text, beside json-c.
 *
 * json-c, even with JSON_TOKENER_STRICT, accepts more than RFC 8259 (NaN and
 * Infinity, raw control characters in strings, "1."), silently replaces an
 * unpaired surrogate escape with U+FFFD, clamps integers beyond 64 bits, and
 * keeps no value's text.  The event decoder needs all four right: it stores
 * group_states as sent (its text, which jsonb_in must accept), and it keeps
 * ids and strings exactly as Sentry reads them.  So every document is first
 * checked here (sr_json_validate), and the values the decoder keeps are read
 * from their own text (sr_json_member_span, sr_json_string_value), json-c
 * serving only to walk the structure.  The lookups are written for valid
 * JSON, but check every bound, so any input is safe.
 *
 * Pure C, no allocation, no PostgreSQL dependency.
 */
#include <stdint.h>
#include <string.h>

#include "json_text.h"

typedef struct sr_loc
{
	const unsigned char *p;
	const unsigned char *end;
} sr_loc;

static void
sr_loc_ws(sr_loc *c)
{
	c->p = sr_json_skip_ws(c->p, c->end);
}

/*
 * Step over a string at c->p (on its opening quote).  If name is not NULL,
 * *match says whether its unescaped contents equal name.
 */
static bool
sr_loc_string(sr_loc *c, const char *name, bool *match)
{
	size_t		nlen = name ? strlen(name) : 0,
				at = 0;
	bool		same = true;

	c->p++;
	while (c->p < c->end && *c->p != '"')
	{
		unsigned char ch = *c->p;
		unsigned char u[4];
		size_t		ulen = 1;

		if (ch == '\\')
		{
			if (c->end - c->p < 2)
				return false;
			ch = c->p[1];
			c->p += 2;
			switch (ch)
			{
				case 'b': u[0] = '\b'; break;
				case 'f': u[0] = '\f'; break;
				case 'n': u[0] = '\n'; break;
				case 'r': u[0] = '\r'; break;
				case 't': u[0] = '\t'; break;
				case 'u':
					{
						int			cp;

						if (c->end - c->p < 4 || (cp = sr_json_hex4(c->p)) < 0)
							return false;
						c->p += 4;
						/* names compared are ASCII: any other code point differs */
						if (cp < 0x80)
							u[0] = (unsigned char) cp;
						else
						{
							u[0] = 0x80;	/* never in an ASCII name */
							same = false;
						}
						break;
					}
				default:
					u[0] = ch;	/* " \ / */
					break;
			}
		}
		else
		{
			u[0] = ch;
			c->p++;
		}
		if (name != NULL && same)
		{
			if (at + ulen > nlen || memcmp(name + at, u, ulen) != 0)
				same = false;
			at += ulen;
		}
	}
	if (c->p >= c->end)
		return false;
	c->p++;
	if (match != NULL)
		*match = same && at == nlen;
	return true;
}

/* Step over one value (any type); depth bounds the recursion. */
static bool
sr_loc_value(sr_loc *c, int depth)
{
	sr_loc_ws(c);
	if (c->p >= c->end || depth > 1000)
		return false;
	if (*c->p == '"')
		return sr_loc_string(c, NULL, NULL);
	if (*c->p == '{' || *c->p == '[')
	{
		unsigned char close = *c->p == '{' ? '}' : ']';
		bool		obj = *c->p == '{';

		c->p++;
		sr_loc_ws(c);
		if (c->p < c->end && *c->p == close)
		{
			c->p++;
			return true;
		}
		for (;;)
		{
			if (obj)
			{
				sr_loc_ws(c);
				if (c->p >= c->end || *c->p != '"' || !sr_loc_string(c, NULL, NULL))
					return false;
				sr_loc_ws(c);
				if (c->p >= c->end || *c->p != ':')
					return false;
				c->p++;
			}
			if (!sr_loc_value(c, depth + 1))
				return false;
			sr_loc_ws(c);
			if (c->p < c->end && *c->p == ',')
			{
				c->p++;
				continue;
			}
			if (c->p < c->end && *c->p == close)
			{
				c->p++;
				return true;
			}
			return false;
		}
	}
	/* a number or a literal */
	while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' &&
		   *c->p != ' ' && *c->p != '\t' && *c->p != '\n' && *c->p != '\r')
		c->p++;
	return true;
}

/* ---- the strict check ---- */

typedef struct sr_jv
{
	const unsigned char *base;
	const unsigned char *p;
	const unsigned char *end;
	const char *why;
} sr_jv;

static bool
sr_jv_fail(sr_jv *v, const char *why)
{
	v->why = why;
	return false;
}

static void
sr_jv_ws(sr_jv *v)
{
	v->p = sr_json_skip_ws(v->p, v->end);
}

static bool
sr_jv_string(sr_jv *v)
{
	v->p++;						/* the opening quote */
	for (;;)
	{
		if (v->p >= v->end)
			return sr_jv_fail(v, "a string is not closed");
		if (*v->p == '"')
		{
			v->p++;
			return true;
		}
		if (*v->p < 0x20)
			return sr_jv_fail(v, "a control character in a string");
		if (*v->p != '\\')
		{
			v->p++;
			continue;
		}
		if (v->end - v->p < 2)
			return sr_jv_fail(v, "a string is not closed");
		switch (v->p[1])
		{
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				v->p += 2;
				break;
			case 'u':
				if (v->end - v->p < 6 || sr_json_hex4(v->p + 2) < 0)
					return sr_jv_fail(v, "an invalid \\u escape");
				v->p += 6;
				break;
			default:
				return sr_jv_fail(v, "an invalid escape");
		}
	}
}

static bool
sr_jv_digits(sr_jv *v)
{
	const unsigned char *start = v->p;

	while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
		v->p++;
	return v->p > start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
sr_jv_number(sr_jv *v)
{
	if (*v->p == '-')
		v->p++;
	if (v->p < v->end && *v->p == '0')
		v->p++;
	else if (!sr_jv_digits(v))
		return sr_jv_fail(v, "an invalid number");
	if (v->p < v->end && *v->p >= '0' && *v->p <= '9')
		return sr_jv_fail(v, "a number with a leading zero");
	if (v->p < v->end && *v->p == '.')
	{
		v->p++;
		if (!sr_jv_digits(v))
			return sr_jv_fail(v, "an invalid number");
	}
	if (v->p < v->end && (*v->p == 'e' || *v->p == 'E'))
	{
		v->p++;
		if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
			v->p++;
		if (!sr_jv_digits(v))
			return sr_jv_fail(v, "an invalid number");
	}
	return true;
}

static bool
sr_jv_literal(sr_jv *v, const char *lit)
{
	size_t		n = strlen(lit);

	if ((size_t) (v->end - v->p) < n || memcmp(v->p, lit, n) != 0)
		return sr_jv_fail(v, "an unexpected character");
	v->p += n;
	return true;
}

/* A scalar value at v->p (after whitespace). */
static bool
sr_jv_scalar(sr_jv *v)
{
	switch (*v->p)
	{
		case '"':
			return sr_jv_string(v);
		case 't':
			return sr_jv_literal(v, "true");
		case 'f':
			return sr_jv_literal(v, "false");
		case 'n':
			return sr_jv_literal(v, "null");
		default:
			if (*v->p == '-' || (*v->p >= '0' && *v->p <= '9'))
				return sr_jv_number(v);
			return sr_jv_fail(v, "an unexpected character");
	}
}

/*
 * The document, without recursion: stack[] holds the open containers ('{'
 * or '['), so the depth is bounded by max_depth alone.
 */
int
sr_json_validate(const char *buf, size_t len, int max_depth, size_t *at,
				 const char **why)
{
	sr_jv		v = {(const unsigned char *) buf, (const unsigned char *) buf,
	(const unsigned char *) buf + len, NULL};
	char		stack[256];
	int			depth = 0;
	int			rc = SR_JV_INVALID;

	if (max_depth > (int) sizeof(stack))
		max_depth = (int) sizeof(stack);
	sr_jv_ws(&v);
	for (;;)
	{
		/* a value is expected */
		sr_jv_ws(&v);
		if (v.p >= v.end)
		{
			sr_jv_fail(&v, "unexpected end of input");
			goto bad;
		}
		if (*v.p == '{' || *v.p == '[')
		{
			if (depth >= max_depth)
			{
				rc = SR_JV_TOO_DEEP;
				sr_jv_fail(&v, "nested too deep");
				goto bad;
			}
			stack[depth++] = (char) *v.p;
			v.p++;
			sr_jv_ws(&v);
			if (v.p < v.end && *v.p == (stack[depth - 1] == '{' ? '}' : ']'))
			{
				v.p++;
				depth--;
				goto after_value;
			}
			if (stack[depth - 1] == '[')
				continue;
			goto member;
		}
		if (!sr_jv_scalar(&v))
			goto bad;

after_value:
		for (;;)
		{
			if (depth == 0)
			{
				sr_jv_ws(&v);
				if (v.p != v.end)
				{
					sr_jv_fail(&v, "data after the document");
					goto bad;
				}
				return SR_JV_OK;
			}
			sr_jv_ws(&v);
			if (v.p >= v.end)
			{
				sr_jv_fail(&v, "unexpected end of input");
				goto bad;
			}
			if (*v.p == ',')
			{
				v.p++;
				if (stack[depth - 1] == '[')
					break;		/* the next element */
				goto member;
			}
			if (*v.p != (stack[depth - 1] == '{' ? '}' : ']'))
			{
				sr_jv_fail(&v, "an unexpected character");
				goto bad;
			}
			v.p++;
			depth--;
		}
		continue;

member:
		/* a member name and its colon, then the value */
		sr_jv_ws(&v);
		if (v.p >= v.end)
		{
			sr_jv_fail(&v, "unexpected end of input");
			goto bad;
		}
		if (*v.p != '"')
		{
			sr_jv_fail(&v, "a member name is not a string");
			goto bad;
		}
		if (!sr_jv_string(&v))
			goto bad;
		sr_jv_ws(&v);
		if (v.p >= v.end || *v.p != ':')
		{
			sr_jv_fail(&v, v.p >= v.end ? "unexpected end of input" : "a member name without a colon");
			goto bad;
		}
		v.p++;
	}

bad:
	*at = (size_t) (v.p - v.base);
	*why = v.why;
	return rc;
}

/* Append code point cp as UTF-8 at out; returns the bytes written. */
static size_t
sr_utf8_put(char *out, unsigned cp)
{
	if (cp < 0x80)
	{
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000)
	{
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char) (0xF0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char) (0x80 | (cp & 0x3F));
	return 4;
}

int
sr_json_string_value(const char *span, size_t len, char *out, size_t *outlen)
{
	const char *p = span + 1,
			   *end = span + len - 1;	/* the closing quote */
	size_t		n = 0;

	*outlen = 0;
	if (len < 2 || span[0] != '"' || span[len - 1] != '"')
		return SR_JS_SURROGATE;	/* not a string: never happens after a check */
	while (p < end)
	{
		int			cp,
					esc;

		if (*p != '\\')
		{
			out[n++] = *p++;
			continue;
		}
		if (end - p < 2)
			return SR_JS_SURROGATE;
		switch (p[1])
		{
			case 'b': out[n++] = '\b'; p += 2; continue;
			case 'f': out[n++] = '\f'; p += 2; continue;
			case 'n': out[n++] = '\n'; p += 2; continue;
			case 'r': out[n++] = '\r'; p += 2; continue;
			case 't': out[n++] = '\t'; p += 2; continue;
			case 'u': break;
			default: out[n++] = p[1]; p += 2; continue;
		}
		esc = sr_json_u_escape((const unsigned char *) p, (const unsigned char *) end, &cp);
		if (esc <= 0)
			return SR_JS_SURROGATE;
		if (cp == 0)
			return SR_JS_NUL;
		p += esc;
		/* an escape takes 6 or 12 bytes and writes at most 3 or 4 */
		n += sr_utf8_put(out + n, (unsigned) cp);
	}
	*outlen = n;
	return SR_JS_OK;
}

bool
sr_json_member_span(const char *buf, size_t len, int index, const char *name,
					  sr_skim_span *out)
{
	sr_loc		c = {(const unsigned char *) buf, (const unsigned char *) buf + len};
	bool		found = false;

	sr_loc_ws(&c);
	if (c.p >= c.end || *c.p != '[')
		return false;
	c.p++;
	for (int i = 0; i < index; i++)
	{
		if (!sr_loc_value(&c, 1))
			return false;
		sr_loc_ws(&c);
		if (c.p >= c.end || *c.p != ',')
			return false;
		c.p++;
	}
	sr_loc_ws(&c);
	if (c.p >= c.end || *c.p != '{')
		return false;
	c.p++;
	sr_loc_ws(&c);
	if (c.p < c.end && *c.p == '}')
		return false;
	for (;;)
	{
		bool		match;
		const unsigned char *val;

		sr_loc_ws(&c);
		if (c.p >= c.end || *c.p != '"' || !sr_loc_string(&c, name, &match))
			return false;
		sr_loc_ws(&c);
		if (c.p >= c.end || *c.p != ':')
			return false;
		c.p++;
		sr_loc_ws(&c);
		val = c.p;
		if (!sr_loc_value(&c, 2))
			return false;
		if (match)
		{
			/* the last one wins, as in json-c and Python */
			out->start = (size_t) (val - (const unsigned char *) buf);
			out->len = (size_t) (c.p - val);
			found = true;
		}
		sr_loc_ws(&c);
		if (c.p < c.end && *c.p == ',')
		{
			c.p++;
			continue;
		}
		return found && c.p < c.end && *c.p == '}';
	}
}

/*
 * Can jsonb_in store this JSON text?  It refuses a \u0000 escape and an
 * unpaired surrogate escape, and numbers beyond numeric's range; numbers of
 * more than SR_JSONB_MAX_DIGITS digits or with an exponent beyond
 * +-SR_JSONB_MAX_EXPONENT are refused here, well inside that range.  The
 * text must already be valid JSON; anything else is refused.
 */
#define SR_JSONB_MAX_DIGITS 1000
#define SR_JSONB_MAX_EXPONENT 1000

bool
sr_json_jsonb_safe(const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *) buf,
			   *end = p + len;

	while (p < end)
	{
		if (*p == '"')
		{
			for (p++; p < end && *p != '"'; p++)
			{
				int			cp,
							esc;

				if (*p != '\\')
					continue;
				if (end - p < 2)
					return false;
				if (p[1] != 'u')
				{
					p++;
					continue;
				}
				esc = sr_json_u_escape(p, end, &cp);
				if (esc <= 0 || cp == 0)
					return false;
				p += esc - 1;	/* the loop steps over the last byte */
			}
			if (p >= end)
				return false;
			p++;
		}
		else if (*p == '-' || (*p >= '0' && *p <= '9'))
		{
			size_t		digits = 0;
			long		exp = 0;

			if (*p == '-')
				p++;
			while (p < end && ((*p >= '0' && *p <= '9') || *p == '.'))
				digits += *p++ != '.';
			if (p < end && (*p == 'e' || *p == 'E'))
			{
				bool		neg = false;

				p++;
				if (p < end && (*p == '+' || *p == '-'))
					neg = *p++ == '-';
				while (p < end && *p >= '0' && *p <= '9')
				{
					if (exp <= SR_JSONB_MAX_EXPONENT)
						exp = exp * 10 + (*p - '0');
					p++;
				}
				(void) neg;
			}
			if (digits > SR_JSONB_MAX_DIGITS || exp > SR_JSONB_MAX_EXPONENT)
				return false;
		}
		else
			p++;
	}
	return true;
}
