/*
 * state.h - the synchronized partition state machine.
 *
 * Tracks, per (topic, partition), our local offset (the next offset to
 * enqueue) against the remote offset (the writer's committed, exclusive
 * offset), and derives the partition state from them, exactly as Sentry's
 * SynchronizedPartitionStateManager does.  Extended with remote offsets per
 * followed writer group: the remote offset is the minimum over the groups,
 * and unknown until every group has reported.
 *
 * Pure C: no PostgreSQL dependency.  Nothing here logs or calls back: each
 * update returns the snapshot before it and whether the state moved, and the
 * caller logs and stores what it needs.
 */
#ifndef SR_STATE_H
#define SR_STATE_H

#include <stdbool.h>
#include <stdint.h>

#define SR_MAX_GROUPS 16

typedef enum sr_pstate
{
	SR_STATE_NONE = 0,			/* never seen: Python's None */
	SR_STATE_UNKNOWN,			/* local or remote offset not known */
	SR_STATE_LOCAL_BEHIND,		/* local < remote: consume */
	SR_STATE_SYNCHRONIZED,		/* local == remote: wait */
	SR_STATE_REMOTE_BEHIND		/* local > remote: wait */
} sr_pstate;

typedef struct sr_offsets
{
	bool		has_local;
	int64_t		local;
	bool		has_remote;
	int64_t		remote;
} sr_offsets;

/* A partition's state and offsets; each update returns the one before it. */
typedef struct sr_snapshot
{
	sr_pstate	state;
	sr_offsets	offsets;
} sr_snapshot;

/* One partition; embed it where the caller keeps per-partition data. */
typedef struct sr_partition
{
	sr_snapshot cur;
	int			ngroups;		/* followed groups; 0 = remote set directly */
	bool		has_group[SR_MAX_GROUPS];
	int64_t		group[SR_MAX_GROUPS];
} sr_partition;

typedef enum sr_sm_result
{
	SR_SM_OK = 0,
	SR_SM_INVALID_TRANSITION,	/* the update would make a forbidden move */
	SR_SM_INVALID_STATE,		/* message while not LOCAL_BEHIND */
	SR_SM_NOT_READY,			/* message at or past the remote offset */
	SR_SM_BAD_ARGUMENT			/* group index out of range */
} sr_sm_result;

/* Derive a state from offsets (get_state_from_offsets). */
extern sr_pstate sr_state_from_offsets(const sr_offsets *o);
extern bool sr_transition_allowed(sr_pstate from, sr_pstate to);
extern const char *sr_pstate_name(sr_pstate s);

/*
 * Single-partition core.  Each update fills *prev with the snapshot before
 * it and sets *changed when the state moved.  On error nothing changes.
 */
extern void sr_partition_init(sr_partition *p, int ngroups);
extern sr_sm_result sr_partition_set_local(sr_partition *p, bool has,
										   int64_t offset, sr_snapshot *prev,
										   bool *changed);
extern sr_sm_result sr_partition_set_remote(sr_partition *p, bool has,
											int64_t offset, sr_snapshot *prev,
											bool *changed);
extern sr_sm_result sr_partition_set_group(sr_partition *p, int group,
										   int64_t offset, sr_snapshot *prev,
										   bool *changed);
extern sr_sm_result sr_partition_validate(const sr_partition *p,
										  int64_t offset, bool *before_local);

#endif							/* SR_STATE_H */
