# brokers: real
# 102_kafka_offset_gaps.pl - offsets of the events topic that are not
# messages the relay can see, which only a real broker makes:
#
#   1. transactions: a transactional producer (python3-confluent-kafka)
#      writes committed and aborted transactions to events.  Each
#      transaction ends with a control record (commit or abort marker) that
#      takes an offset; the aborted messages take offsets too.  The relay
#      (librdkafka's default isolation.level, read_committed) must enqueue no
#      job for an aborted message, step over the control records, and reach
#      SYNCHRONIZED with lag 0 when the writer's committed offset lies just
#      past a control record (as a read_committed writer's position does).
#   2. compaction: a compacted topic (cleanup.policy=compact, 1 MiB
#      segments, keys repeated) after the cleaner removed the older offsets
#      of each key; the writer had committed offsets that now lie just past a
#      hole.  Every surviving message becomes one job, and each step of the
#      writer ends SYNCHRONIZED with lag 0.
#
# Sentry's self-hosted users report a forwarder that stays "1 behind" for
# ever (getsentry/self-hosted#4285): the relay must not, so every step
# asserts state SYNCHRONIZED and lag 0, and that it stays so.
# Skipped only when java is absent.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP ();
use Time::HiRes qw(time usleep);
use SentryRelay::KafkaReal;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here (test/setup-deps.sh installs it)'
  unless SentryRelay::KafkaReal::available();

my $t_start = time;
my $kafka = SentryRelay::KafkaReal->new(nodes => 1);
my $bootstrap = $kafka->bootstrap;
$kafka->create_events_topic('events', 2);
$kafka->create_commit_log_topic('snuba-commit-log');
my $json = JSON::PP->new->canonical;
my $tmp = PostgreSQL::Test::Utils::tempdir();

# ---- helpers

sub parts_sql
{
	my ($s) = @_;
	return qq{SELECT string_agg(partition || ' ' || coalesce(local_offset::text, '-') || ' '
  || coalesce(remote_offset::text, '-') || ' ' || state || ' ' || coalesce(lag::text, '-'), ', '
  ORDER BY partition) FROM sentry_relay.partitions WHERE stream = '$s'};
}

sub jobs_sql
{
	my ($s) = @_;
	return qq{SELECT coalesce(string_agg(partition || ':' || "offset", ' ' ORDER BY partition, "offset"), '')
  FROM sentry_relay.jobs WHERE stream = '$s'};
}

# read_back($topic, $partition, $isolation): the offsets of the messages a
# consumer with that isolation level reads from the start to the end, and
# its position at the end (librdkafka's partition EOF)
sub read_back
{
	my ($topic, $p, $iso) = @_;
	my ($ok, $out) = run_python(qq{
import sys
from confluent_kafka import Consumer, TopicPartition, KafkaError
c = Consumer({'bootstrap.servers': '$bootstrap', 'group.id': 'read-back',
              'enable.auto.commit': False, 'enable.partition.eof': True,
              'isolation.level': '$iso'})
c.assign([TopicPartition('$topic', $p, -2)])
offs = []
while True:
    m = c.poll(20)
    if m is None:
        sys.exit('no EOF within 20 s')
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            break
        sys.exit(str(m.error()))
    offs.append(m.offset())
pos = c.position([TopicPartition('$topic', $p)])[0].offset
c.close()
print(' '.join(map(str, offs)) + '|' + str(pos))
}, "reading back $topic [$p] ($iso)");
	return $ok ? split(/\|/, $out, -1) : ('error', 'error');
}

# ---- 1. transactions

# Three transactions over both partitions: A committed, B aborted (its
# messages flushed to the broker first, so that they take offsets), C
# committed.  Each message is an insert whose seq names it.
my @plan = (
	{ commit => JSON::PP::true, messages => [ [ 0, 0 ], [ 0, 1 ], [ 0, 2 ], [ 1, 100 ] ] },
	{ commit => JSON::PP::false, messages => [ [ 0, 3 ], [ 0, 4 ], [ 1, 101 ], [ 1, 102 ] ] },
	{ commit => JSON::PP::true, messages => [ [ 0, 5 ], [ 0, 6 ], [ 1, 103 ] ] },
);
for my $t (@plan)
{
	$_ = [ $_->[0], $_->[1], event_message(seq => $_->[1]) ] for @{ $t->{messages} };
}
my $plan_file = "$tmp/txn_plan.json";
open(my $fh, '>', $plan_file) or die "$plan_file: $!";
print $fh $json->encode(\@plan);
close $fh;

