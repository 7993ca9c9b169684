/*
 * test_state.c - unit tests of the partition state machine, through the API
 * the relay worker uses: one sr_partition per Kafka partition, updated with
 * sr_partition_set_local/_remote/_group and asked with
 * sr_partition_validate.
 *
 * Walks every step of Sentry's test_state.py (test_transitions), checking
 * each state change that Sentry's callback would report (the previous and
 * the new snapshot an update returns) and each expected error, then tests
 * the followed-groups extension (the gate is the minimum over groups) and
 * the events the worker logs: offsets that move backwards, entering
 * REMOTE_BEHIND, and a message before the local offset.
 */
#include <string.h>

#include "state.h"
#include "tap.h"

/* The last state change seen: what Sentry's callback would be passed. */
typedef struct call
{
	const char *name;
	sr_snapshot prev;
	sr_snapshot cur;
} call;

static call last;
static int	ncalls = 0;

/* The outcome of the last update, as the worker reads it. */
static sr_snapshot last_prev;

/* Record a state change, as the worker does when *changed is set. */
static sr_sm_result
note(const char *name, const sr_partition *p, sr_sm_result r,
	 const sr_snapshot *prev, bool changed)
{
	last_prev = *prev;
	if (r == SR_SM_OK && changed)
	{
		last.name = name;
		last.prev = *prev;
		last.cur = p->cur;
		ncalls++;
	}
	return r;
}

static sr_sm_result
set_local(const char *name, sr_partition *p, bool has, int64_t offset)
{
	sr_snapshot prev;
	bool		changed;
	sr_sm_result r = sr_partition_set_local(p, has, offset, &prev, &changed);

	return note(name, p, r, &prev, changed);
}

static sr_sm_result
set_remote(const char *name, sr_partition *p, bool has, int64_t offset)
{
	sr_snapshot prev;
	bool		changed;
	sr_sm_result r = sr_partition_set_remote(p, has, offset, &prev, &changed);

	return note(name, p, r, &prev, changed);
}

static sr_sm_result
set_group(const char *name, sr_partition *p, int group, int64_t offset)
{
	sr_snapshot prev;
	bool		changed;
	sr_sm_result r = sr_partition_set_group(p, group, offset, &prev, &changed);

	return note(name, p, r, &prev, changed);
}

/* Offsets(local, remote) where -1 stands for Python's None. */
static bool
offsets_eq(const sr_offsets *o, int64_t local, int64_t remote)
{
	if ((local < 0) != !o->has_local || (remote < 0) != !o->has_remote)
		return false;
	return (local < 0 || o->local == local) && (remote < 0 || o->remote == remote);
}

/* The last change was (name, (from, Offsets(l0,r0)), (to, Offsets(l1,r1))). */
static bool
last_call_is(const char *name, sr_pstate from, int64_t l0, int64_t r0,
			 sr_pstate to, int64_t l1, int64_t r1)
{
	if (ncalls == 0)
		return false;
	return strcmp(last.name, name) == 0 &&
		last.prev.state == from && offsets_eq(&last.prev.offsets, l0, r0) &&
		last.cur.state == to && offsets_eq(&last.cur.offsets, l1, r1);
}

static bool
is_valid(const sr_partition *p, int64_t offset, sr_sm_result want)
{
	bool		before;

	return sr_partition_validate(p, offset, &before) == want;
}

