# brokers: real
# 101_kafka_retention.pl - retention deletes messages of the events topic
# while the relay is stopped, past the stored local offsets: on start each
# reset policy does what docs/relay.md (Start position) and docs/operations.md (Troubleshooting) say.
# Three streams on the same topic, one per policy (earliest, latest, error),
# each with its own consumer group.  Partition 0 loses offsets the relay had
# not relayed yet (its stored offset 4 is gone); partition 1 loses only what
# was relayed (its stored offset 5 is the new low watermark), so no reset
# applies to it.
#   earliest: partition 0 resumes at the first surviving offset;
#   latest:   partition 0 resumes at the end (the surviving backlog skipped);
#   error:    partition 0 stops (no job), partition 1 goes on, the worker
#             stays up (no crash loop, no repeated log line), and once the
#             operator changes the policy (the hint) it resumes.
# The server log and sentry_relay.partitions.last_error say what was skipped.
# Skipped only when java is absent.
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

my $t_start = time;
my $kafka = SentryRelay::KafkaReal->new(nodes => 1);
$kafka->create_events_topic('events', 2);
$kafka->create_commit_log_topic('snuba-commit-log');

my @policies = qw(earliest latest error);

# Every consumer group starts with committed offset 0 on both partitions, so
# that each stream starts at 0 whatever its policy (latest would otherwise
# start at the end, error would fail at once).
for my $p (@policies)
{
	ok(kafka_commit($kafka, "cg-$p", 'events', { 0 => 0, 1 => 0 }),
		"consumer group cg-$p committed offset 0");
}

my $node = relay_node('relay', $kafka);
create_errors_stream($node, name => "s-$_", reset => $_, consumer_group => "cg-$_")
  for @policies;

# ---- helpers

sub parts
{
	my ($s) = @_;
	return $node->safe_psql('postgres', qq{
SELECT string_agg(partition || ' ' || coalesce(local_offset::text, '-') || ' '
  || coalesce(remote_offset::text, '-') || ' ' || state, ', ' ORDER BY partition)
  FROM sentry_relay.partitions WHERE stream = '$s'});
}

sub parts_sql
{
	my ($s) = @_;
	return qq{SELECT string_agg(partition || ' ' || coalesce(local_offset::text, '-') || ' '
  || coalesce(remote_offset::text, '-') || ' ' || state, ', ' ORDER BY partition)
  FROM sentry_relay.partitions WHERE stream = '$s'};
}

# "p:o p:o ..." of the stream's jobs, each checked to be the message
# produced there (seq = offset on partition 0, 100 + offset on 1)
sub jobs_of
{
	my ($s) = @_;
	my $bad = $node->safe_psql('postgres', qq{
SELECT count(*) FROM sentry_relay.jobs WHERE stream = '$s'
   AND event_id <> lpad(to_hex("offset" + 100 * partition), 32, '0')});
	return "event ids do not match their offsets ($bad)" if $bad ne '0';
	return $node->safe_psql('postgres', qq{
SELECT coalesce(string_agg(partition || ':' || "offset", ' ' ORDER BY partition, "offset"), '')
  FROM sentry_relay.jobs WHERE stream = '$s'});
}

sub jobs_sql_expect
{
	return join ' ', map { my $p = $_->[0]; map { "$p:$_" } @{ $_->[1] } } @_;
}

sub low_watermarks
{
	return join ' ', map { ($kafka->end_offsets('events', $_))[0] } 0, 1;
}

# ---- 1. the relay drains up to the writer's offsets, then stops

