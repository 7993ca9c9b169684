# 081_drops.pl - DROP DATABASE (without and WITH (FORCE)) of
# sentry_relay.database and DROP EXTENSION, with running workers: each is
# bounded in time, the workers stop, and nothing is left in a crash loop
# (server log, pg_stat_activity).  Also: the launcher's retry when
# sentry_relay.database does not exist at start-up.
#
# brokers: mock real
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SentryRelay::Kafka;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here'
  unless SentryRelay::Kafka->available;
my $kafka = SentryRelay::Kafka->new(brokers => 1);
$kafka->create_events_topic('dd-events', 2);
$kafka->create_commit_log_topic('dd-clog');

my $running = q{SELECT count(*) FROM sentry_relay.workers WHERE status = 'running'};
################################################################
# DROP DATABASE and DROP EXTENSION with running workers.
################################################################
my $dd = bare_node('drops', $kafka, 'sentry_relay.database' => 'relaydb');
$dd->safe_psql('postgres', 'CREATE DATABASE relaydb');
$dd->safe_psql('relaydb', 'CREATE EXTENSION sentry_relay');
create_stream_in($dd, 'relaydb', 'dd', 'dd-events', 'dd-clog', workers => 2);
is(poll($dd, 'relaydb', $running, '2'), '2', 'drop: two workers running in relaydb');
produce_events($kafka, 'dd-events', $_, 10) for 0, 1;
commit_log_to_parts($kafka, 'dd-events', 'dd-clog', 10, 0, 1);
is(poll($dd, 'relaydb', q{SELECT count(*) FROM sentry_relay.jobs}, '20'), '20', 'drop: 20 jobs relayed');
my $relay_procs = q{SELECT string_agg(backend_type, ',' ORDER BY backend_type) FROM pg_stat_activity WHERE backend_type LIKE 'sentry_relay%'};
is($dd->safe_psql('postgres', $relay_procs), 'sentry_relay launcher,sentry_relay worker,sentry_relay worker',
	'drop: launcher and two workers in pg_stat_activity');

# a. DROP DATABASE without FORCE: refused, as for any database in use
my ($out, $err) = ('', '');
my $t0 = time;
$dd->psql('postgres', 'DROP DATABASE relaydb', stdout => \$out, stderr => \$err);
my $secs = time - $t0;
like($err, qr/database "relaydb" is being accessed by other users/, 'drop database: refused while the relay is connected');
ok($secs < 20, sprintf('drop database: refused after %.1f s (PostgreSQL waits 5 s), no hang', $secs));
is($dd->safe_psql('relaydb', $running), '2', 'drop database: the workers still run');

# b. DROP EXTENSION: the workers stop, the launcher stays, nothing restarts
my $pids = $dd->safe_psql('relaydb', q{SELECT string_agg(pid::text, ',') FROM sentry_relay.workers});
my $log_offset = -s $dd->logfile;
$t0 = time;
$dd->safe_psql('relaydb', 'DROP EXTENSION sentry_relay');
$secs = time - $t0;
ok($secs < 20, sprintf('drop extension: done in %.1f s', $secs));
is(poll($dd, 'postgres', $relay_procs, 'sentry_relay launcher', 30), 'sentry_relay launcher',
	'drop extension: the workers are gone, the launcher stays');
ok(stays($dd, 'postgres', $relay_procs, 'sentry_relay launcher', 5),
	'drop extension: no worker comes back (5 s)');
my $log = slurp_file($dd->logfile, $log_offset);
unlike($log, qr/terminated by signal/, 'drop extension: no crash');
my $restarts = () = $log =~ /background worker "sentry_relay worker" \(PID \d+\) exited/g;
cmp_ok($restarts, '<=', 2, "drop extension: each worker exited once ($restarts exits logged)");

# the extension can come back, and the launcher runs it
$dd->safe_psql('relaydb', 'CREATE EXTENSION sentry_relay');
create_stream_in($dd, 'relaydb', 'dd', 'dd-events', 'dd-clog', workers => 2);
is(poll($dd, 'relaydb', $running, '2'), '2', 'drop extension: after CREATE EXTENSION the workers run again');

# c. DROP DATABASE ... WITH (FORCE): workers and launcher go, quickly,
#    and the launcher is not restarted into the dropped database
$log_offset = -s $dd->logfile;
$t0 = time;
$dd->safe_psql('postgres', 'DROP DATABASE relaydb WITH (FORCE)');
$secs = time - $t0;
ok($secs < 20, sprintf('drop database force: done in %.1f s', $secs));
is($dd->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'relaydb'}), '0',
	'drop database force: the database is gone');
is(poll($dd, 'postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'sentry_relay%'}, '0', 30), '0',
	'drop database force: no relay process left');
ok($dd->wait_for_log(qr/database "relaydb" is being dropped; the relay stops/, $log_offset),
	'drop database force: the launcher says why it stops');
ok(stays($dd, 'postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'sentry_relay%'}, '0', 5),
	'drop database force: nothing restarts (5 s)');
$log = slurp_file($dd->logfile, $log_offset);
unlike($log, qr/FATAL:  database "relaydb" does not exist/, 'drop database force: no launcher restart loop in the log');
unlike($log, qr/terminated by signal/, 'drop database force: no crash');

# d. a restart with sentry_relay.database missing: the launcher retries
#    every 30 s, not every second
$log_offset = -s $dd->logfile;
$dd->restart;
my $fatal = qr/FATAL:  database "relaydb" does not exist/;
ok($dd->wait_for_log($fatal, $log_offset), 'missing database: the launcher reports it');
my $n1 = () = slurp_file($dd->logfile, $log_offset) =~ /$fatal/g;
ok(stays($dd, 'postgres', q{SELECT 1}, '1', 5), 'missing database: the server runs on');
my $n2 = () = slurp_file($dd->logfile, $log_offset) =~ /$fatal/g;
ok($n2 - $n1 <= 1, "missing database: at most one more attempt in 5 s ($n1, then $n2)");
$dd->stop;

$kafka->stop;
done_testing();
