/*
 * kafka.h - librdkafka set-up for the relay worker: configuration from the
 * settings and the stream, consumer handles whose events (messages,
 * rebalances, errors, logs) are all served from the worker's main thread
 * through one queue per handle, and a pipe that wakes the worker's
 * WaitEventSet when a queue becomes non-empty.
 */
#ifndef SR_KAFKA_H
#define SR_KAFKA_H

#include "postgres.h"

#include <librdkafka/rdkafka.h>

#include "stream.h"

typedef struct sr_consumer
{
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;	/* consumer queue; the main queue forwards to it */
} sr_consumer;

/*
 * Create a consumer.  group_consumer: the events consumer, in
 * def->consumer_group (it subscribes, or with local assignment assigns its
 * partitions itself and only commits to the group), a static member when
 * instance_id is not NULL; otherwise the commit log's standalone consumer,
 * for assign() only.  wake_fd is written to when the consumer's queue
 * becomes non-empty.
 */
extern void sr_consumer_create(sr_consumer *c, const sr_stream_def *def,
							   const char *client_id, bool group_consumer,
							   const char *instance_id, int wake_fd);
extern void sr_consumer_destroy(sr_consumer *c, bool close_group);

/* Forward one librdkafka log event to the server log. */
extern void sr_kafka_log_event(rd_kafka_event_t *ev, const char *who);

/* True for errors that mean the cluster cannot be reached. */
extern bool sr_kafka_error_is_broker_down(rd_kafka_resp_err_t err);

/* Drop a consumer's whole assignment (eager protocol), logging a failure. */
extern void sr_kafka_unassign_all(rd_kafka_t *rk, const char *who);

/*
 * The metadata of one topic that has partitions, in *md (free it with
 * rd_kafka_metadata_destroy), or the error that says why there is none.
 */
extern rd_kafka_resp_err_t sr_kafka_topic_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
												   const struct rd_kafka_metadata **md);

/* A list of one partition, for pause/resume/seek/commit. */
extern rd_kafka_topic_partition_list_t *sr_kafka_one(const char *topic,
													int32 partition,
													int64 offset);

#endif							/* SR_KAFKA_H */
