# SentryRelay::Chaos - the chaos soak of issue #6, shared by `make chaos`
# (test/chaos/chaos.pl, CHAOS_SECONDS long, >= 200,000 messages) and the
# 2-minute version in `make test` (test/t/070_chaos.pl, scaled down).
#
#   SentryRelay::Chaos::run(seconds => 900, messages => 200_000, partitions => 32);
#
# Setup: a 3-broker Kafka cluster (the librdkafka mock, or with SR_KAFKA=real
# three Apache Kafka nodes and three replicas), one PostgreSQL node running the
# stream "chaos" (topic events, commit log snuba-commit-log, writer group
# snuba-consumers).  Messages are produced all along the run: version 2
# inserts with and without task headers, skip_consume inserts, replacement
# operations (version 1 and 2), and bad messages (random bytes, truncated
# JSON, unknown operations and versions).  The writer's commit log advances
# in uneven steps and sometimes moves backwards.
#
# Faults, at seeded random times (print: "seed N"; rerun with CHAOS_SEED=N):
# two independent timelines, each one fault at a time, each a shuffled deck
# of all its kinds so that every kind comes up:
#   PostgreSQL side: kill -9 of a worker (pid from sentry_relay.workers),
#     an immediate shutdown and restart, stop_stream/start_stream, a
#     rebalance by adding and removing a relay worker (alter_stream
#     workers 2, then 1), and a rebalance by a foreign consumer joining and
#     leaving the stream's consumer group;
#   Kafka side: a broker down and up, request errors injected on Fetch,
#     OffsetCommit, JoinGroup and Metadata (push_errors), added broker
#     latency (rtt); on the real cluster, a broker stopped or killed and
#     started again.
#
# Audit, touching none of the relay's tables: the node runs with wal_level
# logical and a logical replication slot (test_decoding) created before the
# stream; after the run the soak decodes the relay's committed transactions,
# in commit order, and derives from them every job, dead letter, local-offset
# advance and remote-offset change, with each transaction's commit time.  The
# gate is checked against the harness's own record of the commit-log entries
# it sent, and the soak asserts that every batch of jobs took the direct
# multi-insert path.  See docs/chaos.md for what is checked and why.
package SentryRelay::Chaos;

use strict;
use warnings;
use Digest::MD5 qw(md5_hex);
use IPC::Run ();
use JSON::PP ();
use List::Util qw(shuffle min max sum0);
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SentryRelay::Kafka;
use SentryRelay::KafkaMock;
use SentryRelay::Test;

my $STREAM = 'chaos';
my $TOPIC = 'events';
my $CLOG = 'snuba-commit-log';
my $GROUP = 'snuba-consumers';
my $CGROUP = 'post-process-forwarder';
my $PYTHON = '/usr/bin/python3';

my @REPL_V2 = qw(start_delete_groups end_delete_groups start_merge end_merge
  start_unmerge end_unmerge start_unmerge_hierarchical end_unmerge_hierarchical
  start_delete_tag end_delete_tag tombstone_events replace_group exclude_groups);
my @REPL_V1 = qw(delete delete_groups merge unmerge);

my @PG_FAULTS = qw(kill9 pg_restart stop_start rebalance_alter rebalance_member);
# on the real broker (SR_KAFKA=real) only what a real cluster can do: a
# broker stopped (controlled shutdown) or killed, then started again; its
# partitions have three replicas, so their leadership moves
my @MOCK_KAFKA_FAULTS = qw(broker_down errors_fetch errors_commit errors_join errors_metadata rtt);
my @REAL_KAFKA_FAULTS = qw(broker_down broker_kill);
my @KAFKA_FAULTS = @MOCK_KAFKA_FAULTS;

# ---------------------------------------------------------------------------
# the audit: logical decoding of the relay's own commits
#
# The slot is created before the stream, so it holds every transaction the
# relay commits; a transaction that a kill -9 or an immediate shutdown cut
# short never committed and is not decoded.  Nothing is read from it until
# the run is over.  The schema chaos is the harness's own, written only then.

my $SLOT = 'chaos_audit';

# the whole slot, read once, into chaos.decoded (n: the order of output)
my $DECODE_SQL = qq{
CREATE TABLE chaos.decoded (n bigint PRIMARY KEY, lsn pg_lsn NOT NULL, xid bigint NOT NULL, data text NOT NULL);
INSERT INTO chaos.decoded (n, lsn, xid, data)
SELECT c.n, c.lsn, c.xid::text::bigint, c.data
  FROM pg_logical_slot_get_changes('$SLOT', NULL, NULL, 'include-xids', '1', 'include-timestamp', '1',
                                   'skip-empty-xacts', '1') WITH ORDINALITY AS c(lsn, xid, data, n);
};

# The audit tables, from the decoded text.  test_decoding prints a row as
# name[type]:value (text values single-quoted, null as null, "offset"
# quoted as a reserved word) and the whole new row of an UPDATE; the key
# columns come before any free text column, so the first match of each is
# the column.  Transactions come out in commit order, each one's changes in
# the order they were made.  Row locks serialize the updates of a row, so
# the previous value of a row in commit order is the value an UPDATE
# replaced.  A column that does not parse leaves a NULL in a NOT NULL column:
# the derivation fails rather than drop a row.
my $DERIVE_SQL = qq{
-- one row per decoded transaction: commit_order is the order of the COMMIT
-- records, committed_at the commit time test_decoding prints
CREATE TABLE chaos.commits (xid bigint PRIMARY KEY, commit_order bigint NOT NULL UNIQUE,
    committed_at timestamptz NOT NULL);
INSERT INTO chaos.commits
SELECT xid, row_number() OVER (ORDER BY lsn, n),
       substring(data FROM \$r\$^COMMIT \\d+ \\(at ([^)]+)\\)\$r\$)::timestamptz
  FROM chaos.decoded WHERE data LIKE 'COMMIT %';

-- the changes of the relay's tables, with their stream
CREATE TABLE chaos.changes (n bigint PRIMARY KEY, xid bigint NOT NULL REFERENCES chaos.commits,
    tbl text NOT NULL, op text NOT NULL, stream text, data text NOT NULL,
    CHECK (stream IS NOT NULL OR op NOT IN ('INSERT', 'UPDATE')
           OR tbl NOT IN ('jobs', 'dead_letters', 'partition_state', 'remote_offsets')));
INSERT INTO chaos.changes
SELECT d.n, d.xid, m[1], m[2], substring(d.data FROM \$r\$ stream\\[text\\]:'([^']*)'\$r\$), d.data
  FROM chaos.decoded d, regexp_match(d.data, \$r\$^table sentry_relay\\.(\\w+): ([A-Z]+):\$r\$) AS m(m)
 WHERE m IS NOT NULL;

CREATE TABLE chaos.job_audit (xid bigint NOT NULL, partition int NOT NULL, "offset" bigint NOT NULL);
INSERT INTO chaos.job_audit
SELECT xid, substring(data FROM \$r\$ partition\\[integer\\]:(\\d+)\$r\$)::int,
       substring(data FROM \$r\$ "?offset"?\\[bigint\\]:(\\d+)\$r\$)::bigint
  FROM chaos.changes WHERE tbl = 'jobs' AND op = 'INSERT' AND stream = '$STREAM';
CREATE INDEX ON chaos.job_audit (partition, "offset");

CREATE TABLE chaos.dead_audit (xid bigint NOT NULL, topic text NOT NULL, partition int NOT NULL, "offset" bigint NOT NULL);
INSERT INTO chaos.dead_audit
SELECT xid, substring(data FROM \$r\$ topic\\[text\\]:'([^']*)'\$r\$),
       substring(data FROM \$r\$ partition\\[integer\\]:(\\d+)\$r\$)::int,
       substring(data FROM \$r\$ "?offset"?\\[bigint\\]:(\\d+)\$r\$)::bigint
  FROM chaos.changes WHERE tbl = 'dead_letters' AND op = 'INSERT' AND stream = '$STREAM';