static void
test_transitions(void)
{
	sr_partition p0,
				p1;
	int			before;

	ncalls = 0;
	sr_partition_init(&p0, 0);
	sr_partition_init(&p1, 0);
	ok(p0.cur.state == SR_STATE_NONE && offsets_eq(&p0.cur.offsets, -1, -1),
	   "a new partition is (None, (None,None))");

	ok(is_valid(&p0, 0, SR_SM_INVALID_STATE),
	   "validate before any offset: InvalidState");

	ok(set_local("p0", &p0, true, 1) == SR_SM_OK, "set local 1");
	ok(last_call_is("p0", SR_STATE_NONE, -1, -1, SR_STATE_UNKNOWN, 1, -1),
	   "change (None, (None,None)) -> (UNKNOWN, (1,None))");

	ok(is_valid(&p0, 0, SR_SM_INVALID_STATE), "validate in UNKNOWN: InvalidState");

	ok(set_remote("p0", &p0, true, 1) == SR_SM_OK, "set remote 1");
	ok(last_call_is("p0", SR_STATE_UNKNOWN, 1, -1, SR_STATE_SYNCHRONIZED, 1, 1),
	   "change (UNKNOWN, (1,None)) -> (SYNCHRONIZED, (1,1))");

	before = ncalls;
	ok(set_local("p0", &p0, false, 0) == SR_SM_INVALID_TRANSITION,
	   "set local None from SYNCHRONIZED: InvalidStateTransition");
	ok(set_remote("p0", &p0, false, 0) == SR_SM_INVALID_TRANSITION,
	   "set remote None from SYNCHRONIZED: InvalidStateTransition");
	ok(ncalls == before, "no change for refused transitions");
	ok(p0.cur.state == SR_STATE_SYNCHRONIZED && offsets_eq(&p0.cur.offsets, 1, 1),
	   "refused transitions leave state and offsets unchanged");

	ok(set_remote("p0", &p0, true, 2) == SR_SM_OK, "set remote 2");
	ok(last_call_is("p0", SR_STATE_SYNCHRONIZED, 1, 1, SR_STATE_LOCAL_BEHIND, 1, 2),
	   "change (SYNCHRONIZED, (1,1)) -> (LOCAL_BEHIND, (1,2))");

	ok(is_valid(&p0, 1, SR_SM_OK), "message at offset 1 is valid");
	ok(is_valid(&p0, 2, SR_SM_NOT_READY), "message at offset 2: MessageNotReady");

	ok(set_local("p0", &p0, true, 2) == SR_SM_OK, "set local 2");
	ok(last_call_is("p0", SR_STATE_LOCAL_BEHIND, 1, 2, SR_STATE_SYNCHRONIZED, 2, 2),
	   "change (LOCAL_BEHIND, (1,2)) -> (SYNCHRONIZED, (2,2))");

	ok(set_remote("p1", &p1, true, 5) == SR_SM_OK, "partition 1: set remote 5");
	ok(last_call_is("p1", SR_STATE_NONE, -1, -1, SR_STATE_UNKNOWN, -1, 5),
	   "change (None, (None,None)) -> (UNKNOWN, (None,5))");
	ok(p0.cur.state == SR_STATE_SYNCHRONIZED && offsets_eq(&p0.cur.offsets, 2, 2),
	   "partition 0 is unchanged by partition 1");

	ok(set_local("p1", &p1, true, 0) == SR_SM_OK, "partition 1: set local 0");
	ok(last_call_is("p1", SR_STATE_UNKNOWN, -1, 5, SR_STATE_LOCAL_BEHIND, 0, 5),
	   "change (UNKNOWN, (None,5)) -> (LOCAL_BEHIND, (0,5))");

	before = ncalls;
	ok(set_local("p1", &p1, true, 1) == SR_SM_OK &&
	   set_local("p1", &p1, true, 2) == SR_SM_OK &&
	   set_local("p1", &p1, true, 3) == SR_SM_OK &&
	   set_local("p1", &p1, true, 4) == SR_SM_OK,
	   "set local 1..4");
	ok(ncalls == before, "no change while the state does not change");
	ok(offsets_eq(&p1.cur.offsets, 4, 5), "but the offsets move: (4,5)");

	ok(set_local("p1", &p1, true, 5) == SR_SM_OK, "set local 5");
	ok(last_call_is("p1", SR_STATE_LOCAL_BEHIND, 4, 5, SR_STATE_SYNCHRONIZED, 5, 5),
	   "change (LOCAL_BEHIND, (4,5)) -> (SYNCHRONIZED, (5,5))");

	ok(set_local("p1", &p1, true, 6) == SR_SM_OK, "set local 6");
	ok(last_call_is("p1", SR_STATE_SYNCHRONIZED, 5, 5, SR_STATE_REMOTE_BEHIND, 6, 5),
	   "change (SYNCHRONIZED, (5,5)) -> (REMOTE_BEHIND, (6,5))");
	ok(p1.cur.offsets.local == 6 && p1.cur.offsets.remote == 5,
	   "entering REMOTE_BEHIND reports local 6 over remote 5");
}

