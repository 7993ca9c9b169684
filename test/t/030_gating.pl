# 030_gating.pl - the gate over remote offsets: several followed writer
# groups (the minimum governs), a commit log that moves backwards, remote
# offsets set with sentry_relay.set_remote_offset instead of a commit log,
# and initial_offset_reset 'latest'.  One node; each case has its own
# stream, topics and consumer group.
#
# brokers: mock real
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SentryRelay::Kafka;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here'
  unless SentryRelay::Kafka->available;
my $kafka = SentryRelay::Kafka->new(brokers => 1);
$kafka->create_events_topic($_, 1) for qw(multi-events back-events manual-events late-events);
$kafka->create_commit_log_topic($_) for qw(multi-clog back-clog);

my $node = relay_node('gating', $kafka);

sub part
{
	my ($stream, $partition) = @_;
	return qq{SELECT coalesce(local_offset::text, '-') || ' ' || coalesce(remote_offset::text, '-')
	  || ' ' || state FROM sentry_relay.partitions WHERE stream = '$stream' AND partition = $partition};
}

sub worker_pid
{
	my ($stream) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT pid FROM sentry_relay.workers WHERE stream = '$stream' AND worker = 0});
}

################################################################
# 1. Two followed writer groups: the minimum of their offsets governs, and
#    the partition waits while only one of them has reported.
################################################################
create_errors_stream($node, name => 'multi', topic => 'multi-events',
	commit_log => 'multi-clog', groups => [ 'snuba-consumers', 'other-group' ],
	consumer_group => 'cg-multi');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'multi' AND status = 'running'}),
	'multi: worker running');
produce_events($kafka, 'multi-events', 0, 12);

# the worker has seen the messages (the first one fixes the local offset)
is(wait_for_value($node, part('multi', 0), '0 - UNKNOWN'), '0 - UNKNOWN',
	'multi: partition seen, UNKNOWN without any remote offset');

commit_log($kafka, 'multi-events', 0, 'snuba-consumers', 8, commit_log_topic => 'multi-clog');
is(wait_for_value($node,
	q{SELECT group_offsets::text FROM sentry_relay.partitions WHERE stream = 'multi' AND partition = 0},
	'{"snuba-consumers": 8}'), '{"snuba-consumers": 8}',
	'multi: the first group\'s offset is stored');
# a second commit-log round trip: once it is stored, the worker has long
# applied the first one
commit_log($kafka, 'other-events', 0, 'snuba-consumers', 99, commit_log_topic => 'multi-clog');
is(wait_for_value($node, q{SELECT "offset" FROM sentry_relay.commit_log_positions WHERE stream = 'multi'}, '2'),
	'2', 'multi: both commit-log entries read');
is($node->safe_psql('postgres', part('multi', 0)), '0 - UNKNOWN',
	'multi: still UNKNOWN with one of two groups reported');
is(job_offsets($node, 'multi'), '', 'multi: no job while only one group has reported');

commit_log($kafka, 'multi-events', 0, 'other-group', 5, commit_log_topic => 'multi-clog');
is(wait_for_value($node, part('multi', 0), '5 5 SYNCHRONIZED'), '5 5 SYNCHRONIZED',
	'multi: min(8, 5) = 5 governs');
is(job_offsets($node, 'multi'), '0,1,2,3,4', 'multi: exactly offsets 0..4');

commit_log($kafka, 'multi-events', 0, 'other-group', 11, commit_log_topic => 'multi-clog');
is(wait_for_value($node, part('multi', 0), '8 8 SYNCHRONIZED'), '8 8 SYNCHRONIZED',
	'multi: other-group at 11, snuba-consumers at 8: the gate is 8');
is(job_offsets($node, 'multi'), '0,1,2,3,4,5,6,7', 'multi: exactly offsets 0..7');
is($node->safe_psql('postgres',
	q{SELECT group_offsets::text FROM sentry_relay.partitions WHERE stream = 'multi' AND partition = 0}),
	'{"other-group": 11, "snuba-consumers": 8}', 'multi: both group offsets shown');

commit_log($kafka, 'multi-events', 0, 'snuba-consumers', 12, commit_log_topic => 'multi-clog');
is(wait_for_value($node, part('multi', 0), '11 11 SYNCHRONIZED'), '11 11 SYNCHRONIZED',
	'multi: snuba-consumers at 12, other-group at 11: the gate is 11');
