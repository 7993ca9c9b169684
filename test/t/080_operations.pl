# 080_operations.pl - what a DBA does to a server that runs the relay:
#   1. a SIGHUP reload of the batch settings, applied without a restart;
#   2. a fast shutdown in the middle of a drain: quick, and nothing lost;
#   3. pg_dump and pg_restore into a new cluster: streams and offsets
#      survive, and the relay resumes at the stored offsets;
#   4. ALTER EXTENSION sentry_relay UPDATE from 0.1.0 through 0.2.0 to
#      0.4.0 with data in place, giving the same schema as a fresh install.
# The drops (DROP DATABASE, DROP EXTENSION) are in 081_drops.pl.
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
$kafka->create_events_topic($_, 2) for qw(rl-events fs-events dr-events up-events);
$kafka->create_commit_log_topic($_) for qw(rl-clog fs-clog dr-clog up-clog);

sub per_partition
{
	my ($node, $db, $stream, $where) = @_;
	$where = $where ? "AND $where" : '';
	return $node->safe_psql($db, qq{
SELECT string_agg(p, ' ' ORDER BY p) FROM (
  SELECT partition || ':' || count(*) || ':' || count(DISTINCT "offset") || ':'
         || min("offset") || '-' || max("offset") AS p
    FROM sentry_relay.jobs WHERE stream = '$stream' $where GROUP BY partition) s});
}

my $running = q{SELECT count(*) FROM sentry_relay.workers WHERE status = 'running'};

################################################################
# 1. SIGHUP reload of sentry_relay.batch_size.
################################################################
my $node = bare_node('ops', $kafka, 'sentry_relay.database' => 'postgres',
	'sentry_relay.batch_size' => 1000, 'sentry_relay.batch_timeout' => '1s');
$node->safe_psql('postgres', 'CREATE EXTENSION sentry_relay');
create_stream_in($node, 'postgres', 'rl', 'rl-events', 'rl-clog');
is(poll($node, 'postgres', $running, '1'), '1', 'reload: worker running');
my $rl_pid = $node->safe_psql('postgres', q{SELECT pid FROM sentry_relay.workers WHERE stream = 'rl'});

# Jobs per transaction: the relay commits one transaction per batch.
my $per_xact = q{SELECT coalesce(max(n), 0) || ' ' || count(*) FROM (
  SELECT xmin::text, count(*) AS n FROM sentry_relay.jobs WHERE stream = 'rl' AND "offset" %s
   GROUP BY 1) s};

# 300 messages wait behind the gate, then the writer commits them at once.
produce_events($kafka, 'rl-events', 0, 300);
ok(poll($node, 'postgres', q{SELECT count(*) FROM sentry_relay.partitions WHERE stream = 'rl' AND partition = 0 AND state = 'UNKNOWN'}, '1'),
	'reload: partition 0 waits for the writer');
