/*
 * launcher.c - the relay's launcher, a static background worker.
 *
 * It connects to sentry_relay.database, and keeps the set of running relay
 * workers equal to what sentry_relay.streams asks for: workers of enabled
 * streams are started, those of stopped, dropped or altered streams are
 * terminated, and a worker that dies is restarted with a backoff.  It wakes
 * on its latch (set by the stream functions at commit, and by the postmaster
 * when a worker starts or stops) and never runs workers on a standby.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_database.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "relay.h"
#include "shmem.h"

/* Launcher-local view of a slot: the handle only lives here. */
typedef struct sr_launcher_slot
{
	BackgroundWorkerHandle *handle;
	char		version[64];	/* streams.updated_at the worker was started with */
	TimestampTz started_at;
	TimestampTz next_start;		/* backoff: not before */
	int			failures;		/* consecutive short-lived runs */
	bool		terminating;
} sr_launcher_slot;

typedef struct sr_desired
{
	char		stream[SR_NAME_LEN];
	int			workers;
	char		version[64];
} sr_desired;

static sr_launcher_slot *sr_lslots;

/*
 * In a transaction: whether workers can run as sentry_relay.worker_role (and
 * its OID).  A problem is logged as a WARNING when it appears or changes,
 * and the recovery when it is gone.
 */
static bool
sr_launcher_role_usable(Oid *roleid)
{
	static sr_role_problem last = SR_ROLE_OK;
	sr_role_problem problem = sr_worker_role_check(roleid);

	if (problem != last)
	{
		if (problem != SR_ROLE_OK)
			sr_worker_role_report(problem, WARNING);
		else
			ereport(LOG,
					(errmsg("sentry_relay workers run as role \"%s\" again",
							sr_worker_role_name())));
		last = problem;
	}
	return problem == SR_ROLE_OK;
}

/*
 * In a transaction: whether the extension's schema is the version this
 * library was built for.  Between installing a new version and ALTER
 * EXTENSION UPDATE the schema is older than the workers expect (0.3.0's
 * workers store NULL task flags, which 0.2.0's columns refuse), so no worker
 * runs until the update.  Logged when it appears or changes.
 */
static bool
sr_launcher_version_matches(const char *extversion)
{
	static char last[64] = SR_EXTVERSION;
	bool		match = strcmp(extversion, SR_EXTVERSION) == 0;

	if (strcmp(extversion, last) != 0)
	{
		if (!match)
			ereport(WARNING,
					(errmsg("sentry_relay's library is version %s, but the extension in database \"%s\" is at version %s; no relay worker is started",
							SR_EXTVERSION, sr_database, extversion),
					 errhint("Run ALTER EXTENSION sentry_relay UPDATE in database \"%s\".",
							 sr_database)));
		else
			ereport(LOG,
					(errmsg("the sentry_relay extension is at version %s: relay workers start",
							extversion)));
		strlcpy(last, extversion, sizeof(last));
	}
	return match;
}

/*
 * Read the enabled streams; returns false (and no stream) if the extension
 * is absent, at another version than the library, or the worker role is
 * unusable, so that no worker runs.
 */
static bool
sr_launcher_read_streams(List **out)
{
	bool		present = false;
	int			ret;
	Oid			roleid;

	*out = NIL;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "reading sentry_relay.streams");

	ret = SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'sentry_relay'", true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1 &&
		sr_launcher_version_matches(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)) &&
		sr_launcher_role_usable(&roleid))
	{
		Oid			save_userid;
		int			save_sec;

		present = true;
		/* read as the worker role: it needs the grants its workers need */
		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(roleid, save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		ret = SPI_execute("SELECT name, workers, updated_at::text FROM sentry_relay.streams "
						  "WHERE enabled ORDER BY name", true, 0);
		SetUserIdAndSecContext(save_userid, save_sec);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "reading sentry_relay.streams failed: %d", ret);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
			sr_desired *d = palloc0(sizeof(sr_desired));
			bool		isnull;

			MemoryContextSwitchTo(old);
			strlcpy(d->stream, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1), SR_NAME_LEN);
			d->workers = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
			strlcpy(d->version, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3), sizeof(d->version));
			old = MemoryContextSwitchTo(TopMemoryContext);
			*out = lappend(*out, d);
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return present;
}

