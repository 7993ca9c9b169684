# brokers: real
# 103_kafka_failover.pl - leader failover on a three-node cluster.  The
# events topic (6 partitions) and the commit log are replicated three times
# with min.insync.replicas 2.  While a producer writes events to every
# partition and a writer (a read_committed consumer, as Snuba) follows them
# and advances the commit log, the relay (two workers) drains the stream;
# then the JVM that leads the most partitions is killed (SIGKILL).  The
# leaderships move to the two other nodes, and the relay must go on: every
# message is enqueued exactly once (each (partition, offset) once, and every
# offset the producer got a delivery report for is there), and every
# partition reaches SYNCHRONIZED at the writer's offset.  Then the node
# starts again and the relay carries on.  Skipped only when java is absent.
use strict;
use warnings;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SentryRelay::KafkaReal;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here (test/setup-deps.sh installs it)'
  unless SentryRelay::KafkaReal::available();

my $t_start = time;
my $P = 6;
my $kafka = SentryRelay::KafkaReal->new(nodes => 3);
my $bootstrap = $kafka->bootstrap;
note(sprintf('the 3-node cluster started in %.1f s', $kafka->start_seconds));
$kafka->create_events_topic('events', $P, 'min.insync.replicas' => 2);
$kafka->create_commit_log_topic('snuba-commit-log', 'min.insync.replicas' => 2);
my $md = $kafka->topic_metadata('events');
is(join(' ', map { scalar @{ $md->{$_}{isr} } } 0 .. $P - 1), join(' ', (3) x $P),
	'events: every partition has three replicas in sync');
is($kafka->topic_config('events', 'min.insync.replicas'), '2', 'events: min.insync.replicas 2');

my $node = relay_node('relay', $kafka);
create_errors_stream($node, workers => 2);
ok(wait_until($node, qq{SELECT count(*) = $P FROM sentry_relay.partitions
  WHERE stream = 'errors' AND worker_pid IS NOT NULL}, 60),
	"all $P partitions assigned to the two workers");

# ---- the producer and the writer, in the background

my $tmp = PostgreSQL::Test::Utils::tempdir();
my ($prod_stop, $prod_out) = ("$tmp/producer.stop", "$tmp/producer.out");
my ($wr_stop, $wr_out) = ("$tmp/writer.stop", "$tmp/writer.out");

# Events: one v2 insert per partition per round, every 20 ms, until the stop
# file exists; seq = partition * 1000000 + round.  Idempotent (acks=all),
# so that a retried send during the failover is written once.  Prints each
# delivered partition:offset:seq, and the failures.
my $producer = IPC::Run::start([ '/usr/bin/python3', '-c', qq{
import json, os, sys, time
from confluent_kafka import Producer
p = Producer({'bootstrap.servers': '$bootstrap', 'enable.idempotence': True,
              'linger.ms': 5, 'message.timeout.ms': 120000})
out, failed = [], []
def report(err, msg):
    if err is not None:
        failed.append('%d %s' % (msg.partition(), err))
    else:
        out.append('%d:%d:%d' % (msg.partition(), msg.offset(), int(msg.key())))
r = 0
while not os.path.exists('$prod_stop'):
    for part in range($P):
        seq = part * 1000000 + r
        ev = {'event_id': '%032x' % seq, 'project_id': 1, 'group_id': 100,
              'primary_hash': '49f68a5c8493ec2c0bf489821c21fc3b', 'message': 'boom',
              'platform': 'python', 'datetime': '2024-02-13T20:52:46.831390Z',
              'data': {'n': seq}}
        st = {'is_new': True, 'is_regression': False, 'is_new_group_environment': False,
              'queue': 'post_process_errors', 'skip_consume': False, 'group_states': None}
        p.produce('events', value=json.dumps([2, 'insert', ev, st]), key=str(seq),
                  partition=part, on_delivery=report)
    r += 1
    p.poll(0)
    time.sleep(0.02)
left = p.flush(120)
for l in out:
    print(l)
for f in failed:
    print('FAILED', f)
print('UNDELIVERED', left)
} ], '<', \undef, '>', $prod_out, '2>', "$tmp/producer.err", IPC::Run::timeout(600));