commit_log_to_parts($kafka, 'rl-events', 'rl-clog', 300, 0);
is(poll($node, 'postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'rl'}, '300'), '300',
	'reload: 300 jobs with batch_size 1000');
my ($big, $nx) = split ' ', $node->safe_psql('postgres', sprintf($per_xact, '< 300'));
cmp_ok($big, '>', 10, "reload: before the reload, a transaction held more than 10 jobs ($big, in $nx transactions)");

$node->append_conf('postgresql.conf', "sentry_relay.batch_size = 10\nsentry_relay.batch_timeout = '10ms'\n");
$node->reload;
is(poll($node, 'postgres', q{SELECT current_setting('sentry_relay.batch_size')}, '10'), '10',
	'reload: the new batch_size is in force');
my $batches0 = $node->safe_psql('postgres', q{SELECT batches FROM sentry_relay.workers WHERE stream = 'rl'});
produce_events($kafka, 'rl-events', 0, 300, first => 300);
commit_log_to_parts($kafka, 'rl-events', 'rl-clog', 600, 0);
is(poll($node, 'postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'rl'}, '600'), '600',
	'reload: 300 more jobs');
($big, $nx) = split ' ', $node->safe_psql('postgres', sprintf($per_xact, '>= 300'));
cmp_ok($big, '<=', 10, "reload: after the reload, no transaction holds more than 10 jobs ($big)");
cmp_ok($nx, '>=', 30, "reload: the 300 jobs took at least 30 transactions ($nx)");
my $batches1 = $node->safe_psql('postgres', q{SELECT batches FROM sentry_relay.workers WHERE stream = 'rl'});
cmp_ok($batches1 - $batches0, '>=', 30, 'reload: the batches counter rose by at least 30 (' . ($batches1 - $batches0) . ')');
is($node->safe_psql('postgres', q{SELECT pid FROM sentry_relay.workers WHERE stream = 'rl'}), $rl_pid,
	'reload: the same worker process, not a restart');
is(per_partition($node, 'postgres', 'rl'), '0:600:600:0-599', 'reload: offsets 0..599 exactly once');
$node->safe_psql('postgres', q{SELECT sentry_relay.drop_stream('rl')});

################################################################
# 2. Fast shutdown in the middle of a drain.
################################################################
# 8000 messages per partition (about 4 MB, within the mock's 5 MB per
# partition) in batches of 10, which the writer lets through in three steps
# (4000, 6000, 8000): the shutdown comes right after the second, while the
# relay drains it and the last step is still to come, so the drain is
# under way whatever the machine's speed.  Nothing slows the relay down:
# its tables are as the extension makes them, and every batch takes the
# direct insert.
my $per_part = 8000;
create_stream_in($node, 'postgres', 'fs', 'fs-events', 'fs-clog');
is(poll($node, 'postgres', q{SELECT count(*) FROM sentry_relay.workers WHERE stream = 'fs' AND status = 'running'}, '1'),
	'1', 'shutdown: worker running');
produce_events($kafka, 'fs-events', $_, $per_part) for 0, 1;
commit_log_to_parts($kafka, 'fs-events', 'fs-clog', 4000, 0, 1);
my $seen = poll($node, 'postgres', q{SELECT count(*) >= 300 FROM sentry_relay.jobs WHERE stream = 'fs'}, 't');
is($seen, 't', 'shutdown: the drain is under way');
commit_log_to_parts($kafka, 'fs-events', 'fs-clog', 6000, 0, 1);
my $before = $node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'fs'});
my $log_offset = -s $node->logfile;
my $t0 = time;
$node->stop('fast');
my $stop_secs = time - $t0;
ok($stop_secs < 10, sprintf('shutdown: pg_ctl -m fast finished in %.1f s with %d of %d jobs enqueued',
	$stop_secs, $before, 2 * $per_part));
ok($before < 2 * 6000, "shutdown: it came in the middle of the drain ($before of the 12000 let through so far)");
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/worker 0 of stream "fs" stopped/, 'shutdown: the worker stopped cleanly');
unlike($log, qr/terminated by signal|exited with exit code [^01]/, 'shutdown: no process crashed');
$node->start;
commit_log_to_parts($kafka, 'fs-events', 'fs-clog', $per_part, 0, 1);    # the writer's last step
is(poll($node, 'postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'fs'}, 2 * $per_part, 120),
	2 * $per_part, 'shutdown: after the restart all jobs are there');
is(per_partition($node, 'postgres', 'fs'), "0:$per_part:$per_part:0-" . ($per_part - 1)
	  . " 1:$per_part:$per_part:0-" . ($per_part - 1), 'shutdown: every offset exactly once');
like($node->safe_psql('postgres', q{SELECT direct_inserts || ' ' || copy_inserts FROM sentry_relay.workers WHERE stream = 'fs'}),
	qr/^[1-9]\d* 0$/, 'shutdown: the batches since the restart took the direct insert');
unlike(slurp_file($node->logfile), qr/through COPY FROM/, 'shutdown: no batch took COPY FROM');
$node->safe_psql('postgres', q{SELECT sentry_relay.drop_stream('fs')});

################################################################
# 3. pg_dump and pg_restore into a new cluster.
################################################################
create_stream_in($node, 'postgres', 'dr', 'dr-events', 'dr-clog');
produce_events($kafka, 'dr-events', $_, 20) for 0, 1;
commit_log_to_parts($kafka, 'dr-events', 'dr-clog', 10, 0, 1);
my $synced = q{SELECT string_agg(partition || ':' || local_offset || ':' || remote_offset || ':' || state, ' ' ORDER BY partition)
  FROM sentry_relay.partitions WHERE stream = 'dr'};
is(poll($node, 'postgres', $synced, '0:10:10:SYNCHRONIZED 1:10:10:SYNCHRONIZED'),
	'0:10:10:SYNCHRONIZED 1:10:10:SYNCHRONIZED', 'dump: both partitions synchronized at 10');
my $dump = PostgreSQL::Test::Utils::tempdir() . '/relay.dump';
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'dump: pg_dump -Fc');
# the source relays on after the dump: the consumer group's committed
# offsets in Kafka move past the dumped ones
commit_log_to_parts($kafka, 'dr-events', 'dr-clog', 15, 0, 1);
is(poll($node, 'postgres', $synced, '0:15:15:SYNCHRONIZED 1:15:15:SYNCHRONIZED'),
	'0:15:15:SYNCHRONIZED 1:15:15:SYNCHRONIZED', 'dump: the source went on to 15 after the dump');
