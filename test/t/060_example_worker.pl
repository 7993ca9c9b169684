# 060_example_worker.pl - examples/job_worker.py against the relay: it wakes
# on NOTIFY, claims and completes every job exactly once as a member of
# sentry_relay_worker, puts failed jobs back with their errors, stops
# cleanly on SIGTERM, and reconnects when its connection is killed.
#
# brokers: mock real
use strict;
use warnings;
use File::Basename ();
use File::Spec;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SentryRelay::Kafka;
use SentryRelay::Test;

my $repo = $ENV{SR_REPO}
  // File::Spec->rel2abs(File::Basename::dirname(__FILE__) . '/../..');
my $worker_py = "$repo/examples/job_worker.py";
plan skip_all => 'no /usr/bin/python3 with psycopg2'
  unless system('/usr/bin/python3', '-c', 'import psycopg2') == 0;

plan skip_all => 'java not found: no real Kafka broker here'
  unless SentryRelay::Kafka->available;
my $kafka = SentryRelay::Kafka->new(brokers => 1);
$kafka->create_events_topic('events', 2);
$kafka->create_commit_log_topic('snuba-commit-log');

my $node = relay_node('worker', $kafka);
create_errors_stream($node);
$node->safe_psql('postgres', 'CREATE ROLE job_worker LOGIN IN ROLE sentry_relay_worker');
my $dsn = $node->connstr('postgres') . ' user=job_worker';

# start_worker(@options): the worker, running; returns its handle and output
sub start_worker
{
	my ($out, $err) = ('', '');
	my $timer = IPC::Run::timeout(30);
	my $h = IPC::Run::start([ '/usr/bin/python3', $worker_py, '--dsn', $dsn, @_ ],
		'<', \undef, '>', \$out, '2>', \$err, $timer);
	return { h => $h, out => \$out, err => \$err, timer => $timer };
}

# pump_for($w, $stream, $regex, $seconds): read the worker's output until
# $regex matches, for at most $seconds
sub pump_for
{
	my ($w, $stream, $re, $secs) = @_;
	$w->{timer}->start($secs);
	my $ok = eval { pump_until($w->{h}, $w->{timer}, $w->{$stream}, $re) };
	$w->{timer}->start(30);
	return $ok // 0;
}

# finish_worker($w, $seconds): wait for its exit; returns the exit code
sub finish_worker
{
	my ($w, $secs) = @_;
	$w->{timer}->start($secs);
	if (!eval { $w->{h}->finish; 1 })
	{
		diag("worker did not exit in ${secs}s: $@\nstderr:\n${$w->{err}}");
		$w->{h}->kill_kill;
		return -1;
	}
	note("worker stderr:\n${$w->{err}}");
	return $w->{h}->result(0);
}

# run_worker(@options): run it to its end; returns (exit code, stdout, stderr)
sub run_worker
{
	my $w = start_worker(@_);
	my $rc = finish_worker($w, 25);
	return ($rc, ${$w->{out}}, ${$w->{err}});
}

# the jobs in the worker's stdout: { id => "partition:offset:attempt" }
sub printed_jobs
{
	my ($out) = @_;
	my %jobs;
	for (split /\n/, $out)
	{
		next unless /^job id=(\d+) attempt=(\d+) .* partition=(\d+) offset=(\d+) /;
		$jobs{$1} = [] unless $jobs{$1};
		push @{ $jobs{$1} }, "$3:$4:$2";
	}
	return \%jobs;
}

my %done;      # "partition:offset" => times completed, over every run
sub count_done
{
	my ($jobs) = @_;
	for my $id (keys %$jobs)
	{
		$done{ join(':', (split /:/, $_)[ 0, 1 ]) }++ for @{ $jobs->{$id} };
	}
}

sub jobs_left { $node->safe_psql('postgres', 'SELECT count(*) FROM sentry_relay.jobs') }

# --- 1. a waiting worker wakes on NOTIFY and takes 40 jobs, each once ---------
produce_events($kafka, 'events', 0, 25);
produce_events($kafka, 'events', 1, 15, first => 1000);
ok(wait_until($node, q{SELECT count(*) = 2 FROM sentry_relay.partitions WHERE worker_pid IS NOT NULL}),
	'the relay has both partitions');

# polling every 60 s: only a notification can wake it in time
my $w = start_worker('--max-jobs', 40, '--batch', 7, '--poll', 60);
ok(pump_for($w, 'err', qr/listening on sentry_relay_jobs/, 20), 'the worker listens');
my $t0 = time;
commit_log($kafka, 'events', 0, 'snuba-consumers', 25);
commit_log($kafka, 'events', 1, 'snuba-consumers', 15);
is(finish_worker($w, 20), 0, 'the worker exits 0 after --max-jobs 40');
cmp_ok(time - $t0, '<', 20, 'woken by NOTIFY, not by its 60 s poll');
my $jobs = printed_jobs(${ $w->{out} });
is(scalar(keys %$jobs), 40, '40 distinct jobs printed');
is(scalar(grep { @$_ != 1 } values %$jobs), 0, 'no job printed twice');
count_done($jobs);
is(scalar(keys %done), 40, '40 distinct (partition, offset)');
is(join(',', sort { $a cmp $b } grep { /^0:/ } keys %done),
	join(',', sort { $a cmp $b } map { "0:$_" } 0 .. 24), 'partition 0: offsets 0..24');
