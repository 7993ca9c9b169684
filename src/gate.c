/*
 * gate.c - which message of the events topic may pass to the batch.
 *
 * A message at offset o of partition p passes only when o is below the
 * minimum remote offset of the followed writer groups for p (the state
 * machine, state.c, decides).  A message that arrives past the gate is kept
 * decoded in the hold (hold.c) and released, in order, once the writer
 * catches up; when the hold is full, its partition is paused and seeks back
 * to just past its last held message, so it is re-read later and nothing is
 * dropped.  Offsets that hold no message (transaction markers, aborted or
 * compacted messages) are stepped over up to the writer's offset.  A batch
 * commit that stored remote offsets re-reads them all, which can open more
 * gates (sr_gate_commit).
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "worker.h"

/*
 * Pause or resume a partition to match its state.  A partition is paused
 * only when a message past the gate found the hold full; it moves again
 * when it may consume directly (its gate is open and nothing of it is held)
 * or when the hold has room again.
 */
static void
sr_apply_flow(sr_worker *w, sr_part *p)
{
	bool		want_pause;
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t err;

	if (!p->assigned)
		return;
	if (p->hold_blocked && p->hold_head == NULL && p->sm.cur.state == SR_STATE_LOCAL_BEHIND)
		p->hold_blocked = false;
	/* with no local offset yet, the first message tells where we start */
	want_pause = p->sm.cur.offsets.has_local && p->hold_blocked;
	if (want_pause == p->paused)
		return;
	if (!want_pause)
	{
		/*
		 * Messages that arrived while paused were ignored: re-read from just
		 * past the last held message (or the local offset), whatever
		 * librdkafka had prefetched.
		 */
		rd_kafka_error_t *e;
		int64		from = sr_next_fetch(p);

		l = sr_kafka_one(w->def.topic, p->partition, from);
		e = rd_kafka_seek_partitions(w->events.rk, l, 5000);
		rd_kafka_topic_partition_list_destroy(l);
		if (e != NULL)
		{
			ereport(LOG,
					(errmsg("%s: could not seek partition %d to " INT64_FORMAT ": %s", w->label,
							p->partition, from, rd_kafka_error_string(e))));
			rd_kafka_error_destroy(e);
			return;				/* stay paused; retried at the next refresh */
		}
		p->fresh = true;
		p->at_end = false;
	}
	l = sr_kafka_one(w->def.topic, p->partition, RD_KAFKA_OFFSET_INVALID);
	err = want_pause ? rd_kafka_pause_partitions(w->events.rk, l)
		: rd_kafka_resume_partitions(w->events.rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(LOG,
				(errmsg("%s: could not %s partition %d: %s", w->label,
						want_pause ? "pause" : "resume", p->partition, rd_kafka_err2str(err))));
	else
		p->paused = want_pause;
}

/*
 * A message past the gate that the hold has no room for: pause the partition
 * and seek back to it, so that it is re-read once the partition may move.
 */
static void
sr_hold_back(sr_worker *w, sr_part *p)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_error_t *e;
	int64		from = sr_next_fetch(p);

	sr_count_fault(w->slot, SR_FAULT_GATED);
	p->hold_blocked = true;
	if (!p->paused)
	{
		l = sr_kafka_one(w->def.topic, p->partition, RD_KAFKA_OFFSET_INVALID);
		if (rd_kafka_pause_partitions(w->events.rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR)
			p->paused = true;
		rd_kafka_topic_partition_list_destroy(l);
	}
	l = sr_kafka_one(w->def.topic, p->partition, from);
	e = rd_kafka_seek_partitions(w->events.rk, l, -1);
	rd_kafka_topic_partition_list_destroy(l);
	if (e != NULL)
	{
		ereport(LOG,
				(errmsg("%s: could not seek partition %d back to " INT64_FORMAT ": %s",
						w->label, p->partition, from, rd_kafka_error_string(e))));
		rd_kafka_error_destroy(e);
	}
	p->fresh = true;
	p->at_end = false;
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
	const sr_outcome *first = sr_hold_first(p);
	int64		next;
	sr_snapshot prev;
	bool		changed;

	if (!p->assigned || !o->has_local || !o->has_remote)
		return;
	if (first != NULL)
		next = first->offset;
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
 * A message of the events topic at or past the local offset: into the
 * batch if the gate lets it through and nothing of its partition waits in
 * the hold; else into the hold, or, if that is full, back to Kafka.
 */
void
sr_gate_offer(sr_worker *w, sr_part *p, const sr_msg *m)
{
	sr_outcome	out;
	bool		before;

	sr_decode_outcome(w, m, &out);
	if (p->hold_head == NULL && sr_partition_validate(&p->sm, m->offset, &before) == SR_SM_OK)
	{
		sr_batch_add(w, p, &out);
		return;
	}
	/* the writer has not committed it yet */
	if (!sr_hold_push(w, p, &out))
		sr_hold_back(w, p);
	else
		sr_pass_gap(p);
}

/*
 * Hand the held messages that may now pass the gate to the batch, in order,
 * until the batch is full.  When the hold has room again, let the
 * partitions that found it full fetch again (sr_apply_flow resumes them).
 */
static void
sr_hold_release(sr_worker *w, sr_part *p)
{
	const sr_outcome *h;
	bool		any = false;

	while ((h = sr_hold_first(p)) != NULL)
	{
		bool		before;

		if (p->sm.cur.offsets.has_local && h->offset < p->sm.cur.offsets.local)
		{
			sr_hold_pop(w, p);	/* the local offset was moved past it */
			continue;
		}
		if (sr_partition_validate(&p->sm, h->offset, &before) != SR_SM_OK)
			break;
		if (sr_batch_full(w))
		{
			w->hold.more = true;	/* the next batch takes the rest */
			break;
		}
		sr_batch_add(w, p, h);
		sr_hold_pop(w, p);
		any = true;
	}
	if (any && sr_hold_has_room(w))
		for (int i = 0; i < w->nparts; i++)
			w->parts[i].hold_blocked = false;
}

/*
 * Release what the gate lets through on every assigned partition, as far as
 * the batch limits allow (sentry_relay.batch_size, batch_max_bytes): a
 * commit-log step that lets many messages through is committed in several
 * batches, as a drain is.  Then step over gaps and pause or resume every
 * partition to match, which also retries any pause, resume or seek that
 * failed before.
 */
void
sr_gate_release_all(sr_worker *w)
{
	w->hold.more = false;
	if (w->hold.count > 0)
		for (int i = 0; i < w->nparts; i++)
			if (w->parts[i].assigned && w->parts[i].hold_head != NULL)
				sr_hold_release(w, &w->parts[i]);
	for (int i = 0; i < w->nparts; i++)
	{
		sr_pass_gap(&w->parts[i]);
		sr_apply_flow(w, &w->parts[i]);
	}
}

/* Whether held messages may pass but wait for the next batch. */
bool
sr_gate_pending(const sr_worker *w)
{
	return w->hold.more;
}

/* Report notable state-machine moves in the server log. */
static void
sr_note_remote(sr_worker *w, sr_part *p, const sr_snapshot *prev)
{
	const sr_offsets *o = &p->sm.cur.offsets;

	if (prev->offsets.has_remote && o->has_remote && o->remote < prev->offsets.remote)
	{
		sr_count_fault(w->slot, SR_FAULT_REMOTE_BACKWARDS);
		ereport(LOG,
				(errmsg("%s: remote offset of partition %d moved backwards from " INT64_FORMAT " to " INT64_FORMAT,
						w->label, p->partition, prev->offsets.remote, o->remote),
				 errdetail("Jobs already enqueued are not redone; the partition waits until the writer passes " INT64_FORMAT " again.",
						   o->local)));
	}
	if (p->sm.cur.state == SR_STATE_REMOTE_BEHIND && prev->state != SR_STATE_REMOTE_BEHIND)
		ereport(LOG,
				(errmsg("%s: partition %d is ahead of the writer: local offset " INT64_FORMAT " exceeds remote offset " INT64_FORMAT,
						w->label, p->partition, o->local, o->remote)));
}

/* Record a followed group's committed offset for one of our partitions. */
void
sr_apply_group_offset(sr_worker *w, sr_part *p, int group, int64 offset)
{
	sr_snapshot prev;
	bool		changed;

	if (p == NULL || !p->assigned || group < 0)
		return;
	if (p->sm.has_group[group] && p->sm.group[group] == offset)
		return;
	if (sr_partition_set_group(&p->sm, group, offset, &prev, &changed) != SR_SM_OK)
		return;
	sr_note_remote(w, p, &prev);
	if (changed)
		p->dirty = true;		/* store the new state */
}

/*
 * Re-read all remote offsets of the stream from the table, release the held
 * messages they let through into the batch, and pause or resume partitions.
 */
void
sr_refresh_remote(sr_worker *w)
{
	List	   *rows;
	ListCell   *lc;

	sr_store_begin("sentry_relay: reading remote offsets");
	rows = sr_store_read_remote(&w->def);
	sr_store_commit();
	foreach(lc, rows)
	{
		sr_remote_update *u = lfirst(lc);

		sr_apply_group_offset(w, sr_get_part(w, u->partition, false),
							  sr_group_index(w, u->group), u->offset);
	}
	list_free_deep(rows);
	sr_gate_release_all(w);
	w->last_remote_refresh = GetCurrentTimestamp();
}

/*
 * Commit the batch; if it stored remote offsets, re-read them, which may
 * release held messages into the next batch.
 */
void
sr_gate_commit(sr_worker *w)
{
	if (sr_batch_commit(w))
		sr_refresh_remote(w);
}

/*
 * Commit the batch, and then what its commit released from the hold, and
 * mirror every offset to Kafka: before partitions are let go.
 */
void
sr_gate_commit_all(sr_worker *w)
{
	sr_gate_commit(w);
	sr_gate_commit(w);
	sr_mirror_send(w, true);
}
