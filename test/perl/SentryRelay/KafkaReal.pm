# SentryRelay::KafkaReal - a real Apache Kafka cluster (KRaft, 1 or 3 nodes on
# 127.0.0.1, test/kafka/cluster.sh) driven from Perl TAP tests with the same
# API as SentryRelay::KafkaMock, so that a test can be written once for both
# (see SentryRelay::Kafka).  Test-only.  See test/kafka/README.md.
#
#   use SentryRelay::KafkaReal;
#   plan skip_all => 'no java' unless SentryRelay::KafkaReal::available();
#   my $k = SentryRelay::KafkaReal->new(nodes => 3);
#   $k->create_events_topic('events', 4);        # Sentry's topic settings
#   $k->create_commit_log_topic('snuba-commit-log');
#   $k->create_topic('other', 2, 3, { 'retention.ms' => 1000 });
#   my $off = $k->produce('events', 0, 'key', '{"x":1}', { h => 'v' });
#   my ($lo, $hi) = $k->end_offsets('events', 0);
#   $k->kill_node(2); ... $k->start_node(2);   # or stop_node(2): TERM
#   $k->topic_metadata('events')->{0}{leader}; # 1..N, -1: none (also replicas, isr)
#   $k->broker_down(1); $k->broker_up(1);      # = stop_node / start_node
#   $k->stop;    # also done by DESTROY
#
# Produce and the Admin API go through the same helper as the mock
# (test/kafka_mock/sr_kafka_mock, here with --bootstrap), whose producer is
# librdkafka's, like the extension's; end_offsets asks kcat -Q (see there).
# The mock's fault injection (rtt, push_errors, set_leader) croaks with "not
# supported on a real broker".
#
# The broker's classpath: the file $ENV{SR_KAFKA_CLASSPATH} (test/run-tests.sh
# sets it after running test/kafka/fetch.sh as root), else test/kafka/fetch.sh
# is run, which works without root only if the cache is already filled.
package SentryRelay::KafkaReal;

use strict;
use warnings;

use Carp;
use File::Basename ();
use File::Path ();
use File::Spec;
use File::Temp ();
use IPC::Run ();
use Time::HiRes ();
use SentryRelay::KafkaMock;

use parent -norequire, 'SentryRelay::KafkaMock';

our $VERSION = '1.0';

my $HELPER_START_TIMEOUT = 40;    # the helper waits up to 30 s for metadata

sub kind { return 'real' }

# test/kafka/ of this module's repository (test/perl/SentryRelay/ -> test/kafka/)
sub kafka_dir
{
	my $dir = File::Basename::dirname(File::Spec->rel2abs(__FILE__));
	return File::Spec->catdir($dir, '..', '..', 'kafka');
}

# available(): true if a real broker can be started here at all (java is on
# PATH).  Tests skip only on this; anything else that fails is a failure.
sub available
{
	for my $d (File::Spec->path)
	{
		return 1 if -x File::Spec->catfile($d, 'java');
	}
	return 0;
}