my ($ok, $delivered) = run_python(qq{
import json, sys
from confluent_kafka import Producer
plan = json.load(open('$plan_file'))
out = []
txns = []
def report(err, msg):
    if err is not None:
        sys.exit('delivery failed: %s' % err)
    out.append('%d:%d' % (msg.partition(), msg.offset()))
p = Producer({'bootstrap.servers': '$bootstrap', 'transactional.id': 'txn-102',
              'linger.ms': 5})
p.init_transactions(30)
for t in plan:
    p.begin_transaction()
    for part, seq, value in t['messages']:
        p.produce('events', value=value.encode(), key=('k%d' % seq).encode(),
                  partition=part, on_delivery=report)
    p.flush(30)
    if t['commit']:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)
    out.sort(key=lambda s: tuple(map(int, s.split(':'))))
    txns.append(' '.join(out) + ' |')
    out.clear()
print(' '.join(txns))
}, 'the transactional producer');
ok($ok, 'the transactional producer wrote three transactions');
is($delivered, '0:0 0:1 0:2 1:0 | 0:4 0:5 1:2 1:3 | 0:7 0:8 1:5 |',
	'offsets of the messages: each transaction\'s marker takes the offset after it '
	  . '(p0: 3, 6, 9; p1: 1, 4, 6)');
is(join(' ', map { ($kafka->end_offsets('events', $_))[1] } 0, 1), '10 7',
	'high watermarks 10 and 7: past the last markers');

# what a read_committed and a read_uncommitted consumer see
my ($rc0, $rcpos0) = read_back('events', 0, 'read_committed');
my ($rc1, $rcpos1) = read_back('events', 1, 'read_committed');
is("$rc0 / $rc1", '0 1 2 7 8 / 0 5', 'read_committed reads only the committed messages');
my ($ru0) = read_back('events', 0, 'read_uncommitted');
is($ru0, '0 1 2 4 5 7 8', 'read_uncommitted reads the aborted ones too, never the markers');
note("a read_committed consumer's position at EOF: partition 0 $rcpos0, partition 1 $rcpos1");

my $node = relay_node('relay', $kafka);
create_errors_stream($node, name => 'txn', consumer_group => 'cg-txn');
ok(wait_until($node, q{SELECT count(*) = 2 FROM sentry_relay.partitions
  WHERE stream = 'txn' AND state = 'UNKNOWN' AND worker_pid IS NOT NULL}),
	'txn: both partitions assigned, UNKNOWN while the writer has said nothing');

# step($what, \%remote, $jobs, $parts): the writer commits; the jobs and
# partitions must be as given, and stay so for 2 s
sub step
{
	my ($stream, $topic, $what, $remote, $jobs, $parts) = @_;
	commit_log($kafka, $topic, $_, 'snuba-consumers', $remote->{$_}) for sort keys %$remote;
	is(wait_for_value($node, jobs_sql($stream), $jobs, 20), $jobs, "$stream, $what: jobs $jobs");
	# the last job's batch stores the state; a control record's fetch
	# response comes within fetch.wait.max.ms (100 ms): 5 s is plenty
	my $got = wait_for_value($node, parts_sql($stream), $parts, 5);
	is($got, $parts, "$stream, $what: partitions $parts");
	return if $got ne $parts;    # failed already: do not wait more
	ok(stays($node, 'postgres', parts_sql($stream) . ' UNION ALL ' . jobs_sql($stream),
			"$parts\n$jobs", 2),
		"$stream, $what: and stays so for 2 s");
}

# the writer's offsets lie just past a control record each time
step('txn', 'events', 'writer at 4 and 2 (past A\'s commit markers)', { 0 => 4, 1 => 2 },
	'0:0 0:1 0:2 1:0', '0 4 4 SYNCHRONIZED 0, 1 2 2 SYNCHRONIZED 0');
step('txn', 'events', 'writer at 7 and 5 (past B\'s abort markers)', { 0 => 7, 1 => 5 },
	'0:0 0:1 0:2 1:0', '0 7 7 SYNCHRONIZED 0, 1 5 5 SYNCHRONIZED 0');
step('txn', 'events', 'writer at 10 and 7 (past C\'s commit markers, the end)', { 0 => 10, 1 => 7 },
	'0:0 0:1 0:2 0:7 0:8 1:0 1:5', '0 10 10 SYNCHRONIZED 0, 1 7 7 SYNCHRONIZED 0');
is($node->safe_psql('postgres', q{SELECT string_agg(partition || ':' || "offset" || ':' || event_id, ' '
  ORDER BY partition, "offset") FROM sentry_relay.jobs WHERE stream = 'txn'}),
	join(' ', map { sprintf('%s:%s:%032x', @$_) }
		  [ 0, 0, 0 ], [ 0, 1, 1 ], [ 0, 2, 2 ], [ 0, 7, 5 ], [ 0, 8, 6 ], [ 1, 0, 100 ], [ 1, 5, 103 ]),
	'txn: each job is the committed message at its offset (seq 3, 4, 101, 102 aborted)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = 'txn'}),
	'0', 'txn: no dead letter (markers and aborted messages are not messages to the relay)');