# The writer: consumes events (read_committed, as Snuba) and every 100 ms
# writes a commit-log entry for each partition that moved (offset: the last
# message + 1).  Once the stop file exists and it has reached every high
# watermark, it writes its last entries and exits, printing its offsets.
# The watermarks come in the stop file, read by a new client: librdkafka
# 2.0.2's watermark query retries for ever on a cached leader that was
# killed, which once held CI for an hour here.  It gives up after 120 s,
# naming the partitions it could not read to their end.
my $writer = IPC::Run::start([ '/usr/bin/python3', '-c', qq{
import json, os, sys, time
from confluent_kafka import Consumer, Producer, TopicPartition
c = Consumer({'bootstrap.servers': '$bootstrap', 'group.id': 'snuba-consumers',
              'enable.auto.commit': False, 'isolation.level': 'read_committed'})
c.assign([TopicPartition('events', part, 0) for part in range($P)])
pr = Producer({'bootstrap.servers': '$bootstrap', 'enable.idempotence': True,
               'linger.ms': 0, 'message.timeout.ms': 120000})
nxt, sent, errors = {}, {}, []
def report(err, msg):
    if err is not None:
        errors.append(str(err))
def commit():
    for part, o in sorted(nxt.items()):
        if sent.get(part) != o:
            pr.produce('snuba-commit-log', partition=0, on_delivery=report,
                       key='events:%d:snuba-consumers' % part,
                       value=json.dumps({'offset': o, 'orig_message_ts': time.time(),
                                         'received_p99': None}))
            sent[part] = o
    pr.poll(0)
last, hw, deadline = 0, None, None
while True:
    for m in c.consume(1000, 0.05):
        if not m.error():
            nxt[m.partition()] = m.offset() + 1
    if time.time() - last > 0.1:
        commit()
        last = time.time()
    if hw is None and os.path.exists('$wr_stop'):
        words = open('$wr_stop').read().split()
        if len(words) == $P:
            hw = [int(w) for w in words]
            deadline = time.time() + 120
    if hw is not None:
        if all(nxt.get(part, 0) >= hw[part] for part in range($P)):
            commit()
            break
        if time.time() > deadline:
            print('TIMEOUT', ' '.join('%d:%d/%d' % (part, nxt.get(part, 0), hw[part])
                                      for part in range($P)))
            sys.exit(3)
print('UNDELIVERED', pr.flush(120))
print('ERRORS', len(errors), ' '.join(errors[:3]))
print(' '.join('%d:%d' % (part, nxt.get(part, 0)) for part in range($P)))
} ], '<', \undef, '>', $wr_out, '2>', "$tmp/writer.err", IPC::Run::timeout(600));

# a test that dies leaves no Python behind
END
{
	local $?;
	for my $h (grep { defined } $producer, $writer)
	{
		eval { $h->kill_kill(grace => 2) if $h->pumpable; 1 };
	}
}

# ---- the failover

my $jobs_sql = q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'errors'};
ok(wait_until($node, "SELECT ($jobs_sql) >= 300", 60),
	'the relay drains: 300 jobs while the producer and the writer run');

# the node that leads the most partitions of events
my %led;
$md = $kafka->topic_metadata('events');
push @{ $led{ $md->{$_}{leader} } }, $_ for 0 .. $P - 1;
my ($victim) = sort { @{ $led{$b} } <=> @{ $led{$a} } || $a <=> $b } keys %led;
note("leaders: " . join(', ', map { "$_ => [@{ $led{$_} }]" } sort keys %led));
ok($victim >= 1 && $victim <= 3, "node $victim leads partitions @{ $led{$victim} } of events");
my $before_kill = $node->safe_psql('postgres', $jobs_sql);
my %local_at_kill = map { split / / } split /\n/, $node->safe_psql('postgres', q{
SELECT partition || ' ' || coalesce(local_offset, 0) FROM sentry_relay.partitions WHERE stream = 'errors'});
my $log_offset = -s $node->logfile;
my $t_kill = time;
$kafka->kill_node($victim);
is($kafka->status->{$victim}, 'down', "node $victim killed (SIGKILL)");

