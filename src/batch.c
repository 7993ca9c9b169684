/*
 * batch.c - the batch and its one transaction.
 *
 * Messages that passed the gate join the batch as their outcomes (a job's
 * row, a skip or a dead letter), and each moves its partition's local
 * offset past it; the commit-log follower adds remote offsets and its read
 * position.  sr_batch_commit writes all of it in one transaction: jobs,
 * dead letters, remote offsets, and the partitions' fenced local offsets,
 * then queues the offsets for Kafka (offset_mirror.c) and adds the batch to
 * the worker's counters.  The batch is cut by count, bytes and time
 * (sentry_relay.batch_size, batch_max_bytes, batch_timeout).
 */
#include "postgres.h"

#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "decode_sql.h"
#include "guc.h"
#include "worker.h"

/* Whether the batch is full: the next message waits for the next batch. */
bool
sr_batch_full(const sr_worker *w)
{
	return w->batch.messages >= sr_batch_size ||
		w->batch.bytes >= (size_t) sr_batch_max_bytes;
}

/* Copy a message's raw parts into a dead letter of the batch. */
void
sr_batch_dead_letter(sr_worker *w, const sr_msg *m, const sr_error *err, const char *topic)
{
	MemoryContext old = MemoryContextSwitchTo(w->batch_cxt);
	sr_dead    *d = palloc0(sizeof(sr_dead));

	d->topic = pstrdup(topic);
	d->partition = m->partition;
	d->offset = m->offset;
	if (m->key != NULL)
	{
		d->key = palloc(VARHDRSZ + m->key_len);
		SET_VARSIZE(d->key, VARHDRSZ + m->key_len);
		memcpy(VARDATA(d->key), m->key, m->key_len);
	}
	if (m->payload != NULL)
	{
		d->value = palloc(VARHDRSZ + m->len);
		SET_VARSIZE(d->value, VARHDRSZ + m->len);
		memcpy(VARDATA(d->value), m->payload, m->len);
	}
	if (m->nheaders > 0)
	{
		d->header_names = palloc(sizeof(char *) * m->nheaders);
		d->header_values = palloc(sizeof(bytea *) * m->nheaders);
		for (size_t i = 0; i < m->nheaders; i++)
		{
			const sr_header *h = &m->headers[i];

			/* names go to a text column: keep them valid UTF-8 */
			if (sr_utf8_valid((const unsigned char *) h->name, h->name_len))
				d->header_names[i] = pnstrdup(h->name, h->name_len);
			else
				d->header_names[i] = pstrdup("(invalid UTF-8 header name)");
			d->header_values[i] = NULL;
			if (h->value != NULL)
			{
				d->header_values[i] = palloc(VARHDRSZ + h->value_len);
				SET_VARSIZE(d->header_values[i], VARHDRSZ + h->value_len);
				memcpy(VARDATA(d->header_values[i]), h->value, h->value_len);
			}
			d->nheaders++;
		}
	}
	d->error = pstrdup(err->message);
	d->sqlstate = sr_errclass_sqlstate(err->cls);
	d->error_class = sr_errclass_name(err->cls);
	w->batch.dead = lappend(w->batch.dead, d);
	MemoryContextSwitchTo(old);
}

/*
 * A message that passed the gate: its outcome joins the batch, and the
 * partition's local offset moves past it.  The one way in for the direct
 * path and the hold alike.
 */
void
sr_batch_add(sr_worker *w, sr_part *p, const sr_outcome *out)
{
	sr_batch   *b = &w->batch;
	sr_snapshot prev;
	bool		changed;

	if (out->st == SR_DECODE_JOB)
	{
		MemoryContext old = MemoryContextSwitchTo(w->batch_cxt);

		sr_rows_append(b, out->row, out->row_len);
		MemoryContextSwitchTo(old);
	}
	else if (out->st == SR_DECODE_SKIP)
		b->skipped++;
	else
		sr_batch_dead_letter(w, &out->msg, &out->err, w->def.topic);

	if (b->started == 0)
		b->started = GetCurrentTimestamp();
	b->messages++;
	b->bytes += out->msg_bytes;
	sr_partition_set_local(&p->sm, true, out->offset + 1, &prev, &changed);
	p->dirty = true;
}

