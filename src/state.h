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
 * Pure C: no PostgreSQL dependency.  Nothing here logs; notable events are
 * reported to a notice callback, state changes to a change callback.
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

/* A partition's state and offsets, as passed to the change callback. */
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
	SR_SM_BAD_ARGUMENT,			/* group index out of range */
	SR_SM_OUT_OF_MEMORY
} sr_sm_result;

typedef enum sr_sm_notice
{
	SR_NOTICE_LOCAL_BACKWARDS,	/* a = new local, b = previous local */
	SR_NOTICE_REMOTE_BACKWARDS, /* a = new remote, b = previous remote */
	SR_NOTICE_REMOTE_BEHIND,	/* a = local, b = remote */
	SR_NOTICE_MESSAGE_BEFORE_LOCAL	/* a = message offset, b = local */
} sr_sm_notice;

typedef void (*sr_sm_change_fn) (void *arg, const char *topic,
								 int32_t partition, const sr_snapshot *prev,
								 const sr_snapshot *cur);
typedef void (*sr_sm_notice_fn) (void *arg, sr_sm_notice kind,
								 const char *topic, int32_t partition,
								 int64_t a, int64_t b);

/* Derive a state from offsets (get_state_from_offsets). */
extern sr_pstate sr_state_from_offsets(const sr_offsets *o);
extern bool sr_transition_allowed(sr_pstate from, sr_pstate to);
extern const char *sr_pstate_name(sr_pstate s);
extern const char *sr_sm_result_name(sr_sm_result r);

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

/* The manager: partitions keyed by (topic, partition), with callbacks. */
typedef struct sr_state_manager sr_state_manager;

extern sr_state_manager *sr_sm_create(int ngroups, sr_sm_change_fn change,
									  sr_sm_notice_fn notice, void *arg);
extern void sr_sm_destroy(sr_state_manager *sm);
extern sr_sm_result sr_sm_set_local_offset(sr_state_manager *sm,
										   const char *topic, int32_t partition,
										   bool has, int64_t offset);
extern sr_sm_result sr_sm_set_remote_offset(sr_state_manager *sm,
											const char *topic, int32_t partition,
											bool has, int64_t offset);
extern sr_sm_result sr_sm_set_group_offset(sr_state_manager *sm,
										   const char *topic, int32_t partition,
										   int group, int64_t offset);
extern sr_sm_result sr_sm_validate_local_message(sr_state_manager *sm,
												 const char *topic,
												 int32_t partition,
												 int64_t offset);
extern sr_snapshot sr_sm_get(sr_state_manager *sm, const char *topic,
							 int32_t partition);
extern void sr_sm_forget(sr_state_manager *sm, const char *topic,
						 int32_t partition);

#endif							/* SR_STATE_H */
