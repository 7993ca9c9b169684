/*
 * json_locate.c - find a member's value in JSON text, and judge whether a
 * value's text can be stored in PostgreSQL's jsonb.
 *
 * The event decoder stores group_states as sent, so it needs the value's
 * own text, which json-c does not keep.  When the skim (json_skim.c) has
 * not already located it, sr_json_locate_member finds it in a document that
 * json-c has accepted.  It is written for valid JSON, but checks every bound,
 * so any input is safe: on anything unexpected it reports "not found".
 *
 * Pure C, no allocation, no PostgreSQL dependency.
 */
#include <stdint.h>
#include <string.h>

#include "json_locate.h"

typedef struct sr_loc
{
	const unsigned char *p;
	const unsigned char *end;
} sr_loc;

static void
sr_loc_ws(sr_loc *c)
{
	while (c->p < c->end &&
		   (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int
sr_loc_hex4(const unsigned char *p)
{
	int			v = 0;

	for (int i = 0; i < 4; i++)
	{
		int			c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
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

						if (c->end - c->p < 4 || (cp = sr_loc_hex4(c->p)) < 0)
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

bool
sr_json_locate_member(const char *buf, size_t len, int index, const char *name,
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
							lo;

				if (*p != '\\')
					continue;
				if (end - p < 2)
					return false;
				if (p[1] != 'u')
				{
					p++;
					continue;
				}
				if (end - p < 6 || (cp = sr_loc_hex4(p + 2)) < 0 || cp == 0 ||
					(cp >= 0xDC00 && cp <= 0xDFFF))
					return false;
				p += 5;
				if (cp >= 0xD800 && cp <= 0xDBFF)
				{
					if (end - p < 7 || p[1] != '\\' || p[2] != 'u' ||
						(lo = sr_loc_hex4(p + 3)) < 0xDC00 || lo > 0xDFFF)
						return false;
					p += 6;
				}
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
