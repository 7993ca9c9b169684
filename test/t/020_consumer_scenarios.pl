# 020_consumer_scenarios.pl - the five scenarios of Sentry's
# tests/sentry/eventstream/kafka/test_consumer.py (the synchronized consumer's
# behavioural spec), ported to the relay and observed through
# sentry_relay.jobs, sentry_relay.partitions and sentry_relay.workers:
#
#   1. start from partition start       (no committed offset: 'earliest')
#   2. start from committed offset      (the consumer group's Kafka offset)
#   3. rebalance from partition start   (same server: alter_stream workers => 2)
#   4. rebalance from committed offset  (a second PostgreSQL server joins)
#   5. rebalance from uncommitted offset (the consumer group has no offset
#      in Kafka for what the first server enqueued; a second server re-reads
#      from the partition start, and the first server takes the partition
#      back from its table's offset, not from Kafka)
#
# In the original, "a message is received" by a consumer; here it means one
# job row for that (partition, offset).  Each scenario has its own topics,
# writer group and consumer group, and its own PostgreSQL node(s).
#
# brokers: mock real
#
# On the mock, scenario 5 makes every Kafka offset commit fail (injected
# OffsetCommit errors, which a real broker cannot do); on a real broker the
# first server's offsets reach Kafka and are deleted from the group while
# its stream is stopped, so that the first server restarts from its table
# and the group has nothing committed.  Every other step is the same on
# both brokers.
use strict;
use warnings;
use IPC::Run ();
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SentryRelay::Kafka;
use SentryRelay::Test;

# ---------------------------------------------------------------------------
# helpers

sub sql { return $_[0]->safe_psql('postgres', $_[1]) }

# "p:o,p:o,..." of the stream's jobs, ordered.
sub jobs_sql
{
	my ($stream, $where) = @_;
	$where = $where ? "AND $where" : '';
	return qq{SELECT coalesce(string_agg(partition || ':' || "offset", ',' ORDER BY partition, "offset"), '')
	            FROM sentry_relay.jobs WHERE stream = '$stream' $where};
}

# "local remote state" of one partition ('-' for NULL).
sub part_sql
{
	my ($stream, $p) = @_;
	return qq{SELECT coalesce(local_offset::text, '-') || ' ' || coalesce(remote_offset::text, '-') || ' ' || state
	            FROM sentry_relay.partitions WHERE stream = '$stream' AND partition = $p};
}

# "p=local/remote/state" of every partition of the stream, one line each.
sub parts_sql
{
	my ($stream) = @_;
	return qq{SELECT string_agg(partition || '=' || coalesce(local_offset::text, '-') || '/'
	                            || coalesce(remote_offset::text, '-') || '/' || state, E'\\n' ORDER BY partition)
	            FROM sentry_relay.partitions WHERE stream = '$stream'};
}

# Partitions held by the stream's workers: "pid:p,p pid:p" ordered by the
# first partition; '' if none.
sub held_sql
{
	my ($stream) = @_;
	return qq{SELECT coalesce(string_agg(pid || ':' || array_to_string(partitions, ','), ' ' ORDER BY partitions), '')
	            FROM sentry_relay.workers WHERE stream = '$stream' AND status = 'running' AND cardinality(partitions) > 0};
}

# { partition => pid } from the workers view.
sub owners
{
	my ($node, $stream) = @_;
	my %o;
	for my $w (split / /, sql($node, held_sql($stream)))
	{
		my ($pid, $parts) = split /:/, $w;
		$o{$_} = $pid for split /,/, $parts;
	}
	return \%o;
}

# The partitions' worker_pid agree with the workers view.
sub owners_consistent_sql
{
	my ($stream) = @_;
	return qq{SELECT count(*) > 0 AND bool_and(p.worker_pid IS NOT DISTINCT FROM w.pid)
	            FROM sentry_relay.workers w, unnest(w.partitions) AS wp(partition)
	            JOIN sentry_relay.partitions p ON p.partition = wp.partition
	           WHERE w.stream = '$stream' AND p.stream = '$stream'};
}

