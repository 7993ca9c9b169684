# SentryRelay::Watchdog - a limit on the wall time of one TAP test file, so
# that a test that hangs fails with a clear message instead of holding the
# whole run until CI's own deadline.  Loaded by SentryRelay::Test, and by the
# test files that do not use it.  The limit is $SR_TAP_TEST_TIMEOUT seconds
# (default 900, six times the slowest test; 0 turns it off).  On expiry the
# test exits with status 1 after a diagnostic naming the limit: exit, not
# die, so that no eval in a polling loop swallows it, and END blocks still
# run (PostgreSQL::Test::Cluster tears its nodes down; KafkaReal's cluster
# has its own owner watchdog).
package SentryRelay::Watchdog;

use strict;
use warnings;
use Test::More ();

my $limit = $ENV{SR_TAP_TEST_TIMEOUT} // 900;
die "SR_TAP_TEST_TIMEOUT must be a number of seconds, not \"$limit\"\n"
  unless $limit =~ /^\d+$/;
if ($limit > 0)
{
	$SIG{ALRM} = sub {
		Test::More::diag("$0: still running after $limit s (SR_TAP_TEST_TIMEOUT): "
			  . 'stopped by SentryRelay::Watchdog');
		exit 1;
	};
	alarm $limit;
}

1;
