# 001_preload.pl - sentry_relay loads through shared_preload_libraries on a
# fresh cluster, reserves its GUC prefix, and decodes in a new backend.
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

$node->stop;
done_testing();
