/*
 * decode_ahead.h - the relay worker's decode thread (decode_ahead.c): it
 * takes events off the events consumer's queue, decodes each message into
 * its outcome (a job's row, a dead letter's raw parts, or a skip), and hands
 * them to the main thread in the order librdkafka gave them.
 */
#ifndef SR_DECODE_AHEAD_H
#define SR_DECODE_AHEAD_H

#include "postgres.h"

#include <librdkafka/rdkafka.h>

#include "job_row.h"
#include "worker_internal.h"

typedef enum sr_decoded_kind
{
	SR_DECODED_MESSAGE,			/* a message, decoded */
	SR_DECODED_KAFKA_ERROR,		/* a message-level consumer error */
	SR_DECODED_EVENT			/* any other event, for the main thread */
} sr_decoded_kind;

/*
 * One outcome, malloc'd in one piece with its row or raw parts behind it.
 * The hold (hold.c) keeps these too, so that releasing a message costs only
 * the copy of its row.
 */
typedef struct sr_decoded
{
	struct sr_decoded *next;
	sr_decoded_kind kind;
	size_t		size;			/* bytes of the allocation: what budgets count */
	int32		partition;
	int64		offset;
	size_t		msg_bytes;		/* payload and key, as the batch counts them */
	sr_decode_status st;		/* SR_DECODED_MESSAGE */
	const char *row;			/* SR_DECODE_JOB; NULL: a field is too large */
	size_t		row_len;
	sr_msg		msg;			/* SR_DECODE_ERROR: the raw parts, copied */
	sr_error	err;
	rd_kafka_event_t *ev;		/* SR_DECODED_EVENT */
	rd_kafka_resp_err_t kafka_err;	/* SR_DECODED_KAFKA_ERROR */
	const char *kafka_errstr;
} sr_decoded;

/* main thread */
extern void sr_ahead_start(rd_kafka_queue_t *queue, int wake_fd, const sr_stream_def *def);
extern sr_decoded *sr_ahead_next(void);
extern bool sr_ahead_pending(void);
extern void sr_ahead_barrier(void);
extern void sr_ahead_forget(int32 partition);
extern void sr_ahead_forget_list(const rd_kafka_topic_partition_list_t *parts);
extern void sr_ahead_stop(void);
extern void sr_ahead_discard(void);
extern void sr_decoded_free(sr_decoded *d);

#endif							/* SR_DECODE_AHEAD_H */
