/*
 * state.c - the synchronized partition state machine (see state.h).
 *
 * A port of Sentry's SynchronizedPartitionStateManager (state.py) with the
 * same states, transition table, callbacks and errors, plus per-group remote
 * offsets whose minimum gates consumption.
 */
#include <stdlib.h>
#include <string.h>

#include "state.h"

typedef struct sr_sm_entry
{
	char	   *topic;
	int32_t		partition;
	sr_partition p;
} sr_sm_entry;

struct sr_state_manager
{
	int			ngroups;
	sr_sm_change_fn change;
	sr_sm_notice_fn notice;
	void	   *arg;
	sr_sm_entry *entries;
	size_t		nentries;
	size_t		capacity;
};

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

const char *
sr_sm_result_name(sr_sm_result r)
{
	switch (r)
	{
		case SR_SM_OK:
			return "ok";
		case SR_SM_INVALID_TRANSITION:
			return "invalid state transition";
		case SR_SM_INVALID_STATE:
			return "invalid state";
		case SR_SM_NOT_READY:
			return "message not ready";
		case SR_SM_BAD_ARGUMENT:
			return "bad argument";
		case SR_SM_OUT_OF_MEMORY:
			return "out of memory";
	}
	return "invalid result";
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

sr_state_manager *
sr_sm_create(int ngroups, sr_sm_change_fn change, sr_sm_notice_fn notice,
			 void *arg)
{
	sr_state_manager *sm;

	if (ngroups < 0 || ngroups > SR_MAX_GROUPS)
		return NULL;
	sm = calloc(1, sizeof(*sm));
	if (sm == NULL)
		return NULL;
	sm->ngroups = ngroups;
	sm->change = change;
	sm->notice = notice;
	sm->arg = arg;
	return sm;
}

void
sr_sm_destroy(sr_state_manager *sm)
{
	if (sm == NULL)
		return;
	for (size_t i = 0; i < sm->nentries; i++)
		free(sm->entries[i].topic);
	free(sm->entries);
	free(sm);
}

static sr_sm_entry *
sr_sm_find(sr_state_manager *sm, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < sm->nentries; i++)
		if (sm->entries[i].partition == partition &&
			strcmp(sm->entries[i].topic, topic) == 0)
			return &sm->entries[i];
	return NULL;
}

/* Find or add an entry (Python's defaultdict); NULL when out of memory. */
static sr_sm_entry *
sr_sm_lookup(sr_state_manager *sm, const char *topic, int32_t partition)
{
	sr_sm_entry *e = sr_sm_find(sm, topic, partition);

	if (e != NULL)
		return e;
	if (sm->nentries == sm->capacity)
	{
		size_t		cap = sm->capacity ? sm->capacity * 2 : 16;
		sr_sm_entry *n = realloc(sm->entries, cap * sizeof(sr_sm_entry));

		if (n == NULL)
			return NULL;
		sm->entries = n;
		sm->capacity = cap;
	}
	e = &sm->entries[sm->nentries];
	e->topic = strdup(topic);
	if (e->topic == NULL)
		return NULL;
	e->partition = partition;
	sr_partition_init(&e->p, sm->ngroups);
	sm->nentries++;
	return e;
}

static void
sr_sm_notify(sr_state_manager *sm, sr_sm_notice kind, const char *topic,
			 int32_t partition, int64_t a, int64_t b)
{
	if (sm->notice != NULL)
		sm->notice(sm->arg, kind, topic, partition, a, b);
}

