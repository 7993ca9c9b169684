/*
 * relay.h - the relay's background worker entry points and the structures
 * shared by the worker's files: the loop (worker.c), its Kafka side
 * (kafka.c, consume.c, hold.c, commit_log.c, offset_mirror.c) and its
 * database side (queue.c, bulk_insert.c, multi_insert.c).
 */
#ifndef SR_RELAY_H
#define SR_RELAY_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/relcache.h"

#include "decode.h"
#include "state.h"
#include "stream.h"

extern PGDLLEXPORT void sr_launcher_main(Datum main_arg);
extern PGDLLEXPORT void sr_worker_main(Datum main_arg);

/* One partition of the events topic, as a worker tracks it. */
typedef struct sr_part
{
	int32		partition;
	bool		assigned;
	sr_partition sm;			/* local/remote offsets and state */
	bool		has_committed;	/* local_offset in the table is not NULL */
	int64		committed;		/* local_offset in the table: our fence */
	bool		paused;
	bool		fresh;			/* no message since (re)positioning */
	bool		at_end;			/* the fetcher reached the end... */
	int64		end;			/* ...at this offset, and no message came since */
	bool		dirty;			/* local offset moved in this batch */
	int64		high_watermark;
	char		last_error[256];
	bool		error_dirty;
	/* messages read past the gate, oldest first (hold.c) */
	struct sr_held *hold_head;
	struct sr_held *hold_tail;
	size_t		hold_bytes;
	bool		hold_blocked;	/* a message did not fit: paused for it */
} sr_part;

/* A dead letter waiting for the batch commit. */
typedef struct sr_dead
{
	char	   *topic;
	int32		partition;
	int64		offset;
	bytea	   *key;
	bytea	   *value;
	int			nheaders;
	char	  **header_names;
	bytea	  **header_values;
	char	   *error;
	const char *sqlstate;
	const char *error_class;
} sr_dead;

/* A remote offset read from the commit log, waiting for the batch commit. */
typedef struct sr_remote_update
{
	int32		partition;
	char	   *group;
	int64		offset;
	bool		has_ts;
	TimestampTz ts;
} sr_remote_update;

/*
 * One batch: its jobs, as rows in COPY binary format (bulk_insert.c), and
 * everything else its transaction writes.
 */
typedef struct sr_batch
{
	int			n;				/* jobs in rows */
	StringInfoData rows;		/* data NULL until the first job */
	List	   *dead;			/* of sr_dead */
	List	   *remote;			/* of sr_remote_update */
	int			ncl_positions;	/* commit-log partitions read in this batch */
	int			cl_allocated;
	int32	   *cl_partition;	/* batch context */
	int64	   *cl_offset;		/* the next offset of each */
	size_t		bytes;
	int			messages;
	int			skipped;
	TimestampTz started;
} sr_batch;

/* A column of sentry_relay.jobs that a job's row carries (bulk_insert.c). */
typedef struct sr_job_column
{
	const char *name;
	Oid			typid;
} sr_job_column;

#define SR_JOB_NCOLUMNS 18

/* A batch's rows start with COPY binary's header: signature, flags, extension length. */
#define SR_JOB_ROWS_HEADER_LEN (11 + 4 + 4)
extern const sr_job_column sr_job_columns[SR_JOB_NCOLUMNS];

/* multi_insert.c: the batch's rows through the table AM, when it can */
extern bool sr_multi_insert_jobs(Relation rel, const StringInfoData *rows, int n);

/* bulk_insert.c: the batch's jobs, inserted through COPY FROM */
extern void sr_db_insert_jobs(const sr_stream_def *def, sr_batch *b);
extern void sr_db_batch_append(sr_batch *b, const sr_stream_def *def,
							   int32 partition, int64 offset, const sr_job *job,
							   bool has_ts, TimestampTz ts,
							   const void *body, size_t body_len);
extern void sr_db_job_row(StringInfo s, const sr_stream_def *def,
						  int32 partition, int64 offset, const sr_job *job,
						  bool has_ts, TimestampTz ts,
						  const void *body, size_t body_len);
extern void sr_db_batch_append_row(sr_batch *b, const char *row, size_t len);

/* queue.c: the database side, called inside sr_db_begin/sr_db_commit */
extern void sr_db_begin(const char *activity);
extern void sr_db_commit(void);
extern bool sr_db_load_stream(const char *name, sr_stream_def *def);
extern void sr_db_insert_dead_letters(const sr_stream_def *def, sr_batch *b);
extern void sr_db_write_remote(const sr_stream_def *def, sr_batch *b);
extern void sr_db_update_partitions(const sr_stream_def *def, sr_part **ps, int n);
extern void sr_db_claim_partition(const sr_stream_def *def, sr_part *p);
extern void sr_db_release_partition(const sr_stream_def *def, int32 partition);
extern List *sr_db_read_remote(const sr_stream_def *def);
extern List *sr_db_read_cl_positions(const sr_stream_def *def);
#endif							/* SR_RELAY_H */
