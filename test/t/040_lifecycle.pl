# 040_lifecycle.pl - a stream's workers across stop_stream/start_stream,
# a restart of PostgreSQL and a kill -9 of a worker, each in the middle of a
# stream: every message ends up in jobs (or dead_letters) exactly once.
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
$kafka->create_events_topic('ss-events', 1);
$kafka->create_commit_log_topic('ss-clog');
$kafka->create_events_topic('rs-events', 2);
$kafka->create_commit_log_topic('rs-clog');

# small batches: a stream of a few thousand messages takes many commits;
# the kill -9 test needs the postmaster to restart after a crash
my $node = relay_node('lifecycle', $kafka, 'sentry_relay.batch_size' => 50,
	restart_after_crash => 'on');

sub part
{
	my ($stream, $partition) = @_;
	return qq{SELECT coalesce(local_offset::text, '-') || ' ' || coalesce(remote_offset::text, '-')
	  || ' ' || state FROM sentry_relay.partitions WHERE stream = '$stream' AND partition = $partition};
}

################################################################
# 6. stop_stream / start_stream without a restart.
################################################################
create_errors_stream($node, name => 'ss', topic => 'ss-events', commit_log => 'ss-clog',
	consumer_group => 'cg-ss');
# a second stream over the same topics, never stopped: when it has seen a
# commit-log entry, a running 'ss' worker would have seen it too
create_errors_stream($node, name => 'ss-probe', topic => 'ss-events', commit_log => 'ss-clog',
	consumer_group => 'cg-ss-probe');
produce_events($kafka, 'ss-events', 0, 10);
commit_log($kafka, 'ss-events', 0, 'snuba-consumers', 5, commit_log_topic => 'ss-clog');
is(wait_for_value($node, part('ss', 0), '5 5 SYNCHRONIZED'), '5 5 SYNCHRONIZED', 'ss: synchronized at 5');
is(job_offsets($node, 'ss'), '0,1,2,3,4', 'ss: offsets 0..4');
my $ss_pid = $node->safe_psql('postgres', q{SELECT pid FROM sentry_relay.workers WHERE stream = 'ss'});
like($ss_pid, qr/^\d+$/, 'ss: worker pid known');
is($node->safe_psql('postgres', qq{SELECT backend_type FROM pg_stat_activity WHERE pid = $ss_pid}),
	'sentry_relay worker', 'ss: the worker is in pg_stat_activity');

my $t0 = time;
$node->safe_psql('postgres', q{SELECT sentry_relay.stop_stream('ss')});
ok(wait_until($node, q{SELECT count(*) = 0 FROM sentry_relay.workers WHERE stream = 'ss'}, 20),
	'ss: stop_stream: the worker leaves sentry_relay.workers');
ok(wait_until($node, qq{SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $ss_pid
	  OR (backend_type = 'sentry_relay worker' AND application_name = 'sentry_relay ss/0')}, 20),
	'ss: stop_stream: the worker leaves pg_stat_activity');
my $stop_secs = time - $t0;
ok($stop_secs < 15, sprintf('ss: stopped within seconds (%.1f s)', $stop_secs));
is($node->safe_psql('postgres', q{SELECT enabled FROM sentry_relay.streams WHERE name = 'ss'}), 'f',
	'ss: the stream is disabled');
# its worker may be between states (say, just assigned): wait for running
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'ss-probe' AND status = 'running'}, 30),
	'ss: the other stream still runs');

commit_log($kafka, 'ss-events', 0, 'snuba-consumers', 10, commit_log_topic => 'ss-clog');
is(wait_for_value($node, part('ss-probe', 0), '10 10 SYNCHRONIZED'), '10 10 SYNCHRONIZED',
	'ss: the commit log advanced to 10 (the other stream consumed up to it)');
is(job_offsets($node, 'ss'), '0,1,2,3,4', 'ss: stopped: no new job');
is($node->safe_psql('postgres', part('ss', 0)), '5 5 SYNCHRONIZED', 'ss: stopped: its partition did not move');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.workers WHERE stream = 'ss'}), '0',
	'ss: still no worker');