is(job_offsets($node, 'multi'), join(',', 0 .. 10), 'multi: exactly offsets 0..10');
is(exactly_once($node, 'multi'), '11 11', 'multi: each offset once');
# a group that is not followed does not count
commit_log($kafka, 'multi-events', 0, 'unfollowed', 1, commit_log_topic => 'multi-clog');
commit_log($kafka, 'multi-events', 0, 'other-group', 12, commit_log_topic => 'multi-clog');
is(wait_for_value($node, part('multi', 0), '12 12 SYNCHRONIZED'), '12 12 SYNCHRONIZED',
	'multi: an unfollowed group is ignored');
is(exactly_once($node, 'multi'), '12 12', 'multi: all 12 jobs, each once');
$node->safe_psql('postgres', q{SELECT sentry_relay.stop_stream('multi')});

################################################################
# 2. The commit log moves backwards: nothing is redone, the partition is
#    REMOTE_BEHIND until the writer passes our local offset again.
################################################################
create_errors_stream($node, name => 'back', topic => 'back-events',
	commit_log => 'back-clog', consumer_group => 'cg-back');
produce_events($kafka, 'back-events', 0, 20);
commit_log($kafka, 'back-events', 0, 'snuba-consumers', 10, commit_log_topic => 'back-clog');
is(wait_for_value($node, part('back', 0), '10 10 SYNCHRONIZED'), '10 10 SYNCHRONIZED',
	'back: synchronized at 10');
is(job_offsets($node, 'back'), join(',', 0 .. 9), 'back: offsets 0..9');
my $back_pid = worker_pid('back');
my $log_offset = -s $node->logfile;

commit_log($kafka, 'back-events', 0, 'snuba-consumers', 6, commit_log_topic => 'back-clog');
is(wait_for_value($node, part('back', 0), '10 6 REMOTE_BEHIND'), '10 6 REMOTE_BEHIND',
	'back: local 10 > remote 6: REMOTE_BEHIND');
is(job_offsets($node, 'back'), join(',', 0 .. 9), 'back: offsets 0..9, nothing redone');
is(exactly_once($node, 'back'), '10 10', 'back: each job once');
ok( $node->wait_for_log(
		qr/worker 0 of stream "back": remote offset of partition 0 moved backwards from 10 to 6/,
		$log_offset),
	'back: the server log says the remote offset moved backwards');
ok($node->log_contains(qr/stream "back": partition 0 is ahead of the writer: local offset 10 exceeds remote offset 6/,
		$log_offset), 'back: the server log says the partition is ahead of the writer');

commit_log($kafka, 'back-events', 0, 'snuba-consumers', 15, commit_log_topic => 'back-clog');
is(wait_for_value($node, part('back', 0), '15 15 SYNCHRONIZED'), '15 15 SYNCHRONIZED',
	'back: remote 15: consumed up to 15');
is(job_offsets($node, 'back'), join(',', 0 .. 14), 'back: jobs resume from 10: offsets 0..14');
is(exactly_once($node, 'back'), '15 15', 'back: each job once');
is(worker_pid('back'), $back_pid, 'back: the same worker throughout');
$node->safe_psql('postgres', q{SELECT sentry_relay.stop_stream('back')});

################################################################
# 3. No commit log: remote offsets come from sentry_relay.set_remote_offset.
################################################################
create_errors_stream($node, name => 'manual', topic => 'manual-events',
	commit_log => undef, consumer_group => 'cg-manual');
produce_events($kafka, 'manual-events', 0, 10);
is(wait_for_value($node, part('manual', 0), '0 - UNKNOWN'), '0 - UNKNOWN',
	'manual: partition seen, UNKNOWN');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.workers WHERE stream = 'manual'}),
	'1', 'manual: one worker runs without a commit log');

$node->safe_psql('postgres', q{SELECT sentry_relay.set_remote_offset('manual', 0, 3)});
is(wait_for_value($node, part('manual', 0), '3 3 SYNCHRONIZED'), '3 3 SYNCHRONIZED',
	'manual: set_remote_offset 3 opens the gate to 3');
is(job_offsets($node, 'manual'), '0,1,2', 'manual: exactly offsets 0..2');
is($node->safe_psql('postgres',
	q{SELECT consumer_group || ' ' || "offset" || ' ' || source FROM sentry_relay.remote_offsets WHERE stream = 'manual'}),
	'snuba-consumers 3 sql', 'manual: remote offset stored with source sql');

