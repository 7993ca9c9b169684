/*
 * decode_fast.c - the event decoder's fast path: read an insert message's
 * few fields straight from its text, where the skim (json_skim.c) found
 * them, without building any json-c objects.
 *
 * By the time this runs, sr_check_text has found the message to be UTF-8
 * without NUL bytes and the skim has checked all of it as strict JSON, so
 * every span holds exactly one valid JSON value.  The fast path handles the
 * plain cases only: a version of 1 or 2 written as an integer, strings with
 * no escapes, non-negative integers of at most 18 digits, booleans, and each
 * member it reads present once.  Everything else, and every error, is
 * declined; the decoder then parses the message with json-c, so results and
 * error messages are always those of a whole parse.  The differential fuzzer
 * (test/fuzz/fuzz_skim.c) and test/unit/test_skim.c check that both paths
 * agree.
 *
 * Pure C, no PostgreSQL dependency.
 */
#include <stdint.h>
#include <string.h>

#include "decode_internal.h"
#include "json_skim.h"

/* The members read, in the order of the sr_fast_* indexes below. */
const char *const sr_fast_event_members[] = {
	"event_id", "project_id", "group_id", "primary_hash", "occurrence_id", NULL
};
const char *const sr_fast_task_members[] = {
	"skip_consume", "is_new", "is_regression", "is_new_group_environment",
	"is_sample", "queue", "group_states", NULL
};

enum
{
	SR_FE_EVENT_ID, SR_FE_PROJECT_ID, SR_FE_GROUP_ID, SR_FE_PRIMARY_HASH,
	SR_FE_OCCURRENCE_ID
};
enum
{
	SR_FT_SKIP_CONSUME, SR_FT_IS_NEW, SR_FT_IS_REGRESSION, SR_FT_IS_NEW_GE,
	SR_FT_IS_SAMPLE, SR_FT_QUEUE, SR_FT_GROUP_STATES
};

/* A literal: 1 true, 0 false, 2 null, -1 anything else. */
static int
sr_fast_literal(const char *p, size_t len)
{
	if (len == 4 && memcmp(p, "true", 4) == 0)
		return 1;
	if (len == 5 && memcmp(p, "false", 5) == 0)
		return 0;
	if (len == 4 && memcmp(p, "null", 4) == 0)
		return 2;
	return -1;
}

/* An integer of 1 to 18 plain digits (the skim allows no leading zeros). */
static bool
sr_fast_uint(const char *p, size_t len, int64_t *out)
{
	int64_t		v = 0;

	if (len == 0 || len > 18)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
}

/* A string with no escapes: its contents. */
static bool
sr_fast_string(const char *p, size_t len, const char **s, size_t *slen)
{
	if (len < 2 || p[0] != '"' || memchr(p + 1, '\\', len - 2) != NULL)
		return false;
	*s = p + 1;
	*slen = len - 2;
	return true;
}

/*
 * A boolean member.  Absent or null gives dflt when the member is optional;
 * for a required member it is an error, so the fast path declines.
 */
static bool
sr_fast_bool(const char *buf, sr_skim_span sp, bool required, bool dflt,
			 bool *out)
{
	int			lit = sp.len == 0 ? 2 : sr_fast_literal(buf + sp.start, sp.len);

	if (lit == 2 && !required)
		*out = dflt;
	else if (lit == 0 || lit == 1)
		*out = lit == 1;
	else
		return false;
	return true;
}

/* An optional string member: absent or null is SQL NULL (SR_ANULL). */
static bool
sr_fast_opt_string(sr_decoder *dec, const char *buf, sr_skim_span sp,
				   sr_aoff *off)
{
	const char *s;
	size_t		len;
	sr_error	ignored;

	*off = SR_ANULL;
	if (sp.len == 0 || sr_fast_literal(buf + sp.start, sp.len) == 2)
		return true;
	return sr_fast_string(buf + sp.start, sp.len, &s, &len) &&
		sr_arena_push(dec, s, len, off, &ignored);
}