# Exactly once, and nothing at or past the remote offset.
sub check_jobs_invariants
{
	my ($node, $stream, $label) = @_;
	is(sql($node, qq{SELECT count(*) = count(DISTINCT (partition, "offset"))
	                   FROM sentry_relay.jobs WHERE stream = '$stream'}),
		't', "$label: each message enqueued once");
	is(sql($node, qq{SELECT count(*) FROM sentry_relay.jobs j
	                   LEFT JOIN sentry_relay.partitions p ON p.stream = j.stream AND p.partition = j.partition
	                  WHERE j.stream = '$stream' AND (p.remote_offset IS NULL OR j."offset" >= p.remote_offset)}),
		'0', "$label: no job at or past the remote offset");
}

# The job at (p, o) carries the event produced with sequence number $seq.
sub check_event
{
	my ($node, $stream, $p, $o, $seq, $label) = @_;
	is(sql($node, qq{SELECT event_id FROM sentry_relay.jobs WHERE stream = '$stream' AND partition = $p AND "offset" = $o}),
		sprintf('%032x', $seq), "$label: job $p:$o is the event produced at that position");
}

sub stream
{
	my ($node, $name, %o) = @_;
	create_errors_stream($node, name => $name, topic => "$name-events",
		commit_log => "$name-clog", groups => ["$name-writer"],
		consumer_group => "$name-pp", %o);
}

# The writer commits $offset for ($name-events, $p) on $name-clog.
sub writer_commit
{
	my ($kafka, $name, $p, $offset) = @_;
	commit_log($kafka, "$name-events", $p, "$name-writer", $offset, commit_log_topic => "$name-clog");
}

sub topics
{
	my ($kafka, $name, $parts) = @_;
	$kafka->create_events_topic("$name-events", $parts);
	$kafka->create_commit_log_topic("$name-clog");
}

# The original produces message i to partition i % 2 (two partitions): one
# message at a time so offsets are known: (p, o) holds sequence 2 * o + p.
sub produce_alternating
{
	my ($kafka, $topic, $from, $to) = @_;
	produce_events($kafka, $topic, $_ % 2, 1, first => $_) for $from .. $to;
}

# Deadline of each wait: a rebalance with the mock takes up to ~6 s.
my $TIMEOUT = 30;

# is() / ok() on a polled value; they return the test's result, so that a
# scenario can stop at a failed precondition instead of timing out on every
# later step.
sub wait_is
{
	my ($node, $sql, $want, $name) = @_;
	return is(wait_for_value($node, $sql, $want, $TIMEOUT), $want, $name);
}

sub wait_ok
{
	my ($node, $sql, $name) = @_;
	return ok(wait_until($node, $sql, $TIMEOUT), $name);
}

