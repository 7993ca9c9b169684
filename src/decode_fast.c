/*
 * decode_fast.c - the event decoder's fast path: read an insert message's
 * few fields straight from its text, where the skim (json_skim.c) found
 * them, without building any json-c objects.
 *
 * By the time this runs, sr_check_text has found the message to be UTF-8
 * without NUL bytes and the skim has checked all of it as strict JSON, so
 * every span holds exactly one valid JSON value.  The fast path handles the
 * plain cases only: a version of 1 or 2 written as an integer, strings with
 * no escapes, non-negative integers of at most 18 digits, true, false and
 * null flags, and each member it reads present once.  group_states is kept
 * as its text, which the skim has found jsonb can hold.  Everything else,
 * and every error, is declined; the decoder then parses the message with
 * json-c, so results and error messages are always those of a whole parse.
 * The differential fuzzer (test/fuzz/fuzz_skim.c) and test/unit/test_skim.c
 * check that both paths agree.
 *
 * Called by decode_event.c only; calls decode_common.c only.  Pure C, no
 * PostgreSQL dependency.
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
	"queue", "group_states", NULL
};

enum
{
	SR_FE_EVENT_ID, SR_FE_PROJECT_ID, SR_FE_GROUP_ID, SR_FE_PRIMARY_HASH,
	SR_FE_OCCURRENCE_ID
};
enum
{
	SR_FT_SKIP_CONSUME, SR_FT_IS_NEW, SR_FT_IS_REGRESSION, SR_FT_IS_NEW_GE,
	SR_FT_QUEUE, SR_FT_GROUP_STATES
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
 * A task flag that Sentry requires (task_state[name]): true, false or null.
 * Absent is an error and other values need Python's truth value: declined.
 */
static bool
sr_fast_flag(const char *buf, sr_skim_span sp, sr_flag *out)
{
	int			lit = sp.len == 0 ? -1 : sr_fast_literal(buf + sp.start, sp.len);

	if (lit < 0)
		return false;
	*out = lit == 2 ? SR_FLAG_NULL : lit == 1 ? SR_FLAG_TRUE : SR_FLAG_FALSE;
	return true;
}

/*
 * A string member: absent (unless required) or null is SQL NULL (SR_ANULL).
 */
static bool
sr_fast_opt_string(sr_decoder *dec, const char *buf, sr_skim_span sp,
				   bool required, sr_aoff *off)
{
	const char *s;
	size_t		len;
	sr_error	ignored;

	*off = SR_ANULL;
	if (sp.len == 0)
		return !required;
	if (sr_fast_literal(buf + sp.start, sp.len) == 2)
		return true;
	return sr_fast_string(buf + sp.start, sp.len, &s, &len) &&
		sr_arena_push(dec, s, len, off, &ignored);
}

sr_decode_status
sr_event_fast(sr_decoder *dec, const char *buf, const sr_skim_pick *pk,
			  sr_job *job, sr_job_offsets *o)
{
	const sr_skim_span *ed = pk->member[0];
	const sr_skim_span *ts = pk->member[1];
	const char *s;
	size_t		len;
	int			lit;
	sr_error	ignored;
	sr_skim_span sp;

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
	if (pk->ntop != 4 || buf[pk->top[2].start] != '{' || buf[pk->top[3].start] != '{')
		return SR_DECODE_ERROR;

	/* as in Sentry, a truthy skip_consume short-circuits everything else */
	sp = ts[SR_FT_SKIP_CONSUME];
	lit = sp.len == 0 ? 2 : sr_fast_literal(buf + sp.start, sp.len);
	if (lit == 1)
	{
		job->skip_consume = true;
		return SR_DECODE_SKIP;
	}
	if (lit != 0 && lit != 2)
		return SR_DECODE_ERROR;

	sp = ed[SR_FE_EVENT_ID];
	if (!sr_fast_string(buf + sp.start, sp.len, &s, &len) ||
		!sr_arena_push(dec, s, len, &o->event_id, &ignored) ||
		!sr_fast_uint(buf + ed[SR_FE_PROJECT_ID].start, ed[SR_FE_PROJECT_ID].len,
					  &job->project_id))
		return SR_DECODE_ERROR;
	sp = ed[SR_FE_GROUP_ID];
	if (sp.len == 0)
		return SR_DECODE_ERROR;	/* required: json-c reports it */
	if (sr_fast_literal(buf + sp.start, sp.len) != 2)
	{
		if (!sr_fast_uint(buf + sp.start, sp.len, &job->group_id))
			return SR_DECODE_ERROR;
		job->has_group_id = true;
	}
	if (!sr_fast_opt_string(dec, buf, ed[SR_FE_PRIMARY_HASH], true, &o->primary_hash) ||
		!sr_fast_opt_string(dec, buf, ed[SR_FE_OCCURRENCE_ID], false, &o->occurrence_id))
		return SR_DECODE_ERROR;

	if (!sr_fast_flag(buf, ts[SR_FT_IS_NEW], &job->is_new) ||
		!sr_fast_flag(buf, ts[SR_FT_IS_REGRESSION], &job->is_regression) ||
		!sr_fast_flag(buf, ts[SR_FT_IS_NEW_GE], &job->is_new_group_environment) ||
		!sr_fast_opt_string(dec, buf, ts[SR_FT_QUEUE], false, &o->queue))
		return SR_DECODE_ERROR;
	sp = ts[SR_FT_GROUP_STATES];
	if (sp.len != 0 && sr_fast_literal(buf + sp.start, sp.len) != 2 &&
		!sr_arena_push(dec, buf + sp.start, sp.len, &o->group_states, &ignored))
		return SR_DECODE_ERROR;
	return SR_DECODE_JOB;
}
