/*
 * commit_log.c - the commit-log follower of worker 0 of each stream.
 *
 * It reads the writers' commit log from the stored read position (a
 * standalone consumer: assign(), no group), keeps the entries of the
 * stream's followed groups for the stream's topic, and hands them to the
 * current batch (batch.c), which stores them in sentry_relay.remote_offsets
 * together with the new read position.  For partitions worker 0 consumes itself, the
 * gate moves at once and the held messages it lets through join the same
 * batch: one transaction per commit-log step.  Undecodable entries are
 * dead-lettered.  A stored position out of the log's range resumes at the
 * log's start or end (sr_clog_out_of_range), never with a replay.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "decode_sql.h"
#include "guc.h"
#include "worker.h"

#define SR_CLOG_WATERMARK_TIMEOUT_MS 2000	/* the range of a partition, after an out of range */

/* Assign the commit log's partitions at the stored read positions. */
void
sr_clog_assign(sr_worker *w)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t err;
	rd_kafka_topic_partition_list_t *l;
	List	   *pos;
	ListCell   *lc;

	w->clog_next_try = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000);
	err = sr_kafka_topic_metadata(w->clog.rk, w->def.commit_log_topic, 2000, &md);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		char		msg[256];

		snprintf(msg, sizeof(msg), "commit log topic \"%s\" is not available: %s",
				 w->def.commit_log_topic, rd_kafka_err2str(err));
		sr_worker_error(w, msg);
		sr_set_status(w, "waiting for commit log");
		return;
	}
	sr_store_begin("sentry_relay: reading commit log positions");
	pos = sr_store_read_cl_positions(&w->def);
	sr_store_commit();
	l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
	{
		int32		part = md->topics[0].partitions[i].id;
		int64		off = RD_KAFKA_OFFSET_BEGINNING;

		foreach(lc, pos)
			if (((sr_remote_update *) lfirst(lc))->partition == part)
				off = ((sr_remote_update *) lfirst(lc))->offset;
		rd_kafka_topic_partition_list_add(l, w->def.commit_log_topic, part)->offset = off;
	}
	rd_kafka_metadata_destroy(md);
	err = rd_kafka_assign(w->clog.rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(ERROR, (errmsg("%s: could not assign the commit log: %s", w->label, rd_kafka_err2str(err))));
	w->clog_assigned = true;
	ereport(LOG, (errmsg("%s: following commit log \"%s\"", w->label, w->def.commit_log_topic)));
	sr_set_running(w);
}

/* One commit-log message: keep offsets of our topic's followed groups. */
static void
sr_handle_commit_log(sr_worker *w, const rd_kafka_message_t *m)
{
	sr_commit	c;
	sr_error	err;
	sr_msg		msg;
	int			g;

	sr_batch_cl_position(w, m->partition, m->offset + 1);
	if (m->payload == NULL)
		return;					/* a compaction tombstone */
	sr_msg_from_kafka(m, &msg);
	if (sr_decode_commit_log(sr_get_decoder(), msg.key, msg.key_len, msg.payload, msg.len,
							 msg.headers, msg.nheaders, &c, &err) == SR_DECODE_ERROR)
	{
		sr_batch_dead_letter(w, &msg, &err, w->def.commit_log_topic);
		return;
	}
	if (strcmp(c.topic, w->def.topic) == 0 && (g = sr_group_index(w, c.group)) >= 0)
	{
		sr_remote_update u;

		u.partition = c.partition;
		u.group = unconstify(char *, c.group);	/* copied by sr_batch_remote */
		u.offset = c.offset;
		u.has_ts = c.has_orig_message_ts;
		u.ts = sr_unix_us_to_timestamptz(c.orig_message_ts_us);
		sr_batch_remote(w, &u);

		/*
		 * One of our own partitions: its gate moves now.  The batch that
		 * stores the new remote offset is the one that enqueues the messages
		 * it lets through, so no job commits before its offset is stored.
		 */
		sr_apply_group_offset(w, sr_get_part(w, c.partition, false), g, c.offset);
	}
}

/* Drop the commit log's assignment: sr_clog_assign assigns it again after retry_ms. */
static void
sr_clog_unassign(sr_worker *w, int retry_ms)
{
	rd_kafka_resp_err_t err = rd_kafka_assign(w->clog.rk, NULL);

	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(ERROR, (errmsg("%s: could not unassign the commit log: %s", w->label,
							   rd_kafka_err2str(err))));
	w->clog_assigned = false;
	w->clog_next_try = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), retry_ms);
}

