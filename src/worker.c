/*
 * worker.c - the relay worker's process: start-up, the main loop, status
 * reporting and shutdown.
 *
 * Each worker joins the stream's consumer group on the events topic
 * (consume.c); worker 0 of a stream also follows the writers' commit log
 * (commit_log.c).  The loop has worker_spi's shape: a WaitEventSet with the
 * latch, postmaster death and a pipe that librdkafka writes to when one of
 * its queues becomes non-empty; CHECK_FOR_INTERRUPTS, a SIGHUP reload, and a
 * per-iteration memory context reset every pass.  Every wait is bounded.
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

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
#include "worker_internal.h"

#define SR_REMOTE_REFRESH_MS 1000
#define SR_MAX_WAIT_MS 1000
#define SR_WAKER_STOP_MS 2000	/* a wake-up request in flight at exit */
#define SR_MIRROR_POLL_MS 100	/* offsets wait for the WAL flush */

sr_worker_slot *sr_slot;
static int	sr_slotno;
sr_stream_def sr_def;
sr_consumer sr_events;	/* group consumer of the events topic */
sr_consumer sr_clog;		/* standalone consumer of the commit log */
bool sr_clog_wanted = false;
bool sr_clog_assigned = false;
TimestampTz sr_clog_next_try = 0;
static int	sr_pipe[2] = {-1, -1};
MemoryContext sr_batch_cxt;	/* the current batch; reset after its commit */
static MemoryContext sr_iter_cxt;	/* one pass of the loop; reset every pass */
sr_batch sr_b;
sr_part *sr_parts = NULL;	/* indexed by partition number */
int	sr_nparts = 0;
bool sr_broker_down = false;
TimestampTz sr_last_remote_refresh = 0;
char sr_who[128];

/* Set the status shown in sentry_relay.workers. */
void
sr_set_status(const char *status)
{
	LWLockAcquire(sr_shm->lock, LW_EXCLUSIVE);
	strlcpy(sr_slot->status, status, SR_STATUS_LEN);
	LWLockRelease(sr_shm->lock);
}

void
sr_worker_error(const char *msg)
{
	LWLockAcquire(sr_shm->lock, LW_EXCLUSIVE);
	strlcpy(sr_slot->last_error, msg, SR_ERROR_LEN);
	sr_slot->last_error_at = GetCurrentTimestamp();
	LWLockRelease(sr_shm->lock);
}

/* Publish the assigned partitions to shared memory. */
void
sr_publish_partitions(void)
{
	int			n = 0;

	LWLockAcquire(sr_shm->lock, LW_EXCLUSIVE);
	for (int i = 0; i < sr_nparts && n < SR_SHOWN_PARTITIONS; i++)
		if (sr_parts[i].assigned)
			sr_slot->partitions[n++] = i;
	sr_slot->npartitions = n;
	LWLockRelease(sr_shm->lock);
}

sr_part *
sr_get_part(int32 partition, bool create)
{
	if (partition < 0)
		return NULL;
	if (partition >= sr_nparts)
	{
		int			n;

		if (!create)
			return NULL;
		n = Max(partition + 1, sr_nparts * 2);
		if (sr_parts == NULL)
			sr_parts = MemoryContextAllocZero(TopMemoryContext, sizeof(sr_part) * n);
		else
		{
			sr_parts = repalloc(sr_parts, sizeof(sr_part) * n);
			memset(sr_parts + sr_nparts, 0, sizeof(sr_part) * (n - sr_nparts));
		}
		sr_nparts = n;
	}
	return &sr_parts[partition];
}

int
sr_group_index(const char *group)
{
	for (int g = 0; g < sr_def.ngroups; g++)
		if (strcmp(sr_def.groups[g], group) == 0)
			return g;
	return -1;
}

void
sr_handle_error_event(rd_kafka_event_t *ev, const char *who)
{
	rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
	char		msg[SR_ERROR_LEN];

	snprintf(msg, sizeof(msg), "%s: %s", who, rd_kafka_event_error_string(ev));
	if (rd_kafka_event_error_is_fatal(ev))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s: fatal Kafka error: %s", sr_who, msg)));
	sr_worker_error(msg);
	if (sr_kafka_error_is_broker_down(err))
	{
		if (!sr_broker_down)
			ereport(LOG,
					(errmsg("%s: waiting for the Kafka broker: %s", sr_who, msg),
					 errhint("The worker keeps retrying and resumes by itself.")));
		sr_broker_down = true;
		sr_set_status("waiting for broker");
	}
	else
		ereport(LOG, (errmsg("%s: Kafka error: %s", sr_who, msg)));
}

