# SentryRelay::Kafka - the test broker of a TAP test, mock or real:
#
#   use SentryRelay::Kafka;
#   my $k = SentryRelay::Kafka->new(brokers => 1);        # kind from $ENV{SR_KAFKA}
#   my $k = SentryRelay::Kafka->new(kind => 'real', nodes => 3);
#   $k->kind;    # 'mock' or 'real'
#
# kind 'mock' (the default, also when $ENV{SR_KAFKA} is unset) returns a
# SentryRelay::KafkaMock (librdkafka's mock cluster), kind 'real' a
# SentryRelay::KafkaReal (Apache Kafka, test/kafka/cluster.sh).  Both take
# brokers => N or nodes => N for the cluster size, and offer the same
# methods: bootstrap, create_topic, create_events_topic,
# create_commit_log_topic, produce, produce_file, end_offsets, broker_down,
# broker_up, stop.  Fault injection (rtt, push_errors, set_leader) exists only
# on the mock; stop_node, kill_node, start_node, topic_config, alter_topic,
# delete_topic and delete_group_offsets only on the real cluster.
package SentryRelay::Kafka;

use strict;
use warnings;
use Carp;

our $VERSION = '1.0';

# kind(): the kind a test gets by default: $ENV{SR_KAFKA}, else 'mock'.
sub kind
{
	my $k = $ENV{SR_KAFKA} || 'mock';
	croak "SR_KAFKA must be 'mock' or 'real', not '$k'" unless $k =~ /^(mock|real)$/;
	return $k;
}

# available($kind): can a broker of this kind start here?  The mock always
# can (once built); the real one needs java.
sub available
{
	my ($class, $kind) = @_;
	$kind //= kind();
	return 1 if $kind eq 'mock';
	require SentryRelay::KafkaReal;
	return SentryRelay::KafkaReal::available();
}

sub new
{
	my ($class, %args) = @_;
	my $kind = delete $args{kind} // kind();
	my $n = delete $args{nodes};
	my $b = delete $args{brokers};
	croak "nodes => $n and brokers => $b differ"
	  if defined $n && defined $b && $n != $b;
	$n //= $b;
	if ($kind eq 'mock')
	{
		require SentryRelay::KafkaMock;
		return SentryRelay::KafkaMock->new(%args, defined $n ? (brokers => $n) : ());
	}
	if ($kind eq 'real')
	{
		require SentryRelay::KafkaReal;
		return SentryRelay::KafkaReal->new(%args, defined $n ? (nodes => $n) : ());
	}
	croak "kind must be 'mock' or 'real', not '$kind'";
}

1;