static void
test_transition_table(void)
{
	/* the table of state.py, including staying put */
	ok(sr_transition_allowed(SR_STATE_NONE, SR_STATE_UNKNOWN), "None -> UNKNOWN");
	ok(!sr_transition_allowed(SR_STATE_NONE, SR_STATE_LOCAL_BEHIND), "None -/-> LOCAL_BEHIND");
	ok(!sr_transition_allowed(SR_STATE_LOCAL_BEHIND, SR_STATE_UNKNOWN), "LOCAL_BEHIND -/-> UNKNOWN");
	ok(!sr_transition_allowed(SR_STATE_SYNCHRONIZED, SR_STATE_UNKNOWN), "SYNCHRONIZED -/-> UNKNOWN");
	ok(!sr_transition_allowed(SR_STATE_REMOTE_BEHIND, SR_STATE_UNKNOWN), "REMOTE_BEHIND -/-> UNKNOWN");
	ok(sr_transition_allowed(SR_STATE_REMOTE_BEHIND, SR_STATE_LOCAL_BEHIND), "REMOTE_BEHIND -> LOCAL_BEHIND");
	ok(sr_transition_allowed(SR_STATE_REMOTE_BEHIND, SR_STATE_SYNCHRONIZED), "REMOTE_BEHIND -> SYNCHRONIZED");
	ok(sr_transition_allowed(SR_STATE_UNKNOWN, SR_STATE_REMOTE_BEHIND), "UNKNOWN -> REMOTE_BEHIND");
	ok(sr_transition_allowed(SR_STATE_UNKNOWN, SR_STATE_UNKNOWN), "UNKNOWN stays UNKNOWN");
	ok(strcmp(sr_pstate_name(SR_STATE_LOCAL_BEHIND), "LOCAL_BEHIND") == 0, "state names");
}