static void
sr_worker_exit(int code, Datum arg)
{
	(void) code;
	(void) arg;
	/* on an error exit, leave fast: the group notices through its timeout */
	sr_consumer_destroy(&sr_clog, false);
	if (sr_waker_stop(SR_WAKER_STOP_MS))
		sr_consumer_destroy(&sr_events, false);
	else
		ereport(LOG,
				(errmsg("%s: the fetch thread is still waiting for the broker; its Kafka handle is left to the exit",
						sr_who)));
	if (sr_shm != NULL && sr_slot != NULL)
	{
		LWLockAcquire(sr_shm->lock, LW_EXCLUSIVE);
		if (sr_slot->pid == MyProcPid)
		{
			sr_slot->latch = NULL;
			sr_slot->npartitions = 0;
		}
		LWLockRelease(sr_shm->lock);
	}
}

/* Clean shutdown: leave the group so that partitions move at once. */
static void
sr_worker_shutdown(void)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 5000);
	rd_kafka_error_t *e;

	sr_set_status("stopping");
	sr_flush_all();

	/* let go of our partitions in the table, as a revoke would */
	sr_db_begin("sentry_relay: releasing partitions");
	for (int i = 0; i < sr_nparts; i++)
		if (sr_parts[i].assigned)
		{
			sr_parts[i].assigned = false;
			sr_hold_drop(&sr_parts[i]);
			sr_db_release_partition(&sr_def, i);
		}
	sr_db_commit();
	sr_publish_partitions();

	if (!sr_waker_stop(SR_WAKER_STOP_MS))
	{
		ereport(LOG,
				(errmsg("%s: the fetch thread is still waiting for the broker; the consumer group notices the exit by its session timeout",
						sr_who)));
		return;
	}
	e = rd_kafka_consumer_close_queue(sr_events.rk, sr_events.queue);
	if (e != NULL)
		rd_kafka_error_destroy(e);
	else
		while (!rd_kafka_consumer_closed(sr_events.rk) && GetCurrentTimestamp() < deadline)
		{
			rd_kafka_event_t *ev = rd_kafka_queue_poll(sr_events.queue, 100);

			if (ev == NULL)
				continue;
			if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
			{
				if (strcmp(rd_kafka_rebalance_protocol(sr_events.rk), "COOPERATIVE") == 0)
				{
					rd_kafka_error_t *ue =
						rd_kafka_incremental_unassign(sr_events.rk,
													  rd_kafka_event_topic_partition_list(ev));

					if (ue != NULL)
						rd_kafka_error_destroy(ue);
				}
				else
					sr_kafka_unassign_all(sr_events.rk, sr_who);
			}
			rd_kafka_event_destroy(ev);
		}
	sr_consumer_destroy(&sr_clog, false);
	sr_consumer_destroy(&sr_events, true);
}