$node->safe_psql('postgres', q{SELECT sentry_relay.stop_stream('dr')});
is(poll($node, 'postgres', q{SELECT count(*) FROM sentry_relay.workers WHERE stream = 'dr'}, '0'), '0',
	'dump: the source stream is stopped');

my $restored = bare_node('restored', $kafka, 'sentry_relay.database' => 'postgres');
command_ok([ 'pg_restore', '--single-transaction', '-d', $restored->connstr('postgres'), $dump ],
	'dump: pg_restore --single-transaction into a new cluster');
is($restored->safe_psql('postgres', q{SELECT name, topic, commit_log_topic, consumer_group, workers, enabled FROM sentry_relay.streams}),
	'dr|dr-events|dr-clog|cg-dr|1|t', 'dump: the stream definition survived');
is($restored->safe_psql('postgres', q{SELECT string_agg(partition || ':' || local_offset, ' ' ORDER BY partition) FROM sentry_relay.partition_state WHERE stream = 'dr'}),
	'0:10 1:10', 'dump: local offsets survived (10, as dumped)');
is($restored->safe_psql('postgres', q{SELECT string_agg(partition || ':' || consumer_group || ':' || "offset", ' ' ORDER BY partition) FROM sentry_relay.remote_offsets WHERE stream = 'dr'}),
	'0:snuba-consumers:10 1:snuba-consumers:10', 'dump: remote offsets survived');
is($restored->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.commit_log_positions WHERE stream = 'dr'}),
	'1', 'dump: the commit-log position survived');
is($restored->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'dr'}),
	'20', 'dump: the 20 jobs not yet done survived');
# the launcher finds the restored stream by itself (it re-reads the streams
# every 10 s) and resumes at the stored offsets, not at Kafka's (15)
is(poll($restored, 'postgres', $synced, '0:15:15:SYNCHRONIZED 1:15:15:SYNCHRONIZED', 90),
	'0:15:15:SYNCHRONIZED 1:15:15:SYNCHRONIZED', 'dump: the restored relay caught up to the commit log (15)');
is(per_partition($restored, 'postgres', 'dr', '"offset" >= 10'), '0:5:5:10-14 1:5:5:10-14',
	'dump: it resumed at the stored offset 10, not at the consumer group\'s 15');
commit_log_to_parts($kafka, 'dr-events', 'dr-clog', 20, 0, 1);
is(poll($restored, 'postgres', $synced, '0:20:20:SYNCHRONIZED 1:20:20:SYNCHRONIZED'),
	'0:20:20:SYNCHRONIZED 1:20:20:SYNCHRONIZED', 'dump: and goes on to 20');
is(per_partition($restored, 'postgres', 'dr', '"offset" >= 10'), '0:10:10:10-19 1:10:10:10-19',
	'dump: offsets 10..19 enqueued exactly once after the restore');
is(per_partition($restored, 'postgres', 'dr'), '0:20:20:0-19 1:20:20:0-19',
	'dump: offsets 0..19 exactly once in the restored queue');
$restored->stop;
$node->stop;

