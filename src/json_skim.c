/*
 * json_skim.c - a fast validating pass over an event message's JSON, so that
 * the relay never builds objects for the bulk of a message.
 *
 * An insert message is [version, "insert", event_data, task_state]; nearly
 * all of its bytes are in event_data members the relay never reads (the
 * event's "data": exception, frames, breadcrumbs, contexts).  sr_json_skim
 * checks the whole document against strict JSON without building anything,
 * and records where the members the relay reads are (the pick), which the
 * fast path (decode_fast.c) decodes directly.  When the fast path declines,
 * the decoder hands json-c a copy of the message in which the values of the
 * members it never reads (the drops) are replaced by null.
 *
 * Correctness rests on one rule: the skim accepts a subset of what json-c
 * (JSON_TOKENER_STRICT) accepts.  Anything unusual - a number with a long
 * mantissa or exponent, a \u0000 or unpaired surrogate escape, nesting
 * deeper than SR_SKIM_MAX_DEPTH - makes it decline, and the decoder parses
 * the original text instead, with json-c's own result and error.  The
 * differential fuzzer (test/fuzz/fuzz_skim.c) checks both paths agree.
 *
 * Pure C, no allocation.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "json_skim.h"

#define SR_SKIM_MAX_DEPTH 32
#define SR_SKIM_MAX_NUMBER 32	/* longer number tokens: let json-c decide */
#define SR_ONES UINT64_C(0x0101010101010101)
#define SR_HIGHS UINT64_C(0x8080808080808080)

typedef struct sr_skim
{
	const unsigned char *base;
	const unsigned char *p;
	const unsigned char *end;
	int			depth;
	const char *const *keep;	/* member names never dropped */
	size_t		min_drop;		/* values shorter than this are kept */
	sr_skim_span *drop;
	int			max_drop;
	int			ndrop;
	sr_skim_pick *pick;			/* NULL: nothing picked */
} sr_skim;

/*
 * ASCII bytes that stand for themselves inside a string: all but '"', '\\'
 * and controls (< 0x20).  Bytes from 0x80 start UTF-8 sequences, checked one
 * by one.
 */
static bool sr_skim_plain[256];
static bool sr_skim_ready = false;

static void
sr_skim_init(void)
{
	for (int c = 0; c < 256; c++)
		sr_skim_plain[c] = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
	sr_skim_ready = true;
}

