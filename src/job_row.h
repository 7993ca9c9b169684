/*
 * job_row.h - a decoded job as one row of COPY's binary format, the form in
 * which a batch's jobs are gathered (bulk_insert.c, multi_insert.c).
 *
 * Pure C with no PostgreSQL dependency: the decode thread (decode_ahead.c)
 * writes rows while the worker's main thread inserts the previous batch.
 */
#ifndef SR_JOB_ROW_H
#define SR_JOB_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"

/* The columns every row carries; relay.h's sr_job_columns names them. */
#define SR_JOB_NCOLUMNS 18

/* Largest field PostgreSQL can hold in one value (MaxAllocSize - VARHDRSZ). */
#define SR_JOB_FIELD_MAX ((size_t) 0x3fffffff - 4)

/* What a row takes from the stream rather than from the message. */
typedef struct sr_row_ctx
{
	const char *stream;
	const char *topic;
	const char *eventstream_type;
	bool		keep_body;		/* the body goes into the row's last column */
} sr_row_ctx;

/* A message's Kafka timestamp (ms since 1970) as a timestamptz value. */
static inline int64_t
sr_job_row_timestamp(int64_t unix_ms)
{
	/* microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01 */
	return unix_ms * 1000 - INT64_C(946684800000000);
}

/* Bytes of the row for job, or 0 when a field is over SR_JOB_FIELD_MAX. */
extern size_t sr_job_row_size(const sr_row_ctx *ctx, const sr_job *job, bool has_ts,
							  const void *body, size_t body_len);

/* Write the row (exactly sr_job_row_size bytes) at dst. */
extern void sr_job_row_write(char *dst, const sr_row_ctx *ctx, int32_t partition,
							 int64_t offset, const sr_job *job, bool has_ts,
							 int64_t ts, const void *body, size_t body_len);

#endif							/* SR_JOB_ROW_H */