static sr_desired *
sr_find_desired(List *desired, const char *stream)
{
	ListCell   *lc;

	foreach(lc, desired)
	{
		sr_desired *d = lfirst(lc);

		if (strcmp(d->stream, stream) == 0)
			return d;
	}
	return NULL;
}

static bool
sr_start_worker(int slotno, const sr_desired *d, int index)
{
	BackgroundWorker bgw;
	sr_worker_slot *s = &sr_shmem()->slots[slotno];
	sr_launcher_slot *l = &sr_lslots[slotno];

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "sentry_relay");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "sr_worker_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "sentry_relay worker %s/%d", d->stream, index);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "sentry_relay worker");
	bgw.bgw_main_arg = Int32GetDatum(slotno);
	bgw.bgw_notify_pid = MyProcPid;

	LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
	s->in_use = true;
	strlcpy(s->stream, d->stream, SR_NAME_LEN);
	s->worker_index = index;
	s->pid = 0;
	s->latch = NULL;
	s->remote_changed = false;
	s->leave_group = false;
	strlcpy(s->status, "starting", SR_STATUS_LEN);
	LWLockRelease(sr_shmem()->lock);

	if (!RegisterDynamicBackgroundWorker(&bgw, &l->handle))
	{
		LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
		s->in_use = false;
		LWLockRelease(sr_shmem()->lock);
		l->handle = NULL;
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("sentry_relay could not start a worker for stream \"%s\": no background worker slot is free",
						d->stream),
				 errhint("Raise max_worker_processes.")));
		return false;
	}
	strlcpy(l->version, d->version, sizeof(l->version));
	l->started_at = GetCurrentTimestamp();
	l->terminating = false;
	return true;
}