# No worker failed or restarted, and none repositioned a partition.
sub check_server
{
	my ($node, $stream, $label) = @_;
	my @bad = grep {
		/\b(?:ERROR|PANIC):|resumed at offset|moved backwards|ahead of the writer|moved by another worker/
		  || (/\bFATAL:/ && !/due to administrator command/)
	} split /\n/, slurp_file($node->logfile);
	is(scalar(@bad), 0, "$label: no error, restart or repositioning in the server log")
	  or diag(join("\n", @bad[ 0 .. ($#bad < 9 ? $#bad : 9) ]));
	is(sql($node, qq{SELECT coalesce(sum(restarts), 0) FROM sentry_relay.workers WHERE stream = '$stream'}),
		'0', "$label: no worker restarted");
}

# Run a scenario sub; stop the nodes it started (pushed on @$nodes).
sub scenario
{
	my ($title, $code) = @_;
	my $t0 = time;
	my @nodes;
	note "scenario $title";
	$code->(\@nodes);
	$_->stop for reverse @nodes;
	note sprintf("scenario %s took %.1f s", $title, time - $t0);
}

plan skip_all => 'java not found: no real Kafka broker here'
  unless SentryRelay::Kafka->available;
my $kafka = SentryRelay::Kafka->new(brokers => 1);

# ---------------------------------------------------------------------------
# 1. start from partition start: three messages, no committed offset; the
# writer commits offset 1: exactly message 0 is enqueued, then nothing.
scenario('1: start from partition start', sub {
	my ($nodes) = @_;
	my $s = 'start-earliest';
	topics($kafka, $s, 1);
	produce_events($kafka, "$s-events", 0, 3);

	my $node = relay_node('start', $kafka);
	push @$nodes, $node;
	stream($node, $s);

	wait_ok($node, qq{SELECT partitions = '{0}' FROM sentry_relay.workers WHERE stream = '$s' AND status = 'running'},
		'1: the worker is assigned partition 0') or return;
	my $pid = sql($node, qq{SELECT pid FROM sentry_relay.workers WHERE stream = '$s'});
	wait_is($node, part_sql($s, 0), '0 - UNKNOWN',
		'1: it positions at the partition start (local offset 0) and waits: no remote offset') or return;
	is(sql($node, qq{SELECT worker_pid FROM sentry_relay.partitions WHERE stream = '$s'}), $pid,
		'1: worker_pid is the worker holding the partition');
	is(sql($node, jobs_sql($s)), '', '1: no job while the writer has said nothing');

	writer_commit($kafka, $s, 0, 1);
	wait_is($node, part_sql($s, 0), '1 1 SYNCHRONIZED',
		'1: after the writer commits offset 1 the partition is SYNCHRONIZED at 1') or return;
	is(sql($node, jobs_sql($s)), '0:0', '1: exactly message 0:0 enqueued');
	check_event($node, $s, 0, 0, 0, '1');
	wait_is($node, qq{SELECT kafka_lag FROM sentry_relay.partitions WHERE stream = '$s'}, '2',
		'1: two messages wait behind the gate (kafka_lag)');
	wait_is($node, qq{SELECT messages || ' ' || jobs FROM sentry_relay.workers WHERE stream = '$s'}, '1 1',
		'1: the worker handled one message');
	is(sql($node, jobs_sql($s)), '0:0', '1: nothing read into the topic past the gate');
	check_jobs_invariants($node, $s, '1');
	is(wait_for_committed($kafka, "$s-pp", "$s-events", [0], '0:1'), '0:1',
		'1: the worker committed offset 1 to the Kafka consumer group after its PostgreSQL commit');
	check_server($node, $s, '1');
});

# ---------------------------------------------------------------------------
# 2. start from committed offset: the consumer group committed offset 1 in
# Kafka; the writer's commit of offset 1 releases nothing (message 0 is
# before our start), its commit of offset 2 releases exactly message 1.
scenario('2: start from committed offset', sub {
	my ($nodes) = @_;
	my $s = 'start-committed';
	topics($kafka, $s, 1);
	produce_events($kafka, "$s-events", 0, 3);
	ok(kafka_commit($kafka, "$s-pp", "$s-events", { 0 => 1 }), '2: consumer group offset 1 committed in Kafka')
	  or return;
	is(kafka_committed($kafka, "$s-pp", "$s-events", 0), '0:1', '2: Kafka reports the committed offset');

	my $node = relay_node('committed', $kafka);
	push @$nodes, $node;
	stream($node, $s);

	wait_ok($node, qq{SELECT partitions = '{0}' FROM sentry_relay.workers WHERE stream = '$s' AND status = 'running'},
		'2: the worker is assigned partition 0') or return;
	wait_is($node, part_sql($s, 0), '1 - UNKNOWN', '2: it starts from the committed offset 1, not the partition start')
	  or return;

	writer_commit($kafka, $s, 0, 1);
	wait_is($node, part_sql($s, 0), '1 1 SYNCHRONIZED', '2: the writer at offset 1: SYNCHRONIZED at 1') or return;
	is(sql($node, jobs_sql($s)), '', '2: no job: message 0 was committed before we started');

	writer_commit($kafka, $s, 0, 2);
	wait_is($node, part_sql($s, 0), '2 2 SYNCHRONIZED', '2: the writer at offset 2: SYNCHRONIZED at 2') or return;
	is(sql($node, jobs_sql($s)), '0:1', '2: exactly the second message (0:1) enqueued');
	check_event($node, $s, 0, 1, 1, '2');
	wait_is($node, qq{SELECT kafka_lag FROM sentry_relay.partitions WHERE stream = '$s'}, '1',
		'2: one message waits behind the gate');
	wait_is($node, qq{SELECT messages || ' ' || jobs FROM sentry_relay.workers WHERE stream = '$s'}, '1 1',
		'2: the worker handled one message');
	is(sql($node, jobs_sql($s)), '0:1', '2: nothing read past the gate');
	check_jobs_invariants($node, $s, '2');
	check_server($node, $s, '2');
});

# ---------------------------------------------------------------------------
# 3. rebalance from partition start: two partitions, four messages (i to
# partition i % 2) plus one more per partition that the writer never
# commits.  One worker holds both partitions; then the stream gets a second
# worker (alter_stream workers => 2, same server): each worker gets one
# partition, and each message is enqueued by its partition's owner only once
# the writer commits it.
scenario('3: rebalance from partition start', sub {
	my ($nodes) = @_;
	my $s = 'rebalance-start';
	topics($kafka, $s, 2);
	produce_alternating($kafka, "$s-events", 0, 5);

	my $node = relay_node('rebalance_start', $kafka);
	push @$nodes, $node;
	stream($node, $s);

	wait_ok($node, qq{SELECT partitions = '{0,1}' FROM sentry_relay.workers WHERE stream = '$s' AND status = 'running'},
		'3: one worker holds both partitions') or return;
	my $pid_a = sql($node, qq{SELECT pid FROM sentry_relay.workers WHERE stream = '$s'});
	wait_is($node, parts_sql($s), "0=0/-/UNKNOWN\n1=0/-/UNKNOWN",
		'3: both partitions at their start, waiting for the writer') or return;
	is(sql($node, jobs_sql($s)), '', '3: no job yet');

	sql($node, qq{SELECT sentry_relay.alter_stream('$s', workers => 2)});
	wait_ok($node, qq{SELECT count(*) = 2 AND bool_and(cardinality(partitions) = 1)
	                    AND count(DISTINCT partitions) = 2 AND bool_and(pid <> $pid_a)
	                    FROM sentry_relay.workers WHERE stream = '$s' AND status = 'running'},
		'3: after the rebalance two new workers hold one partition each') or return;
	wait_ok($node, owners_consistent_sql($s), '3: partitions.worker_pid matches the workers view');
	my $own = owners($node, $s);
	isnt($own->{0}, $own->{1}, '3: the partitions have different owners');
	is(sql($node, parts_sql($s)), "0=0/-/UNKNOWN\n1=0/-/UNKNOWN", '3: the progress survived the rebalance');

	my @expected;
	for my $seq (0 .. 3)
	{
		my ($p, $o) = ($seq % 2, int($seq / 2));
		my $at = $o + 1;
		is(sql($node, jobs_sql($s, "partition = $p")), join(',', grep { /^$p:/ } @expected),
			"3: message $p:$o not enqueued before the writer commits it");
		writer_commit($kafka, $s, $p, $at);
		push @expected, "$p:$o";
		wait_is($node, part_sql($s, $p), "$at $at SYNCHRONIZED", "3: partition $p SYNCHRONIZED at $at") or return;
		is(sql($node, jobs_sql($s)), join(',', sort @expected), "3: exactly message $p:$o more");
		check_event($node, $s, $p, $o, $seq, '3');
		is(sql($node, qq{SELECT worker_pid FROM sentry_relay.partitions WHERE stream = '$s' AND partition = $p}),
			$own->{$p}, "3: partition $p is still held by its owner");
	}
	wait_is($node, qq{SELECT string_agg(kafka_lag::text, ',' ORDER BY partition) FROM sentry_relay.partitions WHERE stream = '$s'},
		'1,1', '3: the message past the gate waits in each partition');
	wait_is($node, qq{SELECT string_agg(array_to_string(partitions, ',') || '=' || messages || '/' || jobs, ' ' ORDER BY partitions)
	                    FROM sentry_relay.workers WHERE stream = '$s'},
		'0=2/2 1=2/2', '3: each worker handled the two messages of its partition');
	is(sql($node, jobs_sql($s)), '0:0,0:1,1:0,1:1', '3: nothing past the gate');
	check_jobs_invariants($node, $s, '3');
	check_server($node, $s, '3');
});

# ---------------------------------------------------------------------------
# 4. rebalance from committed offset: the consumer group committed offset 1
# in both partitions; server A holds both, then server B (another PostgreSQL
# with the same stream and consumer group) joins.  B starts its partition
# from the Kafka committed offset; each of the two remaining messages is
# enqueued once, on the server that owns its partition.
scenario('4: rebalance from committed offset', sub {
	my ($nodes) = @_;
	my $s = 'rebalance-committed';
	topics($kafka, $s, 2);
	produce_alternating($kafka, "$s-events", 0, 5);
	ok(kafka_commit($kafka, "$s-pp", "$s-events", { 0 => 1, 1 => 1 }),
		'4: consumer group offsets 1 committed in Kafka') or return;

	my $na = relay_node('rebalance_committed_a', $kafka);
	push @$nodes, $na;
	stream($na, $s);
	wait_ok($na, qq{SELECT partitions = '{0,1}' FROM sentry_relay.workers WHERE stream = '$s' AND status = 'running'},
		'4: server A holds both partitions') or return;
	wait_is($na, parts_sql($s), "0=1/-/UNKNOWN\n1=1/-/UNKNOWN",
		'4: A starts both partitions from the committed offset 1') or return;

	my $nb = relay_node('rebalance_committed_b', $kafka);
	push @$nodes, $nb;
	stream($nb, $s);
	my %node = (A => $na, B => $nb);
	my $one = qq{SELECT count(*) = 1 AND bool_and(cardinality(partitions) = 1)
	               FROM sentry_relay.workers WHERE stream = '$s' AND status = 'running' AND cardinality(partitions) > 0};
	my $split = wait_ok($na, $one, '4: after the rebalance A holds one partition');
	$split = wait_ok($nb, $one, '4: and B holds one partition') && $split;
	return unless $split;
	my %own;    # partition => 'A' or 'B'
	for my $n (qw(A B))
	{
		my $o = owners($node{$n}, $s);
		$own{$_} = $n for keys %$o;
		wait_ok($node{$n}, owners_consistent_sql($s), "4: $n: partitions.worker_pid matches the workers view");
	}
	is(join(',', sort keys %own), '0,1', '4: between them A and B hold both partitions') or return;
	my ($pa) = grep { $own{$_} eq 'A' } 0, 1;
	my ($pb) = grep { $own{$_} eq 'B' } 0, 1;

	wait_is($nb, part_sql($s, $pb), '1 - UNKNOWN', "4: B starts partition $pb from the Kafka committed offset 1")
	  or return;
	is(sql($na, qq{SELECT coalesce(worker_pid::text, 'none') || ' ' || local_offset FROM sentry_relay.partitions
	                WHERE stream = '$s' AND partition = $pb}),
		'none 1', "4: A released partition $pb and kept its progress");

	for my $seq (2, 3)
	{
		my ($p, $o) = ($seq % 2, 1);
		my ($owner, $other) = $own{$p} eq 'A' ? ($na, $nb) : ($nb, $na);
		is(sql($owner, jobs_sql($s, "partition = $p")), '', "4: message $p:1 not enqueued before the writer commits it");
		writer_commit($kafka, $s, $p, 2);
		wait_is($owner, part_sql($s, $p), '2 2 SYNCHRONIZED', "4: $own{$p}: partition $p SYNCHRONIZED at 2") or return;
		is(sql($owner, jobs_sql($s, "partition = $p")), "$p:1", "4: $own{$p} enqueued exactly message $p:1");
		check_event($owner, $s, $p, 1, $seq, '4');
		is(sql($other, jobs_sql($s, "partition = $p")), '', "4: the other server did not enqueue it");
	}
	for my $n (qw(A B))
	{
		my $p = $n eq 'A' ? $pa : $pb;
		wait_is($node{$n}, qq{SELECT kafka_lag FROM sentry_relay.partitions WHERE stream = '$s' AND partition = $p}, '1',
			"4: $n: the message past the gate waits");
		wait_is($node{$n}, qq{SELECT messages || ' ' || jobs FROM sentry_relay.workers WHERE stream = '$s'}, '1 1',
			"4: $n: its worker handled one message");
		is(sql($node{$n}, jobs_sql($s)), "$p:1", "4: $n: only its partition's second message");
		check_jobs_invariants($node{$n}, $s, "4: $n");
	}
	is(wait_for_committed($kafka, "$s-pp", "$s-events", [ 0, 1 ], '0:2 1:2'), '0:2 1:2',
		'4: both servers committed their progress to the Kafka consumer group');
	check_server($na, $s, '4: A');
	check_server($nb, $s, '4: B');
});

# ---------------------------------------------------------------------------
# 5. rebalance from uncommitted offset: the writer has committed all four
# messages, and the consumer group does not learn our progress.  On the
# mock every Kafka offset commit fails (injected OffsetCommit errors, on a
# mock cluster of its own since they are cluster-wide).  A real broker
# cannot fail them: there A's offsets reach Kafka, and with A's stream
# stopped (the group empty) they are deleted from the group, as
# kafka-consumer-groups.sh --delete-offsets does; A's stream starts again
# and resumes from its table.  Server A enqueues all four; server B joins
# and, with nothing committed in Kafka, starts its partition from the start
# and enqueues its two messages again in its own queue (as the original's
# consumer B receives two messages).  When B leaves, A takes the partition
# back from its table's offset, not from Kafka: nothing is enqueued twice
# on A, and new messages flow.
my $mock5 = $kafka->kind eq 'mock';
my $k5 = $mock5 ? SentryRelay::Kafka->new(kind => 'mock', brokers => 1) : $kafka;
scenario('5: rebalance from uncommitted offset', sub {
	my ($nodes) = @_;
	my $s = 'rebalance-uncommitted';
	topics($k5, $s, 2);
	produce_alternating($k5, "$s-events", 0, 3);
	writer_commit($k5, $s, $_, 2) for 0, 1;
	$k5->push_errors(8, 1000, 12) if $mock5;    # OffsetCommit: OFFSET_METADATA_TOO_LARGE

	my $na = relay_node('rebalance_uncommitted_a', $k5);
	push @$nodes, $na;
	stream($na, $s);
	wait_ok($na, qq{SELECT partitions = '{0,1}' FROM sentry_relay.workers WHERE stream = '$s' AND status = 'running'},
		'5: server A holds both partitions') or return;
	my $pid_a = sql($na, qq{SELECT pid FROM sentry_relay.workers WHERE stream = '$s'});
	wait_is($na, parts_sql($s), "0=2/2/SYNCHRONIZED\n1=2/2/SYNCHRONIZED",
		'5: A consumed up to the writer: both partitions SYNCHRONIZED at 2') or return;
	is(sql($na, jobs_sql($s)), '0:0,0:1,1:0,1:1', '5: A enqueued the four messages');
	check_event($na, $s, $_ % 2, int($_ / 2), $_, '5') for 0 .. 3;
	wait_is($na, qq{SELECT messages FROM sentry_relay.workers WHERE stream = '$s'}, '4', '5: A handled four messages');
	my $a_read = 4;    # messages read by A's worker
	if (!$mock5)
	{
		is(wait_for_committed($k5, "$s-pp", "$s-events", [ 0, 1 ], '0:2 1:2'), '0:2 1:2',
			'5: real broker: A committed its progress to Kafka');
		sql($na, qq{SELECT sentry_relay.stop_stream('$s')});
		wait_ok($na, qq{SELECT count(*) = 0 FROM sentry_relay.workers WHERE stream = '$s'},
			'5: real broker: A\'s stream stopped') or return;
		ok($k5->delete_group_offsets("$s-pp", "$s-events", [ 0, 1 ]),
			'5: real broker: the group\'s offsets deleted from Kafka while it is empty');
	}
	is(kafka_committed($k5, "$s-pp", "$s-events", 0, 1), '0:-1001 1:-1001',
		'5: the consumer group has no committed offset in Kafka');
	if (!$mock5)
	{
		sql($na, qq{SELECT sentry_relay.start_stream('$s')});
		wait_ok($na, qq{SELECT partitions = '{0,1}' AND pid <> $pid_a FROM sentry_relay.workers
		                  WHERE stream = '$s' AND status = 'running'},
			'5: real broker: a new worker of A holds both partitions') or return;
		$pid_a = sql($na, qq{SELECT pid FROM sentry_relay.workers WHERE stream = '$s'});
		$a_read = 0;
		wait_is($na, parts_sql($s), "0=2/2/SYNCHRONIZED\n1=2/2/SYNCHRONIZED",
			'5: real broker: A resumes both partitions from its table at 2') or return;
		is(sql($na, qq{SELECT messages FROM sentry_relay.workers WHERE stream = '$s'}), '0',
			'5: real broker: A\'s new worker read nothing again');
		is(kafka_committed($k5, "$s-pp", "$s-events", 0, 1), '0:-1001 1:-1001',
			'5: real broker: and committed nothing to Kafka');
	}

	my $nb = relay_node('rebalance_uncommitted_b', $k5);
	push @$nodes, $nb;
	stream($nb, $s);
	my %node = (A => $na, B => $nb);
	my $one = qq{SELECT count(*) = 1 AND bool_and(cardinality(partitions) = 1)
	               FROM sentry_relay.workers WHERE stream = '$s' AND status = 'running' AND cardinality(partitions) > 0};
	my $split = wait_ok($na, $one, '5: after the rebalance A holds one partition');
	$split = wait_ok($nb, $one, '5: and B holds one partition') && $split;
	return unless $split;
	my %own;
	for my $n (qw(A B))
	{
		my $o = owners($node{$n}, $s);
		$own{$_} = $n for keys %$o;
	}
	is(join(',', sort keys %own), '0,1', '5: between them A and B hold both partitions') or return;
	my ($pa) = grep { $own{$_} eq 'A' } 0, 1;
	my ($pb) = grep { $own{$_} eq 'B' } 0, 1;

	wait_is($nb, part_sql($s, $pb), '2 2 SYNCHRONIZED', "5: B consumed partition $pb up to the writer") or return;
	is(sql($nb, jobs_sql($s)), "$pb:0,$pb:1",
		"5: B enqueued the two uncommitted messages of partition $pb again (from the partition start)");
	wait_ok($nb, owners_consistent_sql($s), '5: B: partitions.worker_pid matches the workers view');
	is(sql($na, parts_sql($s)), "0=2/2/SYNCHRONIZED\n1=2/2/SYNCHRONIZED", '5: A kept its progress on both partitions');
	is(sql($na, qq{SELECT string_agg(partition || ' ' || coalesce(worker_pid::text, 'none'), ',' ORDER BY partition)
	                 FROM sentry_relay.partitions WHERE stream = '$s'}),
		join(',', map { $_ == $pa ? "$_ $pid_a" : "$_ none" } 0, 1),
		"5: A holds partition $pa and released partition $pb");
	is(sql($na, jobs_sql($s)), '0:0,0:1,1:0,1:1', '5: A enqueued nothing more');
	is(sql($na, qq{SELECT messages FROM sentry_relay.workers WHERE stream = '$s'}), $a_read,
		'5: A re-read nothing of the partition it kept');
	check_jobs_invariants($nb, $s, '5: B');
	check_server($nb, $s, '5: B');

	# B leaves cleanly: A takes partition $pb back, from its table
	sql($nb, qq{SELECT sentry_relay.stop_stream('$s')});
	wait_ok($na, qq{SELECT partitions = '{0,1}' AND pid = $pid_a FROM sentry_relay.workers
	                  WHERE stream = '$s' AND status = 'running'},
		'5: once B left, A holds both partitions again') or return;
	wait_ok($na, owners_consistent_sql($s), '5: A: partitions.worker_pid matches the workers view');
	wait_ok($nb, qq{SELECT count(*) = 0 FROM sentry_relay.workers WHERE stream = '$s'},
		'5: B has no worker any more');
	is(sql($nb, qq{SELECT string_agg(partition || ' ' || coalesce(worker_pid::text, 'none') || ' ' || local_offset, ',')
	                 FROM sentry_relay.partitions WHERE stream = '$s'}),
		"$pb none 2", "5: B released partition $pb when it stopped, and kept its progress");
	is(sql($na, parts_sql($s)), "0=2/2/SYNCHRONIZED\n1=2/2/SYNCHRONIZED",
		'5: A resumes both partitions at its stored offset 2, not from Kafka');

	produce_alternating($k5, "$s-events", 4, 5);
	writer_commit($k5, $s, $_, 3) for 0, 1;
	wait_is($na, parts_sql($s), "0=3/3/SYNCHRONIZED\n1=3/3/SYNCHRONIZED",
		'5: A consumed the new messages up to the writer') or return;
	is(sql($na, jobs_sql($s)), '0:0,0:1,0:2,1:0,1:1,1:2', '5: A enqueued exactly the two new messages');
	check_event($na, $s, 0, 2, 4, '5');
	check_event($na, $s, 1, 2, 5, '5');
	wait_is($na, qq{SELECT messages FROM sentry_relay.workers WHERE stream = '$s'}, $a_read + 2,
		'5: A read each message once');
	is(sql($na, qq{SELECT count(*) FROM sentry_relay.partitions WHERE stream = '$s' AND last_error IS NOT NULL}), '0',
		'5: no partition was repositioned');
	is(sql($nb, jobs_sql($s)), "$pb:0,$pb:1", '5: B, stopped, enqueued nothing more');
	check_jobs_invariants($na, $s, '5: A');
	check_server($na, $s, '5: A');
});

$k5->stop if $mock5;
$kafka->stop;
done_testing();