static void
test_groups(void)
{
	sr_partition s,
				big,
				other;
	bool		before;

	ncalls = 0;
	sr_partition_init(&big, SR_MAX_GROUPS + 1);
	ok(big.ngroups == SR_MAX_GROUPS &&
	   set_group("big", &big, SR_MAX_GROUPS, 1) == SR_SM_BAD_ARGUMENT,
	   "more groups than SR_MAX_GROUPS are cut to SR_MAX_GROUPS");

	sr_partition_init(&s, 2);
	ok(set_local("events", &s, true, 10) == SR_SM_OK, "groups: local 10");
	ok(set_group("events", &s, 0, 50) == SR_SM_OK, "group 0 at 50");
	ok(s.cur.state == SR_STATE_UNKNOWN,
	   "one of two groups known: remote unknown, so UNKNOWN (wait)");
	ok(is_valid(&s, 10, SR_SM_INVALID_STATE),
	   "no message is valid while a group is unknown");
	ok(set_group("events", &s, 1, 20) == SR_SM_OK, "group 1 at 20");
	ok(last_call_is("events", SR_STATE_UNKNOWN, 10, -1, SR_STATE_LOCAL_BEHIND, 10, 20),
	   "remote is the minimum (20) over groups: LOCAL_BEHIND");
	ok(is_valid(&s, 19, SR_SM_OK), "offset 19 < min: valid");
	ok(is_valid(&s, 20, SR_SM_NOT_READY),
	   "offset 20 = min: not ready, although group 0 is at 50");
	ok(set_group("events", &s, 0, 60) == SR_SM_OK && s.cur.offsets.remote == 20,
	   "advancing the leading group leaves the gate at the slower group");
	ok(set_group("events", &s, 1, 70) == SR_SM_OK && s.cur.offsets.remote == 60,
	   "when the slow group passes, the gate moves to the other group");
	ok(set_local("events", &s, true, 60) == SR_SM_OK &&
	   s.cur.state == SR_STATE_SYNCHRONIZED, "catch up: SYNCHRONIZED");

	/* remote moving backwards: seen in the update, and we end up REMOTE_BEHIND */
	ok(set_group("events", &s, 0, 55) == SR_SM_OK, "group 0 moves back to 55");
	ok(last_prev.offsets.has_remote && last_prev.offsets.remote == 60 &&
	   s.cur.offsets.remote == 55,
	   "a backwards remote offset shows in the update (60 before, 55 now)");
	ok(s.cur.state == SR_STATE_REMOTE_BEHIND && s.cur.offsets.remote == 55,
	   "REMOTE_BEHIND (60 > 55)");
	ok(last_call_is("events", SR_STATE_SYNCHRONIZED, 60, 60, SR_STATE_REMOTE_BEHIND, 60, 55),
	   "change (SYNCHRONIZED, (60,60)) -> (REMOTE_BEHIND, (60,55))");
	ok(is_valid(&s, 56, SR_SM_INVALID_STATE), "nothing is consumed while REMOTE_BEHIND");

	ok(set_group("events", &s, 2, 1) == SR_SM_BAD_ARGUMENT,
	   "group index out of range is refused");
	ok(set_group("events", &s, -1, 1) == SR_SM_BAD_ARGUMENT,
	   "negative group index is refused");
	ok(s.cur.state == SR_STATE_REMOTE_BEHIND && s.cur.offsets.remote == 55 &&
	   s.group[0] == 55 && s.group[1] == 70,
	   "refused group updates change nothing");

	/* local moving backwards (operator reset) */
	ok(set_local("events", &s, true, 40) == SR_SM_OK &&
	   last_prev.offsets.has_local && last_prev.offsets.local == 60 &&
	   s.cur.offsets.local == 40,
	   "a backwards local offset shows in the update (60 before, 40 now)");
	ok(s.cur.state == SR_STATE_LOCAL_BEHIND, "reset below remote: LOCAL_BEHIND");

	/* a message before the local offset is valid but flagged */
	ok(sr_partition_validate(&s, 30, &before) == SR_SM_OK && before,
	   "message before the local offset: valid, and flagged");
	ok(sr_partition_validate(&s, 40, &before) == SR_SM_OK && !before,
	   "message at the local offset: valid, not flagged");

	/* partitions are independent; re-initialising one (a new assignment) resets it */
	sr_partition_init(&other, 2);
	ok(other.cur.state == SR_STATE_NONE, "an unseen partition is NONE");
	sr_partition_init(&s, 2);
	ok(s.cur.state == SR_STATE_NONE && !s.has_group[0] && !s.has_group[1],
	   "a re-initialised partition is NONE again, with no group known");
}

static void
test_partition_core(void)
{
	sr_partition p;
	sr_snapshot prev;
	bool		changed,
				before;

	sr_partition_init(&p, 0);
	ok(sr_partition_set_remote(&p, true, 100, &prev, &changed) == SR_SM_OK && changed &&
	   p.cur.state == SR_STATE_UNKNOWN, "core: remote first gives UNKNOWN");
	ok(sr_partition_set_local(&p, true, 0, &prev, &changed) == SR_SM_OK && changed &&
	   p.cur.state == SR_STATE_LOCAL_BEHIND && prev.state == SR_STATE_UNKNOWN,
	   "core: then local 0 gives LOCAL_BEHIND, prev UNKNOWN");
	ok(sr_partition_validate(&p, 99, &before) == SR_SM_OK && !before, "core: 99 valid");
	ok(sr_partition_validate(&p, 100, &before) == SR_SM_NOT_READY, "core: 100 not ready");
	ok(sr_partition_set_group(&p, 0, 1, &prev, &changed) == SR_SM_BAD_ARGUMENT,
	   "core: no groups configured");
}

int
main(void)
{
	test_transitions();
	test_transition_table();
	test_groups();
	test_partition_core();
	return tap_done();
}
