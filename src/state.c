/*
 * state.c - the synchronized partition state machine (see state.h).
 *
 * A port of Sentry's SynchronizedPartitionStateManager (state.py) with the
 * same states, transition table and errors, plus per-group remote offsets
 * whose minimum gates consumption.  Sentry's manager keeps a dictionary of
 * partitions and calls back on each change; here the caller (the worker)
 * keeps one sr_partition per Kafka partition and acts on what each update
 * returns: the snapshot before it and whether the state moved.
 */
#include <string.h>

#include "state.h"

/* transitions[from] is the set of states reachable from "from" */
static const unsigned sr_transitions[] = {
	[SR_STATE_NONE] = 1u << SR_STATE_UNKNOWN,
	[SR_STATE_UNKNOWN] = (1u << SR_STATE_LOCAL_BEHIND) |
	(1u << SR_STATE_REMOTE_BEHIND) | (1u << SR_STATE_SYNCHRONIZED),
	[SR_STATE_LOCAL_BEHIND] = (1u << SR_STATE_SYNCHRONIZED) |
	(1u << SR_STATE_REMOTE_BEHIND),
	[SR_STATE_SYNCHRONIZED] = (1u << SR_STATE_LOCAL_BEHIND) |
	(1u << SR_STATE_REMOTE_BEHIND),
	[SR_STATE_REMOTE_BEHIND] = (1u << SR_STATE_LOCAL_BEHIND) |
	(1u << SR_STATE_SYNCHRONIZED),
};

sr_pstate
sr_state_from_offsets(const sr_offsets *o)
{
	if (!o->has_local || !o->has_remote)
		return SR_STATE_UNKNOWN;
	if (o->local < o->remote)
		return SR_STATE_LOCAL_BEHIND;
	if (o->remote < o->local)
		return SR_STATE_REMOTE_BEHIND;
	return SR_STATE_SYNCHRONIZED;
}

bool
sr_transition_allowed(sr_pstate from, sr_pstate to)
{
	if ((unsigned) from > SR_STATE_REMOTE_BEHIND ||
		(unsigned) to > SR_STATE_REMOTE_BEHIND)
		return false;
	return from == to || (sr_transitions[from] & (1u << to)) != 0;
}

const char *
sr_pstate_name(sr_pstate s)
{
	switch (s)
	{
		case SR_STATE_NONE:
			return "NONE";
		case SR_STATE_UNKNOWN:
			return "UNKNOWN";
		case SR_STATE_LOCAL_BEHIND:
			return "LOCAL_BEHIND";
		case SR_STATE_SYNCHRONIZED:
			return "SYNCHRONIZED";
		case SR_STATE_REMOTE_BEHIND:
			return "REMOTE_BEHIND";
	}
	return "INVALID";
}

void
sr_partition_init(sr_partition *p, int ngroups)
{
	memset(p, 0, sizeof(*p));
	p->ngroups = ngroups < 0 ? 0 : (ngroups > SR_MAX_GROUPS ? SR_MAX_GROUPS : ngroups);
}

/* Move to new offsets if the derived transition is allowed. */
static sr_sm_result
sr_partition_apply(sr_partition *p, const sr_offsets *next, sr_snapshot *prev,
				   bool *changed)
{
	sr_pstate	to = sr_state_from_offsets(next);

	*prev = p->cur;
	*changed = false;
	if (!sr_transition_allowed(p->cur.state, to))
		return SR_SM_INVALID_TRANSITION;
	*changed = to != p->cur.state;
	p->cur.state = to;
	p->cur.offsets = *next;
	return SR_SM_OK;
}

sr_sm_result
sr_partition_set_local(sr_partition *p, bool has, int64_t offset,
					   sr_snapshot *prev, bool *changed)
{
	sr_offsets	next = p->cur.offsets;

	next.has_local = has;
	next.local = has ? offset : 0;
	return sr_partition_apply(p, &next, prev, changed);
}

sr_sm_result
sr_partition_set_remote(sr_partition *p, bool has, int64_t offset,
						sr_snapshot *prev, bool *changed)
{
	sr_offsets	next = p->cur.offsets;

	next.has_remote = has;
	next.remote = has ? offset : 0;
	return sr_partition_apply(p, &next, prev, changed);
}

/*
 * Record one followed group's committed offset.  The partition's remote
 * offset becomes the minimum over all groups once every group has reported.
 */
sr_sm_result
sr_partition_set_group(sr_partition *p, int group, int64_t offset,
					   sr_snapshot *prev, bool *changed)
{
	bool		had = false;
	int64_t		old = 0;
	bool		all = true;
	int64_t		min = INT64_MAX;
	sr_sm_result r;

	if (group < 0 || group >= p->ngroups)
	{
		*prev = p->cur;
		*changed = false;
		return SR_SM_BAD_ARGUMENT;
	}
	had = p->has_group[group];
	old = p->group[group];
	p->has_group[group] = true;
	p->group[group] = offset;
	for (int g = 0; g < p->ngroups; g++)
	{
		if (!p->has_group[g])
			all = false;
		else if (p->group[g] < min)
			min = p->group[g];
	}
	r = sr_partition_set_remote(p, all, all ? min : 0, prev, changed);
	if (r != SR_SM_OK)
	{
		p->has_group[group] = had;
		p->group[group] = old;
	}
	return r;
}

sr_sm_result
sr_partition_validate(const sr_partition *p, int64_t offset, bool *before_local)
{
	*before_local = false;
	if (p->cur.state != SR_STATE_LOCAL_BEHIND)
		return SR_SM_INVALID_STATE;
	if (offset >= p->cur.offsets.remote)
		return SR_SM_NOT_READY;
	if (offset < p->cur.offsets.local)
		*before_local = true;
	return SR_SM_OK;
}
