# chaos.pl - the full chaos soak of issue #6 (make chaos): CHAOS_SECONDS
# (default 900) of faults over a stream of at least 200,000 messages on a
# 3-broker mock Kafka cluster.  CHAOS_SEED=N replays a run's choices.
# See test/perl/SentryRelay/Chaos.pm and the README, "Chaos soak".
use strict;
use warnings;
use Test::More;
use SentryRelay::Chaos;

my $seconds = $ENV{CHAOS_SECONDS} || 900;
SentryRelay::Chaos::run(seconds => $seconds, messages => $ENV{CHAOS_MESSAGES} || 210_000,
	partitions => 32);
done_testing();