/* A cursor over text already checked as JSON. */
typedef struct sr_fast_cur
{
	const char *p;
	const char *end;
} sr_fast_cur;

static inline void
sr_fast_ws(sr_fast_cur *c)
{
	while (c->p < c->end &&
		   (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
		c->p++;
}

/* Step over the character ch (after whitespace); false if it is not there. */
static inline bool
sr_fast_expect(sr_fast_cur *c, char ch)
{
	sr_fast_ws(c);
	if (c->p >= c->end || *c->p != ch)
		return false;
	c->p++;
	return true;
}

/* Step over one value, known to be valid JSON; its span goes to *v, *vlen. */
static bool
sr_fast_value(sr_fast_cur *c, const char **v, size_t *vlen)
{
	int			depth = 0;

	sr_fast_ws(c);
	*v = c->p;
	while (c->p < c->end)
	{
		char		ch = *c->p;

		if (ch == '"')
		{
			for (c->p++; c->p < c->end && *c->p != '"'; c->p++)
				if (*c->p == '\\')
					c->p++;
			if (c->p >= c->end)
				return false;
			c->p++;
		}
		else if (ch == '{' || ch == '[')
		{
			depth++;
			c->p++;
			continue;
		}
		else if (ch == '}' || ch == ']')
		{
			if (depth == 0)
				break;			/* the end of a scalar value */
			depth--;
			c->p++;
		}
		else if (ch == ',' || ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
		{
			if (depth == 0)
				break;
			c->p++;
			continue;
		}
		else
		{
			c->p++;				/* a number or literal character */
			continue;
		}
		if (depth == 0)
			break;				/* a string or a container has closed */
	}
	*vlen = (size_t) (c->p - *v);
	return depth == 0 && *vlen > 0;
}

/*
 * group_states: an array of objects, each with an integer "id" and the
 * three booleans, appended to the arena in canonical form.  Declines (false)
 * whenever the whole parse could differ or fail.
 */
bool
sr_fast_group_states(sr_decoder *dec, const char *p, size_t len, sr_aoff *off)
{
	static const char *const names[] = {
		"id", "is_new", "is_regression", "is_new_group_environment"
	};
	sr_fast_cur c = {p, p + len};
	size_t		start = dec->arena_len;
	sr_error	ignored;

	if (!sr_fast_expect(&c, '[') || !sr_arena_append(dec, "[", 1, &ignored))
		return false;
	sr_fast_ws(&c);
	if (c.p < c.end && *c.p == ']')
		c.p++;
	else
	{
		for (size_t i = 0;; i++)
		{
			int64_t		id = 0;
			bool		b[3] = {false, false, false};
			unsigned	seen = 0;

			if (!sr_fast_expect(&c, '{'))
				return false;
			sr_fast_ws(&c);
			if (c.p < c.end && *c.p == '}')
				return false;	/* no "id": an error, json-c's to report */
			for (;;)
			{
				const char *k,
						   *v;
				size_t		klen,
							vlen;
				int			f;

				if (!sr_fast_value(&c, &k, &klen) ||
					!sr_fast_string(k, klen, &k, &klen) ||
					!sr_fast_expect(&c, ':') || !sr_fast_value(&c, &v, &vlen))
					return false;
				for (f = 0; f < 4; f++)
					if (strlen(names[f]) == klen && memcmp(names[f], k, klen) == 0)
						break;
				if (f < 4)
				{
					int			lit = sr_fast_literal(v, vlen);

					if (seen & (1u << f))
						return false;	/* a repeated member */
					seen |= 1u << f;
					if (f == 0 ? !sr_fast_uint(v, vlen, &id) : lit != 0 && lit != 1)
						return false;
					if (f > 0)
						b[f - 1] = lit == 1;
				}
				if (sr_fast_expect(&c, '}'))
					break;
				if (!sr_fast_expect(&c, ','))
					return false;
			}
			if (seen != 15 ||
				!sr_event_append_group_state(dec, i, id, b, &ignored))
				return false;
			if (sr_fast_expect(&c, ']'))
				break;
			if (!sr_fast_expect(&c, ','))
				return false;
		}
	}
	if (!sr_arena_append(dec, "]", 1, &ignored) || !sr_arena_append(dec, "", 1, &ignored))
		return false;
	*off = start;
	return true;
}

sr_decode_status
sr_event_fast(sr_decoder *dec, const char *buf, const sr_skim_pick *pk,
			  sr_job *job, sr_job_offsets *o)
{
	const sr_skim_span *ed = pk->member[0];
	const sr_skim_span *ts = pk->member[1];
	const char *s;
	size_t		len;
	bool		ignored_bool;
	sr_error	ignored;
	sr_skim_span gs;

	if (pk->irregular || pk->ntop < 2 || pk->top[0].len != 1 ||
		(buf[pk->top[0].start] != '1' && buf[pk->top[0].start] != '2') ||
		!sr_fast_string(buf + pk->top[1].start, pk->top[1].len, &s, &len))
		return SR_DECODE_ERROR;
	job->version = buf[pk->top[0].start] - '0';
	job->operation = sr_event_lookup_op(job->version, s, len);
	if (job->operation == NULL)
		return SR_DECODE_ERROR;
	if (strcmp(job->operation, "insert") != 0)
		return SR_DECODE_SKIP;
	if (pk->ntop < 4 || buf[pk->top[2].start] != '{' || buf[pk->top[3].start] != '{')
		return SR_DECODE_ERROR;

	/* as in Sentry, skip_consume short-circuits everything else */
	if (!sr_fast_bool(buf, ts[SR_FT_SKIP_CONSUME], false, false, &job->skip_consume))
		return SR_DECODE_ERROR;
	if (job->skip_consume)
		return SR_DECODE_SKIP;

	if (!sr_fast_string(buf + ed[SR_FE_EVENT_ID].start, ed[SR_FE_EVENT_ID].len, &s, &len) ||
		!sr_event_set_event_id(job, s, len, &ignored) ||
		!sr_fast_uint(buf + ed[SR_FE_PROJECT_ID].start, ed[SR_FE_PROJECT_ID].len,
					  &job->project_id))
		return SR_DECODE_ERROR;
	if (ed[SR_FE_GROUP_ID].len != 0 &&
		sr_fast_literal(buf + ed[SR_FE_GROUP_ID].start, ed[SR_FE_GROUP_ID].len) != 2)
	{
		if (!sr_fast_uint(buf + ed[SR_FE_GROUP_ID].start, ed[SR_FE_GROUP_ID].len,
						  &job->group_id))
			return SR_DECODE_ERROR;
		job->has_group_id = true;
	}
	if (!sr_fast_opt_string(dec, buf, ed[SR_FE_PRIMARY_HASH], &o->primary_hash) ||
		!sr_fast_opt_string(dec, buf, ed[SR_FE_OCCURRENCE_ID], &o->occurrence_id))
		return SR_DECODE_ERROR;

	if (!sr_fast_bool(buf, ts[SR_FT_IS_NEW], true, false, &job->is_new) ||
		!sr_fast_bool(buf, ts[SR_FT_IS_REGRESSION], true, false, &job->is_regression) ||
		!sr_fast_bool(buf, ts[SR_FT_IS_NEW_GE], false, false,
					  &job->is_new_group_environment) ||
		!sr_fast_bool(buf, ts[SR_FT_IS_SAMPLE], false, false, &ignored_bool) ||
		!sr_fast_opt_string(dec, buf, ts[SR_FT_QUEUE], &o->queue))
		return SR_DECODE_ERROR;
	gs = ts[SR_FT_GROUP_STATES];
	if (gs.len != 0 && sr_fast_literal(buf + gs.start, gs.len) != 2 &&
		!sr_fast_group_states(dec, buf + gs.start, gs.len, &o->group_states))
		return SR_DECODE_ERROR;
	return SR_DECODE_JOB;
}
