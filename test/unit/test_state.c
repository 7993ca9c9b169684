/*
 * test_state.c - unit tests of the partition state machine.
 *
 * Walks every step of Sentry's test_state.py (test_transitions), checking
 * each expected callback and each expected error, then tests the followed-
 * groups extension (the gate is the minimum over groups) and the notices.
 */
#include <string.h>

#include "state.h"
#include "tap.h"

typedef struct call
{
	char		topic[32];
	int32_t		partition;
	sr_snapshot prev;
	sr_snapshot cur;
} call;

static call calls[64];
static int	ncalls = 0;
static int	notices[4];
static int64_t notice_a[4], notice_b[4];

static void
on_change(void *arg, const char *topic, int32_t partition,
		  const sr_snapshot *prev, const sr_snapshot *cur)
{
	(void) arg;
	if (ncalls < 64)
	{
		snprintf(calls[ncalls].topic, sizeof(calls[ncalls].topic), "%s", topic);
		calls[ncalls].partition = partition;
		calls[ncalls].prev = *prev;
		calls[ncalls].cur = *cur;
	}
	ncalls++;
}

static void
on_notice(void *arg, sr_sm_notice kind, const char *topic, int32_t partition,
		  int64_t a, int64_t b)
{
	(void) arg;
	(void) topic;
	(void) partition;
	notices[kind]++;
	notice_a[kind] = a;
	notice_b[kind] = b;
}

/* Offsets(local, remote) where -1 stands for Python's None. */
static bool
offsets_eq(const sr_offsets *o, int64_t local, int64_t remote)
{
	if ((local < 0) != !o->has_local || (remote < 0) != !o->has_remote)
		return false;
	return (local < 0 || o->local == local) && (remote < 0 || o->remote == remote);
}

/* The last callback was (topic, p, (from, Offsets(l0,r0)), (to, Offsets(l1,r1))). */
static bool
last_call_is(const char *topic, int32_t p, sr_pstate from, int64_t l0,
			 int64_t r0, sr_pstate to, int64_t l1, int64_t r1)
{
	const call *c;

	if (ncalls == 0)
		return false;
	c = &calls[ncalls - 1];
	return strcmp(c->topic, topic) == 0 && c->partition == p &&
		c->prev.state == from && offsets_eq(&c->prev.offsets, l0, r0) &&
		c->cur.state == to && offsets_eq(&c->cur.offsets, l1, r1);
}

