# 075_mutated_messages.pl - 10,000 random and mutated event messages (bit
# flips, truncations, splices, random bytes, random headers, wrong JSON
# types, NULL values) produced through Kafka into a running worker.  Every
# offset must end up exactly once as a job, a dead letter (with its raw bytes)
# or a counted skip; no process may crash and the postmaster must never
# restart.  The messages come from SentryRelay::Mutate, whose messages 076
# also decodes with the C decoder and the Python reference.
#
# brokers: mock real
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::MD5 qw(md5_hex);
use SentryRelay::Kafka;
use SentryRelay::Mutate qw(mutated_messages);
use SentryRelay::Test;

my $total = 10_000;
my $nparts = 4;
my $per_part = $total / $nparts;
my $seed = $ENV{SR_MUTATION_SEED} // 75;
srand($seed);
diag("mutation seed $seed (set SR_MUTATION_SEED to replay another)");

plan skip_all => 'java not found: no real Kafka broker here'
  unless SentryRelay::Kafka->available;
my $kafka = SentryRelay::Kafka->new(brokers => 1);
$kafka->create_events_topic('mu-events', $nparts);
$kafka->create_commit_log_topic('snuba-commit-log');
my $node = relay_node('mutated', $kafka);
create_errors_stream($node, name => 'mu', topic => 'mu-events');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'mu' AND status = 'running'}),
	'worker running');

my $pm_pid = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
my $pm_start = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $log_offset = -s $node->logfile;

# ---- the messages (SentryRelay::Mutate, drawn from the seed above) ----
my (@msgs, %expect, @valid_jobs);
my @generated = mutated_messages($total);
for my $i (0 .. $total - 1)
{
	my $p = $i % $nparts;
	my $o = int($i / $nparts);
	my ($value, $headers, $kind, $base) = @{ $generated[$i] }{qw(value headers kind base)};
	push @valid_jobs, "$p:$o" if $kind eq 'valid' && !$headers && $base =~ /"insert"/ && $base !~ /"skip_consume":true/;
	$expect{"$p:$o"} = defined $value ? md5_hex($value) : 'NULL';
	push @msgs, [ 'mu-events', $p, $generated[$i]{key}, $value, $headers ];
}
is(raw_produce_file($kafka, \@msgs), $total, "produced $total messages");
for my $p (0 .. $nparts - 1)
{
	my ($lo, $hi) = $kafka->end_offsets('mu-events', $p);
	is("$lo $hi", "0 $per_part", "partition $p holds offsets 0..$per_part");
}
commit_log($kafka, 'mu-events', $_, 'snuba-consumers', $per_part) for 0 .. $nparts - 1;

# ---- every offset accounted for ----
my $done = join("\n", map { "$_|$per_part|SYNCHRONIZED" } 0 .. $nparts - 1);
is(wait_for_value($node, q{SELECT string_agg(partition || '|' || local_offset || '|' || state, E'\n' ORDER BY partition)
  FROM sentry_relay.partitions WHERE stream = 'mu'}, $done, 180), $done, 'every partition consumed to the end');

my $jobs = $node->safe_psql('postgres', q{SELECT count(*) || ' ' || count(DISTINCT (partition, "offset")) FROM sentry_relay.jobs WHERE stream = 'mu'});
my ($nj, $njd) = split ' ', $jobs;
is($nj, $njd, "no job twice ($nj jobs)");
my %dl = map { my ($k, $m) = split /\|/; ($k => $m) } split /\n/,
  $node->safe_psql('postgres', q{SELECT partition || ':' || "offset" || '|' || coalesce(md5(value), 'NULL') FROM sentry_relay.dead_letters WHERE stream = 'mu'});
my $ndl = $node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = 'mu'});
is(scalar(keys %dl), $ndl, "no dead letter twice ($ndl dead letters)");
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.jobs j JOIN sentry_relay.dead_letters d USING (stream, partition, "offset") WHERE j.stream = 'mu'}),
	'0', 'no offset is both a job and a dead letter');
my $skipped = $node->safe_psql('postgres', q{SELECT skipped FROM sentry_relay.workers WHERE stream = 'mu'});
is($nj + $ndl + $skipped, $total, "jobs + dead letters + skips = $total ($nj + $ndl + $skipped)");
is($node->safe_psql('postgres', qq{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'mu' AND ("offset" < 0 OR "offset" >= $per_part OR partition NOT BETWEEN 0 AND @{[ $nparts - 1 ]})}),
	'0', 'every job is at a produced offset');
is(scalar(grep { $dl{$_} ne $expect{$_} } keys %dl), 0, 'every dead letter keeps the raw bytes that were produced');
my %job = map { $_ => 1 } split /\n/,
  $node->safe_psql('postgres', q{SELECT partition || ':' || "offset" FROM sentry_relay.jobs WHERE stream = 'mu'});
is(scalar(grep { !$job{$_} } @valid_jobs), 0, scalar(@valid_jobs) . ' unmutated inserts are all jobs');
cmp_ok($ndl, '>', $total / 2, 'most mutations are dead letters');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = 'mu' AND (sqlstate !~ '^[0-9A-Z]{5}$' OR error = '' OR error_class = '')}),
	'0', 'every dead letter has a SQLSTATE, an error and an error class');
diag($node->safe_psql('postgres', q{SELECT error_class || ' ' || sqlstate || ' ' || count(*) FROM sentry_relay.dead_letters WHERE stream = 'mu' GROUP BY error_class, sqlstate ORDER BY 1}));

# ---- nothing crashed ----
is($node->safe_psql('postgres', q{SELECT restarts || ' ' || coalesce(last_error, '') FROM sentry_relay.workers WHERE stream = 'mu'}),
	'0 ', 'the worker never restarted and reports no error');
is((split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0], $pm_pid, 'the postmaster is the same process');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $pm_start, 'pg_postmaster_start_time() is unchanged');
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/terminated by signal|was terminated|exited with exit code|all server processes terminated|database system was interrupted/,
	'the server log shows no crash and no worker exit');
unlike($log, qr/PANIC|TRAP:/, 'no PANIC or assertion failure');

$node->stop;
$kafka->stop;
done_testing();