################################################################
# 4. ALTER EXTENSION UPDATE from 0.1.0 through 0.2.0 to 0.4.0, with a
#    stream, jobs, dead letters and offsets in place.  This library starts
#    no worker while the schema is at another version, so the older
#    versions' data is written as their workers left it, and the relay must
#    resume from it after the update.
################################################################
# 0.1.0 had no worker role: its workers ran as the bootstrap superuser
my $up = bare_node('upgrade', $kafka, 'sentry_relay.database' => 'postgres', 'sentry_relay.worker_role' => '');
$log_offset = -s $up->logfile;
$up->safe_psql('postgres', q{CREATE EXTENSION sentry_relay VERSION '0.1.0'});
create_stream_in($up, 'postgres', 'up', 'up-events', 'up-clog');
ok($up->wait_for_log(qr/sentry_relay's library is version 0\.4\.0, but the extension in database "postgres" is at version 0\.1\.0; no relay worker is started/, $log_offset),
	'upgrade: on the 0.1.0 schema no worker starts, and the log says why');
produce_events($kafka, 'up-events', $_, 20) for 0, 1;
commit_log_to_parts($kafka, 'up-events', 'up-clog', 10, 0, 1);
# what 0.1.0's workers stored after relaying offsets 0..9 of both
# partitions and reading the two commit-log entries
$up->safe_psql('postgres', q{
INSERT INTO sentry_relay.jobs (stream, topic, partition, "offset", queue, eventstream_type, project_id,
    group_id, event_id, primary_hash, is_new, is_regression, is_new_group_environment, cache_key)
  SELECT 'up', 'up-events', p, o, 'post_process_errors', 'error', 1, 100, lpad(to_hex(p * 100 + o), 32, '0'),
         NULL, true, false, false, 'e:' || lpad(to_hex(p * 100 + o), 32, '0') || ':1'
    FROM generate_series(0, 1) p, generate_series(0, 9) o;
INSERT INTO sentry_relay.partition_state (stream, partition, topic, local_offset, state)
  VALUES ('up', 0, 'up-events', 10, 'SYNCHRONIZED'), ('up', 1, 'up-events', 10, 'SYNCHRONIZED');
INSERT INTO sentry_relay.remote_offsets (stream, partition, consumer_group, "offset", source)
  VALUES ('up', 0, 'snuba-consumers', 10, 'commit_log'), ('up', 1, 'snuba-consumers', 10, 'commit_log');
INSERT INTO sentry_relay.commit_log_positions (stream, partition, "offset") VALUES ('up', 0, 2);
INSERT INTO sentry_relay.dead_letters (stream, topic, partition, "offset", value, error, sqlstate, error_class)
  VALUES ('up', 'up-events', 0, 999, 'x', 'test', '22032', 'invalid_json')});
my $data = q{SELECT (SELECT string_agg(name || ':' || workers || ':' || enabled, ',') FROM sentry_relay.streams) || ' '
  || (SELECT string_agg(partition || ':' || local_offset, ',' ORDER BY partition) FROM sentry_relay.partition_state) || ' '
  || (SELECT count(*) || ':' || count(DISTINCT (partition, "offset")) FROM sentry_relay.jobs) || ' '
  || (SELECT count(*) FROM sentry_relay.dead_letters)};
my $data_before = $up->safe_psql('postgres', $data);
is($data_before, 'up:1:true 0:10,1:10 20:20 1', 'upgrade: data before the update');
my $version = q{SELECT extversion FROM pg_extension WHERE extname = 'sentry_relay'};

# 0.1.0 -> 0.2.0: still not this library's version
$log_offset = -s $up->logfile;
$up->safe_psql('postgres', q{ALTER EXTENSION sentry_relay UPDATE TO '0.2.0'});
is($up->safe_psql('postgres', $version), '0.2.0', 'upgrade: at 0.2.0');
is($up->safe_psql('postgres', $data), $data_before, 'upgrade: streams, offsets, jobs and dead letters survived 0.2.0');
ok($up->wait_for_log(qr/extension in database "postgres" is at version 0\.2\.0; no relay worker is started/, $log_offset),
	'upgrade: at 0.2.0 no worker starts either');

# the upgrade procedure: restart with the new version's settings (the
# default worker role, which 0.2.0 created), then update at once
$up->append_conf('postgresql.conf', "sentry_relay.worker_role = 'sentry_relay_relay'\n");
$up->restart;
is($up->safe_psql('postgres', 'SELECT count(*) FROM sentry_relay.workers'), '0',
	'upgrade: before the update, no worker runs');
$log_offset = -s $up->logfile;
$up->safe_psql('postgres', q{ALTER EXTENSION sentry_relay UPDATE});
is($up->safe_psql('postgres', $version), '0.4.0', 'upgrade: now at 0.4.0');
is($up->safe_psql('postgres', $data), $data_before, 'upgrade: streams, offsets, jobs and dead letters survived 0.4.0');
ok($up->wait_for_log(qr/the sentry_relay extension is at version 0\.4\.0: relay workers start/, $log_offset),
	'upgrade: the launcher notices the update');
commit_log_to_parts($kafka, 'up-events', 'up-clog', 20, 0, 1);
is(poll($up, 'postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'up'}, '40'), '40',
	'upgrade: the relay goes on after the update');
is(per_partition($up, 'postgres', 'up'), '0:20:20:0-19 1:20:20:0-19',
	'upgrade: it resumed at the stored offsets: 0..19 exactly once');
is($up->safe_psql('postgres', q{SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity WHERE backend_type = 'sentry_relay worker'}),
	'sentry_relay_relay', 'upgrade: the workers now run as the worker role');
is($up->safe_psql('postgres', q{SELECT string_agg(attname || ':' || attnotnull, ',' ORDER BY attname) FROM pg_attribute
  WHERE attrelid = 'sentry_relay.jobs'::regclass AND attname LIKE 'is\_%'}),
	'is_new:false,is_new_group_environment:false,is_regression:false',
	'upgrade: the task flags accept NULL, as Sentry passes None on');

# the updated schema equals a fresh install's
$up->safe_psql('postgres', 'CREATE DATABASE fresh');
$up->safe_psql('fresh', 'CREATE EXTENSION sentry_relay');
my $schema = q{
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'sentry_relay'),
members AS (SELECT classid, objid FROM pg_depend, ext WHERE refclassid = 'pg_extension'::regclass AND refobjid = ext.oid AND deptype = 'e')
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'member ' || pg_describe_object(classid, objid, 0) AS line FROM members
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' returns ' || pg_get_function_result(p.oid)
         || ' args ' || pg_get_function_arguments(p.oid) || ' ' || p.provolatile::text || p.prosecdef::text
         || ' ' || coalesce(p.proconfig::text, '') || ' ' || coalesce(p.proacl::text, '') || ' ' || md5(p.prosrc)
         || ' ' || coalesce(obj_description(p.oid, 'pg_proc'), '')
    FROM pg_proc p WHERE p.pronamespace = 'sentry_relay'::regnamespace
  UNION ALL
  SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(c.reloptions::text, '') || ' '
         || coalesce(c.relacl::text, '') || ' ' || c.relrowsecurity::text || ' ' || coalesce(obj_description(c.oid, 'pg_class'), '')
    FROM pg_class c WHERE c.relnamespace = 'sentry_relay'::regnamespace
  UNION ALL
  SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' '
         || a.attnotnull::text || ' ' || a.attidentity::text || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' '
         || coalesce(a.attacl::text, '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'sentry_relay'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'sentry_relay'::regnamespace
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
   WHERE c.relnamespace = 'sentry_relay'::regnamespace
  UNION ALL
  SELECT 'view ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid)) FROM pg_class c
   WHERE c.relnamespace = 'sentry_relay'::regnamespace AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'trigger ' || tgrelid::regclass || ' ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = 'sentry_relay'::regnamespace AND NOT t.tgisinternal
  UNION ALL
  SELECT 'policy ' || polrelid::regclass || ' ' || polname || ' ' || polcmd::text || ' ' || coalesce(pg_get_expr(polqual, polrelid), '')
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = 'sentry_relay'::regnamespace
  UNION ALL
  SELECT 'config ' || unnest(extconfig)::regclass || ' ' FROM pg_extension WHERE extname = 'sentry_relay'
  UNION ALL
  SELECT 'schema ' || nspname || ' ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'sentry_relay'
  UNION ALL
  SELECT 'init_privs ' || pg_describe_object(classoid, objoid, objsubid) || ' ' || initprivs::text
    FROM pg_init_privs WHERE privtype = 'e'
     AND (classoid, objoid) IN (SELECT classid, objid FROM members)
) s};
my $updated = $up->safe_psql('postgres', $schema);
my $fresh = $up->safe_psql('fresh', $schema);
cmp_ok(scalar(split /\n/, $fresh), '>', 50, 'upgrade: the schema description lists the objects (' . scalar(split /\n/, $fresh) . ' lines)');
my %f = map { $_ => 1 } split /\n/, $fresh;
my %u = map { $_ => 1 } split /\n/, $updated;
my @only_fresh = grep { !$u{$_} } sort keys %f;
my @only_updated = grep { !$f{$_} } sort keys %u;
diag("only in a fresh install: $_") for @only_fresh;
diag("only after the update: $_") for @only_updated;
ok($updated eq $fresh, 'upgrade: the updated schema equals a fresh install\'s (functions, tables, columns, constraints, indexes, views, triggers, grants, config tables)');
$up->stop;

$kafka->stop;
done_testing();
