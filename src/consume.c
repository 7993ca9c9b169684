/*
 * consume.c - the relay worker's consumption of the events topic.
 *
 * A message at offset o of partition p is enqueued only when o is below the
 * minimum remote offset of the followed writer groups for p.  A message
 * that arrives past the gate is held, decoded, in memory until the writer
 * catches up (hold.c); when the hold is full, its partition is paused and
 * seeks back to just past the last held message, so it is re-read later and
 * nothing is dropped.  Each batch (cut by
 * count, bytes and time) commits jobs, dead letters and fenced local offsets
 * in one transaction, then commits the Kafka offsets for lag tools.
 * Rebalances flush the batch before partitions change hands.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "decode_sql.h"
#include "fetch_waker.h"
#include "guc.h"
#include "worker_internal.h"

/*
 * Count an error event for sentry_relay.workers, and the start of a wait for
 * the broker (before sr_handle_error_event sets sr_broker_down).
 */
static void
sr_count_kafka_error(rd_kafka_event_t *ev)
{
	sr_count_fault(sr_slot, SR_FAULT_KAFKA_ERROR);
	if (!sr_broker_down && sr_kafka_error_is_broker_down(rd_kafka_event_error(ev)))
		sr_count_fault(sr_slot, SR_FAULT_BROKER_DOWN);
}

/*
 * Pause or resume a partition to match its state.  A partition is paused
 * only when a message past the gate found the hold full (hold.c); it moves
 * again when it may consume directly (its gate is open and nothing of it is
 * held) or when the hold has room again.
 */
void
sr_apply_flow(sr_part *p)
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

		l = sr_kafka_one(sr_def.topic, p->partition, from);
		e = rd_kafka_seek_partitions(sr_events.rk, l, 5000);
		rd_kafka_topic_partition_list_destroy(l);
		if (e != NULL)
		{
			ereport(LOG,
					(errmsg("%s: could not seek partition %d to " INT64_FORMAT ": %s", sr_who,
							p->partition, from, rd_kafka_error_string(e))));
			rd_kafka_error_destroy(e);
			return;				/* stay paused; retried at the next refresh */
		}
		p->fresh = true;
		p->at_end = false;
	}
	l = sr_kafka_one(sr_def.topic, p->partition, RD_KAFKA_OFFSET_INVALID);
	err = want_pause ? rd_kafka_pause_partitions(sr_events.rk, l)
		: rd_kafka_resume_partitions(sr_events.rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(LOG,
				(errmsg("%s: could not %s partition %d: %s", sr_who,
						want_pause ? "pause" : "resume", p->partition, rd_kafka_err2str(err))));
	else
		p->paused = want_pause;
}

/* Report notable state-machine moves in the server log. */
static void
sr_note_remote(sr_part *p, const sr_snapshot *prev)
{
	const sr_offsets *o = &p->sm.cur.offsets;

	if (prev->offsets.has_remote && o->has_remote && o->remote < prev->offsets.remote)
	{
		sr_count_fault(sr_slot, SR_FAULT_REMOTE_BACKWARDS);
		ereport(LOG,
				(errmsg("%s: remote offset of partition %d moved backwards from " INT64_FORMAT " to " INT64_FORMAT,
						sr_who, p->partition, prev->offsets.remote, o->remote),
				 errdetail("Jobs already enqueued are not redone; the partition waits until the writer passes " INT64_FORMAT " again.",
						   o->local)));
	}
	if (p->sm.cur.state == SR_STATE_REMOTE_BEHIND && prev->state != SR_STATE_REMOTE_BEHIND)
		ereport(LOG,
				(errmsg("%s: partition %d is ahead of the writer: local offset " INT64_FORMAT " exceeds remote offset " INT64_FORMAT,
						sr_who, p->partition, o->local, o->remote)));
}

