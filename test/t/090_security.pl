# 090_security.pl - what needs running workers: they run as the worker role
# (sentry_relay.worker_role, by default sentry_relay_relay) with only its
# grants; a role that is missing, a superuser or cannot log in starts no
# worker, with a clear warning; and librdkafka's own log lines, even its
# configuration dump (debug=conf), never carry a secret into the server log.
#
# brokers: mock real
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SentryRelay::Kafka;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here'
  unless SentryRelay::Kafka->available;
my $kafka = SentryRelay::Kafka->new(brokers => 1);
$kafka->create_events_topic('events', 1);
$kafka->create_commit_log_topic('snuba-commit-log');

# Fake secrets, in the setting and in the stream's options.  librdkafka
# redacts sasl.password and ssl.key.password in its configuration dump
# itself, but prints sasl.kerberos.keytab; sentry_relay takes any property
# whose name contains ".key" for a secret.
my %secret = (
	guc_password => 'regress-guc-pw-4242',
	guc_keytab => '/tmp/regress-keytab-4242',
	stream_password => 'regress-stream-pw-77',
	stream_keytab => '/tmp/regress-stream-keytab-77',
	key_password => 'regress-keypw-77');
my $node = relay_node('security', $kafka,
	'sentry_relay.kafka_properties' =>
	  "sasl.password=$secret{guc_password};sasl.kerberos.keytab=$secret{guc_keytab}");
# the workers log librdkafka's debug lines at DEBUG1: only the worker role's
# sessions log them
$node->safe_psql('postgres', 'ALTER ROLE sentry_relay_relay SET log_min_messages = debug1');

my $opts = fast_group_options();
$opts =~ s/\}\}$/, "debug": "conf", "sasl.password": "$secret{stream_password}", "sasl.kerberos.keytab": "$secret{stream_keytab}", "ssl.key.password": "$secret{key_password}"}}/;
create_errors_stream($node, options => $opts);

ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE status = 'running'}),
	'the worker runs');

################################################################
# The worker role.
################################################################
is($node->safe_psql('postgres',
	q{SELECT usename || ' ' || r.rolsuper FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
	  WHERE backend_type = 'sentry_relay worker'}),
	'sentry_relay_relay false', 'the worker runs as sentry_relay_relay, not a superuser');
my $bootstrap = $node->safe_psql('postgres', q{SELECT rolname FROM pg_roles WHERE oid = 10});
is($node->safe_psql('postgres',
	q{SELECT usename FROM pg_stat_activity WHERE backend_type = 'sentry_relay launcher'}),
	$bootstrap, 'the launcher connects as the bootstrap superuser');
ok($node->log_contains(qr/sentry_relay launcher started in database "postgres"; workers run as role "sentry_relay_relay"/),
	'the launcher logs the worker role');

# Its grants are enough for the whole path: jobs, a dead letter, offsets.
produce_events($kafka, 'events', 0, 5);
$kafka->produce('events', 0, 'bad', 'not JSON at all');
commit_log($kafka, 'events', 0, 'snuba-consumers', 6);
is(wait_for_value($node, q{SELECT count(*) FROM sentry_relay.jobs}, '5'), '5', 'five jobs inserted by the worker role');
is(wait_for_value($node, q{SELECT count(*) FROM sentry_relay.dead_letters}, '1'), '1',
	'one dead letter inserted by the worker role');
is(wait_for_value($node, q{SELECT local_offset || ' ' || state FROM sentry_relay.partitions WHERE partition = 0},
	'6 SYNCHRONIZED'), '6 SYNCHRONIZED', 'its progress is stored');
is($node->safe_psql('postgres', q{SELECT "offset" FROM sentry_relay.commit_log_positions}), '1',
	'commit-log position stored');

################################################################
# Secrets never reach the log.
################################################################
# The test's own statements are logged (log_statement = all), the
# create_stream with its options among them: a server with log_statement
# logs what its clients send, which is why secrets belong in
# sentry_relay.kafka_properties.  Leave those entries out.
my $log = join('', grep { !/^\S+ \S+ UTC \[\d+\] \S+ LOG:  statement: /s }
	split(/^(?=\d{4}-\d\d-\d\d )/m, slurp_file($node->logfile)));
