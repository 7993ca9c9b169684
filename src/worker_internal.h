/*
 * worker_internal.h - state and functions shared by the relay worker's
 * files: the loop (worker.c), consumption of the events topic (consume.c)
 * and the commit-log follower (commit_log.c).  One worker process runs one
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
extern void sr_dead_letter(const rd_kafka_message_t *m, const sr_error *err,
						   const char *topic);
extern void sr_flush(void);
extern void sr_drain_events(TimestampTz deadline);
extern void sr_kick_fetcher(void);

/* commit_log.c */
extern void sr_clog_assign(void);
extern void sr_drain_commit_log(void);

#endif							/* SR_WORKER_INTERNAL_H */