CREATE INDEX ON chaos.dead_audit (partition, "offset");

-- every stored row of partition_state, in commit order ...
CREATE TABLE chaos.partition_rows (n bigint PRIMARY KEY, xid bigint NOT NULL, commit_order bigint NOT NULL,
    partition int NOT NULL, local_text text NOT NULL);
INSERT INTO chaos.partition_rows
SELECT ch.n, ch.xid, c.commit_order, substring(ch.data FROM \$r\$ partition\\[integer\\]:(\\d+)\$r\$)::int,
       substring(ch.data FROM \$r\$ local_offset\\[bigint\\]:(\\d+|null)\$r\$)
  FROM chaos.changes ch JOIN chaos.commits c USING (xid)
 WHERE ch.tbl = 'partition_state' AND ch.op IN ('INSERT', 'UPDATE') AND ch.stream = '$STREAM';
-- ... and the local-offset advances: the rows whose local_offset differs
-- from the partition's previous one (old_local; NULL for the first)
CREATE TABLE chaos.advances (id bigint PRIMARY KEY, xid bigint NOT NULL, partition int NOT NULL,
    old_local bigint, new_local bigint);
INSERT INTO chaos.advances
SELECT row_number() OVER (ORDER BY commit_order, n), xid, partition, prev, local
  FROM (SELECT n, xid, commit_order, partition, local,
               lag(local) OVER (PARTITION BY partition ORDER BY commit_order, n) AS prev
          FROM (SELECT *, nullif(local_text, 'null')::bigint AS local FROM chaos.partition_rows) r) r
 WHERE local IS DISTINCT FROM prev;

-- every stored row of remote_offsets, and the remote offset in force for a
-- partition after the transaction of commit order co: the minimum over the
-- stream's groups of each group's latest value, NULL until each has one
CREATE TABLE chaos.remote_rows (n bigint PRIMARY KEY, xid bigint NOT NULL, commit_order bigint NOT NULL,
    partition int NOT NULL, grp text NOT NULL, "offset" bigint NOT NULL);
INSERT INTO chaos.remote_rows
SELECT ch.n, ch.xid, c.commit_order, substring(ch.data FROM \$r\$ partition\\[integer\\]:(\\d+)\$r\$)::int,
       substring(ch.data FROM \$r\$ consumer_group\\[text\\]:'([^']*)'\$r\$),
       substring(ch.data FROM \$r\$ "?offset"?\\[bigint\\]:(\\d+)\$r\$)::bigint
  FROM chaos.changes ch JOIN chaos.commits c USING (xid)
 WHERE ch.tbl = 'remote_offsets' AND ch.op IN ('INSERT', 'UPDATE') AND ch.stream = '$STREAM';
CREATE INDEX ON chaos.remote_rows (partition, grp, commit_order, n);
CREATE TABLE chaos.groups (grp text PRIMARY KEY);
INSERT INTO chaos.groups SELECT unnest(synchronize_commit_groups) FROM sentry_relay.streams WHERE name = '$STREAM';
CREATE FUNCTION chaos.remote_at(p int, co bigint) RETURNS bigint LANGUAGE sql STABLE AS \$f\$
    SELECT CASE WHEN count(l."offset") = count(*) THEN min(l."offset") END
      FROM chaos.groups g
      LEFT JOIN LATERAL (SELECT r."offset" FROM chaos.remote_rows r
                          WHERE r.partition = p AND r.grp = g.grp AND r.commit_order <= co
                          ORDER BY r.commit_order DESC, r.n DESC LIMIT 1) l ON true
\$f\$;

-- partitions whose remote_offsets rows a transaction wrote, and the remote
-- offset in force for each after its commit ...
CREATE TABLE chaos.remote_touch (xid bigint NOT NULL, partition int NOT NULL, PRIMARY KEY (xid, partition));
INSERT INTO chaos.remote_touch SELECT DISTINCT xid, partition FROM chaos.remote_rows;
CREATE TABLE chaos.remote_hist (xid bigint NOT NULL, partition int NOT NULL, remote bigint,
    PRIMARY KEY (xid, partition));
INSERT INTO chaos.remote_hist
SELECT t.xid, t.partition, chaos.remote_at(t.partition, c.commit_order)
  FROM chaos.remote_touch t JOIN chaos.commits c USING (xid);
-- ... and each partition it enqueued jobs for, with its highest job offset
-- and the remote offset in force at its commit (its own writes included)
CREATE TABLE chaos.gate (xid bigint NOT NULL, partition int NOT NULL, max_offset bigint NOT NULL,
    remote bigint, PRIMARY KEY (xid, partition));
INSERT INTO chaos.gate
SELECT j.xid, j.partition, max(j."offset"), chaos.remote_at(j.partition, c.commit_order)
  FROM chaos.job_audit j JOIN chaos.commits c USING (xid)
 GROUP BY j.xid, j.partition, c.commit_order;

-- the relay's transactions that wrote anything audited
CREATE TABLE chaos.tx (xid bigint PRIMARY KEY, commit_order bigint NOT NULL, committed_at timestamptz NOT NULL);
INSERT INTO chaos.tx
SELECT c.xid, c.commit_order, c.committed_at FROM chaos.commits c
 WHERE c.xid IN (SELECT xid FROM chaos.job_audit UNION SELECT xid FROM chaos.dead_audit
                 UNION SELECT xid FROM chaos.advances UNION SELECT xid FROM chaos.remote_touch);
ANALYZE chaos.job_audit; ANALYZE chaos.dead_audit; ANALYZE chaos.advances; ANALYZE chaos.tx;
};

# ---------------------------------------------------------------------------
# state of one run

my ($node, $kafka, $P, $seed, $logdir);
my (@high, @sent, @maxsent, @bytes);    # per partition (the writer's view)
my @writer;    # every commit-log entry sent: [partition, offset, time before the produce, produced]
my ($seq, @class, %dead_md5);          # per produced message (by seq)
my %injected;                          # fault kind => count
my %seen;                              # fault kind => count seen in the view
my @observe;                           # pending observations
my %active;                            # faults in progress
my ($brokers_down, $backwards, $clog_entries, $produce_failures) = (0, 0, 0, 0);
my $member_not_joined = 0;    # foreign consumers the group never took in
my $broker_down_cut = 0;      # broker_down observations a PostgreSQL restart cut short
my (@pg_deck, @kafka_deck);    # the faults left in each timeline's deck
my (%totals, %last_slot);              # workers view counters over epochs
my @COUNTERS = qw(messages jobs skipped dead_letters batches restarts kafka_errors
  broker_waits rebalances commit_failures remote_backwards gated direct_inserts copy_inserts);

sub sql_try { return SentryRelay::Test::try_psql($node, $_[0]) }

# produce_file of [[topic, partition, key, value, headers], ...], through one
# reused file
my $produce_file;

sub produce_lines
{
	my ($msgs) = @_;
	$produce_file //= PostgreSQL::Test::Utils::tempdir() . '/produce.txt';
	open(my $fh, '>', $produce_file) or die "$produce_file: $!";
	print $fh SentryRelay::KafkaMock::format_produce_line(@$_), "\n" for @$msgs;
	close $fh;
	return $kafka->produce_file($produce_file);
}

