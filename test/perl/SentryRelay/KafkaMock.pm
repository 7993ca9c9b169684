# SentryRelay::KafkaMock - drive test/kafka_mock/sr_kafka_mock (a librdkafka
# mock Kafka cluster on 127.0.0.1) from Perl TAP tests, the demo and the
# benchmarks.  Test-only.  See test/kafka_mock/README.md for the protocol.
#
#   use SentryRelay::KafkaMock;
#   my $k = SentryRelay::KafkaMock->new(brokers => 1);
#   $k->create_topic('events', 4);
#   my $off = $k->produce('events', 0, 'key', '{"x":1}', { h => 'v' });
#   my ($lo, $hi) = $k->end_offsets('events', 0);
#   my ($ck, $cv) = SentryRelay::KafkaMock::commit_log_message(
#       'events', 0, 'snuba-consumers', $hi, orig_ts => time);
#   $k->produce('snuba-commit-log', 0, $ck, $cv);
#   $k->broker_down(1); ... $k->broker_up(1);
#   $k->stop;    # also done by DESTROY

package SentryRelay::KafkaMock;

use strict;
use warnings;

use Carp;
use File::Basename ();
use File::Spec;
use IPC::Run ();
use Time::HiRes ();

our $VERSION = '1.0';

my $START_TIMEOUT = 10;		# seconds to wait for the BOOTSTRAP line

# Path of the helper binary: $ENV{SR_KAFKA_MOCK}, else next to this module's
# repository (test/perl/SentryRelay/ -> test/kafka_mock/sr_kafka_mock).
sub binary_path
{
	return $ENV{SR_KAFKA_MOCK} if $ENV{SR_KAFKA_MOCK};
	my $dir = File::Basename::dirname(File::Spec->rel2abs(__FILE__));
	return File::Spec->catfile($dir, '..', '..', 'kafka_mock', 'sr_kafka_mock');
}

