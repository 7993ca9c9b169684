# 075_mutated_messages.pl - 10,000 random and mutated event messages (bit
# flips, truncations, splices, random bytes, random headers, wrong JSON
# types, NULL values) produced through Kafka into a running worker.  Every
# offset must end up exactly once as a job, a dead letter (with its raw bytes)
# or a counted skip; no process may crash and the postmaster must never
# restart.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::MD5 qw(md5_hex);
use JSON::PP ();
use SentryRelay::KafkaMock;
use SentryRelay::Test;

my $total = 10_000;
my $nparts = 4;
my $per_part = $total / $nparts;
my $seed = $ENV{SR_MUTATION_SEED} // 75;
srand($seed);
diag("mutation seed $seed (set SR_MUTATION_SEED to replay another)");

my $kafka = SentryRelay::KafkaMock->new(brokers => 1);
$kafka->create_topic('mu-events', $nparts);
$kafka->create_topic('snuba-commit-log', 1);
my $node = relay_node('mutated', $kafka);
create_errors_stream($node, name => 'mu', topic => 'mu-events');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'mu' AND status = 'running'}),
	'worker running');

my $pm_pid = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
my $pm_start = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
my $log_offset = -s $node->logfile;

# ---- the messages ----
sub rbytes { my $n = shift; return join '', map { chr(int(rand(256))) } 1 .. $n }
sub pick { return $_[ int(rand(@_)) ] }

my $json = JSON::PP->new->canonical;
sub valid_message
{
	my ($seq) = @_;
	my $r = rand;
	return event_message(seq => $seq, skip_consume => 1) if $r < 0.05;
	return $json->encode([ 2, pick(qw(start_merge end_merge start_delete_groups tombstone_events exclude_groups)),
		{ project_id => 1, transaction_id => 'x' } ]) if $r < 0.10;
	return $json->encode([ 1, 'insert', { event_id => sprintf('%032x', $seq), project_id => 3, group_id => 7,
		primary_hash => 'abc', data => {} }, { is_new => JSON::PP::false, is_regression => JSON::PP::true,
		is_sample => JSON::PP::false, is_new_group_environment => JSON::PP::false } ]) if $r < 0.15;
	return event_message(seq => $seq, project_id => 1 + $seq % 5);
}

my @header_names = qw(version operation event_id project_id group_id primary_hash is_new
  is_regression is_new_group_environment skip_consume queue occurrence_id group_states
  Received-Timestamp);
sub random_value
{
	return pick(undef, '', '0', '1', '2', 'insert', 'start_merge', 'explode', '-1',
		'99999999999999999999999', sprintf('%032x', int(rand(1e9))), 'ZZ' x 16,
		'[{"id": 1, "is_new": true, "is_regression": false, "is_new_group_environment": false}]',
		'[{"id": "x"}]', '{', rbytes(1 + int(rand(40))), "a\x00b", "\xff\xfe");
}
sub random_headers
{
	my @h;
	push @h, [ pick(@header_names, 'x-' . int(rand(100))), random_value() ] for 1 .. int(rand(10));
	return \@h;
}

sub mutate
{
	my ($v, $other) = @_;
	my $kind = int(rand(9));
	if ($kind == 0)    # bit flips
	{
		for (1 .. 1 + int(rand(8)))
		{
			my $i = int(rand(length $v));
			substr($v, $i, 1) = chr(ord(substr($v, $i, 1)) ^ (1 << int(rand(8))));
		}
		return ($v, 'bitflip');
	}
	return (substr($v, 0, int(rand(length $v))), 'truncate') if $kind == 1;
	return (substr($v, 0, int(rand(length $v))) . substr($other, int(rand(length $other))), 'splice')
	  if $kind == 2;
	return (rbytes(int(rand(300))), 'random') if $kind == 3;
	if ($kind == 4)    # delete, duplicate or insert a chunk
	{
		my $i = int(rand(length $v));
		my $n = 1 + int(rand(20));
		my $op = int(rand(3));
		substr($v, $i, $n) = '' if $op == 0;
		substr($v, $i, 0) = substr($v, $i, $n) if $op == 1;
		substr($v, $i, 0) = rbytes($n) if $op == 2;
		return ($v, 'chunk');
	}
	if ($kind == 5)    # a value of the wrong JSON type
	{
		my $repl = pick('"1"', '-5', '1e400', '99999999999999999999', 'null', 'true', '[]', '{}',
			'"' . ('\ud800' x 2) . '"', '"\u0000"', '[' x 100 . ']' x 100);
		my @keys = ('"project_id": ', '"event_id": ', '"group_id": ', '"is_new": ',
			'"group_states": ', '"queue": ', '"skip_consume": ', '"primary_hash": ');
		my $k = pick(@keys);
		$v =~ s/(\Q$k\E)("[^"]*"|[^,}\]]*)/$1$repl/;
		return ($v, 'wrongtype');
	}
	return ('[' x (50 + int(rand(100))) . ']' x int(rand(200)), 'nesting') if $kind == 6;
	return (undef, 'null') if $kind == 7 && rand() < 0.3;
	return ($v, 'valid');
}

my (@msgs, %expect, @valid_jobs);
for my $i (0 .. $total - 1)
{
	my $p = $i % $nparts;
	my $o = int($i / $nparts);
	my $base = valid_message($i);
	my ($value, $kind) = rand() < 0.1 ? ($base, 'valid') : mutate($base, valid_message($i + 1));
	my $headers;
	my $hr = rand;
	if ($hr < 0.3)
	{
		$headers = random_headers();
	}
	elsif ($hr < 0.5 && $base =~ /"event_id":"([0-9a-f]{32})"/)
	{
		# complete, valid task headers (the body is then never read)...
		$headers = event_headers(event_id => $1);
		# ... or one of them broken
		if (rand() < 0.5)
		{
			$headers->[ 1 + int(rand(@$headers - 1)) ][1] = random_value();
			$kind .= '+badheader';
		}
		else
		{
			$kind .= '+headers';
		}
	}
	push @valid_jobs, "$p:$o" if $kind eq 'valid' && !$headers && $base =~ /"insert"/ && $base !~ /"skip_consume":true/;
	$expect{"$p:$o"} = defined $value ? md5_hex($value) : 'NULL';
	push @msgs, [ 'mu-events', $p, rand() < 0.1 ? undef : "k$i", $value, $headers ];
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