# Run $sql until it succeeds (the server may be restarting); dies after $timeout.
sub sql_retry
{
	my ($sql, $timeout) = @_;
	my $deadline = time + ($timeout // 90);
	while (time < $deadline)
	{
		my $r = sql_try($sql);
		return $r if defined $r;
		usleep(200_000);
	}
	die "could not run after retries: $sql\n";
}

# ---------------------------------------------------------------------------
# messages

sub insert_headers
{
	my ($s, %o) = @_;
	my $h = event_headers(seq => $s);
	if ($o{skip})
	{
		$_->[1] = '1' for grep { $_->[0] eq 'skip_consume' } @$h;
	}
	return $h;
}

# One message: (class, value, headers): class J (a job), S (skipped: no
# job by design) or D (undecodable: a dead letter).
sub gen_message
{
	my ($s) = @_;
	my $r = rand();
	my $json = JSON::PP->new->canonical;
	if ($r < 0.42)
	{
		return ('J', event_message(seq => $s), insert_headers($s));
	}
	if ($r < 0.62)
	{
		return ('J', event_message(seq => $s), undef);
	}
	if ($r < 0.70)
	{
		return ('S', event_message(seq => $s, skip_consume => 1),
			rand() < 0.5 ? insert_headers($s, skip => 1) : undef);
	}
	if ($r < 0.82)
	{
		my $body = { project_id => 1, group_ids => [ 100 + $s % 7 ], transaction_id => sprintf('%032x', $s) };
		if (rand() < 0.7)
		{
			my $op = $REPL_V2[ int(rand(@REPL_V2)) ];
			return ('S', $json->encode([ 2, $op, $body ]),
				rand() < 0.5 ? [ [ 'version', '2' ], [ 'operation', $op ] ] : undef);
		}
		my $op = $REPL_V1[ int(rand(@REPL_V1)) ];
		return ('S', $json->encode([ 1, $op, $body ]), undef);
	}
	my $k = rand();
	if ($k < 0.34)
	{
		my $len = 1 + int(rand(200));
		return ('D', "\xff" . join('', map { chr(int(rand(256))) } 1 .. $len), undef);
	}
	if ($k < 0.67)
	{
		my $m = event_message(seq => $s);
		return ('D', substr($m, 0, 1 + int(rand(length($m) - 2))), undef);
	}
	if ($k < 0.85)
	{
		my $op = 'frobnicate_' . int(rand(5));
		return ('D', $json->encode([ 2, $op, { project_id => 1 } ]),
			rand() < 0.5 ? [ [ 'version', '2' ], [ 'operation', $op ] ] : undef);
	}
	return ('D', $json->encode([ 9, 'insert', { project_id => 1 } ]), undef);
}

# Produce $n messages into random partitions; returns how many were
# produced (0 on failure: then the high watermarks are re-read).
sub produce_chunk
{
	my ($n) = @_;
	my @lines;
	my %per;
	for (1 .. $n)
	{
		my $s = $seq++;
		my $p = int(rand($P));
		my ($c, $v, $h) = gen_message($s);
		$class[$s] = $c;
		$dead_md5{$s} = md5_hex($v) if $c eq 'D';
		push @lines, [ $TOPIC, $p, "c$s", $v, $h ];
		$per{$p}++;
		$bytes[$p] += length($v) + 120;
	}
	my $ok = eval { produce_lines(\@lines); 1 };
	if ($ok)
	{
		$high[$_] += $per{$_} for keys %per;
		return $n;
	}
	$produce_failures++;
	note("produce failed: $@");
	refresh_high();
	return 0;
}

# Re-read the high watermarks (after a failed produce); undef entries are
# retried at the next commit step.
sub refresh_high
{
	for my $p (0 .. $P - 1)
	{
		my ($lo, $hi) = eval { $kafka->end_offsets($TOPIC, $p) };
		$high[$p] = $hi if defined $hi && $hi >= 0;
	}
}

# The writer commits: a random subset of partitions moves by an uneven
# step, now and then backwards.
sub commit_step
{
	my ($final) = @_;
	my (@msgs, @entries);
	my @parts = $final ? (0 .. $P - 1) : grep { rand() < 0.4 } 0 .. $P - 1;
	for my $p (@parts)
	{
		my $new;
		if ($final)
		{
			$new = $final->[$p];
		}
		elsif ($sent[$p] > 0 && rand() < 0.08)
		{
			$new = max(0, $sent[$p] - 1 - int(rand(min($sent[$p], 400))));
			$backwards++;
		}
		else
		{
			my $k = rand();
			my $step = $k < 0.3 ? 1 + int(rand(5)) : $k < 0.7 ? int(rand(60)) : $k < 0.9 ? int(rand(600)) : 1e9;
			$new = min($high[$p], $sent[$p] + $step);
		}
		next if $new == $sent[$p] && !$final;
		my ($ck, $cv) = SentryRelay::KafkaMock::commit_log_message($TOPIC, $p, $GROUP, $new);
		push @msgs, [ $CLOG, 0, $ck, $cv ];
		push @entries, [ $p, $new ];
		$sent[$p] = $new;
		$maxsent[$p] = max($maxsent[$p], $new);    # even if the produce fails
	}
	return 1 unless @msgs;
	# the time before the produce: from then on the relay may read them
	my $t = time;
	my $ok = eval { produce_lines(\@msgs); 1 };
	# a failed produce may still have reached the broker: kept, marked
	push @writer, map { [ @$_, $t, $ok ? 1 : 0 ] } @entries;
	$clog_entries += @msgs if $ok;
	note("commit log produce failed: $@") unless $ok;
	return $ok;
}

# ---------------------------------------------------------------------------
# the workers view: counters summed over epochs (a stop_stream, a crash or a
# restart of PostgreSQL starts a slot's counters from zero again)

sub workers_snapshot
{
	my $cols = join(', ', @COUNTERS);
	my $r = sql_try(qq{SELECT worker, coalesce(pid, 0), status, cardinality(partitions),
	  extract(epoch FROM started_at)::numeric(20,3), $cols FROM sentry_relay.workers WHERE stream = '$STREAM' ORDER BY worker});
	return undef unless defined $r;
	my @w;
	for my $line (split /\n/, $r)
	{
		my @f = split /\|/, $line;
		my %h = (worker => $f[0], pid => $f[1], status => $f[2], nparts => $f[3], started => $f[4] || 0);
		@h{@COUNTERS} = @f[ 5 .. $#f ];
		push @w, \%h;
	}
	return \@w;
}

sub accumulate
{
	my ($snap) = @_;
	for my $w (@$snap)
	{
		my $last = $last_slot{ $w->{worker} };
		if ($last && grep { $w->{$_} < $last->{$_} } @COUNTERS)
		{
			$totals{$_} += $last->{$_} for @COUNTERS;    # a new epoch
		}
		$last_slot{ $w->{worker} } = { %$w };
	}
}

sub flush_totals
{
	for my $last (values %last_slot)
	{
		$totals{$_} += $last->{$_} for @COUNTERS;
	}
	%last_slot = ();
}

# counters of the current snapshot, summed over workers
sub sum_of
{
	my ($snap, $k) = @_;
	return sum0(map { $_->{$k} } @$snap);
}

# an observation: within $timeout s, $cond->($snapshot) must become true
sub expect_seen
{
	my ($kind, $timeout, $cond) = @_;
	my $o = { kind => $kind, deadline => time + $timeout, cond => $cond };
	push @observe, $o;
	return $o;
}

sub check_observations
{
	my ($snap) = @_;
	my @keep;
	for my $o (@observe)
	{
		next if $o->{cancelled};
		if ($snap && $o->{cond}->($snap))
		{
			$seen{ $o->{kind} }++;
			$o->{seen} = 1;
		}
		elsif (time < $o->{deadline})
		{
			push @keep, $o;
		}
		else
		{
			diag("fault $o->{kind}: not seen in the workers view before its deadline");
		}
	}
	@observe = @keep;
}

# a counter (summed over the stream's workers, and over epochs) went up
sub counter_rises
{
	my ($k) = @_;
	my $base = ($totals{$k} // 0) + sum0(map { $_->{$k} } values %last_slot);
	return sub {
		my $now = ($totals{$k} // 0) + sum0(map { $_->{$k} } values %last_slot);
		return $now > $base;
	};
}

# ---------------------------------------------------------------------------
# faults

# A broker_down not yet seen when PostgreSQL restarts (kill9 of a worker, an
# immediate restart, stop_stream, and the start_stream after it: a broker
# that went down while no worker ran) cannot be judged: the workers view's
# counters start from zero again, and what a worker counted after the last
# sample is gone.  Such an observation is set aside and reported, not
# counted as injected.
sub cut_broker_down_observations
{
	for my $o (grep { $_->{kind} eq 'broker_down' && !$_->{seen} && !$_->{cancelled} } @observe)
	{
		$o->{cancelled} = 1;
		$injected{broker_down}--;
		$broker_down_cut++;
		note('broker_down observation cut short by a PostgreSQL or stream restart');
	}
}

sub fault_pg
{
	my ($kind, $now) = @_;
	my $t0 = time;
	if ($kind eq 'kill9')
	{
		my $snap = workers_snapshot() or return 0;
		my @pids = grep { $_ > 0 } map { $_->{pid} } @$snap;
		return 0 unless @pids;
		my $pid = $pids[ int(rand(@pids)) ];
		cut_broker_down_observations();
		return 0 unless kill('KILL', $pid);
		note(sprintf("%.1f s: kill -9 worker %d", $now, $pid));
		expect_seen('kill9', 120, sub {
			my ($s) = @_;
			return @$s && !grep { $_->{pid} == $pid || $_->{started} < $t0 || $_->{status} ne 'running' } @$s;
		});
		return 1;
	}
	if ($kind eq 'pg_restart')
	{
		note(sprintf("%.1f s: immediate shutdown and restart", $now));
		cut_broker_down_observations();
		$node->stop('immediate');
		$node->start;
		expect_seen('pg_restart', 120, sub {
			my ($s) = @_;
			return @$s && !grep { $_->{started} < $t0 || $_->{status} ne 'running' } @$s;
		});
		return 1;
	}
	if ($kind eq 'stop_start')
	{
		cut_broker_down_observations();
		sql_retry(qq{SELECT sentry_relay.stop_stream('$STREAM')});
		my $hold = 1 + rand(5);
		note(sprintf("%.1f s: stop_stream for %.1f s", $now, $hold));
		$active{stop_start} = { until => time + $hold, t0 => $t0, saw_none => 0 };
		return 1;
	}
	if ($kind eq 'rebalance_alter')
	{
		sql_retry(qq{SELECT sentry_relay.alter_stream('$STREAM', workers => 2)});
		my $hold = 5 + rand(10);
		note(sprintf("%.1f s: alter_stream workers 2 for %.1f s", $now, $hold));
		my $a = $active{rebalance_alter} = { until => time + $hold, t0 => $t0 };
		# both workers hold partitions at once, and they rebalanced; the
		# second worker stays until then (a broker outage can delay it)
		my $reb = counter_rises('rebalances');
		expect_seen('rebalance_alter', 90, sub {
			my ($s) = @_;
			# (not status 'running': see docs/operations.md on 'waiting for broker')
			return $a->{seen} = (grep { $_->{nparts} > 0 } @$s) == 2 && $reb->();
		});
		return 1;
	}
	if ($kind eq 'rebalance_member')
	{
		my $hold = 4 + rand(8);
		# it stays $hold s once the group has taken it in (injected JoinGroup
		# errors can delay that), at most 30 s
		my $code = sprintf(q{
import time
from confluent_kafka import Consumer
c = Consumer({'bootstrap.servers': '%s', 'group.id': '%s', 'enable.auto.commit': False,
              'session.timeout.ms': 6000, 'heartbeat.interval.ms': 500, 'max.poll.interval.ms': 10000,
              'enable.partition.eof': False, 'client.id': 'chaos-foreign-member'})
joined = []
c.subscribe(['%s'], on_assign=lambda cons, parts: joined.append((time.time(), len(parts))))
end = time.time() + 30
while time.time() < end and not (joined and time.time() > joined[0][0] + %.1f):
    c.poll(0.2)
c.close()
print('joined, %%d partition(s)' %% joined[0][1] if joined else 'never joined')
}, $kafka->bootstrap, $CGROUP, $TOPIC, $hold);
		my ($out, $err) = ('', '');
		my $h = IPC::Run::start([ $PYTHON, '-c', $code ], '<', \undef, '>', \$out, '2>', \$err);
		note(sprintf("%.1f s: a foreign consumer joins the group for %.1f s", $now, $hold));
		my $reb = counter_rises('rebalances');
		my $obs = expect_seen('rebalance_member', 60, $reb);
		$active{rebalance_member} = { until => time + 45, h => $h, t0 => $t0, out => \$out, obs => $obs };
		return 1;
	}
	die "unknown fault $kind";
}

# end PostgreSQL-side faults whose time has come; true if none is active
sub end_pg_faults
{
	my ($force) = @_;
	if (my $a = $active{stop_start})
	{
		my $snap = workers_snapshot();
		$a->{saw_none} = 1 if $snap && !@$snap;
		if ($force || time >= $a->{until})
		{
			# the workers leave the view when stopped: wait for that first
			$a->{saw_none} ||= wait_until($node,
				qq{SELECT count(*) = 0 FROM sentry_relay.workers WHERE stream = '$STREAM'}, 60);
			# a broker_down injected while the stream was stopped had no
			# worker to see it, and the new workers' counters start at zero
			cut_broker_down_observations();
			# before the call: the launcher may start a worker before
			# psql returns, and one started before $t1 was never counted
			my $t1 = time;
			sql_retry(qq{SELECT sentry_relay.start_stream('$STREAM')});
			my $saw_none = $a->{saw_none};
			expect_seen('stop_start', 90, sub {
				my ($s) = @_;
				return $saw_none && @$s && !grep { $_->{started} < $t1 || $_->{status} ne 'running' } @$s;
			});
			delete $active{stop_start};
		}
	}
	if (my $a = $active{rebalance_alter})
	{
		# at the end, give the second worker its chance to be seen first
		while ($force && !$a->{seen} && time < $a->{until} + 75)
		{
			my $snap = workers_snapshot();
			accumulate($snap) if $snap;
			check_observations($snap);
			usleep(250_000);
		}
		if ($force || (time >= $a->{until} && $a->{seen}) || time >= $a->{until} + 75)
		{
			sql_retry(qq{SELECT sentry_relay.alter_stream('$STREAM', workers => 1)});
			delete $active{rebalance_alter};
		}
	}
	if (my $a = $active{rebalance_member})
	{
		# at the end too, it leaves by itself (at most 30 s)
		while ($force && $a->{h}->pumpable && time < $a->{until})
		{
			eval { $a->{h}->pump_nb; 1 };
			my $snap = workers_snapshot();
			accumulate($snap) if $snap;
			check_observations($snap);
			usleep(250_000);
		}
		eval { $a->{h}->pump_nb; 1 };
		if (!$a->{h}->pumpable || time >= $a->{until})
		{
			eval { $a->{h}->kill_kill(grace => 5); 1 } if $a->{h}->pumpable;
			eval { $a->{h}->finish; 1 };
			note("foreign consumer: " . ${ $a->{out} });
			if (${ $a->{out} } !~ /^joined/)
			{
				# the group never took it in: no rebalance happened, so
				# nothing to see; reported, and not counted as injected
				$a->{obs}{cancelled} = 1;
				# another fault's rebalance may have satisfied its
				# observation already: that one was not ours to count
				$seen{rebalance_member}-- if $a->{obs}{seen};
				$injected{rebalance_member}--;
				$member_not_joined++;
				unshift @pg_deck, 'rebalance_member' unless $force;    # try again
			}
			delete $active{rebalance_member};
		}
	}
	return !grep { exists $active{$_} } @PG_FAULTS;
}

sub fault_kafka
{
	my ($kind, $now) = @_;
	if ($kind eq 'broker_down' || $kind eq 'broker_kill')
	{
		my $id = 1 + int(rand(3));
		my $hold = 2 + rand(6);
		if ($kind eq 'broker_kill')
		{
			$kafka->kill_node($id);
		}
		else
		{
			$kafka->broker_down($id);
		}
		$brokers_down = 1;
		note(sprintf("%.1f s: broker %d %s for %.1f s", $now, $id,
			$kind eq 'broker_kill' ? 'killed (SIGKILL)' : 'down', $hold));
		$active{broker_down} = { until => time + $hold, id => $id };
		my $w = counter_rises('broker_waits');
		my $e = counter_rises('kafka_errors');
		# On the mock a broker's partitions have no other replica: the
		# relay must notice.  On the real cluster leadership moves to a
		# replica, which a client may never see: reported, not required;
		# the data checks show the relay went on.
		if ($kafka->kind eq 'real')
		{
			expect_seen_soft($kind, $hold + 30, sub { $w->() || $e->() });
		}
		else
		{
			expect_seen('broker_down', $hold + 30, sub { $w->() || $e->() });
		}
		return 1;
	}
	if ($kind eq 'rtt')
	{
		my $id = 1 + int(rand(3));
		my $ms = 50 + int(rand(750));
		my $hold = 3 + rand(7);
		$kafka->rtt($id, $ms);
		note(sprintf("%.1f s: broker %d rtt %d ms for %.1f s", $now, $id, $ms, $hold));
		$active{rtt} = { until => time + $hold, id => $id };
		return 1;
	}
	my %api = (errors_fetch => [ 1, [ 6, 7, -195, 1 ] ], errors_commit => [ 8, [ 7, 15, 16, 27 ] ],
		errors_join => [ 11, [ 15, 16, 27 ] ], errors_metadata => [ 3, [ 5, 7 ] ]);
	my ($key, $codes) = @{ $api{$kind} or die "unknown fault $kind" };
	my $count = 2 + int(rand(12));
	my @errs = map { $codes->[ int(rand(@$codes)) ] } 1 .. $count;
	$kafka->push_errors($key, $count, @errs);
	note(sprintf("%.1f s: push_errors %s (api %d): %s", $now, $kind, $key, join(',', @errs)));
	if ($kind eq 'errors_commit')
	{
		my $c = counter_rises('commit_failures');
		expect_seen_soft('errors_commit', 30, $c);
	}
	else
	{
		my $e = counter_rises('kafka_errors');
		expect_seen_soft($kind, 30, $e);
	}
	return 1;
}

# faults that a client may absorb without seeing them (librdkafka retries
# most request errors internally): reported, not required
my %soft_seen;
my @soft;

sub expect_seen_soft
{
	my ($kind, $timeout, $cond) = @_;
	push @soft, { kind => $kind, deadline => time + $timeout, cond => $cond };
}

sub check_soft
{
	my @keep;
	for my $o (@soft)
	{
		if ($o->{cond}->()) { $soft_seen{ $o->{kind} }++ }
		elsif (time < $o->{deadline}) { push @keep, $o }
	}
	@soft = @keep;
}

sub end_kafka_faults
{
	my ($force) = @_;
	if (my $a = $active{broker_down})
	{
		if ($force || time >= $a->{until})
		{
			$kafka->broker_up($a->{id});	# on the real cluster: start its JVM again
			$brokers_down = 0;
			delete $active{broker_down};
		}
	}
	if (my $a = $active{rtt})
	{
		if ($force || time >= $a->{until})
		{
			$kafka->rtt($a->{id}, 0);
			delete $active{rtt};
		}
	}
	return !exists $active{broker_down} && !exists $active{rtt};
}

# ---------------------------------------------------------------------------

sub run
{
	my (%o) = @_;
	my $seconds = $o{seconds} // 900;
	my $target = $o{messages} // 200_000;
	$P = $o{partitions} // 32;
	$seed = $o{seed} // $ENV{CHAOS_SEED} // (time() ^ ($$ << 8)) % 1_000_000_000;
	srand($seed);
	my $t_start = time;
	diag("chaos soak: seed $seed (rerun with CHAOS_SEED=$seed), $seconds s, "
		  . "$target messages over $P partitions"
		  . ($o{scaled} ? " (scaled down from the full soak's 200,000: $o{scaled})" : ''));

	@high = (0) x $P;
	@sent = (0) x $P;
	@maxsent = (0) x $P;
	@bytes = (0) x $P;
	@writer = ();
	$seq = 0;

	$kafka = SentryRelay::Kafka->new(brokers => 3);
	if ($kafka->kind eq 'real')
	{
		@KAFKA_FAULTS = @REAL_KAFKA_FAULTS;
		$kafka->create_events_topic($TOPIC, $P);
		$kafka->create_commit_log_topic($CLOG);
	}
	else
	{
		$kafka->create_topic($TOPIC, $P, 1);
		$kafka->create_topic($CLOG, 1, 1);
	}
	diag('broker: ' . ($kafka->kind eq 'real' ? 'Apache Kafka, 3 nodes, 3 replicas' : 'the librdkafka mock, 3 brokers'));
	$node = relay_node('chaos', $kafka, 'sentry_relay.batch_size' => 300,
		restart_after_crash => 'on', log_min_messages => 'info', wal_level => 'logical');
	# the audit's slot, before the stream exists (see "the audit" above)
	$node->safe_psql('postgres', qq{SELECT pg_create_logical_replication_slot('$SLOT', 'test_decoding')});

	# a backlog before the stream starts, the rest produced along the run
	my $backlog = int($target * 0.15);
	for (my $n = 0; $n < $backlog;)
	{
		$n += produce_chunk(min(5000, $backlog - $n)) || die "could not produce the backlog";
	}
	commit_step();
	create_errors_stream($node, name => $STREAM, topic => $TOPIC, commit_log => $CLOG,
		groups => [$GROUP], consumer_group => $CGROUP);

	my $setup = time - $t_start;
	my $reserve = max(40, 0.1 * $seconds);
	my $phase = max(30, $seconds - $setup - $reserve);
	my $t0 = time;
	my $t_end = $t0 + $phase;
	my $produce_until = $t0 + 0.85 * $phase;
	my $gap = min(20, max(2.5, $phase / 25));    # mean gap between faults of a timeline
	my ($pg_decks, $kafka_decks) = (0, 0);
	# the next fault: a random gap, short enough in the first deck that
	# every kind comes up before the end
	my $next_gap = sub {
		my ($left, $decks) = @_;
		my $g = $gap * (0.3 + rand(1.4));
		$g = min($g, ($t_end - time) / ($left + 2)) if $decks <= 1;
		return time + $g;
	};
	my $next_pg = $t0 + 3 + rand($gap);
	my $next_kafka = $t0 + 1 + rand($gap);
	my $next_commit = $t0;
	diag(sprintf("setup %.0f s; faults for %.0f s (one every ~%.0f s per timeline)", $setup, $phase, $gap));

	# until the phase ends, and past it (by at most 60 s) until each
	# timeline has dealt its whole first deck, so that every kind of fault
	# is injected at least once even when long faults held a timeline up
	my $first_deck_dealt = sub { my ($decks, $left) = @_; return $decks > 1 || ($decks == 1 && !@$left) };
	while (time < $t_end
		   || (time < $t_end + 60
			   && !($first_deck_dealt->($pg_decks, \@pg_deck) && $first_deck_dealt->($kafka_decks, \@kafka_deck))))
	{
		my $now = time;
		# production, paced to reach the target at 85% of the phase
		if (!$brokers_down)
		{
			my $due = $now >= $produce_until ? $target
			  : $backlog + int(($target - $backlog) * ($now - $t0) / ($produce_until - $t0));
			my $chunk = min(2000, $due - $seq);
			produce_chunk($chunk) if $chunk > 0;
		}
		if (!$brokers_down && $now >= $next_commit)
		{
			commit_step();
			$next_commit = $now + 0.2 + rand(1.3);
		}
		if ($now >= $next_pg && end_pg_faults(0))
		{
			@pg_deck = shuffle(@PG_FAULTS), $pg_decks++ unless @pg_deck;
			my $kind = shift @pg_deck;
			if (fault_pg($kind, $now - $t0))
			{
				$injected{$kind}++;
				$next_pg = $next_gap->(scalar @pg_deck, $pg_decks);
			}
			else
			{
				unshift @pg_deck, $kind;    # not possible now (no worker yet): soon
				$next_pg = time + 0.5;
			}
		}
		if ($now >= $next_kafka && end_kafka_faults(0))
		{
			@kafka_deck = shuffle(@KAFKA_FAULTS), $kafka_decks++ unless @kafka_deck;
			my $kind = shift @kafka_deck;
			$injected{$kind}++ if fault_kafka($kind, $now - $t0);
			$next_kafka = $next_gap->(scalar @kafka_deck, $kafka_decks);
		}
		end_pg_faults(0);
		end_kafka_faults(0);
		my $snap = workers_snapshot();
		accumulate($snap) if $snap;
		check_observations($snap);
		check_soft();
		# scheduling, not waiting for a condition: the loop's next tick
		usleep(100_000);
	}

	# ---- the end: faults off, the last messages, the writer's final commits
	end_pg_faults(1);
	end_kafka_faults(1);
	diag(sprintf("faults stopped after %.0f s", time - $t0));
	while ($seq < $target)
	{
		produce_chunk(min(5000, $target - $seq)) or usleep(200_000);
	}
	refresh_high();
	my @final;
	for my $p (0 .. $P - 1)
	{
		# a quarter of the partitions end below their high watermark
		$final[$p] = $p % 4 == 3 ? $maxsent[$p] + int(rand($high[$p] - $maxsent[$p] + 1)) : $high[$p];
		$final[$p] = max($final[$p], $maxsent[$p]);
	}
	for (1 .. 20)
	{
		last if commit_step(\@final);
	}
	my $want = join(',', map { "$_:$final[$_]:$final[$_]:SYNCHRONIZED" } 0 .. $P - 1);
	my $parts_sql = qq{SELECT string_agg(partition || ':' || coalesce(local_offset::text, '-') || ':'
	  || coalesce(remote_offset::text, '-') || ':' || state, ',' ORDER BY partition)
	  FROM sentry_relay.partitions WHERE stream = '$STREAM'};
	my $deadline = time + max(120, $reserve * 2);
	my $got = '';
	while (time < $deadline)
	{
		$got = sql_try($parts_sql) // '';
		last if $got eq $want;
		my $snap = workers_snapshot();
		accumulate($snap) if $snap;
		check_observations($snap);
		check_soft();
		usleep(250_000);
	}
	is($got, $want, "every partition synchronized at its final remote offset");

	# no crash loop: the worker has run for 10 s, and still is the same one
	ok(wait_until($node, qq{SELECT count(*) = 1 AND bool_and(status = 'running' AND started_at < now() - interval '10 s')
	  FROM sentry_relay.workers WHERE stream = '$STREAM'}, 120), 'one worker, running for 10 s');
	my $steady = $node->safe_psql('postgres', qq{SELECT pid || ' ' || restarts FROM sentry_relay.workers WHERE stream = '$STREAM'});
	while (@observe && time < max(map { $_->{deadline} } @observe))
	{
		my $snap = workers_snapshot();
		accumulate($snap) if $snap;
		check_observations($snap);
		usleep(250_000);
	}
	check_observations(workers_snapshot());
	check_soft();
	my $final_snap = workers_snapshot();
	accumulate($final_snap);

	my $counts = check_accounting(\@final);

	is($node->safe_psql('postgres', qq{SELECT pid || ' ' || restarts FROM sentry_relay.workers WHERE stream = '$STREAM'}),
		$steady, 'no restart while the checks ran (no crash loop)');
	flush_totals();
	# every batch took the direct multi-insert (lower bounds, as above; the
	# server log check covers what a crash took from the counters)
	is($totals{copy_inserts} // 0, 0, 'no batch of jobs inserted through COPY FROM (workers view)');
	ok(($totals{direct_inserts} // 0) > 0, 'batches of jobs inserted by the direct multi-insert (workers view): '
		  . ($totals{direct_inserts} // 0));
	report($counts, \@final, time - $t_start);

	$node->stop;
	$kafka->stop;
}

sub check_accounting
{
	my ($final) = @_;
	my $tmp = PostgreSQL::Test::Utils::tempdir();
	my $q = sub { $node->safe_psql('postgres', $_[0]) };
	my %c;

	# the audit: the slot survived the crashes and restarts; read it once
	like($q->(qq{SELECT slot_type || ' ' || plugin || ' ' || coalesce(wal_status, '-')
	  FROM pg_replication_slots WHERE slot_name = '$SLOT'}), qr/^logical test_decoding (reserved|extended)$/,
		"the logical slot $SLOT is still there, with all its WAL");
	$q->('CREATE SCHEMA chaos');
	my $t_read = time;
	$q->($DECODE_SQL);
	$c{slot_read} = time - $t_read;
	@c{qw(decoded_rows decoded_mb)} = split / /, $q->(q{SELECT count(*) || ' '
	  || round(coalesce(sum(octet_length(data)), 0) / 1e6, 1) FROM chaos.decoded});
	my $t_derive = time;
	$q->($DERIVE_SQL);
	$c{derive} = time - $t_derive;
	$c{decoded_tx} = $q->(q{SELECT count(*) FROM chaos.commits});
	diag(sprintf('decoded %d rows (%.1f MB of text, %d transactions) in %.1f s; derived the audit in %.1f s',
		$c{decoded_rows}, $c{decoded_mb}, $c{decoded_tx}, $c{slot_read}, $c{derive}));

	# the harness's own record of the commit log it sent
	my $wfile = "$tmp/writer.tsv";
	open(my $wfh, '>', $wfile) or die "$wfile: $!";
	printf $wfh "%d\t%d\t%.6f\t%s\n", $_->[0], $_->[1], $_->[2], $_->[3] ? 't' : 'f' for @writer;
	close $wfh;
	$q->(qq{
CREATE TABLE chaos.writer (partition int NOT NULL, "offset" bigint NOT NULL, sent_epoch float8 NOT NULL,
    produced boolean NOT NULL, sent_at timestamptz GENERATED ALWAYS AS (to_timestamp(sent_epoch)) STORED);
COPY chaos.writer (partition, "offset", sent_epoch, produced) FROM '$wfile';
CREATE INDEX ON chaos.writer (partition, sent_at);
ANALYZE chaos.writer;});

	# retention must not have dropped anything
	my @low = map { my ($lo) = $kafka->end_offsets($TOPIC, $_); $lo } 0 .. $P - 1;
	is(join(',', grep { $low[$_] != 0 } 0 .. $P - 1), '', 'no partition lost messages to retention');
	refresh_high();
	diag(sprintf("largest partition: %.1f MB", max(@bytes) / 1e6));

	# read back what Kafka holds: partition, offset, key
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'kcat', '-C', '-b', $kafka->bootstrap, '-t', $TOPIC, '-o', 'beginning', '-e', '-q',
			'-f', '%p %o %k\n' ], '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(300))
	  or die "kcat failed: $err";
	my $file = "$tmp/expected.tsv";
	open(my $fh, '>', $file) or die "$file: $!";
	my $n = 0;
	my %seen_seq;
	for my $line (split /\n/, $out)
	{
		my ($p, $off, $key) = split / /, $line;
		die "unexpected kcat line '$line'" unless defined $key && $key =~ /^c(\d+)$/;
		my $s = $1;
		my $c = $class[$s] // die "unknown message $key";
		printf $fh "%d\t%d\t%d\t%s\t%s\t%s\n", $p, $off, $s, $c, sprintf('%032x', $s),
		  $c eq 'D' ? $dead_md5{$s} : '\N';
		$n++;
		$seen_seq{$s}++;
	}
	close $fh;
	is($n, sum0(@high), "kcat read back every produced message ($n)");
	$node->safe_psql('postgres', qq{
CREATE TABLE chaos.expected (partition int, "offset" bigint, seq int, class text, event_id text, md5 text,
    PRIMARY KEY (partition, "offset"));
COPY chaos.expected FROM '$file';
CREATE TABLE chaos.final (partition int PRIMARY KEY, remote bigint);
INSERT INTO chaos.final SELECT i - 1, (ARRAY[@{[ join(',', @$final) ]}]::bigint[])[i] FROM generate_series(1, $P) i;
ANALYZE chaos.expected;});

	$c{produced} = $n;
	$c{below} = $q->(q{SELECT count(*) FROM chaos.expected e JOIN chaos.final f USING (partition) WHERE e."offset" < f.remote});
	for my $k (qw(J S D))
	{
		$c{"exp_$k"} = $q->(qq{SELECT count(*) FROM chaos.expected e JOIN chaos.final f USING (partition)
		  WHERE e."offset" < f.remote AND e.class = '$k'});
	}
	$c{jobs} = $q->(q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'chaos'});
	$c{dead} = $q->(q{SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = 'chaos' AND topic = 'events'});
	$c{clog_dead} = $q->(q{SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = 'chaos' AND topic <> 'events'});

	is($q->(q{SELECT count(*) - count(DISTINCT (partition, "offset")) FROM sentry_relay.jobs WHERE stream = 'chaos'}),
		'0', 'no offset has two jobs');
	is($q->(q{SELECT count(*) - count(DISTINCT (partition, "offset")) FROM sentry_relay.dead_letters
	  WHERE stream = 'chaos' AND topic = 'events'}), '0', 'no offset has two dead letters');
	is($q->(q{SELECT count(*) FROM sentry_relay.jobs j JOIN sentry_relay.dead_letters d
	  ON d.stream = j.stream AND d.topic = j.topic AND d.partition = j.partition AND d."offset" = j."offset"
	  WHERE j.stream = 'chaos'}), '0', 'no offset is both a job and a dead letter');
	# every offset below the final remote offset: exactly what it should be
	my $bad = $q->(q{
SELECT count(*) || coalesce(': ' || string_agg(format('%s:%s %s got %s', partition, "offset", class, got), ', ')
       FILTER (WHERE rn <= 10), '')
  FROM (SELECT e.partition, e."offset", e.class,
               concat_ws('+', 'job(' || j.n || ')', 'dead(' || d.n || ')') AS got,
               row_number() OVER () AS rn
          FROM chaos.expected e JOIN chaos.final f USING (partition)
          LEFT JOIN (SELECT partition, "offset", count(*) AS n, min(event_id) AS event_id
                       FROM sentry_relay.jobs WHERE stream = 'chaos' GROUP BY 1, 2) j USING (partition, "offset")
          LEFT JOIN (SELECT partition, "offset", count(*) AS n, (array_agg(key))[1] AS key,
                            min(md5(value)) AS md5
                       FROM sentry_relay.dead_letters WHERE stream = 'chaos' AND topic = 'events'
                      GROUP BY 1, 2) d USING (partition, "offset")
         WHERE e."offset" < f.remote
           AND NOT coalesce(CASE e.class
                WHEN 'J' THEN j.n = 1 AND j.event_id = e.event_id AND d.n IS NULL
                WHEN 'D' THEN d.n = 1 AND d.key = convert_to('c' || e.seq, 'UTF8') AND d.md5 = e.md5 AND j.n IS NULL
                ELSE j.n IS NULL AND d.n IS NULL END, false)) x});
	is($bad, '0', 'every offset below the final remote offset: one job (the event produced there), '
		  . 'one dead letter (its raw bytes), or a skip');
	is($q->(q{SELECT (SELECT count(*) FROM sentry_relay.jobs j JOIN chaos.final f USING (partition)
	  WHERE j.stream = 'chaos' AND j."offset" >= f.remote)
	  + (SELECT count(*) FROM sentry_relay.dead_letters d JOIN chaos.final f USING (partition)
	  WHERE d.stream = 'chaos' AND d.topic = 'events' AND d."offset" >= f.remote)}),
		'0', 'nothing at or past the final remote offset was relayed');

	# the audit: the decoded WAL holds every job and dead letter, each once,
	# and the relay's tables lost no row (the derivation assumes it)
	is($q->(q{SELECT (SELECT count(*) FROM (SELECT partition, "offset" FROM chaos.job_audit
	                                         EXCEPT ALL SELECT partition, "offset" FROM sentry_relay.jobs WHERE stream = 'chaos') x)
	     + (SELECT count(*) FROM (SELECT partition, "offset" FROM sentry_relay.jobs WHERE stream = 'chaos'
	                              EXCEPT ALL SELECT partition, "offset" FROM chaos.job_audit) x)
	     + (SELECT count(*) FROM (SELECT topic, partition, "offset" FROM chaos.dead_audit
	                              EXCEPT ALL SELECT topic, partition, "offset" FROM sentry_relay.dead_letters WHERE stream = 'chaos') x)
	     + (SELECT count(*) FROM (SELECT topic, partition, "offset" FROM sentry_relay.dead_letters WHERE stream = 'chaos'
	                              EXCEPT ALL SELECT topic, partition, "offset" FROM chaos.dead_audit) x)}),
		'0', 'the decoded WAL holds every job and dead letter, and no other');
	is($q->(q{SELECT count(*) FROM chaos.changes
	  WHERE tbl IN ('jobs', 'dead_letters', 'partition_state', 'remote_offsets') AND op NOT IN ('INSERT', 'UPDATE')}),
		'0', 'the decoded WAL holds no delete or truncate of the audited tables');

	# local offsets: each partition's committed advances tile [0, final)
	is($q->(q{
WITH a AS (SELECT partition, old_local, coalesce(old_local, 0) AS old, new_local AS new,
                  lag(new_local) OVER (PARTITION BY partition ORDER BY id) AS prev,
                  row_number() OVER (PARTITION BY partition ORDER BY id DESC) AS from_end
             FROM chaos.advances)
SELECT count(*) FROM a LEFT JOIN chaos.final f USING (partition)
 WHERE new IS NULL OR new < old OR (new = old AND old_local IS NOT NULL)
    OR (prev IS NOT NULL AND old <> prev) OR (prev IS NULL AND old <> 0)
    OR (from_end = 1 AND new <> f.remote)}), '0',
		'local offsets only moved forwards, each advance starting where the previous one ended, up to the final remote offset');
	# each offset was consumed in the transaction that moved the local offset past it
	is($q->(q{
SELECT (SELECT count(*) FROM chaos.job_audit j WHERE NOT EXISTS (SELECT 1 FROM chaos.advances a
          WHERE a.partition = j.partition AND a.xid = j.xid AND j."offset" >= coalesce(a.old_local, 0) AND j."offset" < a.new_local))
     + (SELECT count(*) FROM chaos.dead_audit d WHERE d.topic = 'events' AND NOT EXISTS (SELECT 1 FROM chaos.advances a
          WHERE a.partition = d.partition AND a.xid = d.xid AND d."offset" >= coalesce(a.old_local, 0) AND d."offset" < a.new_local))}),
		'0', 'each job and dead letter committed with the local-offset advance past it');
	# the counted skips: offsets the advances passed without a job or a dead
	# letter (the two checks above make this exact: the advances tile each
	# partition, and each job and dead letter lies in its own transaction's)
	$c{skips} = $q->(q{
SELECT coalesce(sum(new_local - coalesce(old_local, 0)), 0)
       - (SELECT count(*) FROM chaos.job_audit) - (SELECT count(*) FROM chaos.dead_audit WHERE topic = 'events')
  FROM chaos.advances});
	is($c{skips}, $c{exp_S}, "counted skips ($c{skips}) = skip messages below the final remote offset");
	is($c{jobs}, $c{exp_J}, "jobs ($c{jobs}) = inserts below the final remote offset");
	is($c{dead}, $c{exp_D}, "dead letters ($c{dead}) = bad messages below the final remote offset");
	is($c{jobs} + $c{dead} + $c{skips}, $c{below}, "jobs + dead letters + skips = messages below the final remote offset ($c{below})");

	# The gate, hard bound: each job below the highest offset the harness had
	# sent for its partition in the commit log before the job's transaction
	# committed.  An entry counts from the time taken before its produce, and
	# a failed produce counts too (it may have reached the broker): the bound
	# is the loosest one the relay could have seen, so a job at or past it
	# was enqueued before the writer had reported it stored.
	my $gate = $q->(q{
WITH h AS (SELECT rh.partition, rh.remote, t.commit_order, t.committed_at,
                  lag(rh.remote) OVER (PARTITION BY rh.partition ORDER BY t.commit_order) AS prev
             FROM chaos.remote_hist rh JOIN chaos.tx t USING (xid)),
g AS (SELECT g.*, t.commit_order, t.committed_at,
             (SELECT max(w."offset") FROM chaos.writer w
               WHERE w.partition = g.partition AND w.sent_at < t.committed_at) AS sent_max
        FROM chaos.gate g JOIN chaos.tx t USING (xid))
SELECT count(*) FILTER (WHERE sent_max IS NULL OR max_offset >= sent_max) || ' '
    || count(*) FILTER (WHERE remote IS NULL OR (max_offset >= remote AND NOT EXISTS (
           SELECT 1 FROM h WHERE h.partition = g.partition AND h.prev > h.remote
              AND h.commit_order <= g.commit_order AND h.committed_at > g.committed_at - interval '5 s'
              AND g.max_offset < h.prev))) || ' '
    || count(*) FILTER (WHERE max_offset >= remote) || ' ' || count(*)
  FROM g});
	my ($hard, $strict, $raced, $gtx) = split / /, $gate;
	is($hard, '0', "no job at or past the highest offset the harness had sent in the commit log before it committed "
		  . "($gtx transaction-partitions checked)");
	# The strict bound, a second check from the decoded replay of
	# remote_offsets: each job below the remote offset in force when its
	# transaction committed, but for a batch that a backward move raced.
	is($strict, '0', 'no job at or past the remote offset in force when it committed'
		  . ($raced ? " (except $raced batch(es) that a backward move of the commit log raced, each below the offset it moved back from)" : ''));
	$c{raced} = $raced;
	$c{gate_tx} = $gtx;
	# what the relay stored as remote offsets, the harness had sent
	is($q->(qq{SELECT count(*) FROM chaos.remote_rows r JOIN chaos.tx t USING (xid)
	  WHERE r.grp <> '$GROUP' OR NOT EXISTS (SELECT 1 FROM chaos.writer w
	        WHERE w.partition = r.partition AND w."offset" = r."offset" AND w.sent_at < t.committed_at)}),
		'0', 'every remote offset the relay stored is one the harness had sent for that partition before');
	$c{hist} = $q->(q{SELECT count(*) || ' ' || count(*) FILTER (WHERE remote < prev) FROM
	  (SELECT remote, lag(remote) OVER (PARTITION BY partition ORDER BY t.commit_order) AS prev
	     FROM chaos.remote_hist JOIN chaos.tx t USING (xid)) x});
	$c{tx} = $q->(q{SELECT count(*) FROM chaos.tx});

	# the server log: no crash we did not cause
	my $log = PostgreSQL::Test::Utils::slurp_file($node->logfile);
	my @sigs = $log =~ /terminated by signal (\d+)/g;
	$c{sig9} = grep { $_ == 9 } @sigs;
	is(join(',', grep { $_ != 9 } @sigs), '', 'no process died of a signal other than our kill -9');
	is($c{sig9}, $injected{kill9} // 0, 'one "terminated by signal 9" per kill -9');
	my @exits = $log =~ /(sentry_relay worker[^\n]*exited with exit code \d+)/g;
	$c{worker_exits} = scalar @exits;
	my %errs;
	$errs{ substr($1, 0, 160) }++ while $log =~ /\bERROR:\s+(?:[0-9A-Z]{5}: )?([^\n]*)/g;
	$c{errors} = \%errs;
	# the production insert path: no batch of jobs went through COPY FROM
	my @copy = $log =~ /^([^\n]*through COPY FROM[^\n]*)$/mg;
	is(scalar @copy, 0, 'no "through COPY FROM" in the server log' . (@copy ? ": $copy[0]" : ''));
	$c{crash_restarts} = () = $log =~ /all server processes terminated; reinitializing/g;
	$c{pg_starts} = () = $log =~ /database system is ready to accept connections/g;
	return \%c;
}

sub report
{
	my ($c, $final, $elapsed) = @_;
	my %c = %$c;
	for my $k (@PG_FAULTS, $kafka->kind eq 'mock' ? 'broker_down' : ())
	{
		is($seen{$k} // 0, $injected{$k} // 0, "fault $k: the workers view showed each of the " . ($injected{$k} // 0));
	}
	ok(($injected{$_} // 0) + ($_ eq 'rebalance_member' ? $member_not_joined : 0)
		  + ($_ eq 'broker_down' ? $broker_down_cut : 0) > 0, "fault $_ was injected")
	  for @PG_FAULTS, @KAFKA_FAULTS;
	my $fs = join(', ', map {
		sprintf('%s %d (seen %s)', $_, $injected{$_} // 0,
			$_ eq 'rtt' ? 'n/a' : ($seen{$_} // $soft_seen{$_} // 0)) } @PG_FAULTS, @KAFKA_FAULTS);
	my @lines = (
		sprintf('seed %d, %.0f s, %d partitions, 3 brokers (%s)', $seed, $elapsed, $P, $kafka->kind),
		sprintf('messages produced %d; below the final remote offsets %d (inserts %d, skips %d, bad %d)',
			$c{produced}, $c{below}, $c{exp_J}, $c{exp_S}, $c{exp_D}),
		sprintf('jobs %d, dead letters %d, counted skips %d (commit-log dead letters %d)',
			$c{jobs}, $c{dead}, $c{skips}, $c{clog_dead}),
		sprintf('commit log entries %d, of which backwards %d; remote offset changes stored %s (total, backwards)',
			$clog_entries, $backwards, $c{hist}),
		sprintf('decoded transactions %d, audited %d; decoded output %d rows, %.1f MB, read in %.1f s; '
			  . 'job transaction-partitions %d, raced by a backward move %d',
			$c{decoded_tx}, $c{tx}, $c{decoded_rows}, $c{decoded_mb}, $c{slot_read}, $c{gate_tx}, $c{raced}),
		sprintf('insert paths (workers view, summed over epochs): direct %d, COPY FROM %d',
			$totals{direct_inserts} // 0, $totals{copy_inserts} // 0),
		"faults injected: $fs",
		sprintf('restarts: postmaster crash restarts %d, server starts %d, worker error exits %d, '
			  . 'workers-view restarts %d; produce failures %d',
			$c{crash_restarts}, $c{pg_starts}, $c{worker_exits}, $totals{restarts} // 0, $produce_failures),
		"foreign consumers the group never took in within 30 s (not counted above): $member_not_joined",
		"broker_down observations cut short by a PostgreSQL or stream restart (not counted above): $broker_down_cut",
		'workers view (summed over epochs, lower bounds): '
		  . join(', ', map { "$_ " . ($totals{$_} // 0) } @COUNTERS),
	);
	push @lines, map { "worker error x$c{errors}{$_}: $_" } sort keys %{ $c{errors} };
	diag($_) for @lines;
}

1;