# new(brokers => N, timeout => S, stderr => FILE, producer_conf => {k => v})
#   brokers:  number of mock brokers (ids 1..N), default 1
#   timeout:  default seconds to wait for a command's answer (default 60)
#   stderr:   file the helper's log is appended to (default: inherit STDERR,
#             which PostgreSQL::Test::Utils points at the test's log file)
#   producer_conf: extra librdkafka properties for the helper's producer
sub new
{
	my ($class, %args) = @_;
	my $bin = binary_path();
	croak "sr_kafka_mock binary not found or not executable at $bin "
	  . "(build it with: make -C test/kafka_mock, or set SR_KAFKA_MOCK)"
	  unless -x $bin;

	my @cmd = ($bin, '--brokers', $args{brokers} // 1);
	my $pconf = $args{producer_conf} || {};
	push @cmd, '-X', "$_=$pconf->{$_}" for sort keys %$pconf;

	my $self = bless {
		cmd => \@cmd,
		in => '',
		out => '',
		timeout => $args{timeout} // 60,
		timer => IPC::Run::timer($START_TIMEOUT),
		stale => 0,    # answers still due for timed-out commands
		owner_pid => $$,
	}, $class;

	my @redirs = ('<', \$self->{in}, '>', \$self->{out});
	push @redirs, '2>>', $args{stderr} if defined $args{stderr};
	$self->{h} = IPC::Run::start(\@cmd, @redirs, $self->{timer});

	my $line = eval { $self->_read_line($START_TIMEOUT, 'startup') };
	if (!defined $line || $line !~ /^BOOTSTRAP (\S+)$/)
	{
		my $why = $@ || "unexpected first line \"" . ($line // '') . "\"";
		$self->_kill;
		croak "sr_kafka_mock (@cmd) did not start: $why";
	}
	$self->{bootstrap} = $1;
	return $self;
}

sub bootstrap { return $_[0]->{bootstrap} }

# kind(): 'mock' here, 'real' for SentryRelay::KafkaReal (see SentryRelay::Kafka).
sub kind { return 'mock' }

# Read one line of the helper's stdout, waiting at most $timeout seconds.
sub _read_line
{
	my ($self, $timeout, $what) = @_;
	my $h = $self->{h};
	my $t = $self->{timer};

	$t->start($timeout);
	while ($self->{out} !~ /\n/)
	{
		die "timed out after ${timeout}s waiting for the answer to \"$what\"\n"
		  if $t->is_expired;
		die "sr_kafka_mock exited while waiting for the answer to \"$what\"\n"
		  unless $h->pumpable;
		eval { $h->pump; 1 }
		  or die "sr_kafka_mock I/O failed waiting for \"$what\": $@";
	}
	$self->{out} =~ s/^([^\n]*)\n//;
	return $1;
}

# command("line", [timeout => S]): send one command line; returns the text
# after "OK " ('' for a bare OK) or croaks with the ERR message.
sub command
{
	my ($self, $line, %opt) = @_;
	croak "sr_kafka_mock is not running" unless $self->{h};
	croak "command must be one line" if $line =~ /[\r\n]/;

	local $SIG{PIPE} = 'IGNORE';
	$self->{in} .= "$line\n";
	my $timeout = $opt{timeout} // $self->{timeout};
	my $reply = eval {
		# first skip the late answers of commands that timed out earlier
		for (; $self->{stale}; $self->{stale}--)
		{
			$self->_read_line($timeout, "an earlier command");
		}
		$self->_read_line($timeout, $line);
	};
	if (!defined $reply)
	{
		(my $why = $@) =~ s/\s+\z//;
		$self->{stale}++ if $why =~ /^timed out/;
		croak "sr_kafka_mock: $why";
	}
	return $1 // '' if $reply =~ /^OK(?: (.*))?$/;
	croak "sr_kafka_mock: \"$line\" failed: $1" if $reply =~ /^ERR (.*)$/;
	croak "sr_kafka_mock: unexpected answer to \"$line\": \"$reply\"";
}

# Hex-encode one field of a produce line: undef -> '-' (NULL), '' -> '""'.
# Strings with characters above 0xFF are UTF-8 encoded first.
sub _hex
{
	my ($v) = @_;
	return '-' unless defined $v;
	return '""' if $v eq '';
	if ($v =~ /[^\x00-\xff]/)
	{
		$v = "$v";
		utf8::encode($v);
	}
	return unpack('H*', $v);
}

sub _word
{
	my ($what, $v) = @_;
	croak "bad $what \"" . ($v // 'undef') . "\""
	  if !defined $v || $v eq '' || $v =~ /[\s=]/;
	return $v;
}

# format_produce_line($topic, $partition, $key, $value, $headers): the
# argument line of "produce" (also one line of a produce_file file).
# $headers: hashref (sorted by name) or arrayref of [name, value] pairs or
# flat name => value list; header values may be undef (NULL).
sub format_produce_line
{
	shift if @_ && (ref $_[0] && eval { $_[0]->isa(__PACKAGE__) });
	my ($topic, $partition, $key, $value, $headers) = @_;
	croak "bad partition \"" . ($partition // 'undef') . "\""
	  unless defined $partition && $partition =~ /^-?\d+$/;
	my @h;
	if (ref $headers eq 'HASH')
	{
		@h = map { [ $_, $headers->{$_} ] } sort keys %$headers;
	}
	elsif (ref $headers eq 'ARRAY')
	{
		my @a = @$headers;
		@h = !@a || ref $a[0] ? @a : map { [ $a[ 2 * $_ ], $a[ 2 * $_ + 1 ] ] } 0 .. $#a / 2;
	}
	elsif (defined $headers)
	{
		croak "headers must be a hash or array reference";
	}
	return join ' ', _word('topic', $topic), $partition, _hex($key), _hex($value),
	  map { _word('header name', $_->[0]) . '=' . _hex($_->[1]) } @h;
}

sub create_topic
{
	my ($self, $name, $parts, $repl) = @_;
	$self->command(join ' ', 'create_topic', _word('topic', $name), $parts // 1,
		$repl // ());
	return 1;
}

# create_events_topic($name, $partitions) and create_commit_log_topic($name):
# Sentry's topics, as on SentryRelay::KafkaReal, which also applies Sentry's
# topic settings (LZ4, LogAppendTime, compaction...): the mock ignores them.
sub create_events_topic
{
	my ($self, $name, $parts) = @_;
	return $self->create_topic($name, $parts // 1);
}

sub create_commit_log_topic
{
	my ($self, $name) = @_;
	return $self->create_topic($name, 1);
}

# produce($topic, $partition, $key, $value, \%headers): synchronous, returns
# the offset.  Partition -1 lets the partitioner choose.
sub produce
{
	my ($self, @msg) = @_;
	return 0 + $self->command('produce ' . format_produce_line(@msg));
}

# produce_file($path, [timeout => S]): returns the number of messages.
sub produce_file
{
	my ($self, $path, %opt) = @_;
	croak "no such file $path" unless -f $path;
	croak "file name must not contain whitespace" if $path =~ /\s/;
	return 0 + $self->command("produce_file " . File::Spec->rel2abs($path),
		timeout => $opt{timeout} // 600);
}

sub broker_down { $_[0]->command("broker_down " . (0 + $_[1])); return 1 }
sub broker_up   { $_[0]->command("broker_up " . (0 + $_[1]));   return 1 }
sub rtt         { $_[0]->command("rtt " . (0 + $_[1]) . " " . (0 + $_[2])); return 1 }

sub set_leader
{
	my ($self, $topic, $p, $id) = @_;
	$self->command(join ' ', 'set_leader', _word('topic', $topic), 0 + $p, 0 + $id);
	return 1;
}

# push_errors($apikey, $count, @errcodes): the next $count requests with this
# API key (1 Fetch, 3 Metadata, 8 OffsetCommit, 11 JoinGroup, ...) fail with
# the given numeric rd_kafka_resp_err_t codes; one code is repeated $count
# times.  Cluster-wide: it also hits the helper's own producer.
sub push_errors
{
	my ($self, $apikey, $count, @errs) = @_;
	croak "push_errors needs at least one error code" unless @errs;
	$self->command(join ' ', 'push_errors', map { 0 + $_ } $apikey, $count, @errs);
	return 1;
}

# end_offsets($topic, $partition): (low, high) watermarks.
sub end_offsets
{
	my ($self, $topic, $p) = @_;
	my $r = $self->command(join ' ', 'end_offsets', _word('topic', $topic), 0 + $p);
	croak "bad end_offsets answer \"$r\"" unless $r =~ /^(-?\d+) (-?\d+)$/;
	return (0 + $1, 0 + $2);
}

sub ping { $_[0]->command('ping'); return 1 }

# signal('TERM'): send a signal to the helper (see wait_exit).
sub signal
{
	my ($self, $sig) = @_;
	croak "sr_kafka_mock is not running" unless $self->{h};
	$self->{signalled} = 1;
	$self->{h}->signal($sig);
	return 1;
}

# wait_exit([$timeout]): wait until the helper exits and reap it; returns its
# wait status like $? (0: exited with status 0), or undef if it is still
# running after $timeout seconds.
sub wait_exit
{
	my ($self, $timeout) = @_;
	my $h = $self->{h} or return $self->{status};
	my $t = $self->{timer};
	local $SIG{PIPE} = 'IGNORE';

	$t->start($timeout // 10);
	eval { $h->pump while $h->pumpable && !$t->is_expired; 1 };
	return undef if $h->pumpable;
	eval { $h->finish; 1 };
	$self->{status} = $h->full_result(0);
	delete $self->{h};
	return $self->{status};
}

# stop([timeout => S]): ask the helper to quit and reap it; kill it if it does
# not exit in time.  Returns 1 if it exited with status 0.  Safe to call twice.
sub stop
{
	my ($self, %opt) = @_;
	return ($self->{status} // 1) == 0 unless $self->{h};
	$self->{in} .= "quit\n" unless $self->{signalled};
	my $status = $self->wait_exit($opt{timeout} // 10);
	if (!defined $status)
	{
		$self->_kill;
		$self->{status} = -1;
	}
	return $self->{status} == 0;
}

sub _kill
{
	my ($self) = @_;
	my $h = $self->{h} or return;
	eval { $h->kill_kill(grace => 3); 1 };
	delete $self->{h};
}

sub DESTROY
{
	my ($self) = @_;
	local ($?, $@, $!);    # never change the test's exit status
	return unless $self->{h} && $self->{owner_pid} == $$;
	eval { $self->stop };    # at exit the helper also quits on EOF anyway
}

# commit_log_message($topic, $partition, $group, $offset, orig_ts => F,
#                    p99 => F|undef, omit_p99 => 1, legacy => 1)
# Returns (key, value) of a Sentry/Snuba commit log message: key
# "topic:partition:group", value JSON {"offset": N, "orig_message_ts": F,
# "received_p99": F|null}.  orig_ts defaults to now; p99 to null.  With
# legacy => 1 the value is the bare offset and a third element is returned,
# a headers hashref with orig_message_ts as ISO 8601 UTC (if orig_ts given).
# May be called as a function or as a method.
sub commit_log_message
{
	shift if @_ && (ref $_[0] || $_[0] eq __PACKAGE__);
	my ($topic, $partition, $group, $offset, %opt) = @_;
	croak "offset must be a non-negative integer"
	  unless defined $offset && $offset =~ /^\d+$/;
	croak "partition must be a non-negative integer"
	  unless defined $partition && $partition =~ /^\d+$/;
	my $key = "$topic:$partition:$group";

	if ($opt{legacy})
	{
		my %h;
		if (defined $opt{orig_ts})
		{
			my $us = int($opt{orig_ts} * 1e6 + 0.5);
			my @t = gmtime(int($us / 1e6));
			$h{orig_message_ts} = sprintf('%04d-%02d-%02dT%02d:%02d:%02d.%06dZ',
				$t[5] + 1900, $t[4] + 1, @t[ 3, 2, 1, 0 ], $us % 1000000);
		}
		return ($key, "$offset", \%h);
	}

	my $ts = $opt{orig_ts} // Time::HiRes::time();
	my $json = sprintf('{"offset": %s, "orig_message_ts": %s', $offset, _float($ts));
	$json .= sprintf(', "received_p99": %s', _float($opt{p99})) unless $opt{omit_p99};
	return ($key, $json . '}');
}

sub _float
{
	my ($v) = @_;
	return 'null' unless defined $v;
	croak "not a number: $v" unless $v =~ /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
	my $s = sprintf('%.6f', $v);
	$s =~ s/0+$//;
	$s .= '0' if $s =~ /\.$/;
	return $s;
}

1;