like($log, qr/librdkafka CONF: .*Client configuration:/, 'librdkafka dumped its configuration into the log');
like($log, qr/librdkafka CONF: .*  sasl\.kerberos\.keytab = \[redacted\]/,
	'a secret librdkafka prints is redacted in the dump');
like($log, qr/librdkafka CONF: .*  sasl\.password = \[redacted\]/, 'sasl.password shows as [redacted]');
for my $k (sort keys %secret)
{
	unlike($log, qr/\Q$secret{$k}\E/, "the log never shows the secret $k");
}

################################################################
# A worker role that is a superuser, or cannot log in: no worker runs.
################################################################
sub wake
{
	$node->safe_psql('postgres', q{SELECT sentry_relay.start_stream('errors')});
}

sub expect_refusal
{
	my ($alter, $pattern, $what) = @_;
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "ALTER ROLE sentry_relay_relay $alter");
	wake();
	ok($node->wait_for_log($pattern, $offset), "$what: the launcher says why");
	ok(wait_until($node, q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'sentry_relay worker'}, 60),
		"$what: no worker runs");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.workers}), '0',
		"$what: the workers view is empty");
}

sub expect_recovery
{
	my ($alter, $what) = @_;
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "ALTER ROLE sentry_relay_relay $alter");
	wake();
	ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'sentry_relay worker' AND usename = 'sentry_relay_relay'}, 60),
		"$what: the worker runs again");
	ok($node->wait_for_log(qr/sentry_relay workers run as role "sentry_relay_relay" again/, $offset),
		"$what: the launcher logs the recovery");
}

expect_refusal('SUPERUSER',
	qr/WARNING:  sentry_relay\.worker_role "sentry_relay_relay" is a superuser; no relay worker is started/,
	'superuser');
ok($node->log_contains(qr/HINT:  ALTER ROLE sentry_relay_relay NOSUPERUSER/), 'superuser: with a hint');
expect_recovery('NOSUPERUSER', 'superuser');

expect_refusal('NOLOGIN',
	qr/WARNING:  sentry_relay\.worker_role "sentry_relay_relay" cannot log in; no relay worker is started/,
	'nologin');
expect_recovery('LOGIN', 'nologin');

################################################################
# The setting: a missing role, the bootstrap superuser, another role.
################################################################
sub restart_with_role
{
	my ($role) = @_;
	$node->append_conf('postgresql.conf', "sentry_relay.worker_role = '$role'");
	$node->restart;
}

my $offset = -s $node->logfile;
restart_with_role('regress_no_such_role');
ok($node->wait_for_log(
		qr/WARNING:  sentry_relay\.worker_role "regress_no_such_role" does not exist; no relay worker is started/, $offset),
	'missing role: the launcher says so');
ok($node->log_contains(qr/HINT:  CREATE EXTENSION sentry_relay creates the role sentry_relay_relay/),
	'missing role: with a hint');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sentry_relay worker'}),
	'0', 'missing role: no worker runs');
unlike(slurp_file($node->logfile, $offset), qr/FATAL:  role "regress_no_such_role" does not exist/,
	'missing role: no failing connection attempts');

# another role, which has the worker role's grants through membership
$node->safe_psql('postgres', 'CREATE ROLE regress_relay LOGIN IN ROLE sentry_relay_relay');
restart_with_role('regress_relay');
ok(wait_until($node, q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'sentry_relay worker' AND usename = 'regress_relay'}),
	'another role: the worker runs as regress_relay');
produce_events($kafka, 'events', 0, 2, first => 10);
commit_log($kafka, 'events', 0, 'snuba-consumers', 8);
is(wait_for_value($node, q{SELECT count(*) FROM sentry_relay.jobs}, '7'), '7',
	'another role: it inserts jobs through sentry_relay_relay\'s grants');

# empty: the bootstrap superuser, as before the setting existed
$offset = -s $node->logfile;
restart_with_role('');
ok(wait_until($node, qq{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'sentry_relay worker' AND usename = '$bootstrap'}),
	'empty setting: the worker runs as the bootstrap superuser');
ok($node->wait_for_log(qr/workers run as the bootstrap superuser/, $offset),
	'empty setting: the launcher says so');

$node->stop;
$kafka->stop;
done_testing();