size_t
sr_utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return (n >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF)
	{
		unsigned char lo = (c == 0xE0) ? 0xA0 : 0x80;
		unsigned char hi = (c == 0xED) ? 0x9F : 0xBF;

		if (n < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
			return 0;
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4)
	{
		unsigned char lo = (c == 0xF0) ? 0x90 : 0x80;
		unsigned char hi = (c == 0xF4) ? 0x8F : 0xBF;

		if (n < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80 ||
			(p[3] & 0xC0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

static bool sr_skim_value(sr_skim *s, int role);

/*
 * How a value is used: element 2 of the top-level array is collected (drops
 * and picks), element 3 has its members picked.
 */
#define SR_ROLE_PLAIN	0
#define SR_ROLE_TOP		1
#define SR_ROLE_COLLECT 2
#define SR_ROLE_TASK	3

/* The first byte at or after p that is not JSON whitespace (or end). */
const unsigned char *
sr_json_skip_ws(const unsigned char *p, const unsigned char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

static inline void
sr_skim_ws(sr_skim *s)
{
	s->p = sr_json_skip_ws(s->p, s->end);
}

/*
 * A \u escape at p (on its backslash), a surrogate pair read as one: the
 * bytes it takes (6 or 12), with its code point in *cp; 0 for bad hex digits
 * or a cut escape, -1 for half of a surrogate pair.
 */
int
sr_json_u_escape(const unsigned char *p, const unsigned char *end, int *cp)
{
	int			hi,
				lo;

	if (end - p < 6 || (hi = sr_json_hex4(p + 2)) < 0)
		return 0;
	if (hi >= 0xDC00 && hi <= 0xDFFF)
		return -1;
	if (hi < 0xD800 || hi > 0xDBFF)
	{
		*cp = hi;
		return 6;
	}
	if (end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
		(lo = sr_json_hex4(p + 8)) < 0xDC00 || lo > 0xDFFF)
		return -1;
	*cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
	return 12;
}

/* The value of four hex digits at p, or -1. */
int
sr_json_hex4(const unsigned char *p)
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
 * Step over plain ASCII string bytes: up to the first '"', '\\', control or
 * non-ASCII byte, or to the last few bytes of the buffer.  Sixteen bytes at a
 * time with SSE2 (a signed compare below 0x20 catches controls and bytes from
 * 0x80 at once), eight at a time otherwise.
 */
static inline void
sr_skim_plain_run(sr_skim *s)
{
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"');
	const __m128i bslash = _mm_set1_epi8('\\');
	const __m128i space = _mm_set1_epi8(0x20);

	while (s->end - s->p >= 16)
	{
		__m128i		v = _mm_loadu_si128((const __m128i *) s->p);
		int			bits = _mm_movemask_epi8(_mm_or_si128(
												 _mm_or_si128(_mm_cmpeq_epi8(v, quote),
															  _mm_cmpeq_epi8(v, bslash)),
												 _mm_cmplt_epi8(v, space)));

		if (bits != 0)
		{
			s->p += __builtin_ctz((unsigned) bits);
			return;
		}
		s->p += 16;
	}
#else
	while (s->end - s->p >= 8)
	{
		uint64_t	w,
					q,
					b;

		memcpy(&w, s->p, 8);
		q = w ^ UINT64_C(0x2222222222222222);
		b = w ^ UINT64_C(0x5c5c5c5c5c5c5c5c);
		if ((((q - SR_ONES) & ~q) | ((b - SR_ONES) & ~b) |
			 ((w - SR_ONES * 0x20) & ~w) | w) & SR_HIGHS)
			return;
		s->p += 8;
	}
#endif
}

/*
 * A string, at its opening quote.  *has_escape tells whether it had any.
 * Non-ASCII bytes must form well-formed UTF-8 (sr_utf8_seq_len), so a skimmed
 * message needs no separate sr_check_text: raw NUL bytes and other controls
 * are refused here, and anything non-ASCII outside a string is not JSON.
 */
static bool
sr_skim_string(sr_skim *s, bool *has_escape)
{
	*has_escape = false;
	s->p++;
	for (;;)
	{
		sr_skim_plain_run(s);
		while (s->p < s->end && sr_skim_plain[*s->p])
			s->p++;
		if (s->p >= s->end)
			return false;
		if (*s->p == '"')
		{
			s->p++;
			return true;
		}
		if (*s->p >= 0x80)
		{
			size_t		l = sr_utf8_seq_len(s->p, (size_t) (s->end - s->p));

			if (l == 0)
				return false;
			s->p += l;
			continue;
		}
		if (*s->p != '\\')
			return false;		/* a raw control character */
		*has_escape = true;
		if (s->end - s->p < 2)
			return false;
		switch (s->p[1])
		{
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				s->p += 2;
				break;
			case 'u':
				{
					int			cp;
					int			n = sr_json_u_escape(s->p, s->end, &cp);

					/* \u0000 and unpaired surrogates: json_text.c's business */
					if (n <= 0 || cp == 0)
						return false;
					s->p += n;
					break;
				}
			default:
				return false;
		}
	}
}

static bool
sr_skim_digits(sr_skim *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start;
}

/* A number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,2})? */
static bool
sr_skim_number(sr_skim *s)
{
	const unsigned char *start = s->p;

	if (*s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return false;
	if (*s->p == '0')
		s->p++;
	else if (!sr_skim_digits(s))
		return false;
	if (s->p < s->end && *s->p == '.')
	{
		s->p++;
		if (!sr_skim_digits(s))
			return false;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E'))
	{
		const unsigned char *exp;

		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		exp = s->p;
		if (!sr_skim_digits(s) || s->p - exp > 2)
			return false;
	}
	return s->p - start <= SR_SKIM_MAX_NUMBER;
}

static bool
sr_skim_literal(sr_skim *s, const char *lit, size_t len)
{
	if ((size_t) (s->end - s->p) < len || memcmp(s->p, lit, len) != 0)
		return false;
	s->p += len;
	return true;
}

/* May the member named by the raw key [k, k + klen) have its value dropped? */
static bool
sr_skim_droppable(const sr_skim *s, const unsigned char *k, size_t klen,
				  bool key_escaped)
{
	if (key_escaped)
		return false;			/* might unescape to a kept name */
	for (const char *const *n = s->keep; *n != NULL; n++)
		if (strlen(*n) == klen && memcmp(*n, k, klen) == 0)
			return false;
	return true;
}

/* Record a member of element 2 (which 0) or 3 (which 1) if it is wanted. */
static void
sr_skim_pick_member(sr_skim *s, int which, const unsigned char *k, size_t klen,
					bool key_escaped, const unsigned char *val)
{
	sr_skim_pick *pk = s->pick;
	int			i = 0;

	if (key_escaped)
	{
		pk->irregular = true;	/* might unescape to a wanted name */
		return;
	}
	for (const char *const *n = pk->names[which]; *n != NULL && i < SR_SKIM_MAX_PICK; n++, i++)
	{
		if (strlen(*n) != klen || memcmp(*n, k, klen) != 0)
			continue;
		if (pk->member[which][i].len != 0)
			pk->irregular = true;	/* json-c keeps the last; let it */
		pk->member[which][i].start = (size_t) (val - s->base);
		pk->member[which][i].len = (size_t) (s->p - val);
		return;
	}
}

/* At '{' or '[': step in; true when the container is empty (and closed). */
static inline bool
sr_skim_open(sr_skim *s, char close)
{
	s->p++;
	sr_skim_ws(s);
	if (s->p < s->end && *s->p == close)
	{
		s->p++;
		return true;
	}
	return false;
}

/*
 * After a member or element: 1 at the closing bracket (stepped over), 0 at a
 * comma (stepped over, with the whitespace after it), -1 at anything else.
 */
static inline int
sr_skim_after_item(sr_skim *s, char close)
{
	sr_skim_ws(s);
	if (s->p >= s->end)
		return -1;
	if (*s->p == close)
	{
		s->p++;
		return 1;
	}
	if (*s->p != ',')
		return -1;
	s->p++;
	sr_skim_ws(s);
	return 0;
}

static bool
sr_skim_object(sr_skim *s, int role)
{
	bool		collect = role == SR_ROLE_COLLECT;
	int			next;

	if (sr_skim_open(s, '}'))
		return true;
	for (;;)
	{
		const unsigned char *key,
				   *kend,
				   *val;
		bool		escaped;

		if (s->p >= s->end || *s->p != '"')
			return false;
		key = s->p + 1;
		if (!sr_skim_string(s, &escaped))
			return false;
		kend = s->p - 1;		/* the closing quote */
		sr_skim_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return false;
		s->p++;
		sr_skim_ws(s);
		val = s->p;
		if (!sr_skim_value(s, SR_ROLE_PLAIN))
			return false;
		if (s->pick != NULL && (collect || role == SR_ROLE_TASK))
			sr_skim_pick_member(s, collect ? 0 : 1, key, (size_t) (kend - key),
								escaped, val);
		if (collect && s->ndrop < s->max_drop &&
			(size_t) (s->p - val) >= s->min_drop &&
			sr_skim_droppable(s, key, (size_t) (kend - key), escaped))
		{
			s->drop[s->ndrop].start = (size_t) (val - s->base);
			s->drop[s->ndrop].len = (size_t) (s->p - val);
			s->ndrop++;
		}
		if ((next = sr_skim_after_item(s, '}')) != 0)
			return next > 0;
	}
}

static bool
sr_skim_array(sr_skim *s, bool top)
{
	int			index = 0,
				next;

	if (sr_skim_open(s, ']'))
		return true;
	for (;;)
	{
		const unsigned char *val = s->p;
		int			role = SR_ROLE_PLAIN;

		if (top)
			role = index == 2 ? SR_ROLE_COLLECT : index == 3 ? SR_ROLE_TASK : SR_ROLE_PLAIN;
		if (!sr_skim_value(s, role))
			return false;
		if (top && s->pick != NULL)
		{
			if (index < SR_SKIM_MAX_TOP)
			{
				s->pick->top[index].start = (size_t) (val - s->base);
				s->pick->top[index].len = (size_t) (s->p - val);
			}
			s->pick->ntop = index + 1;
		}
		index++;
		if ((next = sr_skim_after_item(s, ']')) != 0)
			return next > 0;
	}
}

static bool
sr_skim_value(sr_skim *s, int role)
{
	bool		ok,
				escaped;

	if (s->p >= s->end)
		return false;
	switch (*s->p)
	{
		case '{':
		case '[':
			if (++s->depth > SR_SKIM_MAX_DEPTH)
				return false;
			ok = *s->p == '{'
				? sr_skim_object(s, role)
				: sr_skim_array(s, role == SR_ROLE_TOP);
			s->depth--;
			return ok;
		case '"':
			return sr_skim_string(s, &escaped);
		case 't':
			return sr_skim_literal(s, "true", 4);
		case 'f':
			return sr_skim_literal(s, "false", 5);
		case 'n':
			return sr_skim_literal(s, "null", 4);
		default:
			if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
				return sr_skim_number(s);
			return false;
	}
}

bool
sr_json_skim(const char *buf, size_t len, const char *const *keep,
			 size_t min_drop, sr_skim_span *drop, int max_drop, int *ndrop,
			 sr_skim_pick *pick)
{
	sr_skim		s;

	if (!sr_skim_ready)
		sr_skim_init();
	s.base = s.p = (const unsigned char *) buf;
	s.end = s.p + len;
	s.depth = 0;
	s.keep = keep;
	s.min_drop = min_drop < 5 ? 5 : min_drop;	/* "null" must fit */
	s.drop = drop;
	s.max_drop = max_drop;
	s.ndrop = 0;
	s.pick = pick;
	*ndrop = 0;
	if (pick != NULL)
	{
		pick->ntop = -1;
		pick->irregular = false;
		memset(pick->member, 0, sizeof(pick->member));
	}
	sr_skim_ws(&s);
	if (!sr_skim_value(&s, SR_ROLE_TOP))
		return false;
	sr_skim_ws(&s);
	if (s.p != s.end)
		return false;
	*ndrop = s.ndrop;
	return true;
}