/* Shared tail of every update: notices, then the change callback. */
static sr_sm_result
sr_sm_finish(sr_state_manager *sm, sr_sm_entry *e, sr_sm_result r,
			 const sr_snapshot *prev, bool changed)
{
	const sr_snapshot *cur = &e->p.cur;

	if (r != SR_SM_OK)
		return r;
	if (prev->offsets.has_remote && cur->offsets.has_remote &&
		cur->offsets.remote < prev->offsets.remote)
		sr_sm_notify(sm, SR_NOTICE_REMOTE_BACKWARDS, e->topic, e->partition,
					 cur->offsets.remote, prev->offsets.remote);
	if (changed)
	{
		if (cur->state == SR_STATE_REMOTE_BEHIND)
			sr_sm_notify(sm, SR_NOTICE_REMOTE_BEHIND, e->topic, e->partition,
						 cur->offsets.local, cur->offsets.remote);
		if (sm->change != NULL)
			sm->change(sm->arg, e->topic, e->partition, prev, cur);
	}
	return SR_SM_OK;
}

sr_sm_result
sr_sm_set_local_offset(sr_state_manager *sm, const char *topic,
					   int32_t partition, bool has, int64_t offset)
{
	sr_sm_entry *e = sr_sm_lookup(sm, topic, partition);
	sr_snapshot prev;
	bool		changed;
	sr_sm_result r;

	if (e == NULL)
		return SR_SM_OUT_OF_MEMORY;
	r = sr_partition_set_local(&e->p, has, offset, &prev, &changed);
	if (r == SR_SM_OK && has && prev.offsets.has_local &&
		offset < prev.offsets.local)
		sr_sm_notify(sm, SR_NOTICE_LOCAL_BACKWARDS, topic, partition, offset,
					 prev.offsets.local);
	return sr_sm_finish(sm, e, r, &prev, changed);
}

/* A remote offset: set directly (group < 0) or for one followed group. */
static sr_sm_result
sr_sm_set_remote(sr_state_manager *sm, const char *topic, int32_t partition,
				 int group, bool has, int64_t offset)
{
	sr_sm_entry *e = sr_sm_lookup(sm, topic, partition);
	sr_snapshot prev;
	bool		changed;
	sr_sm_result r;

	if (e == NULL)
		return SR_SM_OUT_OF_MEMORY;
	if (group < 0)
		r = sr_partition_set_remote(&e->p, has, offset, &prev, &changed);
	else
		r = sr_partition_set_group(&e->p, group, offset, &prev, &changed);
	return sr_sm_finish(sm, e, r, &prev, changed);
}

sr_sm_result
sr_sm_set_remote_offset(sr_state_manager *sm, const char *topic,
						int32_t partition, bool has, int64_t offset)
{
	return sr_sm_set_remote(sm, topic, partition, -1, has, offset);
}

sr_sm_result
sr_sm_set_group_offset(sr_state_manager *sm, const char *topic,
					   int32_t partition, int group, int64_t offset)
{
	if (group < 0)
		return SR_SM_BAD_ARGUMENT;
	return sr_sm_set_remote(sm, topic, partition, group, true, offset);
}

sr_sm_result
sr_sm_validate_local_message(sr_state_manager *sm, const char *topic,
							 int32_t partition, int64_t offset)
{
	sr_sm_entry *e = sr_sm_find(sm, topic, partition);
	bool		before_local;
	sr_sm_result r;

	if (e == NULL)
		return SR_SM_INVALID_STATE;
	r = sr_partition_validate(&e->p, offset, &before_local);
	if (r == SR_SM_OK && before_local)
		sr_sm_notify(sm, SR_NOTICE_MESSAGE_BEFORE_LOCAL, topic, partition,
					 offset, e->p.cur.offsets.local);
	return r;
}

sr_snapshot
sr_sm_get(sr_state_manager *sm, const char *topic, int32_t partition)
{
	sr_sm_entry *e = sr_sm_find(sm, topic, partition);
	sr_snapshot none;

	if (e != NULL)
		return e->p.cur;
	memset(&none, 0, sizeof(none));
	return none;
}

void
sr_sm_forget(sr_state_manager *sm, const char *topic, int32_t partition)
{
	sr_sm_entry *e = sr_sm_find(sm, topic, partition);

	if (e == NULL)
		return;
	free(e->topic);
	*e = sm->entries[--sm->nentries];
}
