/*
 * worker_internal.h - state and functions shared by the relay worker's
 * files: the loop (worker.c), consumption of the events topic (consume.c)
 * the commit-log follower (commit_log.c) and the Kafka offset mirror
 * (offset_mirror.c).  One worker process runs one
 * (stream, worker index); all of this is process-local.
 */
#ifndef SR_WORKER_INTERNAL_H
#define SR_WORKER_INTERNAL_H

#include "postgres.h"

#include "kafka.h"
#include "relay.h"
#include "shmem.h"

extern sr_worker_slot *sr_slot;
extern sr_stream_def sr_def;
extern sr_consumer sr_events;	/* group consumer of the events topic */
extern sr_consumer sr_clog;		/* standalone consumer of the commit log */
extern bool sr_clog_wanted;
extern bool sr_clog_assigned;
extern TimestampTz sr_clog_next_try;
extern MemoryContext sr_batch_cxt;	/* the current batch; reset after its commit */
extern sr_batch sr_b;
extern sr_part *sr_parts;		/* indexed by partition number */
extern int	sr_nparts;
extern bool sr_broker_down;
extern TimestampTz sr_last_remote_refresh;
extern char sr_who[128];

/* A message of the events topic, from librdkafka or from the hold. */
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

/* worker.c */
extern void sr_set_status(const char *status);
extern void sr_worker_error(const char *msg);
extern void sr_publish_partitions(void);
extern sr_part *sr_get_part(int32 partition, bool create);
extern int	sr_group_index(const char *group);
extern void sr_handle_error_event(rd_kafka_event_t *ev, const char *who);

/* consume.c */
extern void sr_apply_flow(sr_part *p);
extern void sr_refresh_remote(void);
extern sr_header *sr_message_headers(const rd_kafka_message_t *m, size_t *n);
extern void sr_dead_letter(const sr_msg *m, const sr_error *err, const char *topic);
extern void sr_process_message(sr_part *p, const sr_msg *m);
extern void sr_relayed(sr_part *p, int64 offset, size_t bytes);
extern void sr_apply_group_offset(sr_part *p, int group, int64 offset);
extern void sr_flush(void);
extern void sr_flush_all(void);
extern void sr_drain_events(TimestampTz deadline);
extern void sr_kick_fetcher(void);

/* hold.c */
extern size_t sr_hold_limit(void);
extern int64 sr_next_fetch(const sr_part *p);
extern void sr_msg_from_kafka(const rd_kafka_message_t *m, sr_msg *msg);
extern bool sr_hold_push(sr_part *p, const sr_msg *m);
extern void sr_hold_drop(sr_part *p);
extern bool sr_hold_release(sr_part *p);
extern void sr_hold_release_all(void);
extern void sr_pass_gap(sr_part *p);
extern bool sr_hold_pending(void);

/* offset_mirror.c */
extern void sr_mirror_push(rd_kafka_topic_partition_list_t *offsets);
extern bool sr_mirror_pending(void);
extern void sr_mirror_send(bool flush);

/* commit_log.c */
extern void sr_clog_assign(void);
extern void sr_drain_commit_log(void);

#endif							/* SR_WORKER_INTERNAL_H */
