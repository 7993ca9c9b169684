# 037_commit_log_partitions.pl - a commit log with more partitions than a
# batch once had room for (64): the position of every commit-log partition
# read in a batch is stored in sentry_relay.commit_log_positions, and each
# entry's remote offset applies.  70 commit-log partitions, one entry on each,
# for 70 partitions of the events topic, all read in one batch or a few.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SentryRelay::KafkaMock;
use SentryRelay::Test;

my $n = 70;
my $kafka = SentryRelay::KafkaMock->new(brokers => 1);
$kafka->create_topic('wide-events', $n);
$kafka->create_topic('wide-clog', $n);

my $node = relay_node('wide', $kafka);
create_errors_stream($node, name => 'wide', topic => 'wide-events',
	commit_log => 'wide-clog', consumer_group => 'cg-wide');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'wide' AND status = 'running'}),
	'wide: worker running');

# one entry per commit-log partition i, for events partition i, offset i + 1
for my $i (0 .. $n - 1)
{
	my ($k, $v, $h) = SentryRelay::KafkaMock::commit_log_message('wide-events', $i,
		'snuba-consumers', $i + 1);
	$kafka->produce('wide-clog', $i, $k, $v, $h);
}

is(wait_for_value($node, q{SELECT count(*) || ' ' || bool_and("offset" = 1)
  FROM sentry_relay.commit_log_positions WHERE stream = 'wide'}, "$n true"), "$n true",
	"wide: the position of each of the $n commit-log partitions is stored (next offset 1)");
is(wait_for_value($node, q{SELECT count(*) FILTER (WHERE "offset" = partition + 1)
  FROM sentry_relay.remote_offsets WHERE stream = 'wide' AND consumer_group = 'snuba-consumers'}, $n), $n,
	"wide: each of the $n entries set its partition's remote offset");
is($node->safe_psql('postgres', q{SELECT min(partition) || ' ' || max(partition)
  FROM sentry_relay.commit_log_positions WHERE stream = 'wide'}), '0 ' . ($n - 1),
	'wide: positions of partitions 0 to 69');

$node->stop('fast');
$kafka->stop;
done_testing();