produce_events($kafka, 'events', 0, 10, first => 0);      # p0 offsets 0..9
produce_events($kafka, 'events', 1, 5, first => 100);     # p1 offsets 0..4
commit_log($kafka, 'events', 0, 'snuba-consumers', 4);
commit_log($kafka, 'events', 1, 'snuba-consumers', 5);
for my $p (@policies)
{
	is(wait_for_value($node, parts_sql("s-$p"), '0 4 4 SYNCHRONIZED, 1 5 5 SYNCHRONIZED'),
		'0 4 4 SYNCHRONIZED, 1 5 5 SYNCHRONIZED', "s-$p: synchronized at 4 and 5");
	is(jobs_of("s-$p"), jobs_sql_expect([ 0, [ 0 .. 3 ] ], [ 1, [ 0 .. 4 ] ]),
		"s-$p: jobs 0..3 of partition 0 and 0..4 of partition 1");
}

$node->safe_psql('postgres', "SELECT sentry_relay.stop_stream('s-$_')") for @policies;
ok(wait_until($node, q{SELECT count(*) = 0 FROM sentry_relay.workers}, 30),
	'all three streams stopped: no worker left');

# ---- 2. retention deletes every message of both partitions

is(low_watermarks(), '0 0', 'before retention both partitions start at 0');
$kafka->alter_topic('events', { 'retention.ms' => 1000, 'segment.ms' => 100,
	'segment.bytes' => 1048576 });
is($kafka->topic_config('events', 'retention.ms'), '1000', 'events: retention.ms is 1000');
is(wait_for('the broker to delete the old segments', \&low_watermarks, '10 5', 60), '10 5',
	'the broker deleted offsets 0..9 of partition 0 and 0..4 of partition 1');
# keep what is produced from now on
$kafka->alter_topic('events', { 'retention.ms' => 86400000 });
is($kafka->topic_config('events', 'retention.ms'), '86400000', 'events: retention back to a day');

# the backlog that survives: p0 10..14, p1 5..7, all committed by the writer
produce_events($kafka, 'events', 0, 5, first => 10);
produce_events($kafka, 'events', 1, 3, first => 105);
commit_log($kafka, 'events', 0, 'snuba-consumers', 15);
commit_log($kafka, 'events', 1, 'snuba-consumers', 8);
{
	# past one retention check (1 s) with retention.ms at 1000: the new
	# messages stay, so what follows depends on the reset policy only
	my $deadline = time + 3;
	my $ok = 1;
	while (time < $deadline)
	{
		my $lw = low_watermarks();
		if ($lw ne '10 5') { diag("low watermarks moved to $lw"); $ok = 0; last }
		usleep(200_000);
	}
	ok($ok, 'the new messages survive: low watermarks stay 10 and 5');
}
is(join(' ', map { ($kafka->end_offsets('events', $_))[1] } 0, 1), '15 8',
	'high watermarks 15 and 8');

# ---- 3. each stream starts again on the stored offsets 4 and 5

my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT sentry_relay.start_stream('s-$_')") for @policies;

# earliest: partition 0 resumes at 10, the first surviving offset
is(wait_for_value($node, parts_sql('s-earliest'), '0 15 15 SYNCHRONIZED, 1 8 8 SYNCHRONIZED'),
	'0 15 15 SYNCHRONIZED, 1 8 8 SYNCHRONIZED', 's-earliest: synchronized at 15 and 8');
is(jobs_of('s-earliest'), jobs_sql_expect([ 0, [ 0 .. 3, 10 .. 14 ] ], [ 1, [ 0 .. 7 ] ]),
	's-earliest: partition 0 resumed at 10 (4..9 deleted), partition 1 at 5');
is($node->safe_psql('postgres', q{SELECT partition || ': ' || coalesce(last_error, '-')
  FROM sentry_relay.partitions WHERE stream = 's-earliest' ORDER BY partition}),
	"0: offset 4 out of range; resumed at 10 (initial_offset_reset earliest)\n1: -",
	's-earliest: last_error of partition 0 says what was skipped; partition 1 has none');
ok($node->log_contains(
		qr/worker 0 of stream "s-earliest": partition 0 resumed at offset 10, not at the stored offset 4/,
		$log_offset),
	's-earliest: the server log says partition 0 resumed at 10, not at 4');

