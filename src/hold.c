/*
 * hold.c - messages read past the gate, held in memory until the writer
 * commits them.
 *
 * With the commit log trailing the events topic, most messages reach a
 * worker before the writer has committed them.  Pausing the partition and
 * seeking back would make each of them wait for a second fetch after the gate
 * opens, so instead each such message's outcome, as the decode thread made
 * it (decode_ahead.c: a job's row, or the raw parts of a dead letter), is
 * kept here, in offset order per
 * partition, and handed to the batch as soon as the remote offset passes it
 * (sr_hold_release): a commit-log step then costs only the copy and the
 * insert.  The hold is bounded: all partitions of a worker
 * share sr_hold_limit() bytes.  When a message does not fit, its partition
 * is paused and, once it may move again, re-read from just past its last
 * held message, as before the hold existed.
 *
 * Held messages are not relayed: the local offset moves only when a message
 * is released to a batch, so a hold that is dropped (revocation, shutdown,
 * crash) loses nothing; the partition is re-read from its local offset.
 */
#include "postgres.h"

#include "decode_ahead.h"
#include "decode_sql.h"
#include "guc.h"
#include "worker_internal.h"

static size_t sr_hold_total = 0;	/* bytes held, all partitions */
static int	sr_hold_count = 0;	/* messages held, all partitions */
static bool sr_hold_more = false;	/* a full batch cut a release short */

/* The hold's budget: half of what librdkafka may prefetch (queue_buffer). */
size_t
sr_hold_limit(void)
{
	return (size_t) sr_queue_buffer_kb * 1024 / 2;
}

/* The offset librdkafka must deliver next for this partition. */
int64
sr_next_fetch(const sr_part *p)
{
	return p->hold_tail != NULL ? p->hold_tail->offset + 1 : p->sm.cur.offsets.local;
}

/* Describe a Kafka message as a sr_msg; headers go to the current context. */
void
sr_msg_from_kafka(const rd_kafka_message_t *m, sr_msg *msg)
{
	rd_kafka_timestamp_type_t tstype;

	msg->partition = m->partition;
	msg->offset = m->offset;
	msg->payload = m->payload;
	msg->len = m->payload != NULL ? m->len : 0;
	msg->key = m->key;
	msg->key_len = m->key != NULL ? m->key_len : 0;
	msg->headers = sr_message_headers(m, &msg->nheaders);
	msg->ts_ms = rd_kafka_message_timestamp(m, &tstype);
	msg->has_ts = tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && msg->ts_ms >= 0;
}

/*
 * Keep a message's outcome that may not pass the gate yet, taking it over.
 * False when it does not fit in the budget: the caller pauses the
 * partition (and still owns d).
 */
bool
sr_hold_push(sr_part *p, sr_decoded *d)
{
	if (sr_hold_total + d->size > sr_hold_limit())
		return false;
	d->next = NULL;
	if (p->hold_tail != NULL)
		p->hold_tail->next = d;
	else
	{
		p->hold_head = d;
		sr_count_fault(sr_slot, SR_FAULT_GATED);	/* a wait at the gate begins */
	}
	p->hold_tail = d;
	p->hold_bytes += d->size;
	sr_hold_total += d->size;
	sr_hold_count++;
	return true;
}

/* Forget the first held message of a partition. */
static void
sr_hold_pop(sr_part *p)
{
	sr_decoded *h = p->hold_head;

	p->hold_head = h->next;
	if (p->hold_head == NULL)
		p->hold_tail = NULL;
	p->hold_bytes -= h->size;
	sr_hold_total -= h->size;
	sr_hold_count--;
	sr_decoded_free(h);
}

/* Drop everything held for a partition (revoked, reassigned, stopping). */
void
sr_hold_drop(sr_part *p)
{
	while (p->hold_head != NULL)
		sr_hold_pop(p);
	p->hold_blocked = false;
}

/*
 * Hand the held messages that may now pass the gate to the batch, in order,
 * until the batch is full.
 * Returns whether any was released.  When the hold has room again, let the
 * partitions that found it full fetch again (sr_apply_flow resumes them).
 */
bool
sr_hold_release(sr_part *p)
{
	bool		any = false;

	while (p->hold_head != NULL)
	{
		sr_decoded *h = p->hold_head;
		bool		before;

		if (p->sm.cur.offsets.has_local && h->offset < p->sm.cur.offsets.local)
		{
			sr_hold_pop(p);		/* the local offset was moved past it */
			continue;
		}
		if (sr_partition_validate(&p->sm, h->offset, &before) != SR_SM_OK)
			break;
		if (sr_b.messages >= sr_batch_size || sr_b.bytes >= (size_t) sr_batch_max_bytes)
		{
			sr_hold_more = true;	/* the next batch takes the rest */
			break;
		}
		sr_relay_decoded(p, h);
		sr_hold_pop(p);
		any = true;
	}
	if (any && sr_hold_total < sr_hold_limit() / 2)
		for (int i = 0; i < sr_nparts; i++)
			sr_parts[i].hold_blocked = false;
	return any;
}

/*
 * Release what the gate lets through on every assigned partition, as far as
 * the batch limits allow (sentry_relay.batch_size, batch_max_bytes): a
 * commit-log step that lets many messages through is committed in several
 * batches, as a drain is.  Then pause or resume every partition to match,
 * which also retries any pause, resume or seek that failed before.
 */
void
sr_hold_release_all(void)
{
	sr_hold_more = false;
	if (sr_hold_count > 0)
		for (int i = 0; i < sr_nparts; i++)
			if (sr_parts[i].assigned && sr_parts[i].hold_head != NULL)
				sr_hold_release(&sr_parts[i]);
	for (int i = 0; i < sr_nparts; i++)
		sr_apply_flow(&sr_parts[i]);
}

/* Whether held messages may pass but wait for the next batch. */
bool
sr_hold_pending(void)
{
	return sr_hold_more;
}