# with the consumer group named explicitly
$node->safe_psql('postgres', q{SELECT sentry_relay.set_remote_offset('manual', 0, 10, 'snuba-consumers')});
is(wait_for_value($node, part('manual', 0), '10 10 SYNCHRONIZED'), '10 10 SYNCHRONIZED',
	'manual: set_remote_offset 10');
is(job_offsets($node, 'manual'), join(',', 0 .. 9), 'manual: exactly offsets 0..9');
is(exactly_once($node, 'manual'), '10 10', 'manual: each job once');

like(psql_error($node, q{SELECT sentry_relay.set_remote_offset('no_such_stream', 0, 3)}),
	qr/^42704 stream "no_such_stream" does not exist$/, 'set_remote_offset: unknown stream is 42704');
like(psql_error($node, q{SELECT sentry_relay.set_remote_offset('manual', 0, -1)}),
	qr/^22023 offset must be a non-negative integer, not -1$/, 'set_remote_offset: negative offset is 22023');
like(psql_error($node, q{SELECT sentry_relay.set_remote_offset('manual', -2, 3)}),
	qr/^22023 partition must be a non-negative integer/, 'set_remote_offset: negative partition is 22023');
like(psql_error($node, q{SELECT sentry_relay.set_remote_offset('manual', 0, 11, 'other-group')}),
	qr/^22023 stream "manual" does not follow writer group "other-group"$/,
	'set_remote_offset: a group that is not followed is 22023');
is($node->safe_psql('postgres',
	q{SELECT string_agg(consumer_group || ' ' || "offset", ',') FROM sentry_relay.remote_offsets WHERE stream = 'manual'}),
	'snuba-consumers 10', 'manual: failed calls changed nothing');
is($node->safe_psql('postgres', q{
DO $$
BEGIN
  PERFORM sentry_relay.set_remote_offset('manual', 0, -5);
EXCEPTION WHEN invalid_parameter_value THEN
  RAISE NOTICE 'caught';
END $$;
SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'manual'}), '10',
	'manual: the error can be caught by condition name; still 10 jobs');
$node->safe_psql('postgres', q{SELECT sentry_relay.stop_stream('manual')});

################################################################
# 9. initial_offset_reset 'latest': a new stream starts at the partition's
#    end; what was there before is never enqueued.
################################################################
produce_events($kafka, 'late-events', 0, 5);    # offsets 0..4, before the stream
create_errors_stream($node, name => 'late', topic => 'late-events',
	commit_log => undef, consumer_group => 'cg-late', reset => 'latest');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.partitions WHERE stream = 'late' AND worker_pid IS NOT NULL}),
	'late: partition assigned');

# librdkafka resolves 'latest' just after the assignment: produce one
# message at a time until the worker sees one (fixes its local offset)
my $first_seen;
my $next = 5;
my $deadline = time + 60;
while (!defined $first_seen && time < $deadline)
{
	produce_events($kafka, 'late-events', 0, 1, first => $next);
	$next++;
	my $until = time + 3;
	while (time < $until)
	{
		my $l = $node->safe_psql('postgres',
			q{SELECT local_offset FROM sentry_relay.partitions WHERE stream = 'late' AND partition = 0});
		if ($l ne '')
		{
			$first_seen = $l;
			last;
		}
		usleep(50_000);
	}
}
ok(defined $first_seen && $first_seen >= 5 && $first_seen < $next,
	"late: starts at a message produced after the assignment (offset @{[ $first_seen // 'none' ]}, produced 5.." . ($next - 1) . ")");
diag("late: the worker started at offset $first_seen; first produced after assignment: 5")
  if defined $first_seen && $first_seen != 5;
produce_events($kafka, 'late-events', 0, 3, first => $next);
$next += 3;
$node->safe_psql('postgres', "SELECT sentry_relay.set_remote_offset('late', 0, $next)");
is(wait_for_value($node, part('late', 0), "$next $next SYNCHRONIZED"), "$next $next SYNCHRONIZED",
	"late: synchronized at $next");
$first_seen //= 5;
is(job_offsets($node, 'late'), join(',', $first_seen .. $next - 1),
	"late: exactly offsets $first_seen.." . ($next - 1));
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'late' AND "offset" < 5}),
	'0', 'late: none of the 5 messages from before the stream');
is(exactly_once($node, 'late'), ($next - $first_seen) . ' ' . ($next - $first_seen), 'late: each job once');

$node->stop;
$kafka->stop;
done_testing();
