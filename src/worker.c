/*
 * worker.c - the relay worker's process: start-up, the main loop and
 * shutdown.  Its state is one sr_worker (worker.h), passed down to every
 * module.
 *
 * Each worker joins the stream's consumer group on the events topic
 * (events.c); worker 0 of a stream also follows the writers' commit log
 * (commit_log.c).  Each pass reads both, commits the batch (gate.c, batch.c)
 * and mirrors flushed offsets to Kafka (offset_mirror.c).  The loop has worker_spi's shape: a WaitEventSet with the
 * latch, postmaster death and a pipe that librdkafka writes to when one of
 * its queues becomes non-empty; CHECK_FOR_INTERRUPTS, a SIGHUP reload, and a
 * per-iteration memory context reset every pass.  Every wait is bounded.
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "decode_sql.h"
#include "fetch_waker.h"
#include "guc.h"
#include "relay.h"
#include "worker.h"

#define SR_REMOTE_REFRESH_MS 1000
#define SR_MAX_WAIT_MS 1000
#define SR_WAKER_STOP_MS 2000	/* a wake-up request in flight at exit */
#define SR_MIRROR_POLL_MS 100	/* offsets wait for the WAL flush */
#define SR_LOCAL_GROUP_CHECK_MS 5000	/* local assignment: a look at the group's members */

/*
 * The worker's static membership in the consumer group (group.instance.id,
 * with "assignment": "static"):
 * a worker that restarts, after a crash too, takes its place and partitions
 * back at once instead of waiting for the group to time out its
 * predecessor.  Unique per server (the system identifier), database, stream
 * and worker number.
 */
static const char *
sr_instance_id(const char *stream, int index)
{
	return psprintf("sentry_relay-" UINT64_FORMAT "-%u-%s-%d", GetSystemIdentifier(),
					MyDatabaseId, stream, index);
}

/* How often local assignment looks for new partitions: librdkafka's metadata refresh. */
static int
sr_metadata_refresh_ms(sr_worker *w)
{
	char		buf[32];
	size_t		len = sizeof(buf);
	int			ms;

	if (rd_kafka_conf_get(rd_kafka_conf(w->events.rk), "topic.metadata.refresh.interval.ms",
						  buf, &len) != RD_KAFKA_CONF_OK || (ms = atoi(buf)) <= 0)
		return 300000;
	return Max(ms, 1000);
}

/* The worker of this process; reached by the exit callback through its argument. */
static sr_worker sr_this_worker;

static void
sr_worker_exit(int code, Datum arg)
{
	sr_worker  *w = (sr_worker *) DatumGetPointer(arg);

	(void) code;
	/* on an error exit, leave fast: the group notices through its timeout */
	sr_consumer_destroy(&w->clog, false);
	if (sr_waker_stop(SR_WAKER_STOP_MS))
		sr_consumer_destroy(&w->events, false);
	else
		ereport(LOG,
				(errmsg("%s: the fetch thread is still waiting for the broker; its Kafka handle is left to the exit",
						w->label)));
	if (sr_shmem() != NULL && w->slot != NULL)
	{
		LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
		if (w->slot->pid == MyProcPid)
		{
			w->slot->latch = NULL;
			w->slot->npartitions = 0;
		}
		LWLockRelease(sr_shmem()->lock);
	}
}

/* Serve a rebalance event while the consumer leaves: drop what it revokes. */
static void
sr_shutdown_rebalance(sr_worker *w, rd_kafka_event_t *ev)
{
	if (strcmp(rd_kafka_rebalance_protocol(w->events.rk), "COOPERATIVE") == 0)
	{
		rd_kafka_error_t *ue =
			rd_kafka_incremental_unassign(w->events.rk, rd_kafka_event_topic_partition_list(ev));

		if (ue != NULL)
		{
			ereport(LOG, (errmsg("%s: unassign failed: %s", w->label, rd_kafka_error_string(ue))));
			rd_kafka_error_destroy(ue);
		}
	}
	else
		sr_kafka_unassign_all(w->events.rk, w->label);
}

/*
 * Leave the consumer group before closing: a static member does not leave
 * when it closes (KIP-345), so that a restart takes its place back, but a
 * worker that the launcher stops for good (its stream stopped, dropped or
 * altered) leaves, and its partitions move to the others at once.
 * Unsubscribing revokes the assignment; once it is dropped, librdkafka
 * sends the LeaveGroup and clears the member id.
 */
