# 032_hold.pl - messages read past the gate are held in memory (decoded)
# until the writer commits them:
#   1. the jobs a commit-log step lets through commit in the transaction
#      that stores its remote offset;
#   2. a hold too small for the backlog (sentry_relay.queue_buffer at its
#      minimum, keep_body, 4 kB messages) pauses the partition and re-reads
#      from just past the last held message: every offset once, bodies, dead
#      letters (raw bytes and headers) and skips exact;
#   3. held messages of a partition that moves to another worker are not
#      lost and not enqueued twice.
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
$kafka->create_events_topic('one-events', 1);
$kafka->create_commit_log_topic('one-clog');
$kafka->create_events_topic('big-events', 1);
$kafka->create_commit_log_topic('big-clog');
$kafka->create_events_topic('mv-events', 4);
$kafka->create_commit_log_topic('mv-clog');

# queue_buffer at its minimum (1 MB): the hold gets 512 kB
my $node = relay_node('hold', $kafka, 'sentry_relay.queue_buffer' => '1024');

sub part
{
	my ($stream, $partition) = @_;
	return qq{SELECT coalesce(local_offset::text, '-') || ' ' || coalesce(remote_offset::text, '-')
	  || ' ' || state FROM sentry_relay.partitions WHERE stream = '$stream' AND partition = $partition};
}

sub gated
{
	my ($stream, $min) = @_;
	return qq{SELECT coalesce(sum(gated), 0) >= $min FROM sentry_relay.workers WHERE stream = '$stream'};
}

################################################################
# 1. One transaction per commit-log step.
################################################################
create_errors_stream($node, name => 'one', topic => 'one-events',
	commit_log => 'one-clog', consumer_group => 'cg-one');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'one' AND status = 'running'}),
	'one: worker running');
commit_log($kafka, 'one-events', 0, 'snuba-consumers', 0, commit_log_topic => 'one-clog');
is(wait_for_value($node, q{SELECT "offset" FROM sentry_relay.commit_log_positions WHERE stream = 'one'}, '1'),
	'1', 'one: the commit log is followed');
produce_events($kafka, 'one-events', 0, 20);
ok(wait_until($node, gated('one', 1)), 'one: the messages wait at the gate (gated counted)');
is(job_offsets($node, 'one'), '', 'one: nothing enqueued past the gate');

commit_log($kafka, 'one-events', 0, 'snuba-consumers', 10, commit_log_topic => 'one-clog');
is(wait_for_value($node, part('one', 0), '10 10 SYNCHRONIZED'), '10 10 SYNCHRONIZED',
	'one: synchronized at 10');
is(job_offsets($node, 'one'), join(',', 0 .. 9), 'one: exactly offsets 0..9');
is($node->safe_psql('postgres', q{
SELECT count(DISTINCT j.xmin::text) || ' ' || bool_and(j.xmin = r.xmin)
  FROM sentry_relay.jobs j, sentry_relay.remote_offsets r
 WHERE j.stream = 'one' AND r.stream = 'one' AND r.partition = 0}), '1 true',
	'one: jobs 0..9 committed in the transaction that stored remote offset 10');

commit_log($kafka, 'one-events', 0, 'snuba-consumers', 20, commit_log_topic => 'one-clog');
is(wait_for_value($node, part('one', 0), '20 20 SYNCHRONIZED'), '20 20 SYNCHRONIZED',
	'one: synchronized at 20');
is(exactly_once($node, 'one'), '20 20', 'one: 20 jobs, each once');
$node->safe_psql('postgres', q{SELECT sentry_relay.stop_stream('one')});

################################################################
# 2. A hold too small for what waits: pause, re-read, nothing lost.
################################################################
# 600 messages of about 4 kB: jobs (with keep_body their rows carry the
# body), every 50th one not JSON (a dead letter, with headers) and every
# 40th one skip_consume (skipped): about 2.4 MB past the gate, for a
# 512 kB hold.
my $N = 600;
my (@msgs, %want_dead, %want_body, $want_jobs, $want_skips);
for my $i (0 .. $N - 1)
{
	if ($i % 50 == 7)
	{
		my $v = "not json $i " . ('#' x 4000);
		push @msgs, [ 'big-events', 0, "k$i", $v, [ [ 'h1', "v$i" ], [ 'h2', '' ] ] ];
		$want_dead{$i} = $v;
		next;
	}
	my $m = event_message(seq => $i, skip_consume => ($i % 40 == 3));
	$m =~ s/"message":"boom"/'"message":"' . ('x' x 4000) . '"'/e or die 'no message field';
	push @msgs, [ 'big-events', 0, "k$i", $m ];
	if ($i % 40 == 3) { $want_skips++ } else { $want_jobs++; $want_body{$i} = $m }
}
create_errors_stream($node, name => 'big', topic => 'big-events',
	commit_log => 'big-clog', consumer_group => 'cg-big',
	options => '{"keep_body": true, ' . substr(fast_group_options(), 1));
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'big' AND status = 'running'}),
	'big: worker running');