# latest: partition 0 resumes at the end: the surviving 10..14 are skipped,
# and the end of the partition (15) tells the worker where before any new
# message arrives.
is(wait_for_value($node, parts_sql('s-latest') . q{ AND partition = 1}, '1 8 8 SYNCHRONIZED'),
	'1 8 8 SYNCHRONIZED', 's-latest: partition 1 synchronized at 8');
ok(wait_for('librdkafka\'s reset line', sub {
			$node->log_contains(qr/worker 0 of stream "s-latest": librdkafka OFFSET: .*events \[0\]: offset reset \(at offset 4[^\n]*to END/,
				$log_offset) ? 1 : 0 }, 1, 30),
	's-latest: the server log has librdkafka\'s reset of partition 0 from offset 4 to the end');
is(wait_for_value($node, parts_sql('s-latest'), '0 15 15 SYNCHRONIZED, 1 8 8 SYNCHRONIZED'),
	'0 15 15 SYNCHRONIZED, 1 8 8 SYNCHRONIZED',
	's-latest: before any new message, partition 0 is at the end, 15, synchronized');
is($node->safe_psql('postgres', q{SELECT coalesce(last_error, '-') FROM sentry_relay.partitions
  WHERE stream = 's-latest' AND partition = 0}),
	'offset 4 out of range; resumed at 15 (initial_offset_reset latest)',
	's-latest: before any new message, partition 0\'s last_error says what was skipped');
note('s-latest before new messages: ' . parts('s-latest'));
produce_events($kafka, 'events', 0, 2, first => 15);    # p0 15, 16
commit_log($kafka, 'events', 0, 'snuba-consumers', 17);
is(wait_for_value($node, parts_sql('s-latest'), '0 17 17 SYNCHRONIZED, 1 8 8 SYNCHRONIZED'),
	'0 17 17 SYNCHRONIZED, 1 8 8 SYNCHRONIZED', 's-latest: synchronized at 17 and 8');
is(jobs_of('s-latest'), jobs_sql_expect([ 0, [ 0 .. 3, 15, 16 ] ], [ 1, [ 0 .. 7 ] ]),
	's-latest: partition 0 resumed at 15, the end (10..14 skipped), partition 1 at 5');
is($node->safe_psql('postgres', q{SELECT partition || ': ' || coalesce(last_error, '-')
  FROM sentry_relay.partitions WHERE stream = 's-latest' ORDER BY partition}),
	"0: offset 4 out of range; resumed at 15 (initial_offset_reset latest)\n1: -",
	's-latest: last_error of partition 0 says what was skipped');
ok($node->log_contains(
		qr/worker 0 of stream "s-latest": partition 0 resumed at offset 15, not at the stored offset 4/,
		$log_offset),
	's-latest: the server log says partition 0 resumed at 15, not at 4');
is(wait_for_value($node, parts_sql('s-earliest'), '0 17 17 SYNCHRONIZED, 1 8 8 SYNCHRONIZED'),
	'0 17 17 SYNCHRONIZED, 1 8 8 SYNCHRONIZED', 's-earliest: goes on to 17');

# error: partition 0 stops where it was, partition 1 goes on
is(wait_for_value($node, parts_sql('s-error') . q{ AND partition = 1}, '1 8 8 SYNCHRONIZED'),
	'1 8 8 SYNCHRONIZED', 's-error: partition 1 goes on to 8');
my $error_line = qr/worker 0 of stream "s-error": consumer error on partition 0: [^\n]*Offset out of range/;
my $count_err = sub {
	my @hits = slurp_file($node->logfile, $log_offset) =~ /$error_line/g;
	return scalar @hits;
};
is(wait_for('the error in the log', $count_err, 1, 30), 1,
	's-error: the server log says the stored offset is out of range (once)');
my ($epid, $erestarts, $werr, $kerr) = split /\|/, $node->safe_psql('postgres',
	q{SELECT pid, restarts, last_error, kafka_errors FROM sentry_relay.workers WHERE stream = 's-error'});
note("s-error worker last_error: $werr");
like($werr // '', qr/Offset out of range/, 's-error: the worker\'s last_error says why');
is($erestarts, '0', 's-error: the worker did not restart');
is($node->safe_psql('postgres', q{SELECT partition || ' ' || local_offset || ' ' || state || ' ' || lag
  FROM sentry_relay.partitions WHERE stream = 's-error' ORDER BY partition}),
	"0 4 LOCAL_BEHIND 13\n1 8 SYNCHRONIZED 0",
	's-error: partition 0 stays at its stored offset 4, 13 behind the writer');
is(jobs_of('s-error'), jobs_sql_expect([ 0, [ 0 .. 3 ] ], [ 1, [ 0 .. 7 ] ]),
	's-error: no job of partition 0 after the reset error, partition 1 to 7');

# no crash loop: the same worker for 4 s, no restart, no new Kafka error,
# partition 0 stays stopped, and the log says it once
ok(stays($node, 'postgres', qq{SELECT pid || ' ' || restarts || ' ' || status || ' ' || kafka_errors
  || ' ' || (SELECT local_offset || ' ' || state FROM sentry_relay.partitions
             WHERE stream = 's-error' AND partition = 0)
  FROM sentry_relay.workers WHERE stream = 's-error'},
		"$epid 0 running $kerr 4 LOCAL_BEHIND", 4),
	's-error: for 4 s the same worker runs, no restart, no new error, partition 0 stays at 4');
is($count_err->(), 1, 's-error: the error was logged once, not again');
ok(!$node->log_contains(qr/terminated by signal|sentry_relay worker.*exited with exit code [1-9]/,
		$log_offset), 'no worker crashed or exited with an error');

like($node->safe_psql('postgres', q{SELECT coalesce(last_error, '') FROM sentry_relay.partitions
  WHERE stream = 's-error' AND partition = 0}),
	qr/partition 0: .*Offset out of range/,
	's-error: partition 0\'s last_error names the out-of-range offset');
ok($node->log_contains(
		qr/worker 0 of stream "s-error": consumer error on partition 0: [^\n]*\n[^\n]*HINT:  initial_offset_reset is 'error'/,
		$log_offset),
	's-error: the server log names partition 0 and gives the hint');

# the operator follows the hint: the policy becomes earliest, the worker
# restarts with it and partition 0 resumes at the first surviving offset
$node->safe_psql('postgres', q{SELECT sentry_relay.alter_stream('s-error', initial_offset_reset => 'earliest')});
is(wait_for_value($node, parts_sql('s-error'), '0 17 17 SYNCHRONIZED, 1 8 8 SYNCHRONIZED'),
	'0 17 17 SYNCHRONIZED, 1 8 8 SYNCHRONIZED', 's-error, now earliest: synchronized at 17 and 8');
is(jobs_of('s-error'), jobs_sql_expect([ 0, [ 0 .. 3, 10 .. 16 ] ], [ 1, [ 0 .. 7 ] ]),
	's-error, now earliest: partition 0 resumed at 10');
is($node->safe_psql('postgres', q{SELECT last_error FROM sentry_relay.partitions
  WHERE stream = 's-error' AND partition = 0}),
	'offset 4 out of range; resumed at 10 (initial_offset_reset earliest)',
	's-error, now earliest: last_error says what was skipped');

for my $p (@policies)
{
	is(exactly_once($node, "s-$p"), join(' ', (jobs_of("s-$p") =~ tr/:/:/) x 2),
		"s-$p: each job once");
}

$node->stop;
ok($kafka->stop, 'the helper and the cluster stop');
note(sprintf('101 took %.1f s', time - $t_start));
done_testing();
