# 010_relay_basic.pl - the relay end to end: a worker consumes the events
# topic in step with the writer's commit log and enqueues each job exactly
# once, only below the writer's committed offset.
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
$kafka->create_events_topic('events', 2);
$kafka->create_commit_log_topic('snuba-commit-log');

my $node = relay_node('relay', $kafka);
create_errors_stream($node);

ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE status = 'running'}),
	'one worker runs and has its assignment');
is($node->safe_psql('postgres',
	q{SELECT backend_type FROM pg_stat_activity WHERE backend_type LIKE 'sentry_relay%' ORDER BY 1}),
	"sentry_relay launcher\nsentry_relay worker", 'launcher and worker show in pg_stat_activity');

produce_events($kafka, 'events', 0, 10);
produce_events($kafka, 'events', 1, 4, first => 100);

# no remote offset yet: nothing may be enqueued
ok(wait_until($node, q{SELECT count(*) = 2 FROM sentry_relay.partitions WHERE state = 'UNKNOWN' AND worker_pid IS NOT NULL}),
	'both partitions are UNKNOWN while the writer has said nothing');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sentry_relay.jobs'), '0',
	'no job without a remote offset');

# the writer has stored offsets 0..4 of partition 0
commit_log($kafka, 'events', 0, 'snuba-consumers', 5);
is(wait_for_value($node, 'SELECT count(*) FROM sentry_relay.jobs', '5'), '5',
	'five jobs after the writer committed offset 5');
is($node->safe_psql('postgres', q{SELECT string_agg("offset"::text, ',' ORDER BY "offset") FROM sentry_relay.jobs}),
	'0,1,2,3,4', 'exactly offsets 0..4 of partition 0');
is(wait_for_value($node, q{SELECT local_offset || ' ' || remote_offset || ' ' || state FROM sentry_relay.partitions WHERE partition = 0},
	'5 5 SYNCHRONIZED'), '5 5 SYNCHRONIZED', 'partition 0 is SYNCHRONIZED at 5');

commit_log($kafka, 'events', 0, 'snuba-consumers', 10);
commit_log($kafka, 'events', 1, 'snuba-consumers', 4);
is(wait_for_value($node, 'SELECT count(*) FROM sentry_relay.jobs', '14'), '14', 'all 14 jobs');
is($node->safe_psql('postgres', q{SELECT count(DISTINCT (partition, "offset")) FROM sentry_relay.jobs}),
	'14', 'each message enqueued once');
my $job = $node->safe_psql('postgres', q{SELECT stream, topic, queue, eventstream_type, project_id, group_id, cache_key FROM sentry_relay.jobs WHERE partition = 1 AND "offset" = 0});
is($job, 'errors|events|post_process_errors|error|1|100|e:00000000000000000000000000000064:1', 'job columns');

# the writer lags behind what exists: more messages, no commit
produce_events($kafka, 'events', 0, 5, first => 10);
commit_log($kafka, 'events', 0, 'snuba-consumers', 12);
is(wait_for_value($node, 'SELECT count(*) FROM sentry_relay.jobs', '16'), '16', 'gate at 12: two more');
is(wait_for_value($node, q{SELECT local_offset || ' ' || state FROM sentry_relay.partitions WHERE partition = 0}, '12 SYNCHRONIZED'),
	'12 SYNCHRONIZED', 'local offset 12, waiting');
is($node->safe_psql('postgres', q{SELECT max("offset") FROM sentry_relay.jobs WHERE partition = 0}), '11',
	'no job at or past the gate');

# the commit log read position and remote offsets are stored
is($node->safe_psql('postgres', q{SELECT "offset" FROM sentry_relay.commit_log_positions WHERE stream = 'errors'}),
	'4', 'commit log position stored (4 entries read)');
is($node->safe_psql('postgres', q{SELECT partition || ':' || "offset" FROM sentry_relay.remote_offsets ORDER BY partition}),
	"0:12\n1:4", 'remote offsets stored');

# counters in the workers view
is($node->safe_psql('postgres', q{SELECT messages, jobs, dead_letters FROM sentry_relay.workers}),
	'16|16|0', 'worker counters');

$node->stop;
$kafka->stop;
done_testing();