/* Bring running workers in line with the desired set; returns a wait in ms. */
static long
sr_reconcile(List *desired)
{
	TimestampTz now = GetCurrentTimestamp();
	long		wait_ms = 10000;
	ListCell   *lc;

	/* 1. reap exited workers, terminate unwanted ones */
	for (int i = 0; i < sr_shmem()->nslots; i++)
	{
		sr_worker_slot *s = &sr_shmem()->slots[i];
		sr_launcher_slot *l = &sr_lslots[i];
		pid_t		pid;
		sr_desired *d;

		if (!s->in_use || l->handle == NULL)
			continue;
		if (GetBackgroundWorkerPid(l->handle, &pid) == BGWH_STOPPED)
		{
			bool		short_run = TimestampDifferenceExceeds(l->started_at, now, 30000) == false;

			pfree(l->handle);
			l->handle = NULL;
			d = sr_find_desired(desired, s->stream);
			LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
			s->pid = 0;
			s->latch = NULL;
			if (d != NULL && !l->terminating && s->worker_index < d->workers)
			{
				/* an unplanned exit: keep the slot, restart after a backoff */
				l->failures = short_run ? Min(l->failures + 1, 6) : 0;
				l->next_start = TimestampTzPlusMilliseconds(now, 1000L << l->failures >> 1);
				s->restarts++;
				strlcpy(s->status, "restarting", SR_STATUS_LEN);
			}
			else
				s->in_use = false;
			LWLockRelease(sr_shmem()->lock);
			continue;
		}
		d = sr_find_desired(desired, s->stream);
		if (!l->terminating &&
			(d == NULL || s->worker_index >= d->workers || strcmp(d->version, l->version) != 0))
		{
			/* stopped for good, not restarting with the server: it leaves its group */
			LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
			s->leave_group = true;
			strlcpy(s->status, "stopping", SR_STATUS_LEN);
			LWLockRelease(sr_shmem()->lock);
			TerminateBackgroundWorker(l->handle);
			l->terminating = true;
		}
	}

	/* 2. start what is missing, restarts after their backoff */
	foreach(lc, desired)
	{
		sr_desired *d = lfirst(lc);
		bool		stopping = false;

		/*
		 * Workers of the stream that are being stopped (the stream was
		 * altered) still hold partitions: start the new set when they are
		 * gone, so that no two workers of a locally assigned stream read one
		 * partition, and a group rebalances once.  The postmaster sets our
		 * latch when they exit.
		 */
		for (int i = 0; i < sr_shmem()->nslots; i++)
			if (sr_shmem()->slots[i].in_use && sr_lslots[i].terminating &&
				sr_lslots[i].handle != NULL && strcmp(sr_shmem()->slots[i].stream, d->stream) == 0)
				stopping = true;
		if (stopping)
			continue;

		for (int w = 0; w < d->workers; w++)
		{
			int			found = -1,
						free_slot = -1;

			for (int i = 0; i < sr_shmem()->nslots; i++)
			{
				sr_worker_slot *s = &sr_shmem()->slots[i];

				if (s->in_use && strcmp(s->stream, d->stream) == 0 && s->worker_index == w)
					found = i;
				else if (!s->in_use && free_slot < 0)
					free_slot = i;
			}
			if (found >= 0)
			{
				sr_launcher_slot *l = &sr_lslots[found];

				if (l->handle != NULL)
					continue;
				if (now < l->next_start)
				{
					long		ms = (long) ((l->next_start - now) / 1000) + 1;

					wait_ms = Min(wait_ms, ms);
					continue;
				}
				sr_start_worker(found, d, w);
				continue;
			}
			if (free_slot < 0)
			{
				ereport(WARNING,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("sentry_relay cannot run worker %d of stream \"%s\": all %d worker slots are in use",
								w, d->stream, sr_shmem()->nslots),
						 errhint("Raise sentry_relay.max_workers (and max_worker_processes), or lower the streams' workers.")));
				wait_ms = Min(wait_ms, 5000);
				continue;
			}
			memset(&sr_lslots[free_slot], 0, sizeof(sr_launcher_slot));
			LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
			sr_shmem()->slots[free_slot].restarts = 0;
			sr_shmem()->slots[free_slot].messages = 0;
			sr_shmem()->slots[free_slot].jobs = 0;
			sr_shmem()->slots[free_slot].skipped = 0;
			sr_shmem()->slots[free_slot].dead_letters = 0;
			sr_shmem()->slots[free_slot].batches = 0;
			sr_shmem()->slots[free_slot].direct_inserts = 0;
			sr_shmem()->slots[free_slot].copy_inserts = 0;
			sr_shmem()->slots[free_slot].last_error[0] = '\0';
			sr_shmem()->slots[free_slot].last_error_at = 0;
			sr_shmem()->slots[free_slot].npartitions = 0;
			LWLockRelease(sr_shmem()->lock);
			sr_start_worker(free_slot, d, w);
		}
	}
	return wait_ms;
}

/* A failed connection (no such database) is retried this often, not every second. */
#define SR_LAUNCHER_RETRY_MS 30000

static bool sr_launcher_connected = false;

/*
 * Whether our database is being dropped: DROP DATABASE holds an exclusive
 * lock on it while it terminates (WITH (FORCE)) or waits for its sessions.
 */