/* Record a followed group's committed offset for one of our partitions. */
void
sr_apply_group_offset(sr_part *p, int group, int64 offset)
{
	sr_snapshot prev;
	bool		changed;

	if (p == NULL || !p->assigned || group < 0)
		return;
	if (p->sm.has_group[group] && p->sm.group[group] == offset)
		return;
	if (sr_partition_set_group(&p->sm, group, offset, &prev, &changed) != SR_SM_OK)
		return;
	sr_note_remote(p, &prev);
	if (changed)
		p->dirty = true;		/* store the new state */
}

/*
 * Re-read all remote offsets of the stream from the table, release the held
 * messages they let through into the batch, and pause or resume partitions.
 */
void
sr_refresh_remote(void)
{
	List	   *rows;
	ListCell   *lc;

	sr_db_begin("sentry_relay: reading remote offsets");
	rows = sr_db_read_remote(&sr_def);
	sr_db_commit();
	foreach(lc, rows)
	{
		sr_remote_update *u = lfirst(lc);

		sr_apply_group_offset(sr_get_part(u->partition, false), sr_group_index(u->group), u->offset);
	}
	list_free_deep(rows);
	sr_hold_release_all();
	sr_last_remote_refresh = GetCurrentTimestamp();
}

/* Copy a message's raw parts into a dead letter (batch context). */
void
sr_dead_letter(const sr_msg *m, const sr_error *err, const char *topic)
{
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
	sr_b.dead = lappend(sr_b.dead, d);
}

/* Headers of a message as decoder input (batch context). */
sr_header *
sr_message_headers(const rd_kafka_message_t *m, size_t *n)
{
	rd_kafka_headers_t *hdrs = NULL;
	sr_header  *hs;
	size_t		cnt;

	*n = 0;
	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == NULL)
		return NULL;
	cnt = rd_kafka_header_cnt(hdrs);
	hs = palloc(sizeof(sr_header) * Max(cnt, 1));
	for (size_t i = 0; i < cnt; i++)
	{
		const char *name;
		const void *val;
		size_t		size;

		if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		hs[i].name = name;
		hs[i].name_len = strlen(name);
		hs[i].value = val;
		hs[i].value_len = val ? size : 0;
		(*n)++;
	}
	return hs;
}

/*
 * A message past the gate that the hold has no room for: pause the partition
 * and seek back to it, so that it is re-read once the partition may move.
 */
