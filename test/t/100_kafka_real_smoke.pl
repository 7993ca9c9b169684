# 100_kafka_real_smoke.pl - the real Apache Kafka broker (KRaft, one node,
# test/kafka/cluster.sh) works for the tests: Sentry's topics with Sentry's
# settings, produce and end offsets through the same helper as the mock, and
# the relay end to end: a stream on events gated by the commit log enqueues
# each job once, below the writer's committed offset, and commits its
# consumer group offsets in Kafka.  Skipped only when java is absent.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SentryRelay::KafkaReal;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here (test/setup-deps.sh installs it)'
  unless SentryRelay::KafkaReal::available();

my $kafka = SentryRelay::KafkaReal->new(nodes => 1);
is($kafka->kind, 'real', 'a real broker');
like($kafka->bootstrap, qr/^127\.0\.0\.1:\d+$/, 'one bootstrap address');
note(sprintf('the 1-node cluster started in %.1f s', $kafka->start_seconds));

# ---- Sentry's topics, with their settings
$kafka->create_events_topic('events', 2);
$kafka->create_commit_log_topic('snuba-commit-log');
is(join(' ', map { $kafka->topic_config('events', $_) }
	qw(compression.type message.timestamp.type max.message.bytes)),
	'lz4 LogAppendTime 25000000', 'events: LZ4, LogAppendTime, 25 MB messages');
is(join(' ', map { $kafka->topic_config('snuba-commit-log', $_) }
	qw(cleanup.policy compression.type)),
	'compact,delete lz4', 'commit log: compacted and deleted, LZ4');
eval { $kafka->create_topic('events', 2) };
like($@, qr/TOPIC_ALREADY_EXISTS/, 'creating a topic twice fails');
eval { $kafka->rtt(1, 10) };
like($@, qr/not supported on a real broker/, 'fault injection is mock-only');

# alter_topic keeps the other settings
$kafka->alter_topic('events', { 'retention.ms' => 7200000 });
is(join(' ', map { $kafka->topic_config('events', $_) } qw(retention.ms message.timestamp.type)),
	'7200000 LogAppendTime', 'alter_topic changes one setting and keeps the others');

$kafka->create_topic('scratch', 3);
$kafka->delete_topic('scratch');
eval { $kafka->end_offsets('scratch', 0) };
like($@, qr/UNKNOWN/, 'create_topic and delete_topic');

# ---- produce and end offsets
is($kafka->produce('events', 1, 'k0', event_message(seq => 100)), 0, 'produce: offset 0');
is($kafka->produce('events', 1, 'k1', event_message(seq => 101), event_headers(seq => 101)), 1,
	'produce with headers: offset 1');
is(join(' ', $kafka->end_offsets('events', 1)), '0 2', 'end offsets of partition 1');
my $t0 = time;
is(produce_events($kafka, 'events', 0, 10), 10, 'produce_file: 10 messages');
is(produce_events($kafka, 'events', 1, 3, first => 102), 3, 'produce_file: 3 more');
is(join(' ', $kafka->end_offsets('events', 0)), '0 10', 'end offsets of partition 0');
is(join(' ', $kafka->end_offsets('events', 1)), '0 5', 'end offsets of partition 1 after both');
my $t1 = time;

# ---- the relay end to end
my $node = relay_node('relay', $kafka);
create_errors_stream($node);
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE status = 'running'}),
	'one worker runs and has its assignment');
ok(wait_until($node, q{SELECT count(*) = 2 FROM sentry_relay.partitions WHERE state = 'UNKNOWN' AND worker_pid IS NOT NULL}),
	'both partitions are UNKNOWN while the writer has said nothing');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sentry_relay.jobs'), '0',
	'no job without a remote offset');

commit_log($kafka, 'events', 0, 'snuba-consumers', 5);
is(wait_for_value($node, 'SELECT count(*) FROM sentry_relay.jobs', '5'), '5',
	'five jobs after the writer committed offset 5');
is(job_offsets($node, 'errors', 0), '0,1,2,3,4', 'exactly offsets 0..4 of partition 0');

commit_log($kafka, 'events', 0, 'snuba-consumers', 10);
commit_log($kafka, 'events', 1, 'snuba-consumers', 5);
is(wait_for_value($node, 'SELECT count(*) FROM sentry_relay.jobs', '15'), '15', 'all 15 jobs');
is(exactly_once($node, 'errors'), '15 15', 'each message enqueued once');
is(wait_for_value($node, q{SELECT string_agg(local_offset || ' ' || remote_offset || ' ' || state, ', ' ORDER BY partition) FROM sentry_relay.partitions},
	'10 10 SYNCHRONIZED, 5 5 SYNCHRONIZED'), '10 10 SYNCHRONIZED, 5 5 SYNCHRONIZED',
	'both partitions SYNCHRONIZED at the writer\'s offsets');
is($node->safe_psql('postgres', q{SELECT stream, topic, queue, eventstream_type, project_id, group_id, cache_key FROM sentry_relay.jobs WHERE partition = 1 AND "offset" = 0}),
	'errors|events|post_process_errors|error|1|100|e:00000000000000000000000000000064:1', 'job columns');

# LogAppendTime: the broker's clock stamped the messages, while they were produced
my $ts = $node->safe_psql('postgres', qq{
SELECT count(*) FILTER (WHERE message_timestamp BETWEEN to_timestamp($t0 - 2) AND to_timestamp($t1 + 2))
  FROM sentry_relay.jobs WHERE partition = 0});
is($ts, '10', 'message timestamps are the broker\'s append times');

is($node->safe_psql('postgres', q{SELECT "offset" FROM sentry_relay.commit_log_positions WHERE stream = 'errors'}),
	'3', 'commit log position stored (3 entries read)');
is($node->safe_psql('postgres', q{SELECT partition || ':' || "offset" FROM sentry_relay.remote_offsets ORDER BY partition}),
	"0:10\n1:5", 'remote offsets stored');
is(wait_for_committed($kafka, 'post-process-forwarder', 'events', [ 0, 1 ], '0:10 1:5'), '0:10 1:5',
	'the worker committed its offsets to the Kafka consumer group');
is($node->safe_psql('postgres', q{SELECT messages, jobs, dead_letters FROM sentry_relay.workers}),
	'15|15|0', 'worker counters');

# ---- the broker restarts (TERM, start again): the relay carries on
$kafka->broker_down(1);
is($kafka->status->{1}, 'down', 'broker_down stops the JVM');
$kafka->broker_up(1);
is($kafka->status->{1}, 'up', 'broker_up starts it again');
produce_events($kafka, 'events', 0, 5, first => 10);
commit_log($kafka, 'events', 0, 'snuba-consumers', 15);
is(wait_for_value($node, 'SELECT count(*) FROM sentry_relay.jobs', '20'), '20',
	'after the broker restart the relay enqueues the next five jobs');
is(exactly_once($node, 'errors'), '20 20', 'still each message once');
is(job_offsets($node, 'errors', 0), join(',', 0 .. 14), 'partition 0: offsets 0..14');

$node->stop;
ok($kafka->stop, 'the helper and the cluster stop');
done_testing();