static void
test_transitions(void)
{
	sr_state_manager *s = sr_sm_create(0, on_change, on_notice, NULL);
	sr_snapshot snap;
	int			before;

	ncalls = 0;
	ok(s != NULL, "manager created");

	ok(sr_sm_validate_local_message(s, "topic", 0, 0) == SR_SM_INVALID_STATE,
	   "validate before any offset: InvalidState");

	ok(sr_sm_set_local_offset(s, "topic", 0, true, 1) == SR_SM_OK, "set local 1");
	ok(last_call_is("topic", 0, SR_STATE_NONE, -1, -1, SR_STATE_UNKNOWN, 1, -1),
	   "callback (None, (None,None)) -> (UNKNOWN, (1,None))");

	ok(sr_sm_validate_local_message(s, "topic", 0, 0) == SR_SM_INVALID_STATE,
	   "validate in UNKNOWN: InvalidState");

	ok(sr_sm_set_remote_offset(s, "topic", 0, true, 1) == SR_SM_OK, "set remote 1");
	ok(last_call_is("topic", 0, SR_STATE_UNKNOWN, 1, -1, SR_STATE_SYNCHRONIZED, 1, 1),
	   "callback (UNKNOWN, (1,None)) -> (SYNCHRONIZED, (1,1))");

	before = ncalls;
	ok(sr_sm_set_local_offset(s, "topic", 0, false, 0) == SR_SM_INVALID_TRANSITION,
	   "set local None from SYNCHRONIZED: InvalidStateTransition");
	ok(sr_sm_set_remote_offset(s, "topic", 0, false, 0) == SR_SM_INVALID_TRANSITION,
	   "set remote None from SYNCHRONIZED: InvalidStateTransition");
	ok(ncalls == before, "no callback for refused transitions");
	snap = sr_sm_get(s, "topic", 0);
	ok(snap.state == SR_STATE_SYNCHRONIZED && offsets_eq(&snap.offsets, 1, 1),
	   "refused transitions leave state and offsets unchanged");

	ok(sr_sm_set_remote_offset(s, "topic", 0, true, 2) == SR_SM_OK, "set remote 2");
	ok(last_call_is("topic", 0, SR_STATE_SYNCHRONIZED, 1, 1, SR_STATE_LOCAL_BEHIND, 1, 2),
	   "callback (SYNCHRONIZED, (1,1)) -> (LOCAL_BEHIND, (1,2))");

	ok(sr_sm_validate_local_message(s, "topic", 0, 1) == SR_SM_OK,
	   "message at offset 1 is valid");
	ok(sr_sm_validate_local_message(s, "topic", 0, 2) == SR_SM_NOT_READY,
	   "message at offset 2: MessageNotReady");

	ok(sr_sm_set_local_offset(s, "topic", 0, true, 2) == SR_SM_OK, "set local 2");
	ok(last_call_is("topic", 0, SR_STATE_LOCAL_BEHIND, 1, 2, SR_STATE_SYNCHRONIZED, 2, 2),
	   "callback (LOCAL_BEHIND, (1,2)) -> (SYNCHRONIZED, (2,2))");

	ok(sr_sm_set_remote_offset(s, "topic", 1, true, 5) == SR_SM_OK, "partition 1: set remote 5");
	ok(last_call_is("topic", 1, SR_STATE_NONE, -1, -1, SR_STATE_UNKNOWN, -1, 5),
	   "callback (None, (None,None)) -> (UNKNOWN, (None,5))");

	ok(sr_sm_set_local_offset(s, "topic", 1, true, 0) == SR_SM_OK, "partition 1: set local 0");
	ok(last_call_is("topic", 1, SR_STATE_UNKNOWN, -1, 5, SR_STATE_LOCAL_BEHIND, 0, 5),
	   "callback (UNKNOWN, (None,5)) -> (LOCAL_BEHIND, (0,5))");

	before = ncalls;
	ok(sr_sm_set_local_offset(s, "topic", 1, true, 1) == SR_SM_OK &&
	   sr_sm_set_local_offset(s, "topic", 1, true, 2) == SR_SM_OK &&
	   sr_sm_set_local_offset(s, "topic", 1, true, 3) == SR_SM_OK &&
	   sr_sm_set_local_offset(s, "topic", 1, true, 4) == SR_SM_OK,
	   "set local 1..4");
	ok(ncalls == before, "no callback while the state does not change");

	ok(sr_sm_set_local_offset(s, "topic", 1, true, 5) == SR_SM_OK, "set local 5");
	ok(last_call_is("topic", 1, SR_STATE_LOCAL_BEHIND, 4, 5, SR_STATE_SYNCHRONIZED, 5, 5),
	   "callback (LOCAL_BEHIND, (4,5)) -> (SYNCHRONIZED, (5,5))");

	memset(notices, 0, sizeof(notices));
	ok(sr_sm_set_local_offset(s, "topic", 1, true, 6) == SR_SM_OK, "set local 6");
	ok(last_call_is("topic", 1, SR_STATE_SYNCHRONIZED, 5, 5, SR_STATE_REMOTE_BEHIND, 6, 5),
	   "callback (SYNCHRONIZED, (5,5)) -> (REMOTE_BEHIND, (6,5))");
	ok(notices[SR_NOTICE_REMOTE_BEHIND] == 1 &&
	   notice_a[SR_NOTICE_REMOTE_BEHIND] == 6 && notice_b[SR_NOTICE_REMOTE_BEHIND] == 5,
	   "entering REMOTE_BEHIND raises a notice (local 6 exceeds remote 5)");

	sr_sm_destroy(s);
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
	sr_state_manager *s = sr_sm_create(2, on_change, on_notice, NULL);

	ncalls = 0;
	memset(notices, 0, sizeof(notices));
	ok(sr_sm_create(SR_MAX_GROUPS + 1, NULL, NULL, NULL) == NULL, "too many groups refused");
	ok(sr_sm_set_local_offset(s, "events", 0, true, 10) == SR_SM_OK, "groups: local 10");
	ok(sr_sm_set_group_offset(s, "events", 0, 0, 50) == SR_SM_OK, "group 0 at 50");
	ok(sr_sm_get(s, "events", 0).state == SR_STATE_UNKNOWN,
	   "one of two groups known: remote unknown, so UNKNOWN (wait)");
	ok(sr_sm_validate_local_message(s, "events", 0, 10) == SR_SM_INVALID_STATE,
	   "no message is valid while a group is unknown");
	ok(sr_sm_set_group_offset(s, "events", 0, 1, 20) == SR_SM_OK, "group 1 at 20");
	ok(last_call_is("events", 0, SR_STATE_UNKNOWN, 10, -1, SR_STATE_LOCAL_BEHIND, 10, 20),
	   "remote is the minimum (20) over groups: LOCAL_BEHIND");
	ok(sr_sm_validate_local_message(s, "events", 0, 19) == SR_SM_OK, "offset 19 < min: valid");
	ok(sr_sm_validate_local_message(s, "events", 0, 20) == SR_SM_NOT_READY,
	   "offset 20 = min: not ready, although group 0 is at 50");
	ok(sr_sm_set_group_offset(s, "events", 0, 0, 60) == SR_SM_OK &&
	   sr_sm_get(s, "events", 0).offsets.remote == 20,
	   "advancing the leading group leaves the gate at the slower group");
	ok(sr_sm_set_group_offset(s, "events", 0, 1, 70) == SR_SM_OK &&
	   sr_sm_get(s, "events", 0).offsets.remote == 60,
	   "when the slow group passes, the gate moves to the other group");
	ok(sr_sm_set_local_offset(s, "events", 0, true, 60) == SR_SM_OK &&
	   sr_sm_get(s, "events", 0).state == SR_STATE_SYNCHRONIZED, "catch up: SYNCHRONIZED");

	/* remote moving backwards: logged, and we end up REMOTE_BEHIND */
	ok(sr_sm_set_group_offset(s, "events", 0, 0, 55) == SR_SM_OK, "group 0 moves back to 55");
	ok(notices[SR_NOTICE_REMOTE_BACKWARDS] == 1 &&
	   notice_a[SR_NOTICE_REMOTE_BACKWARDS] == 55 && notice_b[SR_NOTICE_REMOTE_BACKWARDS] == 60,
	   "a backwards remote offset raises a notice");
	ok(sr_sm_get(s, "events", 0).state == SR_STATE_REMOTE_BEHIND &&
	   sr_sm_get(s, "events", 0).offsets.remote == 55, "REMOTE_BEHIND (60 > 55)");
	ok(sr_sm_validate_local_message(s, "events", 0, 56) == SR_SM_INVALID_STATE,
	   "nothing is consumed while REMOTE_BEHIND");

	ok(sr_sm_set_group_offset(s, "events", 0, 2, 1) == SR_SM_BAD_ARGUMENT,
	   "group index out of range is refused");
	ok(sr_sm_set_group_offset(s, "events", 0, -1, 1) == SR_SM_BAD_ARGUMENT,
	   "negative group index is refused");

	/* local moving backwards (operator reset) */
	ok(sr_sm_set_local_offset(s, "events", 0, true, 40) == SR_SM_OK &&
	   notices[SR_NOTICE_LOCAL_BACKWARDS] == 1, "a backwards local offset raises a notice");
	ok(sr_sm_get(s, "events", 0).state == SR_STATE_LOCAL_BEHIND, "reset below remote: LOCAL_BEHIND");

	/* a message before the local offset is valid but noticed */
	ok(sr_sm_validate_local_message(s, "events", 0, 30) == SR_SM_OK &&
	   notices[SR_NOTICE_MESSAGE_BEFORE_LOCAL] == 1,
	   "message before the local offset: valid, with a notice");

	/* partitions and topics are independent; forget drops one */
	ok(sr_sm_get(s, "events", 1).state == SR_STATE_NONE, "unseen partition is NONE");
	ok(sr_sm_get(s, "other", 0).state == SR_STATE_NONE, "same partition of another topic is NONE");
	sr_sm_forget(s, "events", 0);
	ok(sr_sm_get(s, "events", 0).state == SR_STATE_NONE, "forgotten partition is NONE again");
	sr_sm_destroy(s);
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