static void
sr_leave_group(sr_worker *w, TimestampTz deadline)
{
	rd_kafka_resp_err_t err = rd_kafka_unsubscribe(w->events.rk);

	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		ereport(LOG, (errmsg("%s: could not leave the consumer group: %s", w->label,
							 rd_kafka_err2str(err))));
		return;
	}
	while (GetCurrentTimestamp() < deadline)
	{
		char	   *member = rd_kafka_memberid(w->events.rk);
		bool		left = member == NULL || member[0] == '\0';
		rd_kafka_event_t *ev;

		if (member != NULL)
			rd_kafka_mem_free(w->events.rk, member);
		if (left)
			return;
		ev = rd_kafka_queue_poll(w->events.queue, 50);
		if (ev == NULL)
			continue;
		if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
			sr_shutdown_rebalance(w, ev);
		rd_kafka_event_destroy(ev);
	}
	ereport(LOG, (errmsg("%s: the consumer group did not confirm the leave in time; closing", w->label)));
}

/*
 * Clean shutdown: commit and release the partitions, then close the
 * consumer, which leaves the group.  A static member ("assignment":
 * "static") leaves only when the launcher stops it for good
 * (sr_leave_group); at a server shutdown it stays a member, and takes its
 * partitions back when the server is up again.
 */
static void
sr_worker_shutdown(sr_worker *w)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 5000);
	rd_kafka_error_t *e;
	bool		leave;

	sr_set_status(w, "stopping");
	sr_release_all(w);

	if (!sr_waker_stop(SR_WAKER_STOP_MS))
	{
		ereport(LOG,
				(errmsg("%s: the fetch thread is still waiting for the broker; the consumer group notices the exit by its session timeout",
						w->label)));
		return;
	}
	LWLockAcquire(sr_shmem()->lock, LW_SHARED);
	leave = w->slot->leave_group;
	LWLockRelease(sr_shmem()->lock);
	if (leave && w->def.static_member)
		sr_leave_group(w, deadline);
	e = rd_kafka_consumer_close_queue(w->events.rk, w->events.queue);
	if (e != NULL)
		rd_kafka_error_destroy(e);
	else
		while (!rd_kafka_consumer_closed(w->events.rk) && GetCurrentTimestamp() < deadline)
		{
			rd_kafka_event_t *ev = rd_kafka_queue_poll(w->events.queue, 100);

			if (ev == NULL)
				continue;
			if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
				sr_shutdown_rebalance(w, ev);
			rd_kafka_event_destroy(ev);
		}
	sr_consumer_destroy(&w->clog, false);
	sr_consumer_destroy(&w->events, true);
}

