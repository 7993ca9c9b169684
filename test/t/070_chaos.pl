# 070_chaos.pl - the 2-minute version of the chaos soak (make chaos runs the
# full one): the same faults and checks as test/chaos/chaos.pl, scaled down
# to 30,000 messages over 8 partitions.  CHAOS_SEED=N replays a run's
# choices.  See test/perl/SentryRelay/Chaos.pm and docs/chaos.md.
# On a real broker (SR_KAFKA=real): three Apache Kafka nodes, three replicas,
# and only the Kafka faults a real cluster can have (a node stopped or
# killed, then started again); the mock's request errors and latency stay
# mock-only.
#
# brokers: mock real
use strict;
use warnings;
use Test::More;
use SentryRelay::Chaos;
use SentryRelay::Kafka;

plan skip_all => 'java not found: no real Kafka broker here'
  unless SentryRelay::Kafka->available;

SentryRelay::Chaos::run(seconds => 120, messages => 30_000, partitions => 8,
	scaled => '30,000 messages over 8 partitions in 2 minutes');
done_testing();
