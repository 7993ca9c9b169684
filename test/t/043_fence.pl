# 043_fence.pl - the local-offset fence.  Every batch's update of a
# partition's local offset is fenced on the value the worker last read or
# wrote (store.c): if anyone else moved it, the batch is refused whole, and
# the worker starts again from the table.
#   1. An operator moves a partition's local offset forward under a running
#      worker (to skip offsets 10..14): the worker's batch of 10..19 is
#      refused, nothing of it is enqueued, the worker restarts and relays
#      15..19.
#   2. Another owner of the partition (what a second worker that believes
#      it owns it does: jobs and the offset past them, in one transaction)
#      enqueues 20..24 while the worker holds 20..29 in its batch: the
#      worker's commit is refused, it restarts and relays 25..29.  Every
#      offset is enqueued once.
#
# brokers: mock real
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SentryRelay::Kafka;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here'
  unless SentryRelay::Kafka->available;
my $kafka = SentryRelay::Kafka->new(brokers => 1);
$kafka->create_events_topic('fe-events', 1);
$kafka->create_commit_log_topic('fe-clog');
my $node = relay_node('fence', $kafka);
create_errors_stream($node, name => 'fe', topic => 'fe-events', commit_log => 'fe-clog',
	consumer_group => 'cg-fe');

my $part = q{SELECT local_offset || ' ' || remote_offset || ' ' || state FROM sentry_relay.partitions
  WHERE stream = 'fe' AND partition = 0};
my $worker = q{SELECT pid || ' ' || restarts || ' ' || status FROM sentry_relay.workers WHERE stream = 'fe'};

sub writer
{
	commit_log($kafka, 'fe-events', 0, 'snuba-consumers', $_[0], commit_log_topic => 'fe-clog');
}

produce_events($kafka, 'fe-events', 0, 30);
writer(10);
is(wait_for_value($node, $part, '10 10 SYNCHRONIZED'), '10 10 SYNCHRONIZED', 'synchronized at 10');
is(job_offsets($node, 'fe'), join(',', 0 .. 9), 'jobs 0..9');
my ($pid, $restarts) = split / /, $node->safe_psql('postgres', $worker);
is($restarts, '0', "the worker runs (pid $pid), never restarted");

# ---- 1. an operator moves the local offset under the running worker

my $log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	q{UPDATE sentry_relay.partition_state SET local_offset = 15 WHERE stream = 'fe' AND partition = 0});
writer(20);
ok($node->wait_for_log(qr/partition 0 of stream "fe" was moved by another worker or an operator/, $log_offset),
	'operator: the worker\'s batch is refused, and the log says why');
is(wait_for_value($node, $part, '20 20 SYNCHRONIZED'), '20 20 SYNCHRONIZED',
	'operator: the worker recovers, synchronized at 20');
is(job_offsets($node, 'fe'), join(',', 0 .. 9, 15 .. 19),
	'operator: 10..14 skipped as the operator asked, 15..19 relayed once');
like($node->safe_psql('postgres', $worker), qr/^(\d+) 1 running$/, 'operator: the worker restarted once, and runs');
my ($pid2) = split / /, $node->safe_psql('postgres', $worker);
isnt($pid2, $pid, 'operator: a new worker process');

# ---- 2. another owner enqueues 20..24 and moves the offset, in one transaction

# the worker holds 20..29 once the writer reaches 30; first the other owner
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{
BEGIN;
INSERT INTO sentry_relay.jobs (stream, topic, partition, "offset", queue, eventstream_type, project_id,
    event_id, is_new, is_regression, is_new_group_environment, cache_key)
  SELECT 'fe', 'fe-events', 0, o, 'post_process_errors', 'error', 1, lpad(to_hex(o), 32, '0'),
         true, false, false, 'e:' || lpad(to_hex(o), 32, '0') || ':1'
    FROM generate_series(20, 24) o;
UPDATE sentry_relay.partition_state SET local_offset = 25, worker_pid = 0 WHERE stream = 'fe' AND partition = 0;
COMMIT;});
writer(30);
ok($node->wait_for_log(qr/partition 0 of stream "fe" was moved by another worker or an operator/, $log_offset),
	'other owner: the stale commit is refused');
is(wait_for_value($node, $part, '30 30 SYNCHRONIZED'), '30 30 SYNCHRONIZED',
	'other owner: the worker recovers, synchronized at 30');
is(job_offsets($node, 'fe'), join(',', 0 .. 9, 15 .. 29), 'other owner: 20..29 once each');
is(exactly_once($node, 'fe'), '25 25', 'no offset has two jobs');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'fe' AND "offset" >= 25
  AND event_id <> lpad(to_hex("offset"), 32, '0')}), '0', 'other owner: the worker\'s jobs are the messages produced');
like($node->safe_psql('postgres', $worker), qr/^\d+ 2 running$/, 'other owner: the worker restarted once more, and runs');
is($node->safe_psql('postgres', q{SELECT worker_pid = (SELECT pid FROM sentry_relay.workers WHERE stream = 'fe')
  FROM sentry_relay.partition_state WHERE stream = 'fe' AND partition = 0}), 't',
	'the partition is the running worker\'s again');
unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no process crashed');

$node->stop;
$kafka->stop;
done_testing();
