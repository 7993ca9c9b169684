# SentryRelay::Test - shared helpers of the relay's TAP tests: a PostgreSQL
# node with sentry_relay preloaded and pointed at the test's Kafka (mock or
# real, see SentryRelay::Kafka), Sentry-shaped test messages, and polling
# with a deadline (never a bare sleep).
package SentryRelay::Test;

use strict;
use warnings;
use Carp;
use IPC::Run ();
use Exporter 'import';
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP ();
use SentryRelay::Watchdog;

our @EXPORT = qw(bare_node relay_node event_message event_headers wait_for_value
  wait_until create_errors_stream commit_log produce_events fast_group_options);

# Consumer-group timings short enough for tests (the mock needs them).
sub fast_group_options
{
	return '{"kafka": {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500", '
	  . '"max.poll.interval.ms": "10000", "topic.metadata.refresh.interval.ms": "1000", '
	  . '"fetch.wait.max.ms": "20", "reconnect.backoff.max.ms": "500"}}';
}

# bare_node($name, $kafka, %extra_conf): a started node with sentry_relay
# preloaded and pointed at $kafka, but no extension created.
sub bare_node
{
	my ($name, $kafka, %conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	my $extra = join("\n", map { "$_ = '$conf{$_}'" } sort keys %conf);
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'sentry_relay'
sentry_relay.bootstrap_servers = '@{[ $kafka->bootstrap ]}'
max_worker_processes = 24
log_min_messages = 'info'
$extra
});
	$node->start;
	return $node;
}

# relay_node($name, $kafka, %extra_conf): an initialized, started node with
# the extension created in database postgres.
sub relay_node
{
	my ($name, $kafka, %conf) = @_;
	my $node = bare_node($name, $kafka, 'sentry_relay.database' => 'postgres', %conf);
	$node->safe_psql('postgres', 'CREATE EXTENSION sentry_relay');
	return $node;
}

sub create_errors_stream
{
	my ($node, %o) = @_;
	my $name = $o{name} // 'errors';
	my $topic = $o{topic} // 'events';
	my $clog = exists $o{commit_log} ? $o{commit_log} : 'snuba-commit-log';
	my $groups = $o{groups} // ['snuba-consumers'];
	my $workers = $o{workers} // 1;
	my $reset = $o{reset} // 'earliest';
	my $cg = $o{consumer_group} // 'post-process-forwarder';
	my $clog_sql = defined $clog ? "'$clog'" : 'NULL';
	my $garr = 'ARRAY[' . join(',', map { "'$_'" } @$groups) . ']';
	$node->safe_psql('postgres', qq{
SELECT sentry_relay.create_stream('$name', '$topic', $clog_sql, $garr,
  consumer_group => '$cg', initial_offset_reset => '$reset', workers => $workers,
  options => '@{[ $o{options} // fast_group_options() ]}')});
}

