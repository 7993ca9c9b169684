/*
 * hold.c - messages read past the gate, held in memory until the writer
 * commits them.
 *
 * With the commit log trailing the events topic, most messages reach a
 * worker before the writer has committed them.  Pausing the partition and
 * seeking back would make each of them wait for a second fetch after the gate
 * opens, so instead each such message is decoded and its outcome (a job's
 * row, or the raw parts of a dead letter) kept here, in offset order per
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

#include "utils/memutils.h"

#include "decode_sql.h"
#include "guc.h"
#include "worker_internal.h"

/*
 * One held message, decoded when it arrived: a job is kept as its row in
 * COPY binary format, a message that fails to decode as its raw parts for
 * the dead letter, a skipped one as nothing.  The parts follow the struct in
 * the same allocation.
 */
struct sr_held
{
	struct sr_held *next;
	size_t		size;			/* what counts against the limit */
	int64		offset;
	size_t		msg_bytes;		/* payload and key, as the batch counts them */
	sr_decode_status st;
	const char *row;			/* SR_DECODE_JOB */
	size_t		row_len;
	sr_msg		msg;			/* SR_DECODE_ERROR */
	sr_error	err;
};

static MemoryContext sr_hold_cxt = NULL;
static StringInfoData sr_hold_row;	/* the row being made */
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

/* Copy a message's raw parts behind a held entry, at data. */
static void
sr_hold_copy_raw(sr_msg *d, const sr_msg *m, char *hdrs, char *data)
{
	*d = *m;
	d->headers = m->nheaders > 0 ? (sr_header *) hdrs : NULL;
	if (m->payload != NULL)
	{
		memcpy(data, m->payload, m->len);
		d->payload = data;
		data += m->len;
	}
	if (m->key != NULL)
	{
		memcpy(data, m->key, m->key_len);
		d->key = data;
		data += m->key_len;
	}
	for (size_t i = 0; i < m->nheaders; i++)
	{
		sr_header  *dh = &d->headers[i];
		const sr_header *s = &m->headers[i];

		memcpy(data, s->name, s->name_len);
		data[s->name_len] = '\0';
		dh->name = data;
		dh->name_len = s->name_len;
		data += s->name_len + 1;
		dh->value = NULL;
		dh->value_len = 0;
		if (s->value != NULL)
		{
			memcpy(data, s->value, s->value_len);
			dh->value = data;
			dh->value_len = s->value_len;
			data += s->value_len;
		}
	}
}

/*
 * Decode a message that may not pass the gate yet and keep the outcome, so
 * that releasing it costs only a copy.  False when it does not fit in the
 * budget: the caller pauses the partition.
 */
bool
sr_hold_push(sr_part *p, const sr_msg *m)
{
	size_t		size = MAXALIGN(sizeof(struct sr_held));
	size_t		hdrs_at = size,
				data_at;
	struct sr_held *h;
	sr_job		job;
	sr_error	err;
	sr_decode_status st;

	st = sr_decode_event(sr_get_decoder(), m->payload, m->len, m->headers, m->nheaders,
						 &job, &err);
	if (st == SR_DECODE_JOB)
	{
		if (sr_hold_row.data == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			initStringInfo(&sr_hold_row);
			MemoryContextSwitchTo(old);
		}
		resetStringInfo(&sr_hold_row);
		sr_db_job_row(&sr_hold_row, &sr_def, m->partition, m->offset, &job, m->has_ts,
					  sr_unix_us_to_timestamptz(m->ts_ms * 1000), m->payload, m->len);
		data_at = size;
		size += sr_hold_row.len;
	}
	else if (st == SR_DECODE_ERROR)
	{
		size += MAXALIGN(sizeof(sr_header) * m->nheaders);
		data_at = size;
		size += m->len + m->key_len;
		for (size_t i = 0; i < m->nheaders; i++)
			size += m->headers[i].name_len + 1 + m->headers[i].value_len;
	}
	else
		data_at = size;
	if (sr_hold_total + size > sr_hold_limit())
		return false;

	if (sr_hold_cxt == NULL)
		sr_hold_cxt = AllocSetContextCreate(TopMemoryContext, "sentry_relay hold",
											ALLOCSET_DEFAULT_SIZES);
	h = MemoryContextAllocZero(sr_hold_cxt, size);
	h->size = size;
	h->offset = m->offset;
	h->msg_bytes = m->len + m->key_len;
	h->st = st;
	if (st == SR_DECODE_JOB)
	{
		memcpy((char *) h + data_at, sr_hold_row.data, sr_hold_row.len);
		h->row = (char *) h + data_at;
		h->row_len = sr_hold_row.len;
	}
	else if (st == SR_DECODE_ERROR)
	{
		sr_hold_copy_raw(&h->msg, m, (char *) h + hdrs_at, (char *) h + data_at);
		h->err = err;
	}

	if (p->hold_tail != NULL)
		p->hold_tail->next = h;
	else
	{
		p->hold_head = h;
		sr_count_fault(sr_slot, SR_FAULT_GATED);	/* a wait at the gate begins */
	}
	p->hold_tail = h;
	p->hold_bytes += size;
	sr_hold_total += size;
	sr_hold_count++;
	return true;
}

