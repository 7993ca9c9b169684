/*
 * events.c - the read loop of the events topic.
 *
 * The worker's group consumer delivers everything through one queue:
 * messages, partition ends, rebalances, errors, logs and offset-commit
 * results.  sr_drain_events serves them until the batch is cut.  Each
 * message is checked against its partition's position (a message below the
 * local offset was relayed already; the first one after a repositioning
 * may show a reset) and offered to the gate (gate.c).  The fetcher kick at
 * the end keeps librdkafka fetching while a backlog waits.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "fetch_waker.h"
#include "guc.h"
#include "worker.h"

/*
 * Log, and keep in the partition's last_error, that Kafka resumed partition
 * p at offset at rather than at the stored offset: below it (its reset
 * policy went back; the messages up to it are skipped) or past it
 * (retention removed the offsets in between).
 */
static void
sr_note_resume(sr_worker *w, sr_part *p, int64 at, int64 stored)
{
	bool		below = at < stored;

	ereport(LOG,
			(errmsg("%s: partition %d resumed at offset " INT64_FORMAT ", %s the stored offset " INT64_FORMAT,
					w->label, p->partition, at, below ? "below" : "not at", stored),
			 below ?
			 errdetail("Kafka's reset policy applied; messages below the stored offset were relayed already and are skipped.") :
			 errdetail("Offsets in between were removed by retention; the reset policy applied.")));
	if (below)
		snprintf(p->last_error, sizeof(p->last_error),
				 "Kafka resumed at offset " INT64_FORMAT ", below the stored offset " INT64_FORMAT " (initial_offset_reset %s); skipped up to it",
				 at, stored, w->def.initial_offset_reset);
	else
		snprintf(p->last_error, sizeof(p->last_error),
				 "offset " INT64_FORMAT " out of range; resumed at " INT64_FORMAT " (initial_offset_reset %s)",
				 stored, at, w->def.initial_offset_reset);
	p->error_dirty = true;
}

/*
 * The first message or end of a partition after it was positioned lies past
 * the stored offset.  If the stored offset is below the partition's log start
 * offset, Kafka's reset policy moved us over deleted messages: say so in the
 * log and in the partition's last_error, and return true (the caller moves
 * the local offset there).  Otherwise the offsets in between hold no message
 * we can see (transaction markers, aborted or compacted messages): that is
 * not an error, and the gate decides how far the local offset moves
 * (sr_pass_gap).
 */
static bool
sr_resumed_past(sr_worker *w, sr_part *p, int64 stored, int64 at)
{
	int64_t		lo,
				hi;

	if (rd_kafka_get_watermark_offsets(w->events.rk, w->def.topic, p->partition, &lo, &hi) ==
		RD_KAFKA_RESP_ERR_NO_ERROR && lo >= 0 && stored >= lo)
		return false;
	sr_note_resume(w, p, at, stored);
	return true;
}

/*
 * The first message (is_message) or partition end at offset at since the
 * partition was positioned.  Without a local offset, a message sets it:
 * that is where we start.  Below the expected offset, Kafka went back (its
 * reset policy applied after an OffsetOutOfRange, transient on a leader
 * change, or the topic was recreated): offsets below the local offset were
 * relayed already, those above it are held, and only an operator moves a
 * local offset backwards, so the message is skipped (returns false) and the
 * partition reports it.  Past it, after a reset over deleted messages, the
 * local offset moves there.
 */
static bool
sr_first_position(sr_worker *w, sr_part *p, int64 at, bool is_message)
{
	sr_offsets *o = &p->sm.cur.offsets;
	int64		expect = sr_next_fetch(p);
	sr_snapshot prev;
	bool		changed;

	p->fresh = false;
	if (!o->has_local)
	{
		if (is_message)
		{
			sr_partition_set_local(&p->sm, true, at, &prev, &changed);
			p->dirty = true;
		}
		return true;
	}
	if (is_message && at < expect)
	{
		sr_note_resume(w, p, at, expect);
		return false;
	}
	if (at > expect && p->hold_head == NULL && sr_resumed_past(w, p, expect, at))
	{
		sr_partition_set_local(&p->sm, true, at, &prev, &changed);
		p->dirty = true;
	}
	return true;
}

/* Handle one message of the events topic, as librdkafka delivers it. */
static void
sr_handle_message(sr_worker *w, const rd_kafka_message_t *m)
{
	sr_part    *p = sr_get_part(w, m->partition, false);
	sr_msg		msg;

	if (p == NULL || !p->assigned)
		return;					/* a stale message of a revoked partition */
	if (p->paused)
		return;					/* it will be re-read after the resume */
	p->at_end = false;
	if (p->fresh)
	{
		if (!sr_first_position(w, p, m->offset, true))
			return;
	}
	else if (p->sm.cur.offsets.has_local && m->offset < sr_next_fetch(p))
		return;					/* already enqueued or held */

	sr_msg_from_kafka(m, &msg);
	sr_gate_offer(w, p, &msg);
}

