# 001_preload.pl - sentry_relay loads through shared_preload_libraries on a
# fresh cluster, reserves its GUC prefix, and decodes in a new backend.
# Without the preload, CREATE EXTENSION and ALTER EXTENSION UPDATE fail with
# an ERROR that names the fix and the session goes on; in a server whose
# preload was removed, the decoders still work and the stream functions
# warn that nothing relays.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SentryRelay::Watchdog;

my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'sentry_relay'
sentry_relay.max_message_size = '1MB'
sentry_relay.no_such_setting = 'x'
});
$node->start;

is($node->safe_psql('postgres', 'SHOW sentry_relay.max_message_size'),
	'1MB', 'setting from postgresql.conf is applied at preload');

my $log = slurp_file($node->logfile);
like($log, qr/invalid configuration parameter name "sentry_relay\.no_such_setting"/,
	'a misspelt sentry_relay.* setting is reported (prefix reserved)');

$node->safe_psql('postgres', 'CREATE EXTENSION sentry_relay');
is($node->safe_psql('postgres',
	q{SELECT extversion FROM pg_extension WHERE extname = 'sentry_relay'}),
	'0.4.0', 'extension version 0.4.0 installed');

my $job = $node->safe_psql('postgres', q{
SELECT sentry_relay.decode_event_message(
  convert_to('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":5,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]', 'UTF8'))->>'cache_key'});
is($job, 'e:0123456789abcdef0123456789abcdef:5', 'decoder works in a backend');

# a bad message is an ERROR for the statement, never a crash of the backend
my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT sentry_relay.decode_event_message(convert_to(repeat('[', 100000), 'UTF8'))});
isnt($rc, 0, 'deeply nested input fails');
like($err, qr/nested more than 64 levels/, 'with a clear message');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'server still up');
unlike(slurp_file($node->logfile), qr/terminated by signal|server process .* was terminated/,
	'no backend crashed');

$node->safe_psql('postgres', q{SELECT sentry_relay.create_stream('np', 'np-events', NULL, ARRAY['g'])});
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', q{CREATE EXTENSION sentry_relay VERSION '0.3.0'});

# the same server without the preload
$node->stop;
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->start;
$job = $node->safe_psql('postgres', q{
SELECT sentry_relay.decode_event_message(
  convert_to('[2,"insert",{"event_id":"0123456789abcdef0123456789abcdef","project_id":6,"group_id":null,"primary_hash":null},{"is_new":true,"is_regression":false,"is_new_group_environment":false}]', 'UTF8'))->>'cache_key'});
is($job, 'e:0123456789abcdef0123456789abcdef:6', 'no preload: the decoder works');
is($node->safe_psql('postgres', q{SELECT "offset" FROM sentry_relay.decode_commit_log_message('events:0:snuba-consumers', '12346');
  SHOW sentry_relay.max_message_size}), "12346\n1MB", 'no preload: the commit-log decoder too, with the settings it reads');
($rc, $out, $err) = $node->psql('postgres', q{SELECT sentry_relay.stop_stream('np') IS NOT NULL; SELECT count(*) FROM sentry_relay.workers});
is($rc, 0, 'no preload: the stream functions run');
like($err, qr/WARNING:  sentry_relay is not loaded via shared_preload_libraries: no relay worker runs\nHINT:  Add sentry_relay to shared_preload_libraries in postgresql\.conf and restart PostgreSQL\./,
	'no preload: and warn that nothing relays, naming the fix');
is($out, "t\n0", 'no preload: the stream was stopped, and no worker shows');
# an update stops with an ERROR, and the session survives it
($rc, $out, $err) = $node->psql('old', q{ALTER EXTENSION sentry_relay UPDATE; SELECT 'alive'}, on_error_stop => 0);
like($err, qr/ERROR:  sentry_relay must be loaded via shared_preload_libraries\nHINT:  Add sentry_relay to shared_preload_libraries in postgresql\.conf, restart PostgreSQL, and run the command again\./,
	'no preload: ALTER EXTENSION UPDATE fails with an ERROR that names the fix');
is($out, 'alive', 'no preload: the session survives the failed update');
is($node->safe_psql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'sentry_relay'}), '0.3.0',
	'no preload: the extension stays at its version');
$node->safe_psql('postgres', 'DROP EXTENSION sentry_relay');

# CREATE EXTENSION without the preload: an ERROR that names the fix, and
# the session goes on (a FATAL would end it)
($rc, $out, $err) = $node->psql('postgres', q{CREATE EXTENSION sentry_relay; SELECT 'alive'}, on_error_stop => 0);
like($err, qr/ERROR:  sentry_relay must be loaded via shared_preload_libraries\nHINT:  Add sentry_relay to shared_preload_libraries in postgresql\.conf, restart PostgreSQL, and run the command again\./,
	'no preload: CREATE EXTENSION fails with an ERROR that names the fix');
unlike($err, qr/FATAL/, 'no preload: no FATAL');
is($out, 'alive', 'no preload: the session survives');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_extension WHERE extname = 'sentry_relay'}), '0',
	'no preload: nothing was installed');
($rc, $out, $err) = $node->psql('postgres', q{CREATE EXTENSION sentry_relay VERSION '0.3.0'}, on_error_stop => 0);
like($err, qr/ERROR:  sentry_relay must be loaded via shared_preload_libraries/, 'no preload: CREATE EXTENSION VERSION fails the same way');
# after the error the library loads again in the same session, for the decoders
is($node->safe_psql('postgres', q{DO $$ BEGIN CREATE EXTENSION sentry_relay; EXCEPTION WHEN object_not_in_prerequisite_state THEN NULL; END $$;
  SELECT 'again'}), 'again', 'no preload: the failed load leaves the session usable');
unlike(slurp_file($node->logfile), qr/FATAL|terminated by signal/, 'no preload: no FATAL and no crash in the log');

$node->stop;
done_testing();
