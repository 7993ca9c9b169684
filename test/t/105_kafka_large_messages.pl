# brokers: real
# 105_kafka_large_messages.pl - Sentry's events topic takes messages of up to
# 25,000,000 bytes (max.message.bytes), and the relay's default
# sentry_relay.max_message_size (25MB) is above that.  On a real broker, with
# Sentry's topic settings (LZ4 by the broker) and the relay's default
# settings (no Kafka options on the stream: librdkafka's default fetch
# limits, sentry_relay.queue_buffer 8MB), a valid insert of about 24 MB (a
# big, incompressible "data" member) between small messages becomes its job,
# in offset order, once the writer has committed past it, and not before.
# Then, with sentry_relay.max_message_size lowered to 1MB (ALTER SYSTEM and
# a reload: the setting is superuser-only and reloadable, and the running
# worker applies it), a 2 MB insert is dead-lettered with its raw bytes
# (SQLSTATE 54000), while a 2 MB insert with complete task headers still
# becomes a job (its body is never read).  Skipped only when java is absent.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SentryRelay::KafkaReal;
use SentryRelay::Test;

plan skip_all => 'java not found: no real Kafka broker here (test/setup-deps.sh installs it)'
  unless SentryRelay::KafkaReal::available();

my $t_start = time;
# the helper's producer sends messages of up to 30 MB (librdkafka's default
# message.max.bytes is 1 MB)
my $kafka = SentryRelay::KafkaReal->new(nodes => 1,
	producer_conf => { 'message.max.bytes' => 30000000 });
$kafka->create_events_topic('events', 1);
$kafka->create_commit_log_topic('snuba-commit-log');
is($kafka->topic_config('events', 'max.message.bytes'), '25000000',
	'events: max.message.bytes 25000000, as Sentry sets it');
my $tmp = PostgreSQL::Test::Utils::tempdir();

# big_insert($seq, $bytes): a valid v2 insert of about $bytes bytes: its
# data carries base64 of random bytes, which LZ4 cannot shrink
sub big_insert
{
	my ($seq, $bytes) = @_;
	my $m = event_message(seq => $seq);
	open(my $r, '<:raw', '/dev/urandom') or die;
	my $n = int(($bytes - length($m) - 20) * 3 / 4);
	read($r, my $raw, $n) == $n or die;
	close $r;
	my $blob = encode_base64($raw, '');
	$m =~ s/"data":\{/"data":{"blob":"$blob",/ or die "no data member in $m";
	return $m;
}

sub produce_msgs
{
	my (@msgs) = @_;    # [key, value, headers]
	my $file = "$tmp/produce.txt";
	open(my $fh, '>', $file) or die;
	print $fh SentryRelay::KafkaMock::format_produce_line('events', 0, @$_), "\n" for @msgs;
	close $fh;
	return $kafka->produce_file($file);
}

# ---- a 24 MB insert between small ones, with the relay's defaults

my $big = big_insert(3, 24_000_000);
cmp_ok(length $big, '>', 23_900_000, sprintf('a %.2f MB insert', length($big) / 1e6));
cmp_ok(length $big, '<', 25_000_000, 'below the topic\'s max.message.bytes');
my $t0 = time;
is(produce_msgs((map { [ "k$_", event_message(seq => $_) ] } 0 .. 2), [ 'k3', $big ],
		(map { [ "k$_", event_message(seq => $_) ] } 4 .. 6)), 7,
	'seven messages produced: offsets 0..2 small, 3 the big one, 4..6 small');
note(sprintf('produced in %.1f s', time - $t0));
is(join(' ', $kafka->end_offsets('events', 0)), '0 7', 'events [0]: offsets 0..6');
my $seg = (sort glob($kafka->dir . '/node1/data/events-0/*.log'))[0];
cmp_ok(-s $seg, '>', 23_900_000, 'the broker stores it big (LZ4 could not shrink it): '
	  . sprintf('%.2f MB of log', (-s $seg) / 1e6));

my $node = relay_node('relay', $kafka);
is($node->safe_psql('postgres', q{SELECT current_setting('sentry_relay.max_message_size') || ' '
  || current_setting('sentry_relay.queue_buffer')}), '25MB 8MB',
	'the relay\'s defaults: max_message_size 25MB, queue_buffer 8MB');
create_errors_stream($node, options => '{}');    # no Kafka options at all
is($node->safe_psql('postgres', q{SELECT options FROM sentry_relay.streams WHERE name = 'errors'}),
	'{}', 'the stream has no options');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.partitions
  WHERE stream = 'errors' AND worker_pid IS NOT NULL}, 90),
	'partition 0 assigned');

my $jobs_sql = q{SELECT coalesce(string_agg("offset" || ':' || event_id, ' ' ORDER BY id), '')
  FROM sentry_relay.jobs WHERE stream = 'errors'};
sub expect { return join ' ', map { sprintf('%d:%032x', $_, $_) } @_ }
my $parts_sql = q{SELECT local_offset || ' ' || remote_offset || ' ' || state
  FROM sentry_relay.partitions WHERE stream = 'errors'};

