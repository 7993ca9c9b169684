/*
 * job_row.c - a decoded job as one row of COPY's binary format (see
 * job_row.h): a 16-bit field count, then per field a 32-bit length (-1 for
 * NULL) and the value in its binary send form, all in network byte order.
 */
#include <string.h>

#include "job_row.h"

/* A text field's bytes: NULL stays NULL. */
static inline size_t
sr_row_text_size(const char *v)
{
	return 4 + (v != NULL ? strlen(v) : 0);
}

static inline char *
sr_row_be32(char *p, uint32_t v)
{
	p[0] = (char) (v >> 24);
	p[1] = (char) (v >> 16);
	p[2] = (char) (v >> 8);
	p[3] = (char) v;
	return p + 4;
}

static inline char *
sr_row_be64(char *p, uint64_t v)
{
	p = sr_row_be32(p, (uint32_t) (v >> 32));
	return sr_row_be32(p, (uint32_t) v);
}

static inline char *
sr_row_bytes(char *p, const void *v, size_t len)
{
	if (v == NULL)
		return sr_row_be32(p, UINT32_MAX);	/* -1: NULL */
	p = sr_row_be32(p, (uint32_t) len);
	memcpy(p, v, len);
	return p + len;
}

static inline char *
sr_row_text(char *p, const char *v)
{
	return sr_row_bytes(p, v, v != NULL ? strlen(v) : 0);
}

static inline char *
sr_row_int32(char *p, int32_t v)
{
	p = sr_row_be32(p, 4);
	return sr_row_be32(p, (uint32_t) v);
}

static inline char *
sr_row_int64(char *p, int64_t v)
{
	p = sr_row_be32(p, 8);
	return sr_row_be64(p, (uint64_t) v);
}

static inline char *
sr_row_bool(char *p, bool v)
{
	p = sr_row_be32(p, 1);
	*p = v ? 1 : 0;
	return p + 1;
}

size_t
sr_job_row_size(const sr_row_ctx *ctx, const sr_job *job, bool has_ts,
				const void *body, size_t body_len)
{
	size_t		size = 2;
	const char *texts[] = {ctx->stream, ctx->topic, ctx->eventstream_type, job->queue,
		job->event_id, job->primary_hash, job->occurrence_id, job->cache_key};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
	{
		size_t		n = sr_row_text_size(texts[i]);

		if (n - 4 > SR_JOB_FIELD_MAX)
			return 0;
		size += n;
	}
	size += 4 + 4;				/* partition */
	size += 3 * (4 + 8);		/* offset, project_id, group_id (or NULL, 4) */
	if (!job->has_group_id)
		size -= 8;
	size += 3 * (4 + 1);		/* is_new, is_regression, is_new_group_environment */
	if (job->group_states != NULL)
	{
		size_t		n = strlen(job->group_states) + 1;	/* jsonb's version byte */

		if (n > SR_JOB_FIELD_MAX)
			return 0;
		size += 4 + n;
	}
	else
		size += 4;
	size += has_ts ? 4 + 8 : 4; /* message_timestamp */
	if (ctx->keep_body && body != NULL)
	{
		if (body_len > SR_JOB_FIELD_MAX)
			return 0;
		size += 4 + body_len;
	}
	else
		size += 4;
	return size;
}

/*
 * The columns in sr_job_columns' order.  The caller sized dst with
 * sr_job_row_size and the same arguments.
 */
void
sr_job_row_write(char *dst, const sr_row_ctx *ctx, int32_t partition, int64_t offset,
				 const sr_job *job, bool has_ts, int64_t ts, const void *body, size_t body_len)
{
	char	   *p = dst;

	p[0] = 0;
	p[1] = SR_JOB_NCOLUMNS;
	p += 2;
	p = sr_row_text(p, ctx->stream);
	p = sr_row_text(p, ctx->topic);
	p = sr_row_text(p, ctx->eventstream_type);
	p = sr_row_int32(p, partition);
	p = sr_row_int64(p, offset);
	p = sr_row_text(p, job->queue);
	p = sr_row_int64(p, job->project_id);
	p = job->has_group_id ? sr_row_int64(p, job->group_id) : sr_row_be32(p, UINT32_MAX);
	p = sr_row_text(p, job->event_id);
	p = sr_row_text(p, job->primary_hash);
	p = sr_row_bool(p, job->is_new);
	p = sr_row_bool(p, job->is_regression);
	p = sr_row_bool(p, job->is_new_group_environment);
	if (job->group_states != NULL)
	{
		size_t		n = strlen(job->group_states);

		p = sr_row_be32(p, (uint32_t) n + 1);
		*p++ = 1;				/* jsonb's binary format version */
		memcpy(p, job->group_states, n);
		p += n;
	}
	else
		p = sr_row_be32(p, UINT32_MAX);
	p = sr_row_text(p, job->occurrence_id);
	p = sr_row_text(p, job->cache_key);
	p = has_ts ? sr_row_int64(p, ts) : sr_row_be32(p, UINT32_MAX);
	(void) sr_row_bytes(p, ctx->keep_body ? body : NULL, body_len);
}
