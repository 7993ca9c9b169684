/*
 * hold.c - messages read past the gate, kept decoded in memory until the
 * writer commits them.
 *
 * With the commit log trailing the events topic, most messages reach a
 * worker before the writer has committed them.  Pausing the partition and
 * seeking back would make each of them wait for a second fetch after the gate
 * opens, so instead each such message is decoded and its outcome (a job's
 * row, or the raw parts of a dead letter) kept here, in offset order per
 * partition; the gate (gate.c) hands them to the batch as soon as the remote
 * offset passes them, so a commit-log step costs only the copy and the
 * insert.  The hold is bounded: all partitions of a worker share
 * sr_hold_limit() bytes.
 *
 * Held messages are not relayed: the local offset moves only when a message
 * is released to a batch, so a hold that is dropped (revocation, shutdown,
 * crash) loses nothing; the partition is re-read from its local offset.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "guc.h"
#include "worker.h"

/* One held message: its outcome, whose parts follow it in one allocation. */
struct sr_held
{
	struct sr_held *next;
	size_t		size;			/* what counts against the limit */
	sr_outcome	out;
};

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
	return p->hold_tail != NULL ? p->hold_tail->out.offset + 1 : p->sm.cur.offsets.local;
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
 * Keep a message's outcome at the end of its partition's hold.  False when
 * it does not fit in the budget: the caller pauses the partition.
 */
bool
sr_hold_push(sr_worker *w, sr_part *p, const sr_outcome *out)
{
	size_t		size = MAXALIGN(sizeof(struct sr_held));
	size_t		hdrs_at = size,
				data_at;
	const sr_msg *m = &out->msg;
	struct sr_held *h;

	if (out->st == SR_DECODE_JOB)
	{
		data_at = size;
		size += out->row_len;
	}
	else if (out->st == SR_DECODE_ERROR)
	{
		size += MAXALIGN(sizeof(sr_header) * m->nheaders);
		data_at = size;
		size += m->len + m->key_len;
		for (size_t i = 0; i < m->nheaders; i++)
			size += m->headers[i].name_len + 1 + m->headers[i].value_len;
	}
	else
		data_at = size;
	if (w->hold.total + size > sr_hold_limit())
		return false;
	if (w->hold.cxt == NULL)
		w->hold.cxt = AllocSetContextCreate(TopMemoryContext, "sentry_relay hold",
											ALLOCSET_DEFAULT_SIZES);
	h = MemoryContextAllocZero(w->hold.cxt, size);
	h->size = size;
	h->out = *out;
	if (out->st == SR_DECODE_JOB)
	{
		memcpy((char *) h + data_at, out->row, out->row_len);
		h->out.row = (char *) h + data_at;
	}
	else if (out->st == SR_DECODE_ERROR)
		sr_hold_copy_raw(&h->out.msg, m, (char *) h + hdrs_at, (char *) h + data_at);
	if (p->hold_tail != NULL)
		p->hold_tail->next = h;
	else
	{
		p->hold_head = h;
		sr_count_fault(w->slot, SR_FAULT_GATED);	/* a wait at the gate begins */
	}
	p->hold_tail = h;
	p->hold_bytes += size;
	w->hold.total += size;
	w->hold.count++;
	return true;
}

/* The oldest held outcome of a partition, or NULL. */
const sr_outcome *
sr_hold_first(const sr_part *p)
{
	return p->hold_head != NULL ? &p->hold_head->out : NULL;
}

/* Forget the oldest held message of a partition. */
void
sr_hold_pop(sr_worker *w, sr_part *p)
{
	struct sr_held *h = p->hold_head;

	p->hold_head = h->next;
	if (p->hold_head == NULL)
		p->hold_tail = NULL;
	p->hold_bytes -= h->size;
	w->hold.total -= h->size;
	w->hold.count--;
	pfree(h);
	if (w->hold.count == 0)
		MemoryContextReset(w->hold.cxt);	/* give the memory back */
}

/* Drop everything held for a partition (revoked, reassigned, stopping). */
void
sr_hold_drop(sr_worker *w, sr_part *p)
{
	while (p->hold_head != NULL)
		sr_hold_pop(w, p);
	p->hold_blocked = false;
}

/* Whether the hold has room again for the partitions that found it full. */
bool
sr_hold_has_room(const sr_worker *w)
{
	return w->hold.total < sr_hold_limit() / 2;
}
