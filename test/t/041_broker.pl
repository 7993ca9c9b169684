# 041_broker.pl - the Kafka broker goes down and comes back: the worker
# says it waits for the broker, does not crash, shows it is running again
# as soon as the broker is back (before any new message), and resumes by
# itself.
#
# brokers: mock real
#
# broker_down/broker_up: on the mock the broker stops answering at once; on
# a real broker its JVM stops (TERM, a controlled shutdown) and starts
# again.  A real broker also gets a third outage, a kill -9 of its JVM
# (mock: no process to kill, and its broker_down is abrupt already).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SentryRelay::Kafka;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here'
  unless SentryRelay::Kafka->available;
my $kafka = SentryRelay::Kafka->new(brokers => 1);
$kafka->create_events_topic('bd-events', 2);
$kafka->create_commit_log_topic('bd-clog');

my $node = relay_node('broker', $kafka);

sub part
{
	my ($partition) = @_;
	return qq{SELECT coalesce(local_offset::text, '-') || ' ' || coalesce(remote_offset::text, '-')
	  || ' ' || state FROM sentry_relay.partitions WHERE stream = 'bd' AND partition = $partition};
}

create_errors_stream($node, name => 'bd', topic => 'bd-events', commit_log => 'bd-clog',
	consumer_group => 'cg-bd');
produce_events($kafka, 'bd-events', $_, 5, first => 1000 * $_) for 0, 1;
commit_log($kafka, 'bd-events', $_, 'snuba-consumers', 5, commit_log_topic => 'bd-clog') for 0, 1;
is(wait_for_value($node, part(0) . ' UNION ALL ' . part(1), "5 5 SYNCHRONIZED\n5 5 SYNCHRONIZED"),
	"5 5 SYNCHRONIZED\n5 5 SYNCHRONIZED", 'both partitions synchronized at 5');
is(job_offsets($node, 'bd'), '0,1,2,3,4,0,1,2,3,4', 'offsets 0..4 of both partitions');
my ($pid, $restarts) = split /\|/, $node->safe_psql('postgres',
	q{SELECT pid, restarts FROM sentry_relay.workers WHERE stream = 'bd' AND status = 'running'});
like($pid, qr/^\d+$/, "worker running (pid $pid)");

# outage($what, $hold, $kill): take the broker down (kill -9 its JVM if
# $kill, real broker only), check that the worker says so and stays up for
# $hold seconds (past the group session timeout if long enough), then bring
# the broker back.
sub outage
{
	my ($what, $hold, $kill) = @_;
	my $log_offset = -s $node->logfile;
	my $t0 = time;
	if ($kill) { $kafka->kill_node(1) } else { $kafka->broker_down(1) }
	is(wait_for_value($node, q{SELECT status FROM sentry_relay.workers WHERE stream = 'bd'},
			'waiting for broker', 60),
		'waiting for broker', "$what: broker down: the workers view says 'waiting for broker'");
	my $err = $node->safe_psql('postgres', sprintf(
		q{SELECT last_error FROM sentry_relay.workers WHERE stream = 'bd' AND last_error_at >= to_timestamp(%f)}, $t0));
	diag(sprintf("$what: after %.1f s last_error '%s'", time - $t0, $err));
	like($err, qr/brokers are down|Connection refused|Disconnected|Connect to/,
		"$what: broker down: last_error tells why");
	ok($node->wait_for_log(qr/worker 0 of stream "bd": waiting for the Kafka broker/, $log_offset),
		"$what: broker down: the server log says the worker waits for the broker");
	ok(wait_until($node, sprintf(q{SELECT now() - to_timestamp(%f) > interval '%d s'
		  AND (SELECT pid = %d AND restarts = %d FROM sentry_relay.workers WHERE stream = 'bd')},
			$t0, $hold, $pid, $restarts), 60),
		"$what: broker down for $hold s: the same worker runs all along");
	is($node->safe_psql('postgres', qq{SELECT backend_type FROM pg_stat_activity WHERE pid = $pid}),
		'sentry_relay worker', "$what: broker down: the worker is still in pg_stat_activity");
	ok(!$node->log_contains(qr/terminated by signal|sentry_relay worker.*exited with exit code [1-9]/, $log_offset),
		"$what: broker down: no worker crashed or exited");
	$log_offset = -s $node->logfile;
	if ($kill) { $kafka->start_node(1) } else { $kafka->broker_up(1) }
	# nothing is produced yet: the worker sees the broker back by itself
	is(wait_for_value($node, q{SELECT status FROM sentry_relay.workers WHERE stream = 'bd'}, 'running', 60),
		'running', "$what: broker back: status running before any new message");
	ok($node->log_contains(qr/worker 0 of stream "bd": Kafka broker is reachable again/, $log_offset),
		"$what: broker back: the server log says so");
}

