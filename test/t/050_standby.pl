# 050_standby.pl - no relay worker runs on a hot standby; after promotion the
# launcher starts the workers, which resume from the replicated offsets and
# enqueue nothing twice.  Also: a worker that is terminated is restarted.
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
$kafka->create_events_topic('sb-events', 1);
$kafka->create_commit_log_topic('snuba-commit-log');

my $primary = relay_node('primary', $kafka, 'wal_level' => 'replica', 'max_wal_senders' => '4');
create_errors_stream($primary, name => 'sb', topic => 'sb-events');
produce_events($kafka, 'sb-events', 0, 20);
commit_log($kafka, 'sb-events', 0, 'snuba-consumers', 10);
is(wait_for_value($primary, q{SELECT count(*) FROM sentry_relay.jobs}, '10'), '10',
	'primary relays offsets 0..9');

# a terminated worker comes back (the launcher restarts it)
my $pid = $primary->safe_psql('postgres', q{SELECT pid FROM sentry_relay.workers});
$primary->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok(wait_until($primary, qq{SELECT count(*) = 1 FROM sentry_relay.workers WHERE status = 'running' AND pid <> $pid}),
	'a terminated worker is restarted by the launcher');

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.jobs}), '10',
	'the standby has the jobs');
is($standby->safe_psql('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'sentry_relay%'}), '0',
	'no launcher and no worker run on the standby');

# the primary goes away; the standby takes over
$primary->stop('immediate');
$standby->promote;
ok(wait_until($standby, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE status = 'running'}),
	'after promotion the worker starts');
commit_log($kafka, 'sb-events', 0, 'snuba-consumers', 20);
is(wait_for_value($standby, q{SELECT count(*) FROM sentry_relay.jobs}, '20'), '20',
	'it resumes from the replicated offsets');
is($standby->safe_psql('postgres', q{SELECT count(DISTINCT "offset") || ' ' || min("offset") || ' ' || max("offset") FROM sentry_relay.jobs}),
	'20 0 19', 'offsets 0..19 exactly once');

$standby->stop;
$kafka->stop;
done_testing();