# a plain message after the last marker: the relay goes on from there
is($kafka->produce('events', 0, 'k7', event_message(seq => 7)), 10, 'a plain message at offset 10');
step('txn', 'events', 'writer at 11 after a plain message', { 0 => 11 },
	'0:0 0:1 0:2 0:7 0:8 0:10 1:0 1:5', '0 11 11 SYNCHRONIZED 0, 1 7 7 SYNCHRONIZED 0');
is(exactly_once($node, 'txn'), '8 8', 'txn: each job once');

# ---- 2. a compacted topic with holes

# One partition, 1 MiB segments (Kafka 4's minimum), uncompressed, so that
# about six 150 kB messages fill a segment; the cleaner runs every 0.5 s
# (cluster.sh) and removes every record of a key that has a later one.
$kafka->create_topic('events-c', 1, 1, {
	'cleanup.policy' => 'compact', 'segment.bytes' => 1048576,
	'compression.type' => 'uncompressed', 'min.cleanable.dirty.ratio' => '0.01',
	'min.compaction.lag.ms' => 0, 'max.message.bytes' => 2000000 });
# keys: every fifth message its own key (survives); the others alternate two
# keys, so only the last of each in the cleaned segments survives
my $N = 30;
my @keys = map { $_ % 5 == 0 ? "u$_" : 'r' . ($_ % 2) } 0 .. $N - 1;
{
	my $pad = 'x' x 150_000;
	my $file = "$tmp/compact.txt";
	open(my $fh, '>', $file) or die "$file: $!";
	for my $i (0 .. $N - 1)
	{
		my $m = $json->decode(event_message(seq => 1000 + $i));
		$m->[2]{data}{pad} = $pad;
		print $fh SentryRelay::KafkaMock::format_produce_line('events-c', 0, $keys[$i],
			$json->encode($m)), "\n";
	}
	close $fh;
	is($kafka->produce_file($file), $N, "events-c: $N messages of 150 kB");
}

# The writer (Snuba) read them before the cleaner ran; its commits, which the
# relay sees only after the cleaner, may name offsets just past what is now a
# hole.  The cleaner's progress: the active segment (the newest .log file of
# events-c-0) and the cleaner's checkpoint.
my $pdir = $kafka->dir . '/node1/data/events-c-0';
my $active = sub {
	opendir(my $d, $pdir) or return -1;
	my @b = sort { $a <=> $b } map { /^(\d{20})\.log$/ ? 0 + $1 : () } readdir $d;
	return @b ? $b[-1] : -1;
};
my $cleaned = sub {
	open(my $fh, '<', $kafka->dir . '/node1/data/cleaner-offset-checkpoint') or return -1;
	my @l = <$fh>;
	for (@l) { return 0 + $1 if /^events-c 0 (\d+)$/ }
	return -1;
};
my $act = $active->();
ok($act > 0, "events-c: segments rolled (active segment starts at $act)");
{
	my $deadline = time + 60;
	my $c = $cleaned->();
	while (time < $deadline && $c != $act)
	{
		usleep(100_000);
		$c = $cleaned->();
	}
	is($c, $act, "events-c: the cleaner has cleaned up to the active segment ($act)");
}
# what survives: every record at or past the active segment, and below it
# the last record of each key there
my %last;
$last{ $keys[$_] } = $_ for 0 .. $act - 1;
my @survivors = grep { $_ >= $act || $last{ $keys[$_] } == $_ } 0 .. $N - 1;
my ($rb) = read_back('events-c', 0, 'read_committed');
is($rb, join(' ', @survivors), "events-c: a consumer reads back only the survivors: $rb");
cmp_ok(scalar @survivors, '<', $N - 5, 'events-c: the cleaner made holes');

# the writer's steps, each just past a hole if there is one: the first
# survivor after a hole, then the end
my %alive = map { $_ => 1 } @survivors;
my @past_hole = grep { $alive{$_} && !$alive{ $_ - 1 } } 1 .. $N - 1;
note('survivors just past a hole: ' . join(' ', @past_hole));
ok(@past_hole >= 2, 'events-c: at least two offsets lie just past a hole');

create_errors_stream($node, name => 'compact', topic => 'events-c', consumer_group => 'cg-compact');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.partitions
  WHERE stream = 'compact' AND worker_pid IS NOT NULL}),
	'compact: partition 0 assigned');
for my $b (@past_hole[ 0, 1 ], $N)
{
	my @j = grep { $_ < $b } @survivors;
	step('compact', 'events-c', "writer at $b" . ($b == $N ? ' (the end)' : ' (just past a hole)'),
		{ 0 => $b }, join(' ', map { "0:$_" } @j), "0 $b $b SYNCHRONIZED 0");
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'compact'
   AND event_id <> lpad(to_hex(1000 + "offset"), 32, '0')}),
	'0', 'compact: each job is the message produced at its offset');
is(exactly_once($node, 'compact'), scalar(@survivors) . ' ' . scalar(@survivors),
	'compact: each survivor once');

$node->stop;
ok($kafka->stop, 'the helper and the cluster stop');
note(sprintf('102 took %.1f s', time - $t_start));
done_testing();
