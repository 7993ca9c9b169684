# brokers: real
# 104_kafka_codecs.pl - every compression codec Kafka has (gzip, snappy,
# lz4, zstd, and none), on the events topic and on the commit log, as the
# broker really stores them: the record batches are read back from the
# broker's log segment files and their codec checked (the attributes of
# each batch header).
#   - producer-side: events and the commit log with compression.type=producer,
#     written by python3-confluent-kafka producers, one per codec, so that each
#     codec's batch is kept as the producer compressed it; each commit-log step
#     is one batch of 20 entries (the followed group's and nine other groups')
#     in the step's codec (each producer waits for the metadata first, so its
#     messages leave together after linger.ms, as one batch);
#   - broker-side: one events topic per codec with that compression.type,
#     written uncompressed by the helper, so the broker recompresses.
# The relay decodes all and enqueues each message exactly once, only up to
# the writer's offsets.  Skipped only when java is absent.
use strict;
use warnings;
use JSON::PP ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SentryRelay::KafkaReal;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here (test/setup-deps.sh installs it)'
  unless SentryRelay::KafkaReal::available();

my $t_start = time;
my @codecs = qw(gzip snappy lz4 zstd);
my @names = qw(none gzip snappy lz4 zstd);    # the codec ids of a batch's attributes
my $kafka = SentryRelay::KafkaReal->new(nodes => 1);
my $bootstrap = $kafka->bootstrap;
my $json = JSON::PP->new->canonical;
my $tmp = PostgreSQL::Test::Utils::tempdir();

$kafka->create_events_topic('events', 2, 'compression.type' => 'producer');
$kafka->create_commit_log_topic('snuba-commit-log', 'compression.type' => 'producer');
$kafka->create_events_topic("events-$_", 1, 'compression.type' => $_) for @codecs;
is(join(' ', map { $kafka->topic_config("events-$_", 'compression.type') } @codecs),
	"@codecs", 'one events topic per codec, compressed by the broker');

# stored_batches($topic, $partition): [base offset, last offset, codec,
# control] of every record batch in the partition's segment files
sub stored_batches
{
	my ($topic, $p) = @_;
	my @out;
	for my $f (sort glob($kafka->dir . "/node1/data/$topic-$p/*.log"))
	{
		open(my $fh, '<:raw', $f) or die "$f: $!";
		my $buf = do { local $/; <$fh> };
		close $fh;
		my $pos = 0;
		while ($pos + 27 <= length $buf)
		{
			my ($base, $len) = unpack('q> l>', substr($buf, $pos, 12));
			last if $len <= 0 || $pos + 12 + $len > length $buf;
			my $magic = unpack('c', substr($buf, $pos + 16, 1));
			die "$f: batch at $base has magic $magic" unless $magic == 2;
			my $attr = unpack('n', substr($buf, $pos + 21, 2));
			my $delta = unpack('l>', substr($buf, $pos + 23, 4));
			push @out, [ $base, $base + $delta, $names[ $attr & 7 ] // "codec" . ($attr & 7),
				($attr & 0x20) ? 1 : 0 ];
			$pos += 12 + $len;
		}
	}
	return @out;
}

# "codec:first-last ..." of the batches holding offsets $from..$to
sub codecs_of
{
	my ($topic, $p, $from, $to) = @_;
	return join ' ', map { "$_->[2]:$_->[0]-$_->[1]" }
	  grep { $_->[1] >= $from && $_->[0] <= $to } stored_batches($topic, $p);
}

# ---- events, compressed by the producer: none, then each codec, 5 messages
# per partition each (seq: 1000 * codec index + 100 * partition + i)