commit_log($kafka, 'big-events', 0, 'snuba-consumers', 0, commit_log_topic => 'big-clog');
raw_produce_file($kafka, \@msgs);
# a hold began, and at least one message did not fit (each counts)
ok(wait_until($node, gated('big', 2)), 'big: the hold filled up and the partition was paused');
is(job_offsets($node, 'big'), '', 'big: nothing enqueued past the gate');

# the writer catches up in uneven steps
my $steps = 0;
for my $to (5, 130, 131, 400, 599, $N)
{
	commit_log($kafka, 'big-events', 0, 'snuba-consumers', $to, commit_log_topic => 'big-clog');
	$steps++ if wait_for_value($node, part('big', 0), "$to $to SYNCHRONIZED") eq "$to $to SYNCHRONIZED";
}
is($steps, 6, 'big: each step of the writer was followed');
is(exactly_once($node, 'big'), "$want_jobs $want_jobs", "big: $want_jobs jobs, each once");
is($node->safe_psql('postgres', q{SELECT skipped FROM sentry_relay.workers WHERE stream = 'big'}),
	$want_skips, "big: $want_skips skipped");
is($node->safe_psql('postgres', q{
SELECT string_agg("offset" || ':' || md5(body), ' ' ORDER BY "offset")
  FROM sentry_relay.jobs WHERE stream = 'big'}),
	join(' ', map { "$_:" . md5_hex_of($want_body{$_}) } sort { $a <=> $b } keys %want_body),
	'big: every job kept its 4 kB body byte for byte');
my $dead = $node->safe_psql('postgres', q{
SELECT string_agg("offset" || ':' || md5(value) || ':' || array_to_string(header_names, ',')
                  || ':' || convert_from(header_values[1], 'UTF8') || ':' || length(header_values[2]),
                  ' ' ORDER BY "offset")
  FROM sentry_relay.dead_letters WHERE stream = 'big'});
is($dead,
	join(' ', map { "$_:" . md5_hex_of($want_dead{$_}) . ":h1,h2:v$_:0" } sort { $a <=> $b } keys %want_dead),
	'big: each bad message is a dead letter with its raw bytes and headers');
my $covered = $node->safe_psql('postgres', qq{
SELECT count(*) FROM generate_series(0, $N - 1) AS o
 WHERE (SELECT count(*) FROM sentry_relay.jobs j WHERE j.stream = 'big' AND j."offset" = o)
     + (SELECT count(*) FROM sentry_relay.dead_letters d WHERE d.stream = 'big' AND d."offset" = o) = 1});
is($covered + 0, $N - $want_skips, 'big: every offset but the skipped ones is one job or one dead letter');
$node->safe_psql('postgres', q{SELECT sentry_relay.stop_stream('big')});

################################################################
# 3. Held messages of partitions that move to another worker.
################################################################
create_errors_stream($node, name => 'mv', topic => 'mv-events',
	commit_log => 'mv-clog', consumer_group => 'cg-mv');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'mv' AND status = 'running'
  AND cardinality(partitions) = 4}), 'mv: one worker with all 4 partitions');
commit_log($kafka, 'mv-events', $_, 'snuba-consumers', 0, commit_log_topic => 'mv-clog') for 0 .. 3;
produce_events($kafka, 'mv-events', $_, 30, first => 100 * $_) for 0 .. 3;
ok(wait_until($node, gated('mv', 4)), 'mv: all four partitions wait at the gate');
commit_log($kafka, 'mv-events', $_, 'snuba-consumers', 10, commit_log_topic => 'mv-clog') for 0 .. 3;
ok(wait_until($node, q{SELECT count(*) = 40 FROM sentry_relay.jobs WHERE stream = 'mv'}),
	'mv: 10 jobs per partition');

# a second worker takes some partitions while their messages 10..29 are held
$node->safe_psql('postgres', q{SELECT sentry_relay.alter_stream('mv', workers => 2)});
ok(wait_until($node, q{SELECT count(*) = 2 FROM sentry_relay.workers WHERE stream = 'mv' AND status = 'running'
  AND cardinality(partitions) > 0}, 90), 'mv: the partitions are shared by two workers');
commit_log($kafka, 'mv-events', $_, 'snuba-consumers', 30, commit_log_topic => 'mv-clog') for 0 .. 3;
ok(wait_until($node, q{SELECT count(*) = 120 FROM sentry_relay.jobs WHERE stream = 'mv'}),
	'mv: 30 jobs per partition');
is($node->safe_psql('postgres', q{
SELECT string_agg(partition || ':' || n || ':' || lo || '-' || hi, ' ' ORDER BY partition)
  FROM (SELECT partition, count(DISTINCT "offset") AS n, min("offset") AS lo, max("offset") AS hi
          FROM sentry_relay.jobs WHERE stream = 'mv' GROUP BY partition) s}),
	'0:30:0-29 1:30:0-29 2:30:0-29 3:30:0-29', 'mv: offsets 0..29 of each partition, each once');
is(exactly_once($node, 'mv'), '120 120', 'mv: nothing enqueued twice');

$node->stop;
done_testing();

sub md5_hex_of
{
	require Digest::MD5;
	return Digest::MD5::md5_hex($_[0]);
}