$node->safe_psql('postgres', q{SELECT sentry_relay.start_stream('ss')});
ok(wait_until($node, qq{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'ss' AND status = 'running' AND pid <> $ss_pid}, 30),
	'ss: start_stream: a new worker runs');
is(wait_for_value($node, part('ss', 0), '10 10 SYNCHRONIZED'), '10 10 SYNCHRONIZED', 'ss: caught up to 10');
is(job_offsets($node, 'ss'), join(',', 0 .. 9), 'ss: offsets 0..9');
is(exactly_once($node, 'ss'), '10 10', 'ss: each job once');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sentry_relay worker' AND application_name = 'sentry_relay ss/0'}),
	'1', 'ss: the worker is back in pg_stat_activity');
$node->safe_psql('postgres', q{SELECT sentry_relay.drop_stream('ss-probe')});
$node->safe_psql('postgres', q{SELECT sentry_relay.stop_stream('ss')});

################################################################
# 7a. A restart of PostgreSQL while a stream of 16000 messages is enqueued.
#     8000 messages per partition in batches of 50 (about 4 MB per
#     partition, within the mock's 5 MB), let through by the writer in
#     steps, so that the faults come while the relay drains and more is to
#     come.  Nothing slows the relay down: its tables are as the extension
#     makes them, and every batch takes the direct insert, as in production
#     (asserted at the end).
################################################################
my $per_part = 8000;
my $all = 2 * $per_part;
my $last = $per_part - 1;
create_errors_stream($node, name => 'rs', topic => 'rs-events', commit_log => 'rs-clog',
	consumer_group => 'cg-rs');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'rs' AND status = 'running'}),
	'rs: worker running');
produce_events($kafka, 'rs-events', $_, $per_part) for 0, 1;
ok(wait_until($node, q{SELECT count(*) = 2 FROM sentry_relay.partitions WHERE stream = 'rs' AND local_offset = 0 AND state = 'UNKNOWN'}),
	'rs: both partitions seen, waiting for the writer');
# the writer lets the messages through in steps (5000, 6500, then all per
# partition): the restart comes right after the second step, while the
# relay drains it and the last is still to come, whatever the machine's speed
sub writer_step
{
	my ($offset) = @_;
	commit_log($kafka, 'rs-events', $_, 'snuba-consumers', $offset, commit_log_topic => 'rs-clog') for 0, 1;
}
writer_step(5000);

my $seen = 0;
my $deadline = time + 60;
while (time < $deadline)
{
	$seen = $node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'rs'});
	last if $seen >= 500;
	usleep(10_000);
}
ok($seen >= 500, "rs: jobs are arriving ($seen so far)");
writer_step(6500);
diag("rs: restart with $seen of $all jobs enqueued");
$node->restart;
ok($seen < 2 * 6500, "rs: the restart came in the middle of the stream ($seen of the 13000 let through)");
writer_step($per_part);

is(wait_for_value_retry($node, q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'rs'}, 2 * $per_part),
	2 * $per_part, "rs: all $all jobs after the restart");
is($node->safe_psql('postgres', q{SELECT partition || ':' || count(*) || ':' || count(DISTINCT "offset") || ':' || min("offset") || '-' || max("offset")
  FROM sentry_relay.jobs WHERE stream = 'rs' GROUP BY partition ORDER BY partition}),
	"0:$per_part:$per_part:0-" . ($per_part - 1) . "\n1:$per_part:$per_part:0-" . ($per_part - 1),
	"rs: every offset 0..$last of both partitions exactly once");
is(exactly_once($node, 'rs'), "$all $all", 'rs: no duplicate');
is(wait_for_value($node, part('rs', 0) . ' UNION ALL ' . part('rs', 1),
	"$per_part $per_part SYNCHRONIZED\n$per_part $per_part SYNCHRONIZED"),
	"$per_part $per_part SYNCHRONIZED\n$per_part $per_part SYNCHRONIZED", 'rs: both partitions synchronized');

################################################################
# 7b. kill -9 of the worker in the middle of a batch: the postmaster
#     restarts every backend; nothing is lost or enqueued twice.
################################################################
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'rs' AND status = 'running'}),
	'rs: worker running after the restart');