# the writer stops just before the big one: it waits
commit_log($kafka, 'events', 0, 'snuba-consumers', 3);
is(wait_for_value($node, $jobs_sql, expect(0 .. 2), 60), expect(0 .. 2),
	'writer at 3: the jobs of offsets 0..2');
is(wait_for_value($node, $parts_sql, '3 3 SYNCHRONIZED', 30), '3 3 SYNCHRONIZED',
	'writer at 3: SYNCHRONIZED at 3');
ok(stays($node, 'postgres', "$jobs_sql UNION ALL $parts_sql", expect(0 .. 2) . "\n3 3 SYNCHRONIZED", 2),
	'writer at 3: the big message waits (for 2 s)');

# the writer passes it
$t0 = time;
commit_log($kafka, 'events', 0, 'snuba-consumers', 7);
is(wait_for_value($node, $jobs_sql, expect(0 .. 6), 60), expect(0 .. 6),
	'writer at 7: the big message and the small ones after it are jobs, in offset order');
note(sprintf('the last four jobs took %.1f s', time - $t0));
is(wait_for_value($node, $parts_sql, '7 7 SYNCHRONIZED', 30), '7 7 SYNCHRONIZED',
	'writer at 7: SYNCHRONIZED at 7');
is($node->safe_psql('postgres', q{SELECT project_id || ' ' || group_id || ' ' || (body IS NULL)
  FROM sentry_relay.jobs WHERE stream = 'errors' AND "offset" = 3}), '1 100 true',
	'the big job has its fields, and no body (keep_body is off)');
is($node->safe_psql('postgres', q{SELECT messages || ' ' || jobs || ' ' || dead_letters || ' ' || restarts
  FROM sentry_relay.workers WHERE stream = 'errors'}), '7 7 0 0',
	'the worker read 7 messages, made 7 jobs, no dead letter, no restart');

# ---- sentry_relay.max_message_size lowered to 1MB: the running worker applies it

my $log_offset = -s $node->logfile;
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM sentry_relay.workers WHERE stream = 'errors'});
$node->safe_psql('postgres', q{ALTER SYSTEM SET sentry_relay.max_message_size = '1MB'});
$node->safe_psql('postgres', q{SELECT pg_reload_conf()});
{
	my $deadline = time + 30;
	my $seen = 0;
	until ($seen || time > $deadline)
	{
		$seen = $node->log_contains(qr/parameter "sentry_relay.max_message_size" changed to "1MB"/,
			$log_offset);
		usleep(50_000) unless $seen;
	}
	ok($seen, 'the server reloaded: max_message_size is 1MB');
}
is($node->safe_psql('postgres', q{SHOW sentry_relay.max_message_size}), '1MB', 'SHOW says 1MB');

my $over = big_insert(7, 2_000_000);
my $over_h = big_insert(8, 2_000_000);
is(produce_msgs([ 'k7', $over ], [ 'k8', $over_h, event_headers(seq => 8) ],
		[ 'k9', event_message(seq => 9) ]), 3,
	'offset 7: a 2 MB insert; 8: a 2 MB insert with complete task headers; 9: a small one');
commit_log($kafka, 'events', 0, 'snuba-consumers', 10);
is(wait_for_value($node, $parts_sql, '10 10 SYNCHRONIZED', 60), '10 10 SYNCHRONIZED',
	'writer at 10: SYNCHRONIZED at 10');
is($node->safe_psql('postgres', $jobs_sql), expect(0 .. 6, 8, 9),
	'jobs for 8 (decoded from its headers) and 9, none for 7');
is($node->safe_psql('postgres', q{SELECT "offset" || ' ' || sqlstate || ' ' || error_class || ' '
  || length(value) || ' ' || md5(value) || ' ' || convert_from(key, 'UTF8') || ' '
  || coalesce(cardinality(header_names), 0) FROM sentry_relay.dead_letters WHERE stream = 'errors'}),
	join(' ', 7, '54000', 'message_too_large', length($over), md5_hex($over), 'k7', 0),
	'offset 7 is dead-lettered, message_too_large (54000), with its raw bytes and key');
is($node->safe_psql('postgres', q{SELECT error FROM sentry_relay.dead_letters WHERE stream = 'errors'}),
	'event message of ' . length($over) . ' bytes exceeds the limit of 1048576 bytes',
	'the dead letter says why: over the 1MB the worker now applies');
is($node->safe_psql('postgres', q{SELECT pid || ' ' || restarts || ' ' || dead_letters
  FROM sentry_relay.workers WHERE stream = 'errors'}), "$pid 0 1",
	'the same worker did it (the reload applied without a restart)');
ok($node->log_contains(qr/1 message\(s\) could not be decoded and went to sentry_relay.dead_letters/,
		$log_offset), 'the server log says one message went to dead_letters');
is(exactly_once($node, 'errors'), '9 9', 'each job once');

$node->stop;
ok($kafka->stop, 'the helper and the cluster stop');
note(sprintf('105 took %.1f s', time - $t_start));
done_testing();