my @plan;
for my $ci (0 .. $#names)
{
	for my $p (0, 1)
	{
		for my $i (0 .. 4)
		{
			my $seq = 1000 * $ci + 100 * $p + $i;
			my $m = $json->decode(event_message(seq => $seq));
			$m->[2]{data}{logentry} = { formatted => "codec $names[$ci] " . ('frame ' x 50) };
			push @{ $plan[$ci] }, [ $p, $seq, $json->encode($m) ];
		}
	}
}
my $plan_file = "$tmp/plan.json";
open(my $fh, '>', $plan_file) or die;
print $fh $json->encode(\@plan);
close $fh;
my ($ok, $out) = run_python(qq{
import json
from confluent_kafka import Producer
plan = json.load(open('$plan_file'))
names = json.loads('@{[ $json->encode(\@names) ]}')
res = []
for ci, msgs in enumerate(plan):
    got = []
    p = Producer({'bootstrap.servers': '$bootstrap', 'compression.type': names[ci],
                  'linger.ms': 500, 'enable.idempotence': True})
    p.list_topics('events', timeout=20)    # the leaders known: no message waits unassigned
    for part, seq, value in msgs:
        p.produce('events', value=value.encode(), key=str(seq), partition=part,
                  on_delivery=lambda err, m: got.append('ERR' if err else '%d:%d:%s' % (m.partition(), m.offset(), m.key().decode())))
    assert p.flush(30) == 0
    res.append(' '.join(sorted(got)))
print('\\n'.join(res))
}, 'the producers of each codec');
ok($ok, 'a producer per codec wrote its messages');
my @delivered = split /\n/, $out;
for my $ci (0 .. $#names)
{
	my $exp = join ' ', sort map { my ($p, $i) = @$_; "$p:" . (5 * $ci + $i) . ':' . (1000 * $ci + 100 * $p + $i) }
	  map { my $p = $_; map { [ $p, $_ ] } 0 .. 4 } 0, 1;
	is($delivered[$ci], $exp, "$names[$ci]: offsets " . (5 * $ci) . '..' . (5 * $ci + 4) . ' of both partitions');
	for my $p (0, 1)
	{
		my $first = 5 * $ci;
		my $last = $first + 4;
		is(codecs_of('events', $p, $first, $last), "$names[$ci]:$first-$last",
			"events [$p]: the broker stores offsets $first..$last as one $names[$ci] batch");
	}
}

# ---- broker-side: the helper writes uncompressed, the broker recompresses

for my $c (@codecs)
{
	my $file = "$tmp/$c.txt";
	open(my $fh, '>', $file) or die;
	print $fh SentryRelay::KafkaMock::format_produce_line("events-$c", 0, "k$_",
		event_message(seq => 5000 + $_)), "\n" for 0 .. 2;
	close $fh;
	is($kafka->produce_file($file), 3, "events-$c: 3 messages from the helper");
	my @b = stored_batches("events-$c", 0);
	is(join(' ', sort { $a cmp $b } keys %{ { map { $_->[2] => 1 } @b } }), $c,
		"events-$c: every batch the broker stored is $c");
}

# ---- the relay

my $node = relay_node('relay', $kafka);
create_errors_stream($node);
create_errors_stream($node, name => "s-$_", topic => "events-$_", consumer_group => "cg-$_")
  for @codecs;
ok(wait_until($node, q{SELECT count(*) = 6 FROM sentry_relay.partitions WHERE worker_pid IS NOT NULL}),
	'every partition of the five streams assigned');

# commit_step($codec, $offset): one commit-log batch in $codec: the followed
# group's entry for both partitions of events, and nine other groups' (for
# 'events' and for each events-<codec> topic, which those streams follow)
my $clog_batches = 0;
sub commit_step
{
	my ($codec, %off) = @_;
	my @entries;
	for my $t (sort keys %off)
	{
		for my $p (sort keys %{ $off{$t} })
		{
			push @entries, [ "$t:$p:snuba-consumers", $off{$t}{$p} ];
			push @entries, [ "$t:$p:other-$_", $off{$t}{$p} + 1000 ] for 1 .. 9;
		}
	}
	my $ef = "$tmp/entries.json";
	open(my $fh, '>', $ef) or die;
	print $fh $json->encode(\@entries);
	close $fh;
	my ($ok, $out) = run_python(qq{
import json, time
from confluent_kafka import Producer
p = Producer({'bootstrap.servers': '$bootstrap', 'compression.type': '$codec', 'linger.ms': 500})
p.list_topics('snuba-commit-log', timeout=20)    # the leader known: one batch
got = []
for key, off in json.load(open('$ef')):
    p.produce('snuba-commit-log', partition=0, key=key,
              value=json.dumps({'offset': off, 'orig_message_ts': time.time(), 'received_p99': None}),
              on_delivery=lambda err, m: got.append(-1 if err else m.offset()))
assert p.flush(30) == 0
print(min(got), max(got))
}, "commit-log entries in $codec");
	my ($first, $last) = split / /, $out;
	ok($ok && defined $last && $last - $first + 1 == @entries, "commit log: " . scalar(@entries)
		  . " entries in $codec at offsets $first..$last");
	is(codecs_of('snuba-commit-log', 0, $first, $last), "$codec:$first-$last",
		"commit log: the broker stores them as one $codec batch");
	$clog_batches++;
}

sub jobs
{
	my ($s) = @_;
	return qq{SELECT coalesce(string_agg(partition || ':' || "offset" || ':' || event_id, ' '
	  ORDER BY partition, "offset"), '') FROM sentry_relay.jobs WHERE stream = '$s'};
}
sub expect_jobs
{
	my ($upto) = @_;    # offsets below $upto of both partitions
	return join ' ', map {
		my $p = $_;
		map { sprintf('%d:%d:%032x', $p, $_, 1000 * int($_ / 5) + 100 * $p + $_ % 5) } 0 .. $upto - 1
	} 0, 1;
}

# a step per codec: the writer reaches the end of the previous codec's batch
# (none first), in a commit-log batch of this codec
for my $ci (0 .. $#codecs)
{
	my $upto = 5 * ($ci + 1);    # none .. codec $ci - 1 stored below this
	commit_step($codecs[$ci], events => { 0 => $upto, 1 => $upto },
		$ci == 0 ? (map { ("events-$_" => { 0 => 3 }) } @codecs) : ());
	my $exp = expect_jobs($upto);
	is(wait_for_value($node, jobs('errors'), $exp, 30), $exp,
		"after a $codecs[$ci] commit-log step: the jobs of offsets 0.." . ($upto - 1)
		  . " ($names[$ci] and before), nothing past the writer");
}
commit_step('none', events => { 0 => 25, 1 => 25 });
my $exp = expect_jobs(25);
is(wait_for_value($node, jobs('errors'), $exp, 30), $exp, 'the last (zstd) batch too: every job');
is(wait_for_value($node, q{SELECT string_agg(partition || ' ' || local_offset || ' ' || remote_offset || ' ' || state, ', '
  ORDER BY partition) FROM sentry_relay.partitions WHERE stream = 'errors'},
		'0 25 25 SYNCHRONIZED, 1 25 25 SYNCHRONIZED'),
	'0 25 25 SYNCHRONIZED, 1 25 25 SYNCHRONIZED', 'errors: synchronized at 25');
is(exactly_once($node, 'errors'), '50 50', 'errors: each job once');
is($node->safe_psql('postgres', q{SELECT string_agg(consumer_group || ':' || partition || ':' || "offset", ' '
  ORDER BY partition) FROM sentry_relay.remote_offsets WHERE stream = 'errors'}),
	'snuba-consumers:0:25 snuba-consumers:1:25',
	'only the followed group\'s entries are kept (the nine other groups ignored)');

for my $c (@codecs)
{
	my $e = join ' ', map { sprintf('0:%d:%032x', $_, 5000 + $_) } 0 .. 2;
	is(wait_for_value($node, jobs("s-$c"), $e, 30), $e, "s-$c: the three jobs of the $c topic");
	is(exactly_once($node, "s-$c"), '3 3', "s-$c: each once");
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.dead_letters}), '0',
	'no dead letter: every codec decoded');
is($node->safe_psql('postgres', q{SELECT sum(jobs) || ' ' || sum(dead_letters) FROM sentry_relay.workers}),
	'62 0', 'the workers count 62 jobs, no dead letter');

$node->stop;
ok($kafka->stop, 'the helper and the cluster stop');
note(sprintf('104 took %.1f s', time - $t_start));
done_testing();