static void
sr_hold_back(sr_part *p)
{
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_error_t *e;
	int64		from = sr_next_fetch(p);

	sr_count_fault(sr_slot, SR_FAULT_GATED);
	p->hold_blocked = true;
	if (!p->paused)
	{
		l = sr_kafka_one(sr_def.topic, p->partition, RD_KAFKA_OFFSET_INVALID);
		if (rd_kafka_pause_partitions(sr_events.rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR)
			p->paused = true;
		rd_kafka_topic_partition_list_destroy(l);
	}
	l = sr_kafka_one(sr_def.topic, p->partition, from);
	e = rd_kafka_seek_partitions(sr_events.rk, l, -1);
	rd_kafka_topic_partition_list_destroy(l);
	if (e != NULL)
	{
		ereport(LOG,
				(errmsg("%s: could not seek partition %d back to " INT64_FORMAT ": %s",
						sr_who, p->partition, from, rd_kafka_error_string(e))));
		rd_kafka_error_destroy(e);
	}
	p->fresh = true;
	p->at_end = false;
}

/*
 * Decode a message that passed the gate into the batch and move the local
 * offset past it.
 */
void
sr_process_message(sr_part *p, const sr_msg *m)
{
	MemoryContext old = MemoryContextSwitchTo(sr_batch_cxt);
	sr_job		job;
	sr_error	err;
	sr_decode_status st;

	st = sr_decode_event(sr_get_decoder(), m->payload, m->len, m->headers, m->nheaders,
						 &job, &err);
	if (st == SR_DECODE_JOB)
		sr_db_batch_append(&sr_b, &sr_def, m->partition, m->offset, &job, m->has_ts,
						   sr_unix_us_to_timestamptz(m->ts_ms * 1000), m->payload, m->len);
	else if (st == SR_DECODE_SKIP)
		sr_b.skipped++;
	else
		sr_dead_letter(m, &err, sr_def.topic);

	sr_relayed(p, m->offset, m->len + m->key_len);
	MemoryContextSwitchTo(old);
}

/* Count a message into the batch and move the local offset past it. */
void
sr_relayed(sr_part *p, int64 offset, size_t bytes)
{
	sr_snapshot prev;
	bool		changed;

	if (sr_b.started == 0)
		sr_b.started = GetCurrentTimestamp();
	sr_b.messages++;
	sr_b.bytes += bytes;
	sr_partition_set_local(&p->sm, true, offset + 1, &prev, &changed);
	p->dirty = true;
}

static bool sr_resumed_past(sr_part *p, int64 stored, int64 at);

/* Handle one message of the events topic, as librdkafka delivers it. */
static void
sr_handle_message(const rd_kafka_message_t *m)
{
	sr_part    *p = sr_get_part(m->partition, false);
	sr_offsets *o;
	bool		before;
	sr_snapshot prev;
	bool		changed;
	sr_msg		msg;
	int64		expect;

	if (p == NULL || !p->assigned)
		return;					/* a stale message of a revoked partition */
	o = &p->sm.cur.offsets;
	if (p->paused)
		return;					/* it will be re-read after the resume */
	expect = sr_next_fetch(p);

	p->at_end = false;
	if (p->fresh)
	{
		p->fresh = false;
		if (o->has_local && m->offset < expect)
		{
			/*
			 * Kafka went back below where we are: its reset policy applied
			 * after an OffsetOutOfRange (transient on a leader change, or the
			 * topic was recreated).  Offsets below the local offset were
			 * relayed already, those above it are held, and only an operator
			 * moves a local offset backwards: skip up to it, as for any
			 * message below it.
			 */
			ereport(LOG,
					(errmsg("%s: partition %d resumed at offset " INT64_FORMAT ", below the stored offset " INT64_FORMAT,
							sr_who, p->partition, m->offset, expect),
					 errdetail("Kafka's reset policy applied; messages below the stored offset were relayed already and are skipped.")));
			snprintf(p->last_error, sizeof(p->last_error),
					 "Kafka resumed at offset " INT64_FORMAT ", below the stored offset " INT64_FORMAT " (initial_offset_reset %s); skipped up to it",
					 m->offset, expect, sr_def.initial_offset_reset);
			p->error_dirty = true;
			return;				/* already enqueued or held */
		}
		if (o->has_local && m->offset > expect && sr_resumed_past(p, expect, m->offset) &&
			p->hold_head == NULL)
		{
			sr_partition_set_local(&p->sm, true, m->offset, &prev, &changed);
			p->dirty = true;
		}
		else if (!o->has_local)
		{
			sr_partition_set_local(&p->sm, true, m->offset, &prev, &changed);
			p->dirty = true;
		}
	}
	else if (o->has_local && m->offset < expect)
		return;					/* already enqueued or held */

	sr_msg_from_kafka(m, &msg);
	if (p->hold_head != NULL || sr_partition_validate(&p->sm, m->offset, &before) != SR_SM_OK)
	{
		/* the writer has not committed it yet */
		if (!sr_hold_push(p, &msg))
			sr_hold_back(p);
		else
			sr_pass_gap(p);
		return;
	}
	sr_process_message(p, &msg);
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
sr_resumed_past(sr_part *p, int64 stored, int64 at)
{
	int64_t		lo,
				hi;

	if (rd_kafka_get_watermark_offsets(sr_events.rk, sr_def.topic, p->partition, &lo, &hi) ==
		RD_KAFKA_RESP_ERR_NO_ERROR && lo >= 0 && stored >= lo)
		return false;
	ereport(LOG,
			(errmsg("%s: partition %d resumed at offset " INT64_FORMAT ", not at the stored offset " INT64_FORMAT,
					sr_who, p->partition, at, stored),
			 errdetail("Offsets in between were removed by retention; the reset policy applied.")));
	snprintf(p->last_error, sizeof(p->last_error),
			 "offset " INT64_FORMAT " out of range; resumed at " INT64_FORMAT " (initial_offset_reset %s)",
			 stored, at, sr_def.initial_offset_reset);
	p->error_dirty = true;
	return true;
}

/*
 * The fetcher reached the end of a partition, at offset end: nothing
 * we have not seen lies below it.  After a reset that is where the partition
 * resumed; otherwise it lets the local offset step over transaction markers
 * and other offsets that are not messages, up to the writer's offset.
 */
static void
sr_handle_end(int32 partition, int64 end)
{
	sr_part    *p = sr_get_part(partition, false);
	sr_offsets *o;
	sr_snapshot prev;
	bool		changed;
	int64		expect;

	if (p == NULL || !p->assigned || p->paused || end < 0)
		return;
	o = &p->sm.cur.offsets;
	if (!o->has_local)
		return;					/* the first message tells where we start */
	expect = sr_next_fetch(p);
	if (end < expect)
		return;					/* a stale end, or below a reset: wait for a message */
	if (p->fresh)
	{
		p->fresh = false;
		if (p->hold_head == NULL && end > expect && sr_resumed_past(p, expect, end))
		{
			sr_partition_set_local(&p->sm, true, end, &prev, &changed);
			p->dirty = true;
		}
	}
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
sr_partition_error(int32 partition, rd_kafka_resp_err_t err, const char *errstr)
{
	sr_part    *p = sr_get_part(partition, false);
	char		msg[256];

	snprintf(msg, sizeof(msg), "partition %d: %s", partition, errstr);
	ereport(LOG,
			(errmsg("%s: consumer error on %s", sr_who, msg),
			 err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET
			 ? errhint("initial_offset_reset is 'error': set the partition's offset, or change the policy with sentry_relay.alter_stream.")
			 : 0));
	sr_worker_error(msg);
	if (p != NULL && p->assigned)
	{
		strlcpy(p->last_error, msg, sizeof(p->last_error));
		p->error_dirty = true;
		p->dirty = true;
	}
}

static void
sr_handle_message_error(const rd_kafka_message_t *m)
{
	sr_count_fault(sr_slot, SR_FAULT_KAFKA_ERROR);
	sr_partition_error(m->partition, m->err, rd_kafka_message_errstr(m));
}

/* An error event of the events consumer, of one partition or of the client. */
static void
sr_handle_events_error(rd_kafka_event_t *ev)
{
	rd_kafka_topic_partition_t *tp;
	bool		ours;

	tp = rd_kafka_event_error_is_fatal(ev) ? NULL : rd_kafka_event_topic_partition(ev);
	ours = tp != NULL && tp->partition >= 0 && strcmp(tp->topic, sr_def.topic) == 0;
	if (ours && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR__PARTITION_EOF)
	{
		/* not an error: the end of a partition (enable.partition.eof) */
		sr_handle_end(tp->partition, tp->offset);
		rd_kafka_topic_partition_destroy(tp);
		return;
	}
	sr_count_kafka_error(ev);
	if (ours)
		sr_partition_error(tp->partition, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev));
	else
		sr_handle_error_event(ev, "events consumer");
	if (tp != NULL)
		rd_kafka_topic_partition_destroy(tp);
}

/* Refresh a partition's high watermark from librdkafka's last fetch. */
static void
sr_note_watermark(sr_part *p)
{
	int64_t		lo,
				hi;

	if (rd_kafka_get_watermark_offsets(sr_events.rk, sr_def.topic, p->partition, &lo, &hi) ==
		RD_KAFKA_RESP_ERR_NO_ERROR && hi >= 0)
		p->high_watermark = hi;
}

/*
 * Commit the batch in one transaction (asynchronously unless
 * sentry_relay.synchronous_commit), then queue its offsets for Kafka.
 */
void
sr_flush(void)
{
	bool		any_dirty = false;
	bool		remote_written = sr_b.remote != NIL || sr_b.ncl_positions > 0;
	rd_kafka_topic_partition_list_t *commit;
	int			jobs = sr_b.n,
				dead = list_length(sr_b.dead);
	sr_part   **dirty;
	int			ndirty = 0;

	for (int i = 0; i < sr_nparts; i++)
		if (sr_parts[i].assigned && (sr_parts[i].dirty || sr_parts[i].error_dirty))
			any_dirty = true;
	if (sr_b.n == 0 && sr_b.dead == NIL && !remote_written && !any_dirty)
		return;

	sr_db_begin("sentry_relay: committing a batch");
	if (!sr_synchronous_commit)
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	sr_db_insert_jobs(&sr_def, &sr_b);
	sr_db_insert_dead_letters(&sr_def, &sr_b);
	sr_db_write_remote(&sr_def, &sr_b);
	commit = rd_kafka_topic_partition_list_new(4);
	dirty = palloc(sizeof(sr_part *) * Max(sr_nparts, 1));
	for (int i = 0; i < sr_nparts; i++)
	{
		sr_part    *p = &sr_parts[i];

		if (!p->assigned || !(p->dirty || p->error_dirty))
			continue;
		if (p->sm.cur.offsets.has_local &&
			(!p->has_committed || p->committed != p->sm.cur.offsets.local))
			rd_kafka_topic_partition_list_add(commit, sr_def.topic, i)->offset =
				p->sm.cur.offsets.local;
		sr_note_watermark(p);
		dirty[ndirty++] = p;
	}
	sr_db_update_partitions(&sr_def, dirty, ndirty);
	sr_db_commit();
	sr_mirror_push(commit);		/* to Kafka once flushed (offset_mirror.c) */

	LWLockAcquire(sr_shm->lock, LW_EXCLUSIVE);
	sr_slot->messages += sr_b.messages;
	sr_slot->jobs += jobs;
	sr_slot->skipped += sr_b.skipped;
	sr_slot->dead_letters += dead;
	sr_slot->batches++;
	LWLockRelease(sr_shm->lock);

	if (dead > 0)
		ereport(LOG,
				(errmsg("%s: %d message(s) could not be decoded and went to sentry_relay.dead_letters",
						sr_who, dead)));

	MemoryContextReset(sr_batch_cxt);
	memset(&sr_b, 0, sizeof(sr_b));
	if (remote_written)
	{
		sr_wake_stream_now(sr_def.name);	/* sibling workers re-read */
		sr_refresh_remote();
	}
}

/*
 * Commit the batch, and then what its commit released from the hold (a
 * flush that wrote remote offsets re-reads them, which can release held
 * messages into a new batch), and mirror every offset to Kafka; before
 * partitions are let go.
 */
void
sr_flush_all(void)
{
	sr_flush();
	sr_flush();
	sr_mirror_send(true);
}

/* Partitions assigned to us: claim them in the table and position them. */
static void
sr_on_assign(rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_copy(parts);
	rd_kafka_error_t *e = NULL;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

	sr_db_begin("sentry_relay: claiming partitions");
	for (int i = 0; i < assign->cnt; i++)
	{
		sr_part    *p = sr_get_part(assign->elems[i].partition, true);
		sr_snapshot prev;
		bool		changed;

		sr_hold_drop(p);		/* anything held from an earlier assignment */
		memset(p, 0, sizeof(*p));
		p->partition = assign->elems[i].partition;
		p->high_watermark = -1;
		sr_partition_init(&p->sm, sr_def.ngroups);
		sr_db_claim_partition(&sr_def, p);
		if (p->has_committed)
		{
			sr_partition_set_local(&p->sm, true, p->committed, &prev, &changed);
			assign->elems[i].offset = p->committed;
		}
		else
			assign->elems[i].offset = RD_KAFKA_OFFSET_INVALID;	/* committed, else policy */
		p->assigned = true;
		p->fresh = true;
		p->dirty = true;
	}
	sr_db_commit();

	if (strcmp(rd_kafka_rebalance_protocol(sr_events.rk), "COOPERATIVE") == 0)
		e = rd_kafka_incremental_assign(sr_events.rk, assign);
	else
		err = rd_kafka_assign(sr_events.rk, assign);
	if (e != NULL || err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		char		msg[256];

		snprintf(msg, sizeof(msg), "could not assign partitions: %s",
				 e ? rd_kafka_error_string(e) : rd_kafka_err2str(err));
		if (e)
			rd_kafka_error_destroy(e);
		rd_kafka_topic_partition_list_destroy(assign);
		ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE), errmsg("%s: %s", sr_who, msg)));
	}
	/*
	 * librdkafka keeps an application pause across unassign and assign, so
	 * a partition paused before a rebalance would stay paused for good: clear
	 * it, then let the state machine pause what must wait.
	 */
	err = rd_kafka_resume_partitions(sr_events.rk, assign);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(LOG, (errmsg("%s: could not resume the new assignment: %s", sr_who, rd_kafka_err2str(err))));
	ereport(LOG, (errmsg("%s: assigned %d partition(s) of topic \"%s\"", sr_who, assign->cnt, sr_def.topic)));
	rd_kafka_topic_partition_list_destroy(assign);
	sr_refresh_remote();
	for (int i = 0; i < sr_nparts; i++)
		sr_apply_flow(&sr_parts[i]);
	sr_publish_partitions();
	sr_set_status("running");
}