/* Forget the first held message of a partition. */
static void
sr_hold_pop(sr_part *p)
{
	struct sr_held *h = p->hold_head;

	p->hold_head = h->next;
	if (p->hold_head == NULL)
		p->hold_tail = NULL;
	p->hold_bytes -= h->size;
	sr_hold_total -= h->size;
	sr_hold_count--;
	pfree(h);
	if (sr_hold_count == 0)
		MemoryContextReset(sr_hold_cxt);	/* give the memory back */
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
	MemoryContext old = MemoryContextSwitchTo(sr_batch_cxt);

	while (p->hold_head != NULL)
	{
		struct sr_held *h = p->hold_head;
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
		if (h->st == SR_DECODE_JOB)
			sr_db_batch_append_row(&sr_b, h->row, h->row_len);
		else if (h->st == SR_DECODE_SKIP)
			sr_b.skipped++;
		else
			sr_dead_letter(&h->msg, &h->err, sr_def.topic);
		sr_relayed(p, h->offset, h->msg_bytes);
		sr_hold_pop(p);
		any = true;
	}
	MemoryContextSwitchTo(old);
	if (any && sr_hold_total < sr_hold_limit() / 2)
		for (int i = 0; i < sr_nparts; i++)
			sr_parts[i].hold_blocked = false;
	return any;
}

/*
 * Step the local offset over offsets that hold no message: when the next
 * message we can see (the first held one) or the end of the partition lies
 * past the local offset, nothing in between is left to relay: transaction
 * markers, aborted or compacted messages.  Move the local offset up to it,
 * but not past the writer's offset, so that a writer that committed just past
 * such offsets finds the partition SYNCHRONIZED rather than one behind for
 * ever, and one that committed before them does not find it ahead.  With no
 * remote offset yet, wait for one.
 */
void
sr_pass_gap(sr_part *p)
{
	const sr_offsets *o = &p->sm.cur.offsets;
	int64		next;
	sr_snapshot prev;
	bool		changed;

	if (!p->assigned || !o->has_local || !o->has_remote)
		return;
	if (p->hold_head != NULL)
		next = p->hold_head->offset;
	else if (p->at_end)
		next = p->end;
	else
		return;
	next = Min(next, o->remote);
	if (next <= o->local)
		return;
	if (sr_partition_set_local(&p->sm, true, next, &prev, &changed) == SR_SM_OK)
		p->dirty = true;
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
	{
		sr_pass_gap(&sr_parts[i]);
		sr_apply_flow(&sr_parts[i]);
	}
}

/* Whether held messages may pass but wait for the next batch. */
bool
sr_hold_pending(void)
{
	return sr_hold_more;
}