static bool
sr_database_being_dropped(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	if (LockAcquire(&tag, AccessShareLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, AccessShareLock, true);
	return false;
}

/*
 * SIGTERM: from the postmaster at shutdown, from pg_terminate_backend, or
 * from DROP DATABASE ... WITH (FORCE) of sentry_relay.database.  In the last
 * case, exit with status 0 so that the postmaster does not restart the
 * launcher into a database that no longer exists (a FATAL error every
 * second); the relay then stays off until the server restarts.  Otherwise
 * exit with status 1, and the postmaster restarts the launcher.
 */
static void
sr_launcher_terminate(void)
{
	if (sr_database_being_dropped())
	{
		ereport(LOG,
				(errmsg("sentry_relay launcher: database \"%s\" is being dropped; the relay stops until the server restarts",
						sr_database),
				 errhint("Point sentry_relay.database at the database that holds the extension, then restart the server.")));
		proc_exit(0);
	}
	ereport(LOG, (errmsg("sentry_relay launcher terminated by a signal")));
	proc_exit(1);
}

/*
 * Exit callback before the connection is made: when the database does not
 * exist (InitPostgres raised FATAL), wait before exiting, so the postmaster's
 * restart (1 s) does not turn into a loop of FATAL errors every second.
 */
static void
sr_launcher_connect_failed(int code, Datum arg)
{
	TimestampTz deadline;

	(void) arg;
	if (sr_launcher_connected || code == 0)
		return;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), SR_LAUNCHER_RETRY_MS);
	for (;;)
	{
		long		ms;
		int			rc;

		if (ShutdownRequestPending || ProcDiePending)
			break;
		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (ms <= 0)
			break;
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_POSTMASTER_DEATH, ms,
					   PG_WAIT_EXTENSION);
		if (rc & WL_POSTMASTER_DEATH)
			break;
		ResetLatch(MyLatch);
	}
}

/* Terminate every worker (on launcher exit). */
static void
sr_launcher_exit(int code, Datum arg)
{
	(void) code;
	(void) arg;
	if (sr_shmem() == NULL)
		return;
	for (int i = 0; i < sr_shmem()->nslots; i++)
		if (sr_lslots != NULL && sr_lslots[i].handle != NULL)
			TerminateBackgroundWorker(sr_lslots[i].handle);
	LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
	sr_shmem()->launcher_latch = NULL;
	sr_shmem()->launcher_pid = 0;
	LWLockRelease(sr_shmem()->lock);
}

void
sr_launcher_main(Datum main_arg)
{
	(void) main_arg;
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	sr_shmem_attach();
	sr_lslots = MemoryContextAllocZero(TopMemoryContext,
									   sizeof(sr_launcher_slot) * sr_shmem()->nslots);
	LWLockAcquire(sr_shmem()->lock, LW_EXCLUSIVE);
	/* after a crash restart, slots from before are stale */
	for (int i = 0; i < sr_shmem()->nslots; i++)
		sr_shmem()->slots[i].in_use = false;
	sr_shmem()->launcher_pid = MyProcPid;
	sr_shmem()->launcher_latch = MyLatch;
	LWLockRelease(sr_shmem()->lock);
	before_shmem_exit(sr_launcher_exit, (Datum) 0);
	before_shmem_exit(sr_launcher_connect_failed, (Datum) 0);

	/*
	 * The launcher connects as the bootstrap superuser: it must run before
	 * CREATE EXTENSION creates the worker role, and say clearly what is wrong
	 * with that role (a connection as a missing role is a FATAL error).  It
	 * runs no query that users can influence, and reads the streams as the
	 * worker role.  The workers connect as the worker role.
	 */
	BackgroundWorkerInitializeConnection(sr_database, NULL, 0);
	sr_launcher_connected = true;
	pgstat_report_appname("sentry_relay launcher");
	if (sr_worker_role_name() != NULL)
		ereport(LOG, (errmsg("sentry_relay launcher started in database \"%s\"; workers run as role \"%s\"",
							 sr_database, sr_worker_role_name())));
	else
		ereport(LOG, (errmsg("sentry_relay launcher started in database \"%s\"; workers run as the bootstrap superuser",
							 sr_database),
					  errhint("Set sentry_relay.worker_role to sentry_relay_relay so that they run without superuser rights.")));

	for (;;)
	{
		long		wait_ms = 10000;

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			sr_launcher_terminate();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!RecoveryInProgress())
		{
			List	   *desired;

			if (sr_launcher_read_streams(&desired))
				wait_ms = sr_reconcile(desired);
			else
				wait_ms = sr_reconcile(NIL);
			list_free_deep(desired);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