/*
 * The fetcher reached the end of a partition, at offset end: nothing
 * we have not seen lies below it.  After a reset that is where the partition
 * resumed; otherwise it lets the local offset step over transaction markers
 * and other offsets that are not messages, up to the writer's offset.
 */
static void
sr_handle_end(sr_worker *w, int32 partition, int64 end)
{
	sr_part    *p = sr_get_part(w, partition, false);

	if (p == NULL || !p->assigned || p->paused || end < 0)
		return;
	if (!p->sm.cur.offsets.has_local)
		return;					/* the first message tells where we start */
	if (end < sr_next_fetch(p))
		return;					/* a stale end, or below a reset: wait for a message */
	if (p->fresh)
		(void) sr_first_position(w, p, end, false);
	p->at_end = true;
	p->end = end;
	sr_pass_gap(p);
}

/*
 * A consumer error of one partition (offset out of range, unknown topic...),
 * delivered as a message or, by librdkafka 2.0 for a failed offset reset, as
 * an error event: the log, the worker's and the partition's last_error say
 * which partition, and why.
 */
static void
sr_partition_error(sr_worker *w, int32 partition, rd_kafka_resp_err_t err, const char *errstr)
{
	sr_part    *p = sr_get_part(w, partition, false);
	char		msg[256];

	snprintf(msg, sizeof(msg), "partition %d: %s", partition, errstr);
	ereport(LOG,
			(errmsg("%s: consumer error on %s", w->label, msg),
			 err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET
			 ? errhint("initial_offset_reset is 'error': set the partition's offset, or change the policy with sentry_relay.alter_stream.")
			 : 0));
	sr_worker_error(w, msg);
	if (p != NULL && p->assigned)
	{
		strlcpy(p->last_error, msg, sizeof(p->last_error));
		p->error_dirty = true;
		p->dirty = true;
	}
}

/* An error event of the events consumer, of one partition or of the client. */
static void
sr_handle_events_error(sr_worker *w, rd_kafka_event_t *ev)
{
	rd_kafka_topic_partition_t *tp;
	bool		ours;

	tp = rd_kafka_event_error_is_fatal(ev) ? NULL : rd_kafka_event_topic_partition(ev);
	ours = tp != NULL && tp->partition >= 0 && strcmp(tp->topic, w->def.topic) == 0;
	if (ours && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		sr_handle_end(w, tp->partition, tp->offset);	/* not an error: enable.partition.eof */
	else if (ours)
	{
		sr_count_kafka_error(w, rd_kafka_event_error(ev));
		sr_partition_error(w, tp->partition, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev));
	}
	else
		sr_kafka_error_event(w, ev, "events consumer");
	if (tp != NULL)
		rd_kafka_topic_partition_destroy(tp);
}

/* The messages of one fetch event (batch context). */
static void
sr_handle_fetch(sr_worker *w, rd_kafka_event_t *ev)
{
	const rd_kafka_message_t *m;
	MemoryContext old = MemoryContextSwitchTo(w->batch_cxt);

	while ((m = rd_kafka_event_message_next(ev)) != NULL)
	{
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			sr_handle_end(w, m->partition, m->offset);
		else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			sr_count_fault(w->slot, SR_FAULT_KAFKA_ERROR);
			sr_partition_error(w, m->partition, m->err, rd_kafka_message_errstr(m));
		}
		else
		{
			sr_broker_reachable(w);
			sr_handle_message(w, m);
		}
	}
	MemoryContextSwitchTo(old);
}