# the controller fences it after its session (4 s) and moves the leaderships
my $moved = '';
{
	my $deadline = time + 60;
	while (time < $deadline)
	{
		my $m = eval { $kafka->topic_metadata('events') };
		if ($m && !grep { $m->{$_}{leader} == $victim || $m->{$_}{leader} < 0 } 0 .. $P - 1)
		{
			$moved = join ' ', map { "$_:$m->{$_}{leader}" } 0 .. $P - 1;
			last;
		}
		usleep(200_000);
	}
}
ok($moved ne '', sprintf('the leaderships moved off node %d in %.1f s (%s)', $victim,
		time - $t_kill, $moved));

# the relay goes on while the producer writes on
ok(wait_until($node, "SELECT ($jobs_sql) >= $before_kill + 600", 60),
	'the relay goes on: 600 more jobs after the kill');

# stop the producer, then the writer once it has read everything
open(my $fh, '>', $prod_stop) or die;
close $fh;
ok(eval { $producer->finish }, 'the producer exited cleanly')
  or diag(slurp_file("$tmp/producer.err"));
my @lines = split /\n/, slurp_file($prod_out);
is((grep { /^FAILED/ } @lines), 0, 'the producer had no delivery failure');
is((grep { /^UNDELIVERED 0$/ } @lines), 1, 'nothing left undelivered');
my (%seq_at, %dup);
for (grep { /^\d+:\d+:\d+$/ } @lines)
{
	my ($p, $o, $s) = split /:/;
	$dup{"$p:$o"}++ if exists $seq_at{"$p:$o"};
	$seq_at{"$p:$o"} = $s;
}
is(scalar keys %dup, 0, 'no two deliveries at one offset');
# the helper's end_offsets (its producer's watermark query) can hang while a
# node is down: a new client asks instead
my ($wok, $wm) = run_python(qq{
from confluent_kafka import Consumer, TopicPartition
c = Consumer({'bootstrap.servers': '$bootstrap', 'group.id': 'wm'})
print(' '.join(str(c.get_watermark_offsets(TopicPartition('events', p), timeout=20)[1])
               for p in range($P)))
c.close()
}, 'reading the high watermarks');
my @hw = split / /, $wm;
is(scalar @hw, $P, "high watermarks of the $P partitions: @hw");
my $total = scalar keys %seq_at;
note("produced $total messages; high watermarks @hw");
is(join(' ', map { my $p = $_; scalar grep { /^$p:/ } keys %seq_at } 0 .. $P - 1), "@hw",
	'the delivered offsets are 0 .. high watermark - 1 on every partition (nothing written twice)');

open($fh, '>', "$wr_stop.tmp") or die;
print $fh "@hw\n";
close $fh;
rename("$wr_stop.tmp", $wr_stop) or die;
ok(eval { $writer->finish }, 'the writer caught up and exited')
  or diag(slurp_file("$tmp/writer.err") . slurp_file($wr_out));
my @w = split /\n/, slurp_file($wr_out);
is($w[0], 'UNDELIVERED 0', 'the writer\'s commit-log entries were all delivered');
is($w[2], join(' ', map { "$_:$hw[$_]" } 0 .. $P - 1), 'the writer reached every high watermark');

# ---- the relay: everything once, SYNCHRONIZED at the writer's offsets

