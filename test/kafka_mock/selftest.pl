#!/usr/bin/perl
# selftest.pl - checks that sr_kafka_mock and SentryRelay::KafkaMock work,
# using kcat as an independent Kafka client.
#
# Run: make -C test/kafka_mock && PERL5LIB=test/perl perl test/kafka_mock/selftest.pl
#  (or: make -C test/kafka_mock check)

use strict;
use warnings;

use File::Temp ();
use IPC::Run ();
use JSON::PP ();
use Test::More;
use Time::HiRes ();

use SentryRelay::KafkaMock;

plan skip_all => 'kcat is not installed'
  unless grep { -x "$_/kcat" } split /:/, $ENV{PATH};

# Run kcat with a hard timeout; returns (success, stdout, stderr).
sub kcat
{
	my @args = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run([ 'kcat', @args ], '<', \undef, '>', \$out, '2>', \$err,
			IPC::Run::timeout(60));
	};
	return ($ok, $out, $err . ($@ // ''));
}

# Consume a whole topic as kcat -J lines, sorted by partition and offset.
# kcat prints bytes >= 0x80 raw and escapes the rest, so decoding without
# ->utf8 gives back the original bytes.
sub consume_all
{
	my ($k, $topic, @extra) = @_;
	my ($ok, $out, $err) = kcat('-b', $k->bootstrap, '-C', '-t', $topic,
		'-o', 'beginning', '-e', '-J', '-q', @extra);
	ok($ok, "kcat consumed $topic") or diag($err);
	my $json = JSON::PP->new;
	my @recs = map { $json->decode($_) } grep { /\S/ } split /\n/, $out;
	return sort { $a->{partition} <=> $b->{partition} || $a->{offset} <=> $b->{offset} } @recs;
}

# Poll $check until it returns true or $secs pass.
sub wait_until
{
	my ($secs, $check) = @_;
	my $deadline = Time::HiRes::time() + $secs;
	while (Time::HiRes::time() < $deadline)
	{
		return 1 if $check->();
		Time::HiRes::sleep(0.2);
	}
	return 0;
}

my $k = SentryRelay::KafkaMock->new(brokers => 1);
like($k->bootstrap, qr/^127\.0\.0\.1:\d+$/, 'bootstrap address: ' . $k->bootstrap);
ok($k->ping, 'ping');

# --- create a topic, produce with headers, read back with kcat
$k->create_topic('selftest', 2);
my @msgs = (
	[ 0, 'k1', 'value one', { trace => 'abc', empty => '' } ],
	[ 0, undef, "bin\x00\xff\n\"q\"", [ [ 'nullh', undef ], [ 'dup', 'a' ], [ 'dup', 'b' ] ] ],
	[ 1, 'k3', '', undef ],
);
my @offsets = map { $k->produce('selftest', @$_) } @msgs;
is_deeply(\@offsets, [ 0, 1, 0 ], 'produce returns the offsets');

my @recs = consume_all($k, 'selftest');
is(scalar @recs, 3, 'kcat read 3 messages');
is_deeply([ map { [ $_->{partition}, $_->{offset} ] } @recs ],
	[ [ 0, 0 ], [ 0, 1 ], [ 1, 0 ] ], 'partitions and offsets');
is($recs[0]{key}, 'k1', 'key');
is($recs[0]{payload}, 'value one', 'value');
is_deeply($recs[0]{headers}, [ 'empty', '', 'trace', 'abc' ], 'headers (hash, sorted)');
ok(!defined $recs[1]{key}, 'NULL key');
is($recs[1]{payload}, "bin\x00\xff\n\"q\"", 'binary value round trip');
is_deeply($recs[1]{headers}, [ 'nullh', undef, 'dup', 'a', 'dup', 'b' ],
	'ordered, repeated and NULL headers');
is($recs[2]{payload}, '', 'empty (non-NULL) value');
ok(!exists $recs[2]{headers} || !@{ $recs[2]{headers} }, 'no headers');

# --- Sentry commit log message
my ($ck, $cv) = SentryRelay::KafkaMock::commit_log_message('events', 0, 'snuba-consumers',
	12346, orig_ts => 1707857566.83139, p99 => 1707857569.83139);
is($ck, 'events:0:snuba-consumers', 'commit log key');
is($cv, '{"offset": 12346, "orig_message_ts": 1707857566.83139, "received_p99": 1707857569.83139}',
	'commit log value');
is_deeply(JSON::PP->new->decode($cv),
	{ offset => 12346, orig_message_ts => 1707857566.83139, received_p99 => 1707857569.83139 },
	'commit log value is valid JSON');
$k->create_topic('snuba-commit-log', 1);
is($k->produce('snuba-commit-log', 0, $ck, $cv), 0, 'commit log message produced');

# --- bad commands are answered with ERR, and the helper keeps going
for my $bad ('bogus', 'produce selftest 0 zz 00', 'produce selftest', 'create_topic x y',
	'push_errors 1 2 6 7 8', 'end_offsets selftest x', 'produce selftest 0 00 00 noequals')
{
	eval { $k->command($bad) };
	like($@, qr/failed: /, "ERR for \"$bad\"");
}
ok($k->ping, 'still alive after bad commands');

# --- bulk load with produce_file, check end offsets
my ($lo0, $hi0) = $k->end_offsets('selftest', 0);
my ($lo1, $hi1) = $k->end_offsets('selftest', 1);
is_deeply([ $lo0, $hi0, $lo1, $hi1 ], [ 0, 2, 0, 1 ], 'end_offsets before bulk load');

my $n = 10_000;
my $tmp = File::Temp->new(SUFFIX => '.txt');
print $tmp "# comment lines and blank lines are skipped\n\n";
for my $i (1 .. $n)
{
	print $tmp SentryRelay::KafkaMock::format_produce_line('selftest', $i % 2, "key$i",
		qq({"event_id": $i}), { seq => $i }), "\n";
}
close $tmp;
my $t0 = Time::HiRes::time();
is($k->produce_file($tmp->filename), $n, "produce_file delivered $n messages");
note(sprintf('produce_file took %.2f s', Time::HiRes::time() - $t0));
is_deeply([ $k->end_offsets('selftest', 0) ], [ 0, $hi0 + $n / 2 ], 'end_offsets p0 after bulk');
is_deeply([ $k->end_offsets('selftest', 1) ], [ 0, $hi1 + $n / 2 ], 'end_offsets p1 after bulk');

my $bad = File::Temp->new(SUFFIX => '.txt');
print $bad "selftest 0 00 00\nselftest x 00 00\n";
close $bad;
eval { $k->produce_file($bad->filename) };
like($@, qr/line 2: bad partition/, 'produce_file reports the bad line');
is_deeply([ $k->end_offsets('selftest', 0) ], [ 0, $hi0 + $n / 2 ], '... and produces nothing');

# --- consumer group through kcat -G (short session timeout, as the mock needs)
{
	my ($ok, $out, $err) = kcat('-b', $k->bootstrap, '-G', 'selftest-group', 'snuba-commit-log',
		'-X', 'session.timeout.ms=6000', '-X', 'heartbeat.interval.ms=500',
		'-X', 'auto.offset.reset=earliest', '-e', '-q', '-f', '%t %p %o %k\n');
	ok($ok, 'kcat consumer group ran') or diag($err);
	is($out, "snuba-commit-log 0 0 events:0:snuba-consumers\n", 'consumer group got the message');
}

# --- fault injection
$k->push_errors(0, 2, 6);    # the next 2 Produce requests: NOT_LEADER_FOR_PARTITION
is($k->produce('selftest', 0, 'after', 'errors'), $hi0 + $n / 2,
	'produce retried through pushed errors, offsets stay contiguous');

$k->rtt(1, 300);
$t0 = Time::HiRes::time();
$k->produce('selftest', 1, 'slow', 'rtt');
my $took = Time::HiRes::time() - $t0;
cmp_ok($took, '>=', 0.25, sprintf('rtt adds latency (%.2f s)', $took));
$k->rtt(1, 0);

ok($k->broker_down(1), 'broker_down 1');
my ($ok, $out, $err) = kcat('-L', '-b', $k->bootstrap, '-m', '2');
ok(!$ok, 'metadata request fails while the broker is down');
eval { $k->broker_down(99) };
like($@, qr/failed:/, 'broker_down of an unknown broker is an ERR');
ok($k->broker_up(1), 'broker_up 1');
ok(wait_until(30, sub { (kcat('-L', '-b', $k->bootstrap, '-m', '2'))[0] }),
	'metadata works again after broker_up');
is($k->produce('selftest', 0, 'back', 'up'), $hi0 + $n / 2 + 1, 'produce works after broker_up');

ok($k->stop, 'stop: quit and clean exit');
eval { $k->ping };
like($@, qr/not running/, 'commands after stop die');

# --- a 3-broker cluster, SIGTERM exits cleanly
my $k3 = SentryRelay::KafkaMock->new(brokers => 3);
is(scalar(split /,/, $k3->bootstrap), 3, '3 brokers: ' . $k3->bootstrap);
$k3->create_topic('multi', 3, 3);
$k3->set_leader('multi', 0, 2);
$k3->broker_down(1);
is($k3->produce('multi', 0, undef, 'led by broker 2'), 0, 'produce while another broker is down');
$k3->broker_up(1);
$k3->signal('TERM');
is($k3->wait_exit(20), 0, 'SIGTERM: clean exit, status 0');

done_testing();