/* A writer group's offset read from the commit log, stored with the batch. */
void
sr_batch_remote(sr_worker *w, sr_remote_update *u)
{
	MemoryContext old = MemoryContextSwitchTo(w->batch_cxt);
	sr_remote_update *c = palloc(sizeof(sr_remote_update));

	*c = *u;
	c->group = pstrdup(u->group);
	w->batch.remote = lappend(w->batch.remote, c);
	MemoryContextSwitchTo(old);
}

/* The commit log's read position in one of its partitions: next is the next offset. */
void
sr_batch_cl_position(sr_worker *w, int32 partition, int64 next)
{
	sr_batch   *b = &w->batch;
	int			i;

	for (i = 0; i < b->ncl_positions; i++)
		if (b->cl_partition[i] == partition)
			break;
	if (i == b->ncl_positions)
	{
		if (i == b->cl_allocated)
		{
			int			n = Max(8, 2 * b->cl_allocated);

			b->cl_partition = b->cl_allocated == 0
				? MemoryContextAlloc(w->batch_cxt, sizeof(int32) * n)
				: repalloc(b->cl_partition, sizeof(int32) * n);
			b->cl_offset = b->cl_allocated == 0
				? MemoryContextAlloc(w->batch_cxt, sizeof(int64) * n)
				: repalloc(b->cl_offset, sizeof(int64) * n);
			b->cl_allocated = n;
		}
		b->ncl_positions++;
		b->cl_partition[i] = partition;
	}
	b->cl_offset[i] = next;
}

/*
 * Commit the batch in one transaction (asynchronously unless
 * sentry_relay.synchronous_commit), then queue its offsets for Kafka.
 * Returns whether it stored remote offsets or a commit-log position: the
 * caller then re-reads the remote offsets (gate.c), and the stream's other
 * workers are woken to do the same.
 */
bool
sr_batch_commit(sr_worker *w)
{
	sr_batch   *b = &w->batch;
	bool		any_dirty = false;
	bool		remote_written = b->remote != NIL || b->ncl_positions > 0;
	rd_kafka_topic_partition_list_t *commit;
	int			jobs = b->n,
				dead = list_length(b->dead);
	sr_part   **dirty;
	int			ndirty = 0;
	sr_insert_path path;

	for (int i = 0; i < w->nparts; i++)
		if (w->parts[i].assigned && (w->parts[i].dirty || w->parts[i].error_dirty))
			any_dirty = true;
	if (b->n == 0 && b->dead == NIL && !remote_written && !any_dirty)
		return false;

	sr_store_begin("sentry_relay: committing a batch");
	if (!sr_synchronous_commit)
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	path = sr_rows_insert(&w->def, b);
	sr_store_dead_letters(&w->def, b);
	sr_store_remote(&w->def, b);
	commit = rd_kafka_topic_partition_list_new(4);
	dirty = palloc(sizeof(sr_part *) * Max(w->nparts, 1));
	for (int i = 0; i < w->nparts; i++)
	{
		sr_part    *p = &w->parts[i];

		if (!p->assigned || !(p->dirty || p->error_dirty))
			continue;
		if (p->sm.cur.offsets.has_local &&
			(!p->has_committed || p->committed != p->sm.cur.offsets.local))
			rd_kafka_topic_partition_list_add(commit, w->def.topic, i)->offset =
				p->sm.cur.offsets.local;
		sr_note_watermark(w, p);
		dirty[ndirty++] = p;
	}
	sr_store_partitions(&w->def, dirty, ndirty);
	sr_store_commit();
	sr_mirror_push(w, commit);	/* to Kafka once flushed (offset_mirror.c) */

	LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
	w->slot->messages += b->messages;
	w->slot->jobs += jobs;
	w->slot->skipped += b->skipped;
	w->slot->dead_letters += dead;
	w->slot->batches++;
	if (path == SR_INSERT_DIRECT)
		w->slot->direct_inserts++;
	else if (path == SR_INSERT_COPY)
		w->slot->copy_inserts++;
	LWLockRelease(sr_shmem()->lock);

	if (dead > 0)
		ereport(LOG,
				(errmsg("%s: %d message(s) could not be decoded and went to sentry_relay.dead_letters",
						w->label, dead)));

	MemoryContextReset(w->batch_cxt);
	memset(b, 0, sizeof(*b));
	if (remote_written)
		sr_wake_stream_now(w->def.name);	/* sibling workers re-read */
	return remote_written;
}