/* A rebalance event (taken: the caller destroys nothing). */
static void
sr_handle_rebalance(sr_worker *w, rd_kafka_event_t *ev)
{
	rd_kafka_topic_partition_list_t *l =
		rd_kafka_topic_partition_list_copy(rd_kafka_event_topic_partition_list(ev));
	rd_kafka_resp_err_t err = rd_kafka_event_error(ev);

	rd_kafka_event_destroy(ev);
	sr_count_fault(w->slot, SR_FAULT_REBALANCE);
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		sr_on_assign(w, l);
	else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
		sr_on_revoke(w, l);
	else
	{
		ereport(LOG, (errmsg("%s: rebalance failed: %s", w->label, rd_kafka_err2str(err))));
		sr_kafka_unassign_all(w->events.rk, w->label);
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* Kafka refused the offsets mirrored to the group: usually transient, the next batch commits newer ones. */
static void
sr_offset_commit_failed(sr_worker *w, rd_kafka_resp_err_t err)
{
	sr_count_fault(w->slot, SR_FAULT_COMMIT_FAILED);
	ereport(DEBUG1, (errmsg("%s: Kafka offset commit failed: %s", w->label, rd_kafka_err2str(err))));
}

/*
 * The error of an offset commit's result: the request's, or else the first
 * partition's (Kafka answers a commit it refuses per partition).
 */
static rd_kafka_resp_err_t
sr_offset_commit_error(rd_kafka_event_t *ev)
{
	rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
	const rd_kafka_topic_partition_list_t *l;

	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		return err;
	l = rd_kafka_event_topic_partition_list(ev);
	for (int i = 0; l != NULL && i < l->cnt; i++)
		if (l->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
			return l->elems[i].err;
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Serve events of the events consumer until the batch is cut. */
void
sr_drain_events(sr_worker *w, TimestampTz deadline)
{
	rd_kafka_event_t *ev;

	sr_faults_attach(w->slot);
	if (sr_gate_pending(w))
		sr_gate_release_all(w); /* the rest of a commit-log step, first */
	while (!sr_batch_full(w) && (ev = rd_kafka_queue_poll(w->events.queue, 0)) != NULL)
	{
		switch (rd_kafka_event_type(ev))
		{
			case RD_KAFKA_EVENT_FETCH:
				sr_handle_fetch(w, ev);
				break;
			case RD_KAFKA_EVENT_REBALANCE:
				sr_handle_rebalance(w, ev);
				ev = NULL;
				break;
			case RD_KAFKA_EVENT_ERROR:
				sr_handle_events_error(w, ev);
				break;
			case RD_KAFKA_EVENT_LOG:
				sr_kafka_log_event(ev, w->label);
				break;
			case RD_KAFKA_EVENT_OFFSET_COMMIT:
				{
					rd_kafka_resp_err_t err = sr_offset_commit_error(ev);

					if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
						sr_offset_commit_failed(w, err);
					break;
				}
			default:
				break;
		}
		if (ev != NULL)
			rd_kafka_event_destroy(ev);
		if (w->batch.started != 0 && GetCurrentTimestamp() >= deadline)
			break;
		/* a step of the writer waits: serve it first (worker.c) */
		if (w->clog_assigned && rd_kafka_queue_length(w->clog.queue) > 0)
			break;
	}
}

/*
 * Wake librdkafka's fetcher when it is idle for no reason.  librdkafka 2.0
 * stops fetching while the consumer queue is over queued.min.messages or
 * queued.max.messages.kbytes, and its broker thread looks again only when
 * something wakes it, or after a second.  With a backlog larger than the
 * queue (sentry_relay.queue_buffer), that second would be most of the time:
 * the worker would drain a full queue in milliseconds and then wait.  So
 * when fewer than SR_KICK_BELOW messages are queued and a partition we
 * consume is behind its high watermark, a ListOffsets request for that
 * partition wakes its leader's broker thread, which then fetches at once.
 * One partition per call, round-robin (so every leader gets its turn), at
 * most every SR_KICK_MS; the answer also refreshes the partition's high
 * watermark.  The request is a round trip that waits behind the fetch in
 * flight, so the fetch waker's thread makes it (fetch_waker.c), one at a
 * time, and the worker goes on.
 */
#define SR_KICK_MS 5
#define SR_KICK_BELOW 2000		/* queued messages: fetch more below this */

void
sr_kick_fetcher(sr_worker *w)
{
	TimestampTz now;
	int32		answered;
	int64		high;

	if (sr_waker_result(&answered, &high) && answered < w->nparts &&
		w->parts[answered].assigned)
		w->parts[answered].high_watermark = high;
	now = GetCurrentTimestamp();
	if (!sr_fetch_wakeup || w->broker_down || w->nparts == 0 ||
		!TimestampDifferenceExceeds(w->kick_last, now, SR_KICK_MS) ||
		rd_kafka_queue_length(w->events.queue) >= SR_KICK_BELOW)
		return;
	for (int k = 0; k < w->nparts; k++)
	{
		int			i = (w->kick_next + k) % w->nparts;
		sr_part    *p = &w->parts[i];

		if (!p->assigned || p->paused || p->at_end || !p->sm.cur.offsets.has_local)
			continue;
		sr_note_watermark(w, p);
		if (p->high_watermark <= sr_next_fetch(p))
			continue;
		if (sr_waker_request(i))
		{
			w->kick_next = i + 1;
			w->kick_last = now;
		}
		return;
	}
}