is(scalar(grep { /^1:/ } keys %done), 15, 'partition 1: 15 jobs');
is(scalar(grep { /:1$/ } map { @$_ } values %$jobs), 40, 'all at their first attempt');
is(jobs_left(), '0', 'the queue is empty');
like(${ $w->{err} }, qr/40 jobs: 40 completed, 0 failed/, 'summary line');

# --- 2. --fail-every: failed jobs go back to the queue with their error -------
produce_events($kafka, 'events', 0, 30, first => 25);
commit_log($kafka, 'events', 0, 'snuba-consumers', 55);
is(wait_for_value($node, 'SELECT count(*) FROM sentry_relay.jobs', '30', 30), '30', '30 more jobs');
my ($rc, $out, $err) = run_worker('--fail-every', 4, '--retry-in', 120, '--batch', 5,
	'--idle-exit', 1.5);
is($rc, 0, 'the failing worker exits 0 when idle');
$jobs = printed_jobs($out);
is(scalar(keys %$jobs), 23, '23 jobs processed');
my %failed = map { $_ => 1 } ($err =~ /failed job id=(\d+) attempt=1: RuntimeError: simulated failure/g);
is(scalar(keys %failed), 7, 'jobs 4, 8, ... 28 failed: 7');
is(scalar(grep { $jobs->{$_} } keys %failed), 0, 'no failed job was also processed');
like($err, qr/30 jobs: 23 completed, 7 failed/, 'summary line');
count_done($jobs);
is(jobs_left(), '7', 'the 7 failed jobs are back in the queue');
is($node->safe_psql('postgres', q{
	SELECT string_agg(id::text, ',' ORDER BY id) FROM sentry_relay.jobs
	 WHERE attempts = 1 AND leased_until IS NULL
	   AND visible_at BETWEEN now() + interval '100 s' AND now() + interval '121 s'
	   AND jsonb_array_length(errors) = 1 AND (errors->0->>'attempt')::int = 1
	   AND errors->0->>'error' = 'RuntimeError: simulated failure (--fail-every 4)'}),
	join(',', sort { $a <=> $b } keys %failed),
	'each is unleased, delayed by --retry-in, with its error recorded');

# the retry: make them visible now, and a worker completes them at attempt 2
$node->safe_psql('postgres', 'UPDATE sentry_relay.jobs SET visible_at = now()');
($rc, $out, $err) = run_worker('--idle-exit', 1);
is($rc, 0, 'the retrying worker exits 0');
$jobs = printed_jobs($out);
is(join(',', sort { $a <=> $b } keys %$jobs), join(',', sort { $a <=> $b } keys %failed),
	'it processed exactly the failed jobs');
is(scalar(grep { /:2$/ } map { @$_ } values %$jobs), 7, 'at attempt 2');
count_done($jobs);
is(jobs_left(), '0', 'the queue is empty');
is(scalar(keys %done), 70, 'all 70 jobs completed');
is(scalar(grep { $done{$_} != 1 } keys %done), 0, 'each exactly once');

# --- 3. a killed connection: the worker reconnects, then SIGTERM stops it ------
$w = start_worker('--poll', 0.2);
ok(pump_for($w, 'err', qr/listening on sentry_relay_jobs/, 20), 'a long-running worker listens');
ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE application_name = 'sentry_relay_job_worker' AND usename = 'job_worker'}, 20),
	'its session shows');
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE application_name = 'sentry_relay_job_worker'});
ok(pump_for($w, 'err', qr/connection lost(?s:.*)listening on sentry_relay_jobs/, 20),
	'it notices the lost connection and reconnects');
produce_events($kafka, 'events', 1, 5, first => 2000);
commit_log($kafka, 'events', 1, 'snuba-consumers', 20);
ok(pump_for($w, 'out', qr/(?:^job id=.*\n){5}/m, 20), 'and takes the 5 new jobs');
$w->{h}->signal('TERM');
is(finish_worker($w, 10), 0, 'SIGTERM: it exits 0');
like(${ $w->{err} }, qr/SIGTERM: stopping after the current batch/, 'and says why');
$jobs = printed_jobs(${ $w->{out} });
is(join(',', sort map { join(':', (split /:/, $_)[ 0, 1 ]) } map { @$_ } values %$jobs),
	join(',', sort map { "1:$_" } 15 .. 19), 'partition 1, offsets 15..19');
is(jobs_left(), '0', 'the queue ends empty');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sentry_relay.dead_jobs'), '0', 'no dead jobs');

$node->stop;
$kafka->stop;
done_testing();
