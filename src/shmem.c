/*
 * shmem.c - allocation of the relay's shared memory (see shmem.h) and the
 * wake-ups that SQL functions send to the launcher and to workers.  Wake-ups
 * requested inside a transaction are sent only when it commits, so that the
 * woken process reads the committed rows.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/memutils.h"

#include "guc.h"
#include "shmem.h"

static sr_shared *sr_shm = NULL;

static shmem_request_hook_type sr_prev_shmem_request_hook = NULL;
static shmem_startup_hook_type sr_prev_shmem_startup_hook = NULL;

/* wake-ups pending until commit, in TopMemoryContext */
static bool sr_pending_launcher = false;
static List *sr_pending_streams = NIL;
static bool sr_xact_callback_registered = false;

/* this worker process has looked at its slot's fault counters */
static bool sr_faults_attached = false;

static Size
sr_shmem_size(void)
{
	return add_size(offsetof(sr_shared, slots),
					mul_size(sizeof(sr_worker_slot), sr_max_workers));
}

static void
sr_shmem_request(void)
{
	if (sr_prev_shmem_request_hook)
		sr_prev_shmem_request_hook();
	RequestAddinShmemSpace(sr_shmem_size());
	RequestNamedLWLockTranche("sentry_relay", 1);
}

static void
sr_shmem_startup(void)
{
	bool		found;

	if (sr_prev_shmem_startup_hook)
		sr_prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sr_shm = ShmemInitStruct("sentry_relay", sr_shmem_size(), &found);
	if (!found)
	{
		memset(sr_shm, 0, sr_shmem_size());
		sr_shm->lock = &(GetNamedLWLockTranche("sentry_relay"))->lock;
		sr_shm->nslots = sr_max_workers;
	}
	LWLockRelease(AddinShmemInitLock);
}

void
sr_shmem_register(void)
{
	sr_prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sr_shmem_request;
	sr_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sr_shmem_startup;
}

/* The shared area (NULL until it is attached). */
sr_shared *
sr_shmem(void)
{
	return sr_shm;
}

/* Fail clearly when the library was not preloaded. */
void
sr_shmem_attach(void)
{
	if (sr_shm == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sentry_relay is not loaded through shared_preload_libraries"),
				 errhint("Add sentry_relay to shared_preload_libraries in postgresql.conf and restart the server.")));
}

void
sr_wake_launcher_now(void)
{
	if (sr_shm == NULL)
		return;
	LWLockAcquire(sr_shm->lock, LW_SHARED);
	if (sr_shm->launcher_latch != NULL)
		SetLatch(sr_shm->launcher_latch);
	LWLockRelease(sr_shm->lock);
}

void
sr_wake_stream_now(const char *stream)
{
	if (sr_shm == NULL)
		return;
	LWLockAcquire(sr_shm->lock, LW_EXCLUSIVE);
	for (int i = 0; i < sr_shm->nslots; i++)
	{
		sr_worker_slot *s = &sr_shm->slots[i];

		if (s->in_use && strcmp(s->stream, stream) == 0)
		{
			s->remote_changed = true;
			if (s->latch != NULL)
				SetLatch(s->latch);
		}
	}
	LWLockRelease(sr_shm->lock);
}

static void
sr_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	(void) arg;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (sr_pending_launcher)
				sr_wake_launcher_now();
			foreach(lc, sr_pending_streams)
				sr_wake_stream_now((const char *) lfirst(lc));
			/* FALLTHROUGH */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			sr_pending_launcher = false;
			list_free_deep(sr_pending_streams);
			sr_pending_streams = NIL;
			break;
		default:
			break;
	}
}

static void
sr_register_xact_callback(void)
{
	if (!sr_xact_callback_registered)
	{
		RegisterXactCallback(sr_xact_callback, NULL);
		sr_xact_callback_registered = true;
	}
}

void
sr_request_launcher_wake(void)
{
	sr_register_xact_callback();
	sr_pending_launcher = true;
}

void
sr_request_stream_wake(const char *stream)
{
	MemoryContext old;

	sr_register_xact_callback();
	old = MemoryContextSwitchTo(TopMemoryContext);
	sr_pending_streams = lappend(sr_pending_streams, pstrdup(stream));
	MemoryContextSwitchTo(old);
}

/*
 * A worker's first look at its slot's fault counters: a slot just handed to
 * a new worker (restarts = 0) may still hold a previous worker's counts.
 */
static void
sr_faults_attach_locked(sr_worker_slot *slot)
{
	if (sr_faults_attached)
		return;
	if (slot->restarts == 0)
		memset(slot->faults, 0, sizeof(slot->faults));
	sr_faults_attached = true;
}

void
sr_faults_attach(sr_worker_slot *slot)
{
	if (sr_faults_attached || slot == NULL)
		return;
	LWLockAcquire(sr_shm->lock, LW_EXCLUSIVE);
	sr_faults_attach_locked(slot);
	LWLockRelease(sr_shm->lock);
}

/* Count one fault a worker saw, for sentry_relay.workers. */
void
sr_count_fault(sr_worker_slot *slot, sr_fault fault)
{
	if (slot == NULL)
		return;
	LWLockAcquire(sr_shm->lock, LW_EXCLUSIVE);
	sr_faults_attach_locked(slot);
	slot->faults[fault]++;
	LWLockRelease(sr_shm->lock);
}