my $rs_pid = $node->safe_psql('postgres', q{SELECT pid FROM sentry_relay.workers WHERE stream = 'rs'});
# as many more per partition, every 97th one undecodable
my @msgs;
for my $p (0, 1)
{
	for my $o ($per_part .. 2 * $per_part - 1)
	{
		push @msgs, [ 'rs-events', $p, "k$o",
			$o % 97 == 0 ? "not json $o" : event_message(seq => $o, project_id => 2) ];
	}
}
raw_produce_file($kafka, \@msgs);
my $bad = scalar grep { $_ % 97 == 0 } $per_part .. 2 * $per_part - 1;
writer_step($per_part + 5000);

$seen = 0;
$deadline = time + 60;
while (time < $deadline)
{
	$seen = $node->safe_psql('postgres', qq{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'rs' AND "offset" >= $per_part});
	last if $seen >= 500;
	usleep(10_000);
}
writer_step($per_part + 6500);
ok($seen >= 500 && $seen < 2 * 6500, "rs: the second stream is arriving ($seen so far of the 13000 let through)");
my $all2 = 2 * $all;
my $last2 = 2 * $per_part - 1;
my $log_offset = -s $node->logfile;
ok(kill('KILL', $rs_pid), "rs: kill -9 the worker ($rs_pid) with $seen new jobs enqueued");
writer_step(2 * $per_part);    # the writer goes on during the crash
ok($node->wait_for_log(qr/terminated by signal 9/, $log_offset), 'rs: the postmaster noticed the crash');
is(wait_for_value_retry($node, q{SELECT (SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'rs')
  + (SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = 'rs')}, $all2, 90),
	$all2, "rs: all $all2 messages are jobs or dead letters after the crash");
is($node->safe_psql('postgres', q{
WITH m AS (SELECT partition, "offset" FROM sentry_relay.jobs WHERE stream = 'rs'
           UNION ALL
           SELECT partition, "offset" FROM sentry_relay.dead_letters WHERE stream = 'rs')
SELECT partition || ':' || count(*) || ':' || count(DISTINCT "offset") || ':' || min("offset") || '-' || max("offset")
  FROM m GROUP BY partition ORDER BY partition}),
	"0:$all:$all:0-$last2\n1:$all:$all:0-$last2",
	"rs: every offset 0..$last2 of both partitions exactly once in jobs or dead letters");
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = 'rs'}),
	2 * $bad, "rs: the $bad bad messages per partition are dead letters");
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = 'rs' AND "offset" % 97 <> 0}),
	'0', 'rs: only the bad messages are dead letters');
ok(wait_until($node, qq{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'rs' AND status = 'running' AND pid <> $rs_pid}),
	'rs: a new worker runs after the crash');
is(wait_for_value($node, part('rs', 0) . ' UNION ALL ' . part('rs', 1),
	"$all $all SYNCHRONIZED\n$all $all SYNCHRONIZED"),
	"$all $all SYNCHRONIZED\n$all $all SYNCHRONIZED", "rs: both partitions synchronized at $all");

# and it still works: one more message per partition
produce_events($kafka, 'rs-events', $_, 1, first => $all) for 0, 1;
commit_log($kafka, 'rs-events', $_, 'snuba-consumers', $all + 1, commit_log_topic => 'rs-clog') for 0, 1;
is(wait_for_value($node, qq{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'rs' AND "offset" = $all}, '2'),
	'2', 'rs: the new worker enqueues new messages');
is(exactly_once($node, 'rs'), (2 * ($all + 1) - 2 * $bad) . ' ' . (2 * ($all + 1) - 2 * $bad), 'rs: each job once');
# the path that production runs: no batch of this worker went through COPY FROM
like($node->safe_psql('postgres', q{SELECT direct_inserts || ' ' || copy_inserts FROM sentry_relay.workers WHERE stream = 'rs'}),
	qr/^[1-9]\d* 0$/, 'rs: every batch since the crash took the direct insert');
unlike(slurp_file($node->logfile), qr/through COPY FROM/, 'rs: no batch took COPY FROM, before or after the faults');

$node->stop;
$kafka->stop;
done_testing();