static void
sr_on_revoke(rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_error_t *e = NULL;

	/*
	 * Jobs of the revoked partitions must be committed before we let go.
	 * What stays held is dropped: the next owner reads it again from the
	 * local offset.
	 */
	sr_flush_all();
	sr_db_begin("sentry_relay: releasing partitions");
	for (int i = 0; i < parts->cnt; i++)
	{
		sr_part    *p = sr_get_part(parts->elems[i].partition, false);

		if (p != NULL)
		{
			p->assigned = false;
			sr_hold_drop(p);
		}
		sr_db_release_partition(&sr_def, parts->elems[i].partition);
	}
	sr_db_commit();
	if (strcmp(rd_kafka_rebalance_protocol(sr_events.rk), "COOPERATIVE") == 0)
		e = rd_kafka_incremental_unassign(sr_events.rk, parts);
	else
		sr_kafka_unassign_all(sr_events.rk, sr_who);
	if (e != NULL)
	{
		ereport(LOG, (errmsg("%s: unassign failed: %s", sr_who, rd_kafka_error_string(e))));
		rd_kafka_error_destroy(e);
	}
	ereport(LOG, (errmsg("%s: revoked %d partition(s)", sr_who, parts->cnt)));
	sr_publish_partitions();
}

/* Serve events of the events consumer until the batch is cut. */
void
sr_drain_events(TimestampTz deadline)
{
	rd_kafka_event_t *ev;

	sr_faults_attach(sr_slot);
	if (sr_hold_pending())
		sr_hold_release_all();	/* the rest of a commit-log step, first */
	while (sr_b.messages < sr_batch_size && sr_b.bytes < (size_t) sr_batch_max_bytes &&
		   (ev = rd_kafka_queue_poll(sr_events.queue, 0)) != NULL)
	{
		switch (rd_kafka_event_type(ev))
		{
			case RD_KAFKA_EVENT_FETCH:
				{
					const rd_kafka_message_t *m;
					MemoryContext old = MemoryContextSwitchTo(sr_batch_cxt);

					while ((m = rd_kafka_event_message_next(ev)) != NULL)
					{
						if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
						{
							sr_handle_end(m->partition, m->offset);
							continue;
						}
						if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
						{
							sr_handle_message_error(m);
							continue;
						}
						if (sr_broker_down)
						{
							sr_broker_down = false;
							sr_set_status("running");
							ereport(LOG, (errmsg("%s: Kafka broker is reachable again", sr_who)));
						}
						sr_handle_message(m);
					}
					MemoryContextSwitchTo(old);
					break;
				}
			case RD_KAFKA_EVENT_REBALANCE:
				{
					rd_kafka_topic_partition_list_t *l =
						rd_kafka_topic_partition_list_copy(rd_kafka_event_topic_partition_list(ev));
					rd_kafka_resp_err_t err = rd_kafka_event_error(ev);

					rd_kafka_event_destroy(ev);
					ev = NULL;
					sr_count_fault(sr_slot, SR_FAULT_REBALANCE);
					if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
					{
						sr_flush();
						sr_on_assign(l);
					}
					else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
						sr_on_revoke(l);
					else
					{
						ereport(LOG, (errmsg("%s: rebalance failed: %s", sr_who, rd_kafka_err2str(err))));
						sr_kafka_unassign_all(sr_events.rk, sr_who);
					}
					rd_kafka_topic_partition_list_destroy(l);
					break;
				}
			case RD_KAFKA_EVENT_ERROR:
				sr_handle_events_error(ev);
				break;
			case RD_KAFKA_EVENT_LOG:
				sr_kafka_log_event(ev, sr_who);
				break;
			case RD_KAFKA_EVENT_OFFSET_COMMIT:
				if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR &&
					rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR__NO_OFFSET)
				{
					sr_count_fault(sr_slot, SR_FAULT_COMMIT_FAILED);
					ereport(DEBUG1, (errmsg("%s: Kafka offset commit failed: %s", sr_who,
											rd_kafka_event_error_string(ev))));
				}
				break;
			default:
				break;
		}
		if (ev != NULL)
			rd_kafka_event_destroy(ev);
		if (sr_b.started != 0 && GetCurrentTimestamp() >= deadline)
			break;
		/* a step of the writer waits: serve it first (worker.c) */
		if (sr_clog_assigned && rd_kafka_queue_length(sr_clog.queue) > 0)
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
 * watermark.
 *
 * The request is a round trip that waits behind the fetch in flight, so the
 * worker's own thread does not make it: the fetch waker's thread does
 * (fetch_waker.c), one request at a time, and the worker goes on.  Narrower
 * conditions (a lag of thousands of messages, a queue seen full) lost most
 * of the throughput, because the queue fills by bytes as well as by count;
 * see the README's Performance section.
 */
#define SR_KICK_MS 5
#define SR_KICK_BELOW 2000		/* queued messages: fetch more below this */

void
sr_kick_fetcher(void)
{
	static int	next = 0;
	static TimestampTz last = 0;
	TimestampTz now;
	int32		answered;
	int64		high;

	if (sr_waker_result(&answered, &high) && answered < sr_nparts &&
		sr_parts[answered].assigned)
		sr_parts[answered].high_watermark = high;
	now = GetCurrentTimestamp();
	if (!sr_fetch_wakeup || sr_broker_down || sr_nparts == 0 ||
		!TimestampDifferenceExceeds(last, now, SR_KICK_MS) ||
		rd_kafka_queue_length(sr_events.queue) >= SR_KICK_BELOW)
		return;
	for (int k = 0; k < sr_nparts; k++)
	{
		int			i = (next + k) % sr_nparts;
		sr_part    *p = &sr_parts[i];

		if (!p->assigned || p->paused || p->at_end || !p->sm.cur.offsets.has_local)
			continue;
		sr_note_watermark(p);
		if (p->high_watermark <= sr_next_fetch(p))
			continue;
		if (sr_waker_request(i))
		{
			next = i + 1;
			last = now;
		}
		return;
	}
}