void
sr_worker_main(Datum main_arg)
{
	WaitEventSet *wes;
	char		client_id[160];
	char		stream[SR_NAME_LEN];
	int			index;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	sr_shmem_attach();
	sr_slotno = DatumGetInt32(main_arg);
	sr_slot = &sr_shm->slots[sr_slotno];
	LWLockAcquire(sr_shm->lock, LW_EXCLUSIVE);
	sr_slot->pid = MyProcPid;
	sr_slot->latch = MyLatch;
	sr_slot->started_at = GetCurrentTimestamp();
	sr_slot->npartitions = 0;
	strlcpy(stream, sr_slot->stream, sizeof(stream));
	index = sr_slot->worker_index;
	LWLockRelease(sr_shm->lock);
	snprintf(sr_who, sizeof(sr_who), "worker %d of stream \"%s\"", index, stream);
	before_shmem_exit(sr_worker_exit, (Datum) 0);

	sr_worker_connect();		/* as sentry_relay.worker_role */
	pgstat_report_appname(psprintf("sentry_relay %s/%d", stream, index));

	MemoryContextSwitchTo(TopMemoryContext);
	sr_db_begin("sentry_relay: loading the stream");
	if (!sr_db_load_stream(stream, &sr_def))
	{
		sr_db_commit();
		ereport(LOG, (errmsg("%s: the stream is gone or stopped; exiting", sr_who)));
		proc_exit(0);
	}
	sr_db_commit();
	sr_batch_cxt = AllocSetContextCreate(TopMemoryContext, "sentry_relay batch", ALLOCSET_DEFAULT_SIZES);
	sr_iter_cxt = AllocSetContextCreate(TopMemoryContext, "sentry_relay iteration", ALLOCSET_DEFAULT_SIZES);

	if (pipe(sr_pipe) != 0 || fcntl(sr_pipe[0], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(sr_pipe[1], F_SETFL, O_NONBLOCK) != 0)
		elog(ERROR, "could not create the wake-up pipe: %m");

	snprintf(client_id, sizeof(client_id), "sentry_relay-%s-%d", stream, index);
	sr_consumer_create(&sr_events, &sr_def, client_id, true, sr_pipe[1]);
	sr_waker_start(sr_events.rk, sr_def.topic);
	{
		rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
		rd_kafka_resp_err_t err;

		rd_kafka_topic_partition_list_add(topics, sr_def.topic, RD_KAFKA_PARTITION_UA);
		err = rd_kafka_subscribe(sr_events.rk, topics);
		rd_kafka_topic_partition_list_destroy(topics);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
			ereport(ERROR, (errmsg("%s: could not subscribe to \"%s\": %s", sr_who, sr_def.topic,
								   rd_kafka_err2str(err))));
	}
	sr_clog_wanted = index == 0 && sr_def.commit_log_topic != NULL;
	if (sr_clog_wanted)
	{
		snprintf(client_id, sizeof(client_id), "sentry_relay-%s-commit-log", stream);
		sr_consumer_create(&sr_clog, &sr_def, client_id, false, sr_pipe[1]);
	}
	sr_set_status("waiting for assignment");
	ereport(LOG, (errmsg("%s started: topic \"%s\", consumer group \"%s\"", sr_who,
						 sr_def.topic, sr_def.consumer_group)));

	wes = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wes, WL_SOCKET_READABLE, sr_pipe[0], NULL, NULL);

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
		MemoryContextSwitchTo(sr_iter_cxt);
		MemoryContextReset(sr_iter_cxt);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		while (read(sr_pipe[0], drain, sizeof(drain)) > 0)
			;

		now = GetCurrentTimestamp();
		LWLockAcquire(sr_shm->lock, LW_EXCLUSIVE);
		remote_changed = sr_slot->remote_changed;
		sr_slot->remote_changed = false;
		LWLockRelease(sr_shm->lock);
		if (remote_changed || TimestampDifferenceExceeds(sr_last_remote_refresh, now, SR_REMOTE_REFRESH_MS))
			sr_refresh_remote();

		if (sr_clog_wanted && !sr_clog_assigned && now >= sr_clog_next_try)
			sr_clog_assign();
		if (sr_clog_assigned)
		{
			sr_drain_commit_log();
			/* commit a step of the writer, and what it let through, at once */
			if (sr_b.remote != NIL || sr_b.n > 0)
				sr_flush();
		}

		deadline = TimestampTzPlusMilliseconds(now, sr_batch_timeout);
		sr_drain_events(deadline);
		sr_flush();
		sr_mirror_send(false);
		sr_kick_fetcher();

		if (rd_kafka_queue_length(sr_events.queue) > 0 || sr_hold_pending() ||
			(sr_clog_assigned && rd_kafka_queue_length(sr_clog.queue) > 0))
			timeout = 0;
		else if (sr_mirror_pending())
			timeout = SR_MIRROR_POLL_MS;	/* the WAL writer flushes on its own */
		else if (sr_clog_wanted && !sr_clog_assigned)
			timeout = 1000;

		(void) WaitEventSetWait(wes, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	MemoryContextSwitchTo(TopMemoryContext);
	sr_worker_shutdown();
	ereport(LOG, (errmsg("%s stopped", sr_who)));
	proc_exit(0);
}