# The classpath file: $ENV{SR_KAFKA_CLASSPATH}, else what fetch.sh prints.
sub classpath_file
{
	return $ENV{SR_KAFKA_CLASSPATH} if $ENV{SR_KAFKA_CLASSPATH};
	my ($out, $err) = ('', '');
	my $fetch = File::Spec->catfile(kafka_dir(), 'fetch.sh');
	IPC::Run::run([$fetch], '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(900))
	  or croak "test/kafka/fetch.sh failed (run it as root once, or set "
	  . "SR_KAFKA_CLASSPATH): $err";
	chomp $out;
	return $out;
}

# new(nodes => 1|3, dir => DIR, timeout => S, stderr => FILE, producer_conf => {k => v})
#   nodes:    cluster size (node ids 1..N), default 1
#   dir:      where the cluster's files go (default: a new directory under
#             $TESTDIR/tmp_check, else under the system's temporary directory;
#             removed by stop if the test has passed so far, else kept, like
#             SR_KAFKA_KEEP=1 always does)
#   timeout, stderr, producer_conf: as for SentryRelay::KafkaMock
sub new
{
	my ($class, %args) = @_;
	my $nodes = $args{nodes} // 1;
	croak "nodes must be 1..9" unless $nodes =~ /^[1-9]$/;
	croak "java not found on PATH: no real Kafka broker on this machine" unless available();
	my $bin = SentryRelay::KafkaMock::binary_path();
	croak "sr_kafka_mock binary not found or not executable at $bin "
	  . "(build it with: make -C test/kafka_mock, or set SR_KAFKA_MOCK)"
	  unless -x $bin;

	my $dir = $args{dir};
	my $own_dir = !defined $dir;
	if ($own_dir)
	{
		my $base = $ENV{TESTDIR} ? File::Spec->catdir($ENV{TESTDIR}, 'tmp_check')
		  : File::Spec->tmpdir;
		File::Path::make_path($base);
		(my $test = File::Basename::basename($0)) =~ s/\.[^.]*$//;
		$test =~ s/[^\w-]/_/g;
		$dir = File::Temp::tempdir("kafka_${test}_XXXX", DIR => $base);
	}
	my $self = bless {
		nodes => $nodes,
		dir => $dir,
		own_dir => $own_dir,
		cluster_sh => File::Spec->catfile(kafka_dir(), 'cluster.sh'),
		classpath => classpath_file(),
		in => '',
		out => '',
		timeout => $args{timeout} // 60,
		timer => IPC::Run::timer($HELPER_START_TIMEOUT),
		stale => 0,
		owner_pid => $$,
	}, $class;

	# the cluster (its watchdog stops it if this process dies)
	my $t0 = Time::HiRes::time();
	my $out = $self->_cluster('start', '--nodes', $nodes, '--owner', $$, $dir);
	chomp $out;
	croak "cluster.sh start printed \"$out\", not a bootstrap address"
	  unless $out =~ /^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+)*$/;
	$self->{bootstrap} = $out;
	$self->{cluster_up} = 1;
	$self->{start_seconds} = Time::HiRes::time() - $t0;

	# the helper, in front of it
	my @cmd = ($bin, '--bootstrap', $self->{bootstrap});
	my $pconf = $args{producer_conf} || {};
	push @cmd, '-X', "$_=$pconf->{$_}" for sort keys %$pconf;
	$self->{cmd} = \@cmd;
	my @redirs = ('<', \$self->{in}, '>', \$self->{out});
	push @redirs, '2>>', $args{stderr} if defined $args{stderr};
	$self->{h} = IPC::Run::start(\@cmd, @redirs, $self->{timer});
	my $line = eval { $self->_read_line($HELPER_START_TIMEOUT, 'startup') };
	if (!defined $line || $line !~ /^BOOTSTRAP (\S+)$/)
	{
		my $why = $@ || "unexpected first line \"" . ($line // '') . "\"";
		$self->_kill;
		eval { $self->_cluster('stop', $dir) };
		$self->{cluster_up} = 0;
		croak "sr_kafka_mock (@cmd) did not start: $why";
	}
	return $self;
}

sub nodes         { return $_[0]->{nodes} }
sub dir           { return $_[0]->{dir} }
sub start_seconds { return $_[0]->{start_seconds} }

# Run cluster.sh; returns its stdout or croaks with its stderr.
sub _cluster
{
	my ($self, @args) = @_;
	my ($out, $err) = ('', '');
	local $ENV{SR_KAFKA_CLASSPATH} = $self->{classpath};
	my $ok = eval {
		IPC::Run::run([ $self->{cluster_sh}, @args ], '<', \undef, '>', \$out,
			'2>', \$err, IPC::Run::timeout(300));
	};
	croak "cluster.sh @args failed: " . ($@ || "exit status $?") . "\n$err" unless $ok;
	print STDERR $err if $err ne '';
	return $out;
}

sub _node_args
{
	my ($self, @n) = @_;
	@n = (1 .. $self->{nodes}) if @n == 1 && $n[0] == -1;
	for (@n)
	{
		croak "no node $_ (nodes are 1..$self->{nodes})"
		  unless /^\d+$/ && $_ >= 1 && $_ <= $self->{nodes};
	}
	return @n;
}

# stop_node(N...): TERM (a controlled shutdown), KILL after 30 s; waits until
# the JVMs are gone.  kill_node(N...): SIGKILL.  start_node(N...): start them
# again (same ports and data) and wait until each is a live broker again;
# start_node(N, ..., {wait => 0}) does not wait.  -1 means every node.
sub stop_node
{
	my ($self, @n) = @_;
	$self->_cluster('stop-node', $self->{dir}, $self->_node_args(@n));
	return 1;
}

sub kill_node
{
	my ($self, @n) = @_;
	$self->_cluster('kill-node', $self->{dir}, $self->_node_args(@n));
	return 1;
}

sub start_node
{
	my ($self, @n) = @_;
	my $opt = ref $n[-1] eq 'HASH' ? pop @n : {};
	$self->_cluster('start-node', (exists $opt->{wait} && !$opt->{wait} ? '--no-wait' : ()),
		$self->{dir}, $self->_node_args(@n));
	return 1;
}

# status(): { node => 'up'|'down' }
sub status
{
	my ($self) = @_;
	my %s = map { (split ' ')[ 0, 2 ] } split /\n/, $self->_cluster('status', $self->{dir});
	return \%s;
}

# The mock's broker_down/broker_up: here the node's JVM stops (TERM) and
# starts again.  ID -1 = all nodes.
sub broker_down { my ($self, $id) = @_; return $self->stop_node(0 + $id) }
sub broker_up
{
	my ($self, $id) = @_;
	my $st = $self->status;
	my @down = grep { $st->{$_} ne 'up' } $self->_node_args(0 + $id);
	return @down ? $self->start_node(@down) : 1;
}

# create_topic($name, $partitions, $replication, \%config): CreateTopics;
# returns once the metadata shows every partition with a leader.
sub create_topic
{
	my ($self, $name, $parts, $repl, $config) = @_;
	($config, $repl) = ($repl, undef) if ref $repl eq 'HASH';
	$self->command(join ' ', 'create_topic', SentryRelay::KafkaMock::_word('topic', $name),
		$parts // 1, $repl // (), _configs($config));
	return 1;
}

# alter_topic($name, \%config): set these topic configs (keeps the others).
sub alter_topic
{
	my ($self, $name, $config) = @_;
	croak "alter_topic needs at least one config" unless $config && %$config;
	$self->command(join ' ', 'alter_topic', SentryRelay::KafkaMock::_word('topic', $name),
		_configs($config));
	return 1;
}

# topic_config($name, $key): the topic's current value of config $key.
sub topic_config
{
	my ($self, $name, $key) = @_;
	return $self->command(join ' ', 'topic_config',
		SentryRelay::KafkaMock::_word('topic', $name), SentryRelay::KafkaMock::_word('config', $key));
}

sub delete_topic
{
	my ($self, $name) = @_;
	$self->command('delete_topic ' . SentryRelay::KafkaMock::_word('topic', $name));
	return 1;
}

# delete_group_offsets($group, $topic, \@partitions, timeout => S): the
# consumer group's committed offsets of these partitions are deleted
# (DeleteConsumerGroupOffsets, as kafka-consumer-groups.sh --delete-offsets).
# The broker refuses while a member of the group consumes the topic
# (GROUP_SUBSCRIBED_TO_TOPIC): this tries again every 200 ms, for at most
# timeout seconds (default 30), e.g. while a stopped consumer's LeaveGroup
# is on its way.  Real broker only: the mock cluster has no such request.
sub delete_group_offsets
{
	my ($self, $group, $topic, $parts, %opt) = @_;
	croak "delete_group_offsets needs partitions" unless $parts && @$parts;
	my $line = join ' ', 'delete_group_offsets', SentryRelay::KafkaMock::_word('group', $group),
	  SentryRelay::KafkaMock::_word('topic', $topic), map { 0 + $_ } @$parts;
	my $deadline = Time::HiRes::time() + ($opt{timeout} // 30);
	while (1)
	{
		my $ok = eval { $self->command($line); 1 };
		return 1 if $ok;
		croak $@ if $@ !~ /GROUP_SUBSCRIBED_TO_TOPIC|NON_EMPTY_GROUP|REBALANCE_IN_PROGRESS/
		  || Time::HiRes::time() > $deadline;
		Time::HiRes::usleep(200_000);
	}
}

# end_offsets($topic, $partition, timeout => S): (low, high) watermarks, as
# the mock's.  Not asked through the helper: librdkafka 2.0's
# rd_kafka_query_watermark_offsets ignores its timeout once its ListOffsets
# requests are out, and retries them (retries is 2^31-1) on the partition's
# cached leader; with that node killed it never returns, and the helper, one
# command at a time, then fails every later command too (seen in 103: >60 s).
# Here each watermark is a kcat -Q (rd_kafka_offsets_for_times, which keeps
# its timeout) with fresh metadata, tried again every 500 ms while no leader
# answers, for at most timeout seconds in all (default 30); then it croaks
# naming the partition and kcat's last error.  An unknown topic or partition
# croaks at once ("_UNKNOWN_PARTITION").
sub end_offsets
{
	my ($self, $topic, $p, %opt) = @_;
	my $t = SentryRelay::KafkaMock::_word('topic', $topic);
	croak "bad partition \"$p\"" unless defined $p && $p =~ /^\d+$/;
	my $limit = $opt{timeout} // 30;
	my $deadline = Time::HiRes::time() + $limit;
	my ($tries, $why) = (0, '');
	while (1)
	{
		$tries++;
		my @wm;
		for my $ts (-2, -1)
		{
			my ($out, $err) = ('', '');
			my $left = $deadline - Time::HiRes::time();
			$left = 1 if $left < 1;
			my $ok = eval {
				IPC::Run::run([ 'kcat', '-Q', '-b', $self->{bootstrap}, '-t', "$t:$p:$ts" ],
					'<', \undef, '>', \$out, '2>', \$err,
					IPC::Run::timeout($left < 15 ? $left : 15));
			};
			if ($ok && $out =~ /^\Q$t\E \[$p\]\s+offset (-?\d+)$/m)
			{
				push @wm, 0 + $1;
				next;
			}
			# kcat's own verdict ("% ERROR: ..."), else its last log line
			my @e = grep { /\S/ } split /\n/, $err;
			my ($verdict) = grep { /ERROR/ } reverse @e;
			$why = $@ =~ /timeout/i ? "kcat -Q gave no answer in time"
			  : $verdict // $e[-1] // ($out =~ /\S/ ? "unexpected output \"$out\"" : "exit status $?");
			$why =~ s/\s+\z//;
			# no such topic or partition: no use waiting (the mock's helper
			# fails at once too, with the error's name)
			croak "end_offsets($topic, $p): _UNKNOWN_PARTITION: no such topic or partition ($why)"
			  if $why =~ /Unknown (partition|topic)/i;
			last;
		}
		return @wm if @wm == 2;
		croak sprintf("end_offsets(%s, %d): no answer from the partition's leader within %d s "
			  . "(tries: %d; is a node down and its leaderships not moved yet?); last error: %s",
			$topic, $p, $limit, $tries, $why)
		  if Time::HiRes::time() + 0.5 > $deadline;
		Time::HiRes::usleep(500_000);
	}
}

# topic_metadata($topic): the topic's partitions as the cluster's metadata
# shows them now (kcat -L -J, librdkafka's Metadata request to any live
# node): { partition => { leader => node id (-1: none), replicas => [ids],
# isr => [ids] } }.  Croaks if kcat fails or the topic is unknown.
sub topic_metadata
{
	my ($self, $topic) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'kcat', '-L', '-J', '-m', '10', '-b', $self->{bootstrap}, '-t',
			SentryRelay::KafkaMock::_word('topic', $topic) ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(30))
	  or croak "kcat -L failed: $err";
	require JSON::PP;
	my $md = JSON::PP->new->decode($out);
	my ($t) = grep { $_->{topic} eq $topic } @{ $md->{topics} || [] };
	croak "topic $topic is not in the metadata: $out"
	  if !$t || $t->{error} || !@{ $t->{partitions} || [] };
	return { map {
		$_->{partition} => {
			leader => $_->{leader},
			replicas => [ map { $_->{id} } @{ $_->{replicas} || [] } ],
			isr => [ map { $_->{id} } @{ $_->{isrs} || [] } ],
		}
	} @{ $t->{partitions} } };
}

sub _configs
{
	my ($c) = @_;
	return () unless $c;
	croak "topic configs must be a hash reference" unless ref $c eq 'HASH';
	return map {
		my $v = $c->{$_};
		croak "bad value for topic config $_" if !defined $v || $v eq '' || $v =~ /\s/;
		SentryRelay::KafkaMock::_word('config', $_) . "=$v"
	} sort keys %$c;
}

# Sentry's topic settings (getsentry/sentry-kafka-schemas, topics/*.yaml).
our %EVENTS_TOPIC_CONFIG = (
	'compression.type' => 'lz4',
	'message.timestamp.type' => 'LogAppendTime',
	'max.message.bytes' => '25000000',
	'retention.ms' => '86400000',
);
our %COMMIT_LOG_TOPIC_CONFIG = (
	'cleanup.policy' => 'compact,delete',
	'compression.type' => 'lz4',
	'min.compaction.lag.ms' => '3600000',
	'retention.ms' => '86400000',
	'segment.bytes' => '104857600',
	'segment.ms' => '3600000',
);

# create_events_topic($name, $partitions, %extra_config): the errors
# pipeline's events topic, replicated on min(3, nodes) nodes.
sub create_events_topic
{
	my ($self, $name, $parts, %extra) = @_;
	return $self->create_topic($name, $parts // 1, $self->_repl,
		{ %EVENTS_TOPIC_CONFIG, %extra });
}

# create_commit_log_topic($name, %extra_config): Snuba's commit log, one
# partition (Sentry enforces that), compacted and deleted.
sub create_commit_log_topic
{
	my ($self, $name, %extra) = @_;
	return $self->create_topic($name, 1, $self->_repl, { %COMMIT_LOG_TOPIC_CONFIG, %extra });
}

sub _repl { my $n = $_[0]->{nodes}; return $n < 3 ? $n : 3 }

# stop(): the helper quits, then every node stops; the cluster's directory is
# removed if this process created it and the test has passed so far (and
# SR_KAFKA_KEEP is not set).  Returns 1 if the helper exited with status 0.
# Safe to call twice.
sub stop
{
	my ($self, %opt) = @_;
	my $ok = $self->SUPER::stop(%opt);
	if ($self->{cluster_up})
	{
		$self->{cluster_up} = 0;
		# SIGKILL: the data is thrown away, and a graceful stop of 3 nodes
		# takes 5 s more (see cluster.sh); stop(graceful => 1) for TERM
		eval { $self->_cluster('stop', ($opt{graceful} ? () : '--kill'), $self->{dir}); 1 }
		  or do { warn $@; $ok = 0 };
		my $passing = eval { require Test::More; Test::More->builder->is_passing } // 1;
		if ($self->{own_dir} && $passing && !$ENV{SR_KAFKA_KEEP})
		{
			File::Path::remove_tree($self->{dir});
		}
		elsif ($self->{own_dir})
		{
			print STDERR "SentryRelay::KafkaReal: cluster files kept in $self->{dir}\n";
		}
	}
	return $ok;
}

sub DESTROY
{
	my ($self) = @_;
	local ($?, $@, $!);    # never change the test's exit status
	return unless $self->{owner_pid} == $$;
	return unless $self->{h} || $self->{cluster_up};
	eval { $self->stop };
}

1;