my $sync = join(', ', map { "$_ $hw[$_] $hw[$_] SYNCHRONIZED" } 0 .. $P - 1);
is(wait_for_value($node, q{SELECT string_agg(partition || ' ' || local_offset || ' ' || remote_offset
  || ' ' || state, ', ' ORDER BY partition) FROM sentry_relay.partitions WHERE stream = 'errors'},
		$sync, 90), $sync, 'every partition SYNCHRONIZED at the writer\'s offset');
is(exactly_once($node, 'errors'), "$total $total", "$total jobs, each (partition, offset) once");
is(join(' ', map { $hw[$_] > $local_at_kill{$_} + 50 ? 'moved' : "stuck at $local_at_kill{$_}" } @{ $led{$victim} }),
	join(' ', ('moved') x @{ $led{$victim} }),
	"the partitions node $victim led moved on after the kill, from their new leaders");
ok($node->safe_psql('postgres', q{SELECT sum(kafka_errors) > 0 FROM sentry_relay.workers
  WHERE stream = 'errors'}) eq 't', 'the workers saw the broker go (kafka_errors)');
my $mismatch = 0;
my $rows = $node->safe_psql('postgres', q{SELECT partition || ':' || "offset" || ' ' || event_id
  FROM sentry_relay.jobs WHERE stream = 'errors'});
my %seen;
for (split /\n/, $rows)
{
	my ($po, $eid) = split / /;
	$seen{$po} = 1;
	$mismatch++ unless exists $seq_at{$po} && $eid eq sprintf('%032x', $seq_at{$po});
}
is($mismatch, 0, 'every job is the message delivered at its offset');
is(scalar(grep { !$seen{$_} } keys %seq_at), 0, 'every delivered message has its job');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.dead_letters}), '0',
	'no dead letter');
my $w_after = $node->safe_psql('postgres', q{SELECT string_agg(worker || ' ' || status || ' ' || restarts
  || ' ' || coalesce(last_error, '-'), E'\n' ORDER BY worker) FROM sentry_relay.workers WHERE stream = 'errors'});
note("workers after the failover:\n$w_after");
like($w_after, qr/^0 running 0 .*\n1 running 0 /, 'both workers run, neither restarted');
ok(!$node->log_contains(qr/terminated by signal|sentry_relay worker.*exited with exit code [1-9]/,
		$log_offset), 'no worker crashed or exited with an error');

# ---- the node starts again; the relay carries on

$kafka->start_node($victim);
is($kafka->status->{$victim}, 'up', "node $victim is up again");
{
	my $deadline = time + 60;
	my $in_sync = 0;
	while (time < $deadline)
	{
		my $m = eval { $kafka->topic_metadata('events') };
		last if $m && ($in_sync = !grep { @{ $m->{$_}{isr} } != 3 } 0 .. $P - 1);
		usleep(200_000);
	}
	ok($in_sync, "node $victim is back in every partition's ISR");
}
my $file = "$tmp/after.txt";
open($fh, '>', $file) or die;
print $fh SentryRelay::KafkaMock::format_produce_line('events', $_, "a$_",
	event_message(seq => 9000000 + $_)), "\n" for 0 .. $P - 1;
close $fh;
is($kafka->produce_file($file), $P, 'one more message per partition');
commit_log($kafka, 'events', $_, 'snuba-consumers', $hw[$_] + 1) for 0 .. $P - 1;
my $sync2 = join(', ', map { "$_ " . ($hw[$_] + 1) . ' SYNCHRONIZED' } 0 .. $P - 1);
is(wait_for_value($node, q{SELECT string_agg(partition || ' ' || local_offset || ' ' || state, ', '
  ORDER BY partition) FROM sentry_relay.partitions WHERE stream = 'errors'}, $sync2, 60),
	$sync2, 'after the restart every partition moves on by one, SYNCHRONIZED');
is(exactly_once($node, 'errors'), ($total + $P) . ' ' . ($total + $P), 'still each job once');

$node->stop;
ok($kafka->stop, 'the helper and the cluster stop');
note(sprintf('103 took %.1f s', time - $t_start));
done_testing();
