/*
 * rebalance.c - partitions of the events topic that the consumer group
 * assigns to the worker or takes away, or that the worker takes itself
 * when the stream's partitions are assigned locally (and then watches the
 * group for members, which would be other consumers of the partitions).
 *
 * An assigned partition is claimed in sentry_relay.partitions and
 * positioned at the local offset stored there (Kafka's committed offset or
 * the stream's reset policy only where the table has none).  Before a
 * partition is let go, the batch is committed with everything it holds for
 * it; what stays in the hold is dropped, and the next owner reads it again
 * from the local offset.
 */
#include "postgres.h"

#include "worker.h"

#define SR_LOCAL_METADATA_TIMEOUT_MS 2000	/* a metadata request, local assignment */
#define SR_LOCAL_GROUP_TIMEOUT_MS 1000	/* a description of the consumer group */

static bool
sr_cooperative(sr_worker *w)
{
	return strcmp(rd_kafka_rebalance_protocol(w->events.rk), "COOPERATIVE") == 0;
}

/* Partitions assigned to us: claim them in the table and position them. */
void
sr_on_assign(sr_worker *w, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_copy(parts);
	rd_kafka_error_t *e = NULL;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

	sr_gate_commit(w);			/* what the batch has, before positions change */
	sr_store_begin("sentry_relay: claiming partitions");
	for (int i = 0; i < assign->cnt; i++)
	{
		sr_part    *p = sr_get_part(w, assign->elems[i].partition, true);
		sr_snapshot prev;
		bool		changed;

		sr_hold_drop(w, p);		/* anything held from an earlier assignment */
		memset(p, 0, sizeof(*p));
		p->partition = assign->elems[i].partition;
		p->high_watermark = -1;
		sr_partition_init(&p->sm, w->def.ngroups);
		sr_store_claim_partition(&w->def, p);
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
	sr_store_commit();

	if (sr_cooperative(w))
		e = rd_kafka_incremental_assign(w->events.rk, assign);
	else
		err = rd_kafka_assign(w->events.rk, assign);
	if (e != NULL || err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		char		msg[256];

		snprintf(msg, sizeof(msg), "could not assign partitions: %s",
				 e ? rd_kafka_error_string(e) : rd_kafka_err2str(err));
		if (e)
			rd_kafka_error_destroy(e);
		rd_kafka_topic_partition_list_destroy(assign);
		ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE), errmsg("%s: %s", w->label, msg)));
	}

	/*
	 * librdkafka keeps an application pause across unassign and assign, so
	 * a partition paused before a rebalance would stay paused for good: clear
	 * it, then let the gate pause what must wait (sr_refresh_remote).
	 */
	err = rd_kafka_resume_partitions(w->events.rk, assign);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(LOG, (errmsg("%s: could not resume the new assignment: %s", w->label, rd_kafka_err2str(err))));
	ereport(LOG, (errmsg("%s: assigned %d partition(s) of topic \"%s\"", w->label, assign->cnt, w->def.topic)));
	rd_kafka_topic_partition_list_destroy(assign);
	sr_refresh_remote(w);
	sr_publish_partitions(w);
	w->assigned = true;
	sr_set_running(w);
}

/* Let go of one partition: no longer ours, nothing held, released in the table. */
static void
sr_let_go(sr_worker *w, int32 partition)
{
	sr_part    *p = sr_get_part(w, partition, false);

	if (p != NULL)
	{
		p->assigned = false;
		sr_hold_drop(w, p);
	}
	sr_store_release_partition(&w->def, partition);
}

/* Partitions taken away: commit what we have of them, then let them go. */
void
sr_on_revoke(sr_worker *w, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_error_t *e = NULL;

	sr_gate_commit_all(w);
	sr_store_begin("sentry_relay: releasing partitions");
	for (int i = 0; i < parts->cnt; i++)
		sr_let_go(w, parts->elems[i].partition);
	sr_store_commit();
	if (sr_cooperative(w))
		e = rd_kafka_incremental_unassign(w->events.rk, parts);
	else
		sr_kafka_unassign_all(w->events.rk, w->label);
	if (e != NULL)
	{
		ereport(LOG, (errmsg("%s: unassign failed: %s", w->label, rd_kafka_error_string(e))));
		rd_kafka_error_destroy(e);
	}
	ereport(LOG, (errmsg("%s: revoked %d partition(s)", w->label, parts->cnt)));
	sr_publish_partitions(w);
}

/*
 * At a clean shutdown: commit what we have, and let go of every partition
 * in the table, as a revocation would; the consumer leaves the group after.
 */
void
sr_release_all(sr_worker *w)
{
	sr_gate_commit_all(w);
	sr_store_begin("sentry_relay: releasing partitions");
	for (int i = 0; i < w->nparts; i++)
		if (w->parts[i].assigned)
			sr_let_go(w, i);
	sr_store_commit();
	sr_publish_partitions(w);
}

