# 034_decode_thread.pl - the decode thread (src/decode_ahead.c) runs ahead
# of the worker's main thread, so when the main thread pauses a partition
# and seeks it back (its hold is full), or resumes it, the thread's queue
# already holds that partition's next messages, read before the seek.
# They must never be relayed: one would look like a gap after the seek and
# move the partition past messages it never relayed.
#
# The setting that makes the main thread pause and resume partitions again
# and again while the thread's queue holds their next messages: a hold of
# 512 kB (queue_buffer at its minimum) for 8 kB messages kept with their
# bodies, fetches of about two messages per partition, batches of one
# message, two partitions whose writer moves in steps of 30 (they fill the
# hold, are paused, and resume as it drains) and two whose writer is far
# ahead (their messages pass one per batch).  Every offset must become
# exactly one job, in order, and no partition may report a resume away from
# its stored offset.
#
# Two things guard against those messages: the main thread ignores messages
# of a paused partition, and sr_ahead_forget drops them from the queue at
# the seek.  In this test the first is enough: a build without the second
# still passes (checked when the test was written), because the queue is
# drained before each resume.  The second covers a resume that comes before
# that, which no test here provokes reliably.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SentryRelay::KafkaMock;
use SentryRelay::Test;

my $P = 4;
my $N = 150;     # messages per gated partition, 8 kB each
my $M = 2000;    # messages per open partition, small
my $kafka = SentryRelay::KafkaMock->new(brokers => 1);
$kafka->create_topic('dt-events', $P);
$kafka->create_topic('dt-clog', 1);

my $node = relay_node('decode', $kafka,
	'sentry_relay.queue_buffer' => '1024',
	'sentry_relay.batch_size' => '1');

sub states
{
	return $node->safe_psql('postgres', q{
SELECT string_agg(partition || ':' || coalesce(local_offset::text, '-') || ':'
                  || coalesce(remote_offset::text, '-') || ':' || state, ' ' ORDER BY partition)
  FROM sentry_relay.partitions WHERE stream = 'dt'});
}

# small fetches per partition, so that the thread's queue interleaves the
# partitions finely
my $opts = fast_group_options();
$opts =~ s/"kafka": \{/"keep_body": true, "kafka": {"max.partition.fetch.bytes": "20000", / or die 'no kafka options';
create_errors_stream($node, name => 'dt', topic => 'dt-events',
	commit_log => 'dt-clog', consumer_group => 'cg-dt', options => $opts);
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'dt' AND status = 'running'}),
	'worker running');
my @gated = (0, 1);
my @open = (2, 3);
commit_log_to_parts($kafka, 'dt-events', 'dt-clog', 0, @gated);
commit_log_to_parts($kafka, 'dt-events', 'dt-clog', $M, @open);
ok(wait_until($node, qq{SELECT count(*) = $P FROM sentry_relay.remote_offsets WHERE stream = 'dt'}),
	'the commit log is followed for every partition');

# the messages, partitions interleaved
my @msgs;
for my $i (0 .. $M - 1)
{
	for my $p (0 .. $P - 1)
	{
		my $open = grep { $_ == $p } @open;
		next if !$open && $i >= $N;
		my $m = event_message(seq => $p * 10000 + $i);
		$m =~ s/"message":"boom"/'"message":"' . ('y' x 8000) . '"'/e or die 'no message field'
		  unless $open;
		push @msgs, [ 'dt-events', $p, "k$p-$i", $m ];
	}
}
raw_produce_file($kafka, \@msgs);
ok(wait_until($node, q{SELECT coalesce(sum(gated), 0) >= 2 FROM sentry_relay.workers WHERE stream = 'dt'}),
	'the hold filled up and partitions were paused');
is(job_offsets($node, 'dt', 0) . '/' . job_offsets($node, 'dt', 1), '/',
	'nothing of the gated partitions enqueued past the gate');

# the writer of the gated partitions moves in steps of 30, each step once
# the worker has seen the one before
my $steps = 0;
for (my $to = 30; $to <= $N; $to += 30)
{
	commit_log_to_parts($kafka, 'dt-events', 'dt-clog', $to, @gated);
	$steps++ if wait_until($node, qq{SELECT count(*) = 2 FROM sentry_relay.remote_offsets
	                                 WHERE stream = 'dt' AND partition IN (0, 1) AND "offset" >= $to});
}
is($steps, $N / 30, 'each step of the writer was seen');

my $want = join(' ', map { my $n = $_ < 2 ? $N : $M; "$_:$n:$n:SYNCHRONIZED" } 0 .. $P - 1);
ok(wait_until($node, qq{SELECT string_agg(partition || ':' || local_offset || ':' || remote_offset || ':' || state,
                        ' ' ORDER BY partition) = '$want' FROM sentry_relay.partitions WHERE stream = 'dt'}, 180),
	"every partition synchronized at $N") or diag(states());
my $total = 2 * $N + 2 * $M;
is(exactly_once($node, 'dt'), "$total $total", 'every message is one job, none twice');
for my $p (0 .. $P - 1)
{
	my $n = $p < 2 ? $N : $M;
	is(job_offsets($node, 'dt', $p), join(',', 0 .. $n - 1), "partition $p: offsets 0..@{[ $n - 1 ]}, in order");
}
ok($node->safe_psql('postgres', q{SELECT sum(gated) FROM sentry_relay.workers WHERE stream = 'dt'}) >= $P,
	'partitions waited at the gate again and again');
my $log = slurp_file($node->logfile);
my @resumed = $log =~ /(partition \d+ resumed at offset [^\n]*)/g;
is(scalar(@resumed), 0, 'no partition resumed away from its stored offset')
  or diag(join("\n", @resumed[ 0 .. ($#resumed < 4 ? $#resumed : 4) ]));

$node->stop;
done_testing();
