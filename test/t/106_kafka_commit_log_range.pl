# brokers: real
# 106_kafka_commit_log_range.pl - the commit log's stored read position is
# out of the log's range when the relay starts again, and it resumes at
# once, without a replay of the commit log:
#   1. retention deleted entries before they were read (the stored position
#      is below the log's start): it resumes at the oldest entry left, and
#      reads what is left;
#   2. the topic was deleted and created again, shorter (the stored
#      position is past its end): it resumes at the end.  The entries
#      already in the new topic carry an old writer offset and a new one; a
#      replay from the start would have moved the remote offset back, then
#      forward: the relay reads neither, and moves on the next entry.
# The server log and the worker's last_error say what happened; no worker
# restarts, and every message becomes a job once.
# Apache Kafka only: librdkafka's mock cluster has no retention and no
# topic deletion.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SentryRelay::KafkaReal;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here (test/setup-deps.sh installs it)'
  unless SentryRelay::KafkaReal::available();

my $kafka = SentryRelay::KafkaReal->new(nodes => 1);
$kafka->create_events_topic('cr-events', 1);
$kafka->create_commit_log_topic('cr-clog');
my $node = relay_node('range', $kafka);
create_errors_stream($node, name => 'cr', topic => 'cr-events', commit_log => 'cr-clog',
	consumer_group => 'cg-cr');

my $part = q{SELECT local_offset || ' ' || remote_offset || ' ' || state FROM sentry_relay.partitions
  WHERE stream = 'cr' AND partition = 0};
my $position = q{SELECT "offset" FROM sentry_relay.commit_log_positions WHERE stream = 'cr' AND partition = 0};

sub writer
{
	my ($offset) = @_;
	commit_log($kafka, 'cr-events', 0, 'snuba-consumers', $offset, commit_log_topic => 'cr-clog');
}

sub clog_range { return join ' ', $kafka->end_offsets('cr-clog', 0) }

sub restart_stream
{
	$node->safe_psql('postgres', q{SELECT sentry_relay.start_stream('cr')});
	ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'cr' AND status = 'running'}, 60),
		'the worker runs again');
}

sub stop_stream
{
	$node->safe_psql('postgres', q{SELECT sentry_relay.stop_stream('cr')});
	ok(wait_until($node, q{SELECT count(*) = 0 FROM sentry_relay.workers WHERE stream = 'cr'}, 30),
		'the stream is stopped');
}

# ---- the relay follows five commit-log entries

produce_events($kafka, 'cr-events', 0, 40);
writer($_) for 4, 8, 12, 16, 20;
is(wait_for_value($node, $part, '20 20 SYNCHRONIZED'), '20 20 SYNCHRONIZED', 'synchronized at 20');
is(wait_for_value($node, $position, '5'), '5', 'the commit log is read up to its end, 5');
stop_stream();

# ---- 1. retention deletes entries 5 and 6 before they are read

writer($_) for 22, 24;
$kafka->alter_topic('cr-clog', { 'retention.ms' => 1000, 'segment.ms' => 100, 'segment.bytes' => 1048576 });
is(wait_for('retention to delete the commit log', \&clog_range, '7 7', 60), '7 7',
	'retention deleted every entry up to 7 (the stored position 5 is gone)');
$kafka->alter_topic('cr-clog', { 'retention.ms' => 86400000 });
writer($_) for 26, 28;    # entries 7 and 8 survive
is(clog_range(), '7 9', 'the commit log holds entries 7 and 8');

my $log_offset = -s $node->logfile;
restart_stream();
is(wait_for_value($node, $part, '28 28 SYNCHRONIZED'), '28 28 SYNCHRONIZED',
	'retention: the relay read the entries left, up to 28');
ok($node->wait_for_log(qr/worker 0 of stream "cr": commit log partition 0: offset 5 out of range \(the log holds 7 to 9\); resumed at 7, the oldest entry left: retention deleted entries before they were read/,
		$log_offset),
	'retention: the log says the position was out of range and where it resumed');
like($node->safe_psql('postgres', q{SELECT last_error FROM sentry_relay.workers WHERE stream = 'cr'}),
	qr/^commit log partition 0: offset 5 out of range/, 'retention: and so does last_error');
is(wait_for_value($node, $position, '9'), '9', 'retention: the new position is stored');
stop_stream();

# ---- 2. the topic is deleted and created again, shorter than the stored position

$kafka->delete_topic('cr-clog');
is(wait_for('the topic to be gone', sub { my $r = eval { clog_range() }; defined $r ? $r : 'gone' }, 'gone', 60),
	'gone', 'the commit log topic is deleted');
$kafka->create_commit_log_topic('cr-clog');
# what a replay would read: the writer's offset going back to 10, then 30
writer($_) for 10, 30;
is(clog_range(), '0 2', 'the new commit log holds two entries');

$log_offset = -s $node->logfile;
restart_stream();
ok($node->wait_for_log(qr/worker 0 of stream "cr": commit log partition 0: offset 9 out of range \(the log holds 0 to 2\); resumed at 2, its end: the topic was recreated or truncated, and its entries are not replayed/,
		$log_offset),
	'recreated: the log says the position was past the end, and that the relay resumed there');
is(wait_for_value($node, $position, '2'), '2', 'recreated: the position at the end is stored');
is($node->safe_psql('postgres', $part), '28 28 SYNCHRONIZED',
	'recreated: the entries in the new topic were not read: the remote offset did not move back to 10, nor to 30');
is($node->safe_psql('postgres', q{SELECT "offset" FROM sentry_relay.remote_offsets WHERE stream = 'cr' AND partition = 0}),
	'28', 'recreated: the stored remote offset is still 28');
writer(34);
is(wait_for_value($node, $part, '34 34 SYNCHRONIZED'), '34 34 SYNCHRONIZED',
	'recreated: the next entry moves the gate, at once');
is(exactly_once($node, 'cr'), '34 34', 'every message up to 34 became a job once');
is($node->safe_psql('postgres', q{SELECT string_agg("offset"::text, ',' ORDER BY "offset") FROM sentry_relay.jobs WHERE stream = 'cr'}),
	join(',', 0 .. 33), 'the jobs are offsets 0 to 33');
is($node->safe_psql('postgres', q{SELECT restarts FROM sentry_relay.workers WHERE stream = 'cr'}), '0',
	'no worker restarted');
unlike(slurp_file($node->logfile), qr/terminated by signal|sentry_relay worker.*exited with exit code [1-9]/,
	'no worker crashed or failed');

$node->stop;
$kafka->stop;
done_testing();
