/*
 * worker_status.c - what a worker shows and looks up: its status, last
 * error and partitions in its shared-memory slot (the sentry_relay.workers
 * view), its table of partitions, and the Kafka error events every consumer
 * of the worker reports the same way, with the end of a wait for the broker.
 */
#include "postgres.h"

#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "worker.h"

#define SR_BROKER_PROBE_MS 1000			/* how often, while the broker is down */
#define SR_BROKER_PROBE_TIMEOUT_MS 200	/* the longest the loop waits for one answer */

/* Set the status shown in sentry_relay.workers. */
void
sr_set_status(sr_worker *w, const char *status)
{
	LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
	strlcpy(w->slot->status, status, SR_STATUS_LEN);
	LWLockRelease(sr_shmem()->lock);
}

/*
 * A wait is over (the assignment came, the commit log is followed, the
 * broker answers): show "running", or the wait that is still on.  The
 * assignment and the commit log come in either order.
 */
void
sr_set_running(sr_worker *w)
{
	if (!w->assigned)
		sr_set_status(w, "waiting for assignment");
	else if (w->clog_wanted && !w->clog_assigned)
		sr_set_status(w, "waiting for commit log");
	else
		sr_set_status(w, "running");
}

/* Set the last error shown in sentry_relay.workers. */
void
sr_worker_error(sr_worker *w, const char *msg)
{
	LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
	strlcpy(w->slot->last_error, msg, SR_ERROR_LEN);
	w->slot->last_error_at = GetCurrentTimestamp();
	LWLockRelease(sr_shmem()->lock);
}

/* Publish the assigned partitions to shared memory. */
void
sr_publish_partitions(sr_worker *w)
{
	int			n = 0;

	LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
	for (int i = 0; i < w->nparts && n < SR_SHOWN_PARTITIONS; i++)
		if (w->parts[i].assigned)
			w->slot->partitions[n++] = i;
	w->slot->npartitions = n;
	LWLockRelease(sr_shmem()->lock);
}

/* A partition of the events topic; NULL if unknown and not create. */
sr_part *
sr_get_part(sr_worker *w, int32 partition, bool create)
{
	if (partition < 0)
		return NULL;
	if (partition >= w->nparts)
	{
		int			n;

		if (!create)
			return NULL;
		n = Max(partition + 1, w->nparts * 2);
		if (w->parts == NULL)
			w->parts = MemoryContextAllocZero(TopMemoryContext, sizeof(sr_part) * n);
		else
		{
			w->parts = repalloc(w->parts, sizeof(sr_part) * n);
			memset(w->parts + w->nparts, 0, sizeof(sr_part) * (n - w->nparts));
		}
		w->nparts = n;
	}
	return &w->parts[partition];
}

/* The index of a followed writer group, or -1. */
int
sr_group_index(const sr_worker *w, const char *group)
{
	for (int g = 0; g < w->def.ngroups; g++)
		if (strcmp(w->def.groups[g], group) == 0)
			return g;
	return -1;
}

/*
 * Count a Kafka error for sentry_relay.workers, and the start of a wait for
 * the broker (before sr_kafka_error_event sets broker_down).
 */
void
sr_count_kafka_error(sr_worker *w, rd_kafka_resp_err_t err)
{
	sr_count_fault(w->slot, SR_FAULT_KAFKA_ERROR);
	if (!w->broker_down && sr_kafka_error_is_broker_down(err))
		sr_count_fault(w->slot, SR_FAULT_BROKER_DOWN);
}

/*
 * An error event of one of the worker's consumers, not tied to a partition:
 * counted, shown as the worker's last error and logged; a fatal one ends
 * the worker (the launcher restarts it).  An unreachable broker is logged
 * once per wait, and the status says so until a message comes.
 */
void
sr_kafka_error_event(sr_worker *w, rd_kafka_event_t *ev, const char *who)
{
	rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
	char		msg[SR_ERROR_LEN];

	sr_count_kafka_error(w, err);
	snprintf(msg, sizeof(msg), "%s: %s", who, rd_kafka_event_error_string(ev));
	if (rd_kafka_event_error_is_fatal(ev))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s: fatal Kafka error: %s", w->label, msg)));
	sr_worker_error(w, msg);
	if (sr_kafka_error_is_broker_down(err))
	{
		if (!w->broker_down)
		{
			ereport(LOG,
					(errmsg("%s: waiting for the Kafka broker: %s", w->label, msg),
					 errhint("The worker keeps retrying and resumes by itself.")));
			w->broker_probe_next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SR_BROKER_PROBE_MS);
		}
		w->broker_down = true;
		sr_set_status(w, "waiting for broker");
	}
	else
		ereport(LOG, (errmsg("%s: Kafka error: %s", w->label, msg)));
}

/* A message came or a broker answered: the end of a wait for the broker, if there was one. */
void
sr_broker_reachable(sr_worker *w)
{
	if (!w->broker_down)
		return;
	w->broker_down = false;
	sr_set_running(w);
	ereport(LOG, (errmsg("%s: Kafka broker is reachable again", w->label)));
}

/*
 * While the worker waits for the broker: once a second, ask any broker for
 * metadata, with a short timeout, so that the wait ends when a broker
 * answers, not only when the next message arrives (a topic with no new
 * messages would show "waiting for broker" until then).
 */
void
sr_broker_probe(sr_worker *w)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;

	w->broker_probe_next = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SR_BROKER_PROBE_MS);
	err = rd_kafka_metadata(w->events.rk, 0, NULL, &md, SR_BROKER_PROBE_TIMEOUT_MS);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;					/* still down: the error events say why */
	rd_kafka_metadata_destroy(md);
	sr_broker_reachable(w);
}

/* Refresh a partition's high watermark from librdkafka's last fetch. */
void
sr_note_watermark(sr_worker *w, sr_part *p)
{
	int64_t		lo,
				hi;

	if (rd_kafka_get_watermark_offsets(w->events.rk, w->def.topic, p->partition, &lo, &hi) ==
		RD_KAFKA_RESP_ERR_NO_ERROR && hi >= 0)
		p->high_watermark = hi;
}