# event_message(%f): a version 2 insert as Sentry's eventstream writes it.
sub event_message
{
	my (%f) = @_;
	my $eid = $f{event_id} // sprintf('%032x', $f{seq} // int(rand(1e9)));
	my $event = {
		event_id => $eid,
		project_id => ($f{project_id} // 1) + 0,
		group_id => exists $f{group_id} ? $f{group_id} : 100,
		primary_hash => '49f68a5c8493ec2c0bf489821c21fc3b',
		message => 'boom', platform => 'python',
		datetime => '2024-02-13T20:52:46.831390Z',
		data => { exception => { values => [ { type => 'ValueError' } ] } },
	};
	my $state = {
		is_new => JSON::PP::true, is_regression => JSON::PP::false,
		is_new_group_environment => JSON::PP::false,
		queue => $f{queue} // 'post_process_errors',
		skip_consume => $f{skip_consume} ? JSON::PP::true : JSON::PP::false,
		group_states => undef,
	};
	return JSON::PP->new->canonical->encode([ 2, 'insert', $event, $state ]);
}

# event_headers(%f): the modern task headers matching event_message(%f).
sub event_headers
{
	my (%f) = @_;
	my $eid = $f{event_id} // sprintf('%032x', $f{seq} // 0);
	return [
		[ 'Received-Timestamp', sprintf('%.3f', time) ],
		[ 'version', '2' ], [ 'operation', 'insert' ],
		[ 'event_id', $eid ], [ 'project_id', $f{project_id} // 1 ],
		[ 'group_id', $f{group_id} // 100 ],
		[ 'primary_hash', '49f68a5c8493ec2c0bf489821c21fc3b' ],
		[ 'is_new', '1' ], [ 'is_regression', '0' ],
		[ 'is_new_group_environment', '0' ], [ 'skip_consume', '0' ],
		[ 'queue', $f{queue} // 'post_process_errors' ],
	];
}

# produce_events($kafka, $topic, $partition, $count, %opt): produce $count
# inserts with seq numbers from $opt{first} (default 0); returns last offset.
sub produce_events
{
	my ($kafka, $topic, $partition, $count, %opt) = @_;
	my $first = $opt{first} // 0;
	my $file = PostgreSQL::Test::Utils::tempdir() . "/produce.txt";
	open(my $fh, '>', $file) or die "$file: $!";
	for my $i ($first .. $first + $count - 1)
	{
		my $msg = event_message(seq => $i, project_id => $opt{project_id} // 1);
		print $fh SentryRelay::KafkaMock::format_produce_line($topic, $partition,
			"k$i", $msg, $opt{headers} ? event_headers(seq => $i) : undef), "\n";
	}
	close $fh;
	return $kafka->produce_file($file);
}

# commit_log($kafka, $events_topic, $partition, $group, $offset): the writer
# reports that it has stored everything below $offset.
sub commit_log
{
	my ($kafka, $topic, $partition, $group, $offset, %opt) = @_;
	my ($k, $v, $h) = SentryRelay::KafkaMock::commit_log_message($topic, $partition,
		$group, $offset, %opt);
	return $kafka->produce($opt{commit_log_topic} // 'snuba-commit-log', 0, $k, $v, $h);
}

# wait_until($node, $sql, $timeout): poll until $sql returns 't'.
sub wait_until
{
	my ($node, $sql, $timeout) = @_;
	$timeout //= 60;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		my $r = $node->safe_psql('postgres', $sql);
		return 1 if $r eq 't';
		usleep(50_000);
	}
	diag("timed out after ${timeout}s waiting for: $sql");
	return 0;
}

# wait_for_value($node, $sql, $expected, $timeout): poll until $sql returns
# $expected; returns the last value seen.
sub wait_for_value
{
	my ($node, $sql, $expected, $timeout) = @_;
	$timeout //= 60;
	my $deadline = time + $timeout;
	my $r;
	while (time < $deadline)
	{
		$r = $node->safe_psql('postgres', $sql);
		return $r if $r eq $expected;
		usleep(50_000);
	}
	diag("timed out after ${timeout}s: '$sql' returned '$r', expected '$expected'");
	return $r;
}

# ---- helpers of the 03x/04x tests (gating, sources, faults) ----

push @EXPORT, qw(psql_error try_psql wait_for_value_retry job_offsets
  exactly_once raw_produce_file);

# psql_error($node, $sql): run $sql, which should fail; returns
# "SQLSTATE message" of its ERROR (psql's verbose form), or '' on success.
sub psql_error
{
	my ($node, $sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$out, stderr => \$err, on_error_stop => 1);
	return '' if $rc == 0;
	return "$1 $2" if $err =~ /ERROR:\s+([0-9A-Z]{5}): ([^\n]*)/;
	return "unparsed: $err";
}

# try_psql($node, $sql): the result of $sql, or undef on any error (for
# example while the server restarts after a crash).
sub try_psql
{
	my ($node, $sql) = @_;
	my ($out, $err) = ('', '');
	my $rc = eval {
		$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
			on_error_stop => 1);
	};
	return undef if !defined $rc || $rc != 0;
	return $out;
}

# wait_for_value_retry($node, $sql, $expected, $timeout): wait_for_value
# that takes connection and query errors as "not yet".
sub wait_for_value_retry
{
	my ($node, $sql, $expected, $timeout) = @_;
	$timeout //= 60;
	my $deadline = time + $timeout;
	my $r;
	while (time < $deadline)
	{
		$r = try_psql($node, $sql);
		return $r if defined $r && $r eq $expected;
		usleep(100_000);
	}
	diag("timed out after ${timeout}s: '$sql' returned '"
		  . ($r // '(error)') . "', expected '$expected'");
	return $r // '(error)';
}

# job_offsets($node, $stream, $partition): "o1,o2,..." of the stream's jobs.
sub job_offsets
{
	my ($node, $stream, $partition) = @_;
	my $where = "stream = '$stream'";
	$where .= " AND partition = $partition" if defined $partition;
	return $node->safe_psql('postgres',
		qq{SELECT coalesce(string_agg("offset"::text, ',' ORDER BY partition, "offset"), '')
		   FROM sentry_relay.jobs WHERE $where});
}

# exactly_once($node, $stream): "count distinct" of the stream's jobs by
# (partition, offset); the two are equal when nothing was enqueued twice.
sub exactly_once
{
	my ($node, $stream) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT count(*) || ' ' || count(DISTINCT (partition, "offset"))
		   FROM sentry_relay.jobs WHERE stream = '$stream'});
}

# raw_produce_file($kafka, [[topic, partition, key, value, headers], ...]):
# produce arbitrary messages in order through one produce_file.
sub raw_produce_file
{
	my ($kafka, $msgs) = @_;
	my $file = PostgreSQL::Test::Utils::tempdir() . "/produce_raw.txt";
	open(my $fh, '>', $file) or die "$file: $!";
	print $fh SentryRelay::KafkaMock::format_produce_line(@$_), "\n" for @$msgs;
	close $fh;
	return $kafka->produce_file($file);
}

# ---- helpers of the 08x tests (operations, drops), in any database ----

push @EXPORT, qw(poll stays create_stream_in commit_log_to_parts wait_for);

# wait_for($what, $code, $expected, $timeout): poll $code (every 100 ms)
# until it returns $expected, for anything that is not one SQL query (a
# Kafka watermark, a log line); returns the last value.
sub wait_for
{
	my ($what, $code, $expected, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	my $r;
	while (time < $deadline)
	{
		$r = $code->();
		return $r if $r eq $expected;
		usleep(100_000);
	}
	diag("timed out waiting for $what: '$r', expected '$expected'");
	return $r;
}

# poll($node, $db, $sql, $expected, $timeout): wait_for_value in any database,
# taking errors as "not yet".
sub poll
{
	my ($node, $db, $sql, $expected, $timeout) = @_;
	my $deadline = time + ($timeout // 60);
	my $r;
	while (time < $deadline)
	{
		my ($out, $err) = ('', '');
		my $rc = $node->psql($db, $sql, stdout => \$out, stderr => \$err, on_error_stop => 1);
		$r = $rc == 0 ? $out : "(error: $err)";
		return $r if $r eq $expected;
		usleep(100_000);
	}
	diag("timed out: '$sql' in $db returned '$r', expected '$expected'");
	return $r;
}

# stays($node, $db, $sql, $expected, $seconds): $sql keeps returning
# $expected for $seconds (checked every 100 ms); false at the first change.
sub stays
{
	my ($node, $db, $sql, $expected, $secs) = @_;
	my $deadline = time + $secs;
	while (time < $deadline)
	{
		my $r = $node->safe_psql($db, $sql);
		if ($r ne $expected)
		{
			diag("'$sql' in $db changed to '$r' (expected it to stay '$expected')");
			return 0;
		}
		usleep(100_000);
	}
	return 1;
}

# create_stream_in($node, $db, $name, $topic, $clog, %o): a stream in
# database $db following group snuba-consumers, consumer group cg-$name.
sub create_stream_in
{
	my ($node, $db, $name, $topic, $clog, %o) = @_;
	$node->safe_psql($db, qq{
SELECT sentry_relay.create_stream('$name', '$topic', '$clog', ARRAY['snuba-consumers'],
  consumer_group => 'cg-$name', workers => @{[ $o{workers} // 1 ]},
  options => '@{[ fast_group_options() ]}')});
}

# commit_log_to_parts($kafka, $topic, $clog, $offset, @partitions): the
# writer group snuba-consumers commits $offset on each partition, on $clog.
sub commit_log_to_parts
{
	my ($kafka, $topic, $clog, $offset, @parts) = @_;
	commit_log($kafka, $topic, $_, 'snuba-consumers', $offset, commit_log_topic => $clog)
	  for @parts;
}

# ---- the Kafka consumer group, read and written with confluent_kafka ----

push @EXPORT, qw(run_python kafka_commit kafka_committed wait_for_committed);

# run_python($code, $what): run Python code; (ok, its stdout).
sub run_python
{
	my ($code, $what) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run([ '/usr/bin/python3', '-c', $code ], '<', \undef, '>', \$out, '2>', \$err,
			IPC::Run::timeout(60));
	};
	chomp $out;
	diag("$what failed: " . ($@ || "exit status $?") . "\n$err") unless $ok;
	return ($ok, $out);
}

# Commit consumer group offsets in Kafka directly, as the original does with a
# plain Consumer.  $offsets: { partition => offset }.  Returns 1 on success.
sub kafka_commit
{
	my ($kafka, $group, $topic, $offsets) = @_;
	my $tps = join(', ', map { "TopicPartition('$topic', $_, $offsets->{$_})" } sort keys %$offsets);
	my $bootstrap = $kafka->bootstrap;
	my ($ok, $out) = run_python(qq{
import sys
from confluent_kafka import Consumer, TopicPartition
c = Consumer({'bootstrap.servers': '$bootstrap', 'group.id': '$group'})
r = c.commit(offsets=[$tps], asynchronous=False)
c.close()
bad = [tp for tp in r if tp.error is not None]
print(' '.join('%d:%d' % (tp.partition, tp.offset) for tp in r), bad)
sys.exit(1 if bad else 0)
}, "committing offsets of group $group");
	return $ok;
}

# The group's committed offsets: "p:o p:o" (-1001 when none).
sub kafka_committed
{
	my ($kafka, $group, $topic, @parts) = @_;
	my $tps = join(', ', map { "TopicPartition('$topic', $_)" } @parts);
	my $bootstrap = $kafka->bootstrap;
	my ($ok, $out) = run_python(qq{
from confluent_kafka import Consumer, TopicPartition
c = Consumer({'bootstrap.servers': '$bootstrap', 'group.id': '$group', 'enable.auto.commit': False})
r = c.committed([$tps], timeout=10)
c.close()
print(' '.join('%d:%d' % (tp.partition, tp.offset) for tp in sorted(r, key=lambda t: t.partition)))
}, "reading committed offsets of group $group");
	return $ok ? $out : "error";
}

sub wait_for_committed
{
	my ($kafka, $group, $topic, $parts, $expected, $timeout) = @_;
	my $deadline = time + ($timeout // 30);
	my $r;
	while (time < $deadline)
	{
		$r = kafka_committed($kafka, $group, $topic, @$parts);
		return $r if $r eq $expected;
		usleep(200_000);
	}
	diag("timed out: committed offsets of $group are '$r', expected '$expected'");
	return $r;
}

1;
