/*
 * offset_mirror.c - the relay worker's offsets, mirrored to the Kafka
 * consumer group for lag tools, once the commit that stored them is flushed.
 *
 * The table is the truth: a worker positions its partitions from
 * sentry_relay.partitions, and from Kafka's committed offsets only where the
 * table has none.  A batch commits asynchronously unless
 * sentry_relay.synchronous_commit is on, so a crash can lose its last
 * transactions (jobs and local offsets together; the messages are read
 * again).  The mirror therefore holds each batch's offsets until the WAL is
 * flushed past its commit record: Kafka never shows an offset the table
 * could lose.  With synchronous commit the record is flushed already and the
 * offsets go out at once.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "utils/memutils.h"

#include "worker.h"

/* One batch's offsets, waiting for the WAL flush past its commit. */
typedef struct sr_mirror
{
	XLogRecPtr	lsn;
	rd_kafka_topic_partition_list_t *offsets;
} sr_mirror;


/*
 * Queue a batch's offsets (taking the list) behind the commit just made.
 * The worker loop sends them (sr_mirror_send) right after its flush.
 */
void
sr_mirror_push(sr_worker *w, rd_kafka_topic_partition_list_t *offsets)
{
	MemoryContext old;
	sr_mirror  *m;

	if (offsets->cnt == 0)
	{
		rd_kafka_topic_partition_list_destroy(offsets);
		return;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	m = palloc(sizeof(sr_mirror));
	m->lsn = XactLastCommitEnd;
	m->offsets = offsets;
	w->mirrors = lappend(w->mirrors, m);
	MemoryContextSwitchTo(old);
}

/* Offsets are waiting for a flush. */
bool
sr_mirror_pending(const sr_worker *w)
{
	return w->mirrors != NIL;
}

/*
 * Commit to Kafka the offsets whose PostgreSQL commit is flushed, newest per
 * partition, in one asynchronous request.  flush: flush the WAL first, so
 * that everything goes (before partitions are let go, and at shutdown).
 */
void
sr_mirror_send(sr_worker *w, bool flush)
{
	XLogRecPtr	flushed;
	rd_kafka_topic_partition_list_t *out;
	rd_kafka_resp_err_t err;
	int			done = 0;
	ListCell   *lc;

	if (w->mirrors == NIL)
		return;
	if (flush)
		XLogFlush(((sr_mirror *) llast(w->mirrors))->lsn);
	flushed = GetFlushRecPtr(NULL);
	if (((sr_mirror *) linitial(w->mirrors))->lsn > flushed)
		return;					/* the oldest batch waits still */
	out = rd_kafka_topic_partition_list_new(8);
	foreach(lc, w->mirrors)
	{
		sr_mirror  *m = lfirst(lc);

		if (m->lsn > flushed)
			break;
		for (int i = 0; i < m->offsets->cnt; i++)
		{
			const rd_kafka_topic_partition_t *t = &m->offsets->elems[i];
			rd_kafka_topic_partition_t *o =
				rd_kafka_topic_partition_list_find(out, t->topic, t->partition);

			if (o == NULL)
				o = rd_kafka_topic_partition_list_add(out, t->topic, t->partition);
			o->offset = t->offset;	/* a later batch's offset wins */
		}
		rd_kafka_topic_partition_list_destroy(m->offsets);
		pfree(m);
		done++;
	}
	w->mirrors = list_delete_first_n(w->mirrors, done);
	if (out->cnt > 0)
	{
		err = rd_kafka_commit(w->events.rk, out, 1);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			sr_count_fault(w->slot, SR_FAULT_COMMIT_FAILED);
			ereport(DEBUG1, (errmsg("%s: Kafka offset commit not sent: %s", w->label, rd_kafka_err2str(err))));
		}
	}
	rd_kafka_topic_partition_list_destroy(out);
}