void
sr_worker_main(Datum main_arg)
{
	sr_worker  *w = &sr_this_worker;
	WaitEventSet *wes;
	char		client_id[160];
	char		stream[SR_NAME_LEN];
	int			index;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	sr_shmem_attach();
	memset(w, 0, sizeof(*w));
	w->wake_pipe[0] = w->wake_pipe[1] = -1;
	w->slot = &sr_shmem()->slots[DatumGetInt32(main_arg)];
	LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
	w->slot->pid = MyProcPid;
	w->slot->latch = MyLatch;
	w->slot->started_at = GetCurrentTimestamp();
	w->slot->npartitions = 0;
	strlcpy(stream, w->slot->stream, sizeof(stream));
	index = w->slot->worker_index;
	LWLockRelease(sr_shmem()->lock);
	w->index = index;
	snprintf(w->label, sizeof(w->label), "worker %d of stream \"%s\"", index, stream);
	before_shmem_exit(sr_worker_exit, PointerGetDatum(w));

	sr_worker_connect();		/* as sentry_relay.worker_role */
	pgstat_report_appname(psprintf("sentry_relay %s/%d", stream, index));

	MemoryContextSwitchTo(TopMemoryContext);
	sr_store_begin("sentry_relay: loading the stream");
	if (!sr_store_load_stream(stream, &w->def))
	{
		sr_store_commit();
		ereport(LOG, (errmsg("%s: the stream is gone or stopped; exiting", w->label)));
		proc_exit(0);
	}
	sr_store_commit();
	w->batch_cxt = AllocSetContextCreate(TopMemoryContext, "sentry_relay batch", ALLOCSET_DEFAULT_SIZES);
	w->iter_cxt = AllocSetContextCreate(TopMemoryContext, "sentry_relay iteration", ALLOCSET_DEFAULT_SIZES);

	if (pipe(w->wake_pipe) != 0 || fcntl(w->wake_pipe[0], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(w->wake_pipe[1], F_SETFL, O_NONBLOCK) != 0)
		elog(ERROR, "could not create the wake-up pipe: %m");

	snprintf(client_id, sizeof(client_id), "sentry_relay-%s-%d", stream, index);
	if (w->def.local_assignment)
	{
		/* partitions from the topic's metadata (sr_local_assign); the group only gets commits */
		sr_consumer_create(&w->events, &w->def, client_id, true, NULL, w->wake_pipe[1]);
		sr_waker_start(w->events.rk, w->def.topic);
	}
	else
	{
		rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
		rd_kafka_resp_err_t err;

		sr_consumer_create(&w->events, &w->def, client_id, true,
						   w->def.static_member ? sr_instance_id(stream, index) : NULL,
						   w->wake_pipe[1]);
		sr_waker_start(w->events.rk, w->def.topic);
		rd_kafka_topic_partition_list_add(topics, w->def.topic, RD_KAFKA_PARTITION_UA);
		err = rd_kafka_subscribe(w->events.rk, topics);
		rd_kafka_topic_partition_list_destroy(topics);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
			ereport(ERROR, (errmsg("%s: could not subscribe to \"%s\": %s", w->label, w->def.topic,
								   rd_kafka_err2str(err))));
	}
	w->clog_wanted = index == 0 && w->def.commit_log_topic != NULL;
	if (w->clog_wanted)
	{
		snprintf(client_id, sizeof(client_id), "sentry_relay-%s-commit-log", stream);
		sr_consumer_create(&w->clog, &w->def, client_id, false, NULL, w->wake_pipe[1]);
	}
	sr_set_status(w, "waiting for assignment");
	ereport(LOG, (errmsg("%s started: topic \"%s\", consumer group \"%s\"%s", w->label,
						 w->def.topic, w->def.consumer_group,
						 w->def.local_assignment ? ", partitions assigned locally" : "")));

	wes = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wes, WL_SOCKET_READABLE, w->wake_pipe[0], NULL, NULL);

	for (;;)
	{
		WaitEvent	events[3];
		TimestampTz now;
		TimestampTz deadline;
		bool		remote_changed;
		long		timeout = SR_MAX_WAIT_MS;
		char		drain[256];

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			break;
		MemoryContextSwitchTo(w->iter_cxt);
		MemoryContextReset(w->iter_cxt);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		while (read(w->wake_pipe[0], drain, sizeof(drain)) > 0)
			;

		now = GetCurrentTimestamp();
		LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
		remote_changed = w->slot->remote_changed;
		w->slot->remote_changed = false;
		LWLockRelease(sr_shmem()->lock);
		if (remote_changed || TimestampDifferenceExceeds(w->last_remote_refresh, now, SR_REMOTE_REFRESH_MS))
			sr_refresh_remote(w);

		if (w->def.local_assignment && now >= w->local_next_try)
			w->local_next_try = TimestampTzPlusMilliseconds(now, sr_local_assign(w) ?
															sr_metadata_refresh_ms(w) : 1000);
		if (w->def.local_assignment && now >= w->local_group_next)
		{
			w->local_group_next = TimestampTzPlusMilliseconds(now, SR_LOCAL_GROUP_CHECK_MS);
			sr_local_check_group(w);
		}
		if (w->clog_wanted && !w->clog_assigned && now >= w->clog_next_try)
			sr_clog_assign(w);
		if (w->broker_down && now >= w->broker_probe_next)
			sr_broker_probe(w);
		if (w->clog_assigned)
		{
			sr_drain_commit_log(w);
			/* commit a step of the writer, and what it let through, at once */
			if (w->batch.remote != NIL || w->batch.n > 0)
				sr_gate_commit(w);
		}

		deadline = TimestampTzPlusMilliseconds(now, sr_batch_timeout);
		sr_drain_events(w, deadline);
		sr_gate_commit(w);
		sr_mirror_send(w, false);
		sr_kick_fetcher(w);

		if (rd_kafka_queue_length(w->events.queue) > 0 || sr_gate_pending(w) ||
			(w->clog_assigned && rd_kafka_queue_length(w->clog.queue) > 0))
			timeout = 0;
		else if (sr_mirror_pending(w))
			timeout = SR_MIRROR_POLL_MS;	/* the WAL writer flushes on its own */
		else if (w->clog_wanted && !w->clog_assigned)
			timeout = 1000;

		(void) WaitEventSetWait(wes, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	MemoryContextSwitchTo(TopMemoryContext);
	sr_worker_shutdown(w);
	ereport(LOG, (errmsg("%s stopped", w->label)));
	proc_exit(0);
}
