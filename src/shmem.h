/*
 * shmem.h - shared memory of the relay: the launcher's latch, and one slot
 * per worker with its identity, status and counters.  The slots feed the
 * sentry_relay.workers view and let SQL functions wake workers.
 */
#ifndef SR_SHMEM_H
#define SR_SHMEM_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#define SR_NAME_LEN 64
#define SR_STATUS_LEN 48
#define SR_ERROR_LEN 256
#define SR_SHOWN_PARTITIONS 128

/*
 * Faults a worker saw, counted per slot across the restarts of its worker
 * and shown in sentry_relay.workers.  A slot handed to a new worker
 * (restarts = 0) starts from zero.
 */
typedef enum sr_fault
{
	SR_FAULT_KAFKA_ERROR,		/* error events and per-message consumer errors */
	SR_FAULT_BROKER_DOWN,		/* times the worker started waiting for a broker */
	SR_FAULT_REBALANCE,			/* partition assignments and revocations */
	SR_FAULT_COMMIT_FAILED,		/* Kafka offset commits that failed */
	SR_FAULT_REMOTE_BACKWARDS,	/* remote offsets that moved backwards */
	SR_FAULT_GATED				/* messages past the gate, re-read later */
} sr_fault;

#define SR_NFAULTS 6

typedef struct sr_worker_slot
{
	bool		in_use;			/* claimed by the launcher */
	char		stream[SR_NAME_LEN];
	int			worker_index;
	int			restarts;		/* how many times this slot's worker restarted */
	pid_t		pid;			/* 0 until the worker attaches */
	Latch	   *latch;
	bool		remote_changed; /* remote offsets changed: re-read them */
	bool		leave_group;	/* stopped by the launcher: leave the consumer group */
	char		status[SR_STATUS_LEN];
	int			npartitions;
	int32		partitions[SR_SHOWN_PARTITIONS];
	uint64		messages;
	uint64		jobs;
	uint64		skipped;
	uint64		dead_letters;
	uint64		batches;
	uint64		direct_inserts; /* batches of jobs by table_multi_insert */
	uint64		copy_inserts;	/* batches of jobs by COPY FROM */
	char		last_error[SR_ERROR_LEN];
	TimestampTz last_error_at;
	TimestampTz started_at;
	/* faults this slot's workers saw (see sr_count_fault) */
	uint64		faults[SR_NFAULTS];
} sr_worker_slot;

typedef struct sr_shared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	int			nslots;
	sr_worker_slot slots[FLEXIBLE_ARRAY_MEMBER];
} sr_shared;

/* The shared area, or NULL before sr_shmem_attach (or without the preload). */
extern sr_shared *sr_shmem(void);

extern void sr_faults_attach(sr_worker_slot *slot);
extern void sr_count_fault(sr_worker_slot *slot, sr_fault fault);

extern void sr_shmem_register(void);
extern void sr_shmem_attach(void);

/* SQL-side wake-ups, delivered when the calling transaction commits. */
extern void sr_request_launcher_wake(void);
extern void sr_request_stream_wake(const char *stream);
/* Immediate wake-ups, for callers that have already committed. */
extern void sr_wake_launcher_now(void);
extern void sr_wake_stream_now(const char *stream);

#endif							/* SR_SHMEM_H */