/*
 * Local assignment (the stream option "assignment": "local"): no consumer
 * group decides; worker i of n takes the partitions p of the topic with
 * p % n == i, as the topic's metadata counts them.  Called at start and then
 * every topic.metadata.refresh.interval.ms, so that partitions added to the
 * topic are taken too; a change of the count is a revocation of everything
 * followed by the new assignment, as an eager rebalance would do it.
 * Returns false when the metadata could not be read (the caller retries
 * soon); the reason is logged once, and shown in the worker's last_error.
 */
bool
sr_local_assign(sr_worker *w)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t err;
	int			count = 0;
	char		msg[256];
	rd_kafka_topic_partition_list_t *mine;

	err = sr_kafka_topic_metadata(w->events.rk, w->def.topic, SR_LOCAL_METADATA_TIMEOUT_MS, &md);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		count = md->topics[0].partition_cnt;
		rd_kafka_metadata_destroy(md);
	}
	else
	{
		snprintf(msg, sizeof(msg), "could not read the partitions of topic \"%s\": %s",
				 w->def.topic, rd_kafka_err2str(err));
		if (!w->local_failing)
			ereport(LOG,
					(errmsg("%s: %s", w->label, msg),
					 errhint("The worker retries every second; check that the topic exists and the broker is reachable.")));
		w->local_failing = true;
		sr_worker_error(w, msg);
		return false;
	}
	if (w->local_failing)
		ereport(LOG, (errmsg("%s: read the partitions of topic \"%s\"", w->label, w->def.topic)));
	w->local_failing = false;
	if (count == w->local_count)
		return true;

	if (w->local_count > 0)
	{
		rd_kafka_topic_partition_list_t *had = rd_kafka_topic_partition_list_new(w->nparts);

		for (int p = 0; p < w->nparts; p++)
			if (w->parts[p].assigned)
				rd_kafka_topic_partition_list_add(had, w->def.topic, p);
		ereport(LOG, (errmsg("%s: topic \"%s\" has %d partitions now, not %d: assigning again",
							 w->label, w->def.topic, count, w->local_count)));
		sr_on_revoke(w, had);
		rd_kafka_topic_partition_list_destroy(had);
	}
	mine = rd_kafka_topic_partition_list_new(count / w->def.workers + 1);
	for (int p = w->index; p < count; p += w->def.workers)
		rd_kafka_topic_partition_list_add(mine, w->def.topic, p);
	w->local_count = count;
	if (mine->cnt > 0)
		sr_on_assign(w, mine);
	else
	{
		w->assigned = true;		/* more workers than partitions: this one has none */
		sr_set_running(w);
	}
	rd_kafka_topic_partition_list_destroy(mine);
	return true;
}

/*
 * With local assignment no worker of the stream is a member of its consumer
 * group, and Kafka accepts the offsets they commit to it whatever its
 * members.  A member is then another consumer that reads the topic in the
 * same group, most likely the same stream in a second server: said with a
 * WARNING once per appearance, and in last_error.  Called
 * every few seconds; a group that cannot be described is tried again then.
 */
void
sr_local_check_group(sr_worker *w)
{
	const struct rd_kafka_group_list *gl = NULL;
	rd_kafka_resp_err_t err;
	int			members = 0;
	char		msg[SR_ERROR_LEN];

	err = rd_kafka_list_groups(w->events.rk, w->def.consumer_group, &gl, SR_LOCAL_GROUP_TIMEOUT_MS);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		ereport(DEBUG1, (errmsg("%s: could not describe consumer group \"%s\": %s", w->label,
								w->def.consumer_group, rd_kafka_err2str(err))));
		return;
	}
	for (int i = 0; i < gl->group_cnt; i++)
		if (gl->groups[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
			strcmp(gl->groups[i].group, w->def.consumer_group) == 0)
			members += gl->groups[i].member_cnt;
	rd_kafka_group_list_destroy(gl);
	if (members == 0)
	{
		w->local_group_warned = false;
		return;
	}
	snprintf(msg, sizeof(msg), "consumer group \"%s\" has %d other member(s): another consumer "
			 "may read the partitions this stream assigns locally", w->def.consumer_group, members);
	sr_worker_error(w, msg);
	if (!w->local_group_warned)
		ereport(WARNING,
				(errmsg("%s: %s", w->label, msg),
				 errdetail("The stream's workers take their partitions without joining the group (\"assignment\": \"local\"), so its members are other consumers."),
				 errhint("Run a locally assigned stream in one server only, or use \"assignment\": \"group\" in every server that runs it; give other consumers their own group.")));
	w->local_group_warned = true;
}