/*
 * The stored read position of a commit-log partition is out of the log's
 * range (this consumer's auto.offset.reset is "error").  Below the log's
 * start, retention deleted entries before they were read: resume at the
 * oldest entry left, as none of those left was read.  Past its end, the
 * topic was recreated or truncated: resume at the end.  Within the range
 * when asked again (a partition leader that lagged behind, or an injected
 * error), resume at the same offset: nothing is skipped.  Replaying the
 * whole log from its start instead would move remote offsets back to old
 * values and hold every partition's gate until the replay is over; the
 * writers commit again within seconds.  The new position is stored with
 * the next batch.
 */
static void
sr_clog_out_of_range(sr_worker *w, int32 partition, int64 offset)
{
	int64		lo,
				hi,
				to;
	char		msg[SR_ERROR_LEN];
	rd_kafka_resp_err_t err;

	sr_count_fault(w->slot, SR_FAULT_KAFKA_ERROR);
	err = rd_kafka_query_watermark_offsets(w->clog.rk, w->def.commit_log_topic, partition,
										   &lo, &hi, SR_CLOG_WATERMARK_TIMEOUT_MS);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		/* assign again from the stored positions in a second, and decide then */
		snprintf(msg, sizeof(msg), "commit log partition %d: offset " INT64_FORMAT
				 " out of range, and its range could not be read: %s",
				 partition, offset, rd_kafka_err2str(err));
		ereport(LOG, (errmsg("%s: %s", w->label, msg)));
		sr_worker_error(w, msg);
		sr_clog_unassign(w, 1000);
		return;
	}
	if (offset >= lo && offset <= hi)
		to = offset;			/* in range after all: a leader that lagged */
	else
		to = offset >= 0 && offset < lo ? lo : hi;
	snprintf(msg, sizeof(msg), "commit log partition %d: offset " INT64_FORMAT " out of range "
			 "(the log holds " INT64_FORMAT " to " INT64_FORMAT "); resumed at " INT64_FORMAT ", %s",
			 partition, offset, lo, hi, to,
			 to == offset ? "the same offset: it is in the log's range now"
			 : to == lo ? "the oldest entry left: retention deleted entries before they were read"
			 : "its end: the topic was recreated or truncated, and its entries are not replayed");
	ereport(LOG, (errmsg("%s: %s", w->label, msg)));
	sr_worker_error(w, msg);

	/*
	 * Store the new position with what the batch holds, then assign the
	 * commit log again from the stored positions (at once, in the main
	 * loop): librdkafka refuses to seek a partition whose reset failed.
	 */
	sr_batch_cl_position(w, partition, to);
	sr_gate_commit(w);
	sr_clog_unassign(w, 0);
}

/*
 * Serve the commit-log consumer's events (at most 10,000 entries per call),
 * then release what the moved gates let through into the batch.
 */
void
sr_drain_commit_log(sr_worker *w)
{
	rd_kafka_event_t *ev;
	int			n = 0;

	sr_faults_attach(w->slot);
	while (n < 10000 && (ev = rd_kafka_queue_poll(w->clog.queue, 0)) != NULL)
	{
		switch (rd_kafka_event_type(ev))
		{
			case RD_KAFKA_EVENT_FETCH:
				{
					const rd_kafka_message_t *m;
					MemoryContext old = MemoryContextSwitchTo(w->batch_cxt);

					while ((m = rd_kafka_event_message_next(ev)) != NULL)
					{
						if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
						{
							sr_clog_out_of_range(w, m->partition, m->offset);
							break;	/* assigned again: the rest of the queue is stale */
						}
						if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
						{
							sr_count_fault(w->slot, SR_FAULT_KAFKA_ERROR);
							ereport(LOG, (errmsg("%s: commit log error: %s", w->label,
												 rd_kafka_message_errstr(m))));
							continue;
						}
						sr_handle_commit_log(w, m);
						n++;
					}
					MemoryContextSwitchTo(old);
					break;
				}
			case RD_KAFKA_EVENT_ERROR:
				if (rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET &&
					!rd_kafka_event_error_is_fatal(ev))
				{
					/* librdkafka 2.0 may report a failed reset as an error event */
					rd_kafka_topic_partition_t *tp = rd_kafka_event_topic_partition(ev);

					if (tp != NULL)
					{
						sr_clog_out_of_range(w, tp->partition, tp->offset);
						rd_kafka_topic_partition_destroy(tp);
						break;
					}
				}
				sr_kafka_error_event(w, ev, "commit log consumer");
				break;
			case RD_KAFKA_EVENT_LOG:
				sr_kafka_log_event(ev, w->label);
				break;
			default:
				break;
		}
		rd_kafka_event_destroy(ev);
		if (!w->clog_assigned)
			break;
	}
	if (n > 0)
		sr_gate_release_all(w);
}
