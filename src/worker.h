/*
 * worker.h - the relay worker: its state, in one explicit structure
 * (sr_worker) that is passed to every function that needs it, and its
 * modules.  One worker process runs one (stream, worker index).
 *
 * Calls run one way, from the top of this list to the bottom; no module
 * calls one above it:
 *
 *   worker.c         the process: start-up, the main loop, shutdown
 *   events.c         the events consumer's read loop and the fetcher kick
 *   commit_log.c     the writers' commit log (worker 0 of a stream)
 *   rebalance.c      partitions assigned and revoked, by the group or
 *                    locally
 *   gate.c           which message may pass: the remote offsets, the hold,
 *                    pause and resume, stepping over gaps, the batch commit
 *   hold.c           messages read past the gate, kept decoded
 *   batch.c          the batch and its one transaction: jobs, dead letters,
 *                    remote offsets, local offsets and counters
 *   message.c        a Kafka message as the relay sees it, and its outcome
 *   offset_mirror.c  offsets mirrored to the Kafka group once flushed
 *   worker_status.c  the worker's slot in shared memory, the partition
 *                    table, Kafka error events
 *   store.c          SQL reads and writes of the worker's tables
 *   job_rows.c       jobs as rows in COPY binary format; their insert
 *   multi_insert.c   those rows through the table AM
 */
#ifndef SR_WORKER_H
#define SR_WORKER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

#include "decode.h"
#include "kafka.h"
#include "shmem.h"
#include "state.h"
#include "stream.h"

/* A message of the events topic or the commit log, raw. */
typedef struct sr_msg
{
	int32		partition;
	int64		offset;
	const void *payload;		/* NULL: a null value */
	size_t		len;
	const void *key;			/* NULL: no key */
	size_t		key_len;
	sr_header  *headers;
	size_t		nheaders;
	bool		has_ts;
	int64		ts_ms;
} sr_msg;

/*
 * A decoded message of the events topic: what the batch does with it.  The
 * direct path and the hold hand it to the batch the same way
 * (sr_batch_add).
 */
typedef struct sr_outcome
{
	sr_decode_status st;		/* SR_DECODE_JOB, _SKIP or _ERROR */
	int64		offset;
	size_t		msg_bytes;		/* payload and key, as the batch counts them */
	const char *row;			/* JOB: the job's row (COPY binary) */
	size_t		row_len;
	sr_msg		msg;			/* ERROR: the raw parts, for the dead letter */
	sr_error	err;
} sr_outcome;

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

/* One batch: everything its transaction writes (batch.c). */
typedef struct sr_batch
{
	int			n;				/* jobs in rows */
	StringInfoData rows;		/* COPY binary; data NULL until the first job */
	List	   *dead;			/* of sr_dead */
	List	   *remote;			/* of sr_remote_update */
	int			ncl_positions;	/* commit-log partitions read in this batch */
	int			cl_allocated;
	int32	   *cl_partition;
	int64	   *cl_offset;		/* the next offset of each */
	size_t		bytes;
	int			messages;
	int			skipped;
	TimestampTz started;
} sr_batch;

/* The hold's totals over all partitions (hold.c). */
typedef struct sr_hold
{
	MemoryContext cxt;
	size_t		total;			/* bytes held */
	int			count;			/* messages held */
	bool		more;			/* a full batch cut a release short */
} sr_hold;

/* The worker: everything one worker process keeps. */
typedef struct sr_worker
{
	sr_worker_slot *slot;		/* in shared memory: status and counters */
	char		label[128];		/* "worker N of stream "S"", for messages */
	int			index;			/* the worker's number in its stream */
	sr_stream_def def;
	sr_consumer events;			/* group consumer of the events topic */
	sr_consumer clog;			/* standalone consumer of the commit log */
	bool		clog_wanted;
	bool		clog_assigned;
	TimestampTz clog_next_try;
	/* local assignment (rebalance.c): the partition count taken, the next look */
	int			local_count;
	bool		local_failing;
	bool		local_group_warned;	/* the group has other members: said once */
	TimestampTz local_next_try;
	TimestampTz local_group_next;	/* the next look at the group's members */
	int			wake_pipe[2];	/* librdkafka writes when a queue fills */
	MemoryContext batch_cxt;	/* the current batch; reset after its commit */
	MemoryContext iter_cxt;		/* one pass of the loop */
	sr_batch	batch;
	sr_part    *parts;			/* indexed by partition number */
	int			nparts;
	bool		broker_down;
	TimestampTz broker_probe_next;	/* while down: the next look for a broker */
	bool		assigned;		/* the group (or local assignment) has assigned once */
	TimestampTz last_remote_refresh;
	StringInfoData row;			/* the job row being encoded (message.c) */
	sr_hold		hold;
	List	   *mirrors;		/* offsets waiting for a flush (offset_mirror.c) */
	int			kick_next;		/* the fetcher kick's round robin (events.c) */
	TimestampTz kick_last;
} sr_worker;

/* events.c */
extern void sr_drain_events(sr_worker *w, TimestampTz deadline);
extern void sr_kick_fetcher(sr_worker *w);

/* commit_log.c */
extern void sr_clog_assign(sr_worker *w);
extern void sr_drain_commit_log(sr_worker *w);