# expect_jobs($what, $upto): offsets 0..$upto-1 of both partitions, once
sub expect_jobs
{
	my ($what, $upto) = @_;
	my $sync = "$upto $upto SYNCHRONIZED\n$upto $upto SYNCHRONIZED";
	is(wait_for_value($node, part(0) . ' UNION ALL ' . part(1), $sync, 45),
		$sync, "$what: both partitions synchronized at $upto");
	is(job_offsets($node, 'bd'), join(',', 0 .. $upto - 1, 0 .. $upto - 1),
		"$what: offsets 0.." . ($upto - 1) . " of both partitions");
	is($node->safe_psql('postgres', q{SELECT string_agg(partition || ':' || event_id, ',' ORDER BY partition, "offset")
	  FROM sentry_relay.jobs WHERE stream = 'bd'}),
		join(',', (map { sprintf('0:%032x', $_) } 0 .. $upto - 1),
			(map { sprintf('1:%032x', 1000 + $_) } 0 .. $upto - 1)),
		"$what: the jobs are the messages produced");
	is(exactly_once($node, 'bd'), (2 * $upto) . ' ' . (2 * $upto), "$what: each job once");
	is(wait_for_value($node, q{SELECT status FROM sentry_relay.workers WHERE stream = 'bd'}, 'running'),
		'running', "$what: status back to running");
	is($node->safe_psql('postgres', q{SELECT pid || ' ' || restarts FROM sentry_relay.workers WHERE stream = 'bd'}),
		"$pid $restarts", "$what: the same worker, never restarted");
}

# a short outage, well within the group's session timeout
outage('short', 1);
is(job_offsets($node, 'bd'), '0,1,2,3,4,0,1,2,3,4', 'short: nothing new enqueued while down');
# only now can the helper produce again
produce_events($kafka, 'bd-events', $_, 5, first => 1000 * $_ + 5) for 0, 1;
commit_log($kafka, 'bd-events', $_, 'snuba-consumers', 10, commit_log_topic => 'bd-clog') for 0, 1;
expect_jobs('short', 10);

# a long outage: the group session (6 s) times out, the partitions are
# revoked and assigned again once the broker is back
outage('long', 8);
is(job_offsets($node, 'bd'), join(',', 0 .. 9, 0 .. 9), 'long: nothing new enqueued while down');
produce_events($kafka, 'bd-events', $_, 5, first => 1000 * $_ + 10) for 0, 1;
commit_log($kafka, 'bd-events', $_, 'snuba-consumers', 15, commit_log_topic => 'bd-clog') for 0, 1;
expect_jobs('long', 15);

if ($kafka->kind eq 'real')
{
	# the JVM is killed: no controlled shutdown, the log is recovered at
	# start, and the node registers again only once its old broker session
	# has expired
	outage('kill', 1, 1);
	is(job_offsets($node, 'bd'), join(',', 0 .. 14, 0 .. 14), 'kill: nothing new enqueued while down');
	produce_events($kafka, 'bd-events', $_, 5, first => 1000 * $_ + 15) for 0, 1;
	commit_log($kafka, 'bd-events', $_, 'snuba-consumers', 20, commit_log_topic => 'bd-clog') for 0, 1;
	expect_jobs('kill', 20);
}

$node->stop;
$kafka->stop;
done_testing();