/* rebalance.c */
extern void sr_on_assign(sr_worker *w, rd_kafka_topic_partition_list_t *parts);
extern void sr_on_revoke(sr_worker *w, rd_kafka_topic_partition_list_t *parts);
extern void sr_release_all(sr_worker *w);
extern bool sr_local_assign(sr_worker *w);
extern void sr_local_check_group(sr_worker *w);

/* gate.c */
extern void sr_gate_offer(sr_worker *w, sr_part *p, const sr_msg *m);
extern void sr_apply_group_offset(sr_worker *w, sr_part *p, int group, int64 offset);
extern void sr_refresh_remote(sr_worker *w);
extern void sr_gate_release_all(sr_worker *w);
extern bool sr_gate_pending(const sr_worker *w);
extern void sr_pass_gap(sr_part *p);
extern void sr_gate_commit(sr_worker *w);
extern void sr_gate_commit_all(sr_worker *w);

/* hold.c */
extern size_t sr_hold_limit(void);
extern int64 sr_next_fetch(const sr_part *p);
extern bool sr_hold_push(sr_worker *w, sr_part *p, const sr_outcome *out);
extern const sr_outcome *sr_hold_first(const sr_part *p);
extern void sr_hold_pop(sr_worker *w, sr_part *p);
extern void sr_hold_drop(sr_worker *w, sr_part *p);
extern bool sr_hold_has_room(const sr_worker *w);

/* batch.c */
extern bool sr_batch_full(const sr_worker *w);
extern void sr_batch_add(sr_worker *w, sr_part *p, const sr_outcome *out);
extern void sr_batch_dead_letter(sr_worker *w, const sr_msg *m, const sr_error *err,
								 const char *topic);
extern void sr_batch_remote(sr_worker *w, sr_remote_update *u);
extern void sr_batch_cl_position(sr_worker *w, int32 partition, int64 next);
extern bool sr_batch_commit(sr_worker *w);

/* message.c */
extern void sr_msg_from_kafka(const rd_kafka_message_t *m, sr_msg *msg);
extern void sr_decode_outcome(sr_worker *w, const sr_msg *m, sr_outcome *out);

/* offset_mirror.c */
extern void sr_mirror_push(sr_worker *w, rd_kafka_topic_partition_list_t *offsets);
extern bool sr_mirror_pending(const sr_worker *w);
extern void sr_mirror_send(sr_worker *w, bool flush);

/* worker_status.c */
extern void sr_set_status(sr_worker *w, const char *status);
extern void sr_set_running(sr_worker *w);
extern void sr_worker_error(sr_worker *w, const char *msg);
extern void sr_publish_partitions(sr_worker *w);
extern sr_part *sr_get_part(sr_worker *w, int32 partition, bool create);
extern int	sr_group_index(const sr_worker *w, const char *group);
extern void sr_count_kafka_error(sr_worker *w, rd_kafka_resp_err_t err);
extern void sr_kafka_error_event(sr_worker *w, rd_kafka_event_t *ev, const char *who);
extern void sr_broker_reachable(sr_worker *w);
extern void sr_broker_probe(sr_worker *w);
extern void sr_note_watermark(sr_worker *w, sr_part *p);

/* store.c: inside sr_store_begin/sr_store_commit */
extern void sr_store_begin(const char *activity);
extern void sr_store_commit(void);
extern bool sr_store_load_stream(const char *name, sr_stream_def *def);
extern void sr_store_dead_letters(const sr_stream_def *def, sr_batch *b);
extern void sr_store_remote(const sr_stream_def *def, sr_batch *b);
extern void sr_store_partitions(const sr_stream_def *def, sr_part **ps, int n);
extern void sr_store_claim_partition(const sr_stream_def *def, sr_part *p);
extern void sr_store_release_partition(const sr_stream_def *def, int32 partition);
extern List *sr_store_read_remote(const sr_stream_def *def);
extern List *sr_store_read_cl_positions(const sr_stream_def *def);

/* job_rows.c */
typedef struct sr_job_column
{
	const char *name;
	Oid			typid;
} sr_job_column;

#define SR_JOB_NCOLUMNS 18
/* A batch's rows start with COPY binary's header: signature, flags, extension length. */
#define SR_JOB_ROWS_HEADER_LEN (11 + 4 + 4)
extern const sr_job_column sr_job_columns[SR_JOB_NCOLUMNS];

extern void sr_rows_encode(StringInfo s, const sr_stream_def *def,
						   int32 partition, int64 offset, const sr_job *job,
						   bool has_ts, TimestampTz ts,
						   const void *body, size_t body_len);
extern void sr_rows_append(sr_batch *b, const char *row, size_t len);
/* how a batch's jobs went into sentry_relay.jobs (sentry_relay.workers counts both) */
typedef enum sr_insert_path
{
	SR_INSERT_NONE,				/* the batch had no job */
	SR_INSERT_DIRECT,			/* table_multi_insert (multi_insert.c) */
	SR_INSERT_COPY				/* COPY FROM: the table needs what only it does */
} sr_insert_path;

extern sr_insert_path sr_rows_insert(const sr_stream_def *def, sr_batch *b);

/* multi_insert.c */
extern bool sr_multi_insert_jobs(Relation rel, const StringInfoData *rows, int n);

#endif							/* SR_WORKER_H */
