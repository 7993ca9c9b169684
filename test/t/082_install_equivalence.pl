# 082_install_equivalence.pl - the direct install script
# (sentry_relay--0.4.0.sql) and the upgrade chain give the same extension.
#
# Three databases of one node: "fresh" runs CREATE EXTENSION sentry_relay
# (PostgreSQL prefers the direct 0.4.0 script to the chain), "from010"
# installs 0.1.0 and updates, "from030" installs 0.3.0 (0.1.0 and two
# updates) and updates, "from020" installs 0.2.0 (0.1.0 and one
# update) and updates.  A description of every object of the extension,
# made from the catalogs, must be the same, line for line, in all three:
# members, functions (pg_get_functiondef, so SET options and bodies too,
# ACLs, comments, owners), relations (kind, reloptions, ACLs, row security,
# comments), columns in attnum order (types, NOT NULL, identity, defaults,
# column ACLs and comments), constraints, indexes, views, sequences,
# triggers, rules, policies, the pg_extension_config_dump registrations in
# their order with their conditions, the schema's ACL, pg_init_privs and
# dependencies between members.  No Kafka and no stream are needed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SentryRelay::Watchdog;

my $node = PostgreSQL::Test::Cluster->new('install');
$node->init;
# the launcher watches a database that never has the extension: no worker
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'sentry_relay'
sentry_relay.database = 'postgres'
});
$node->start;

my $version = q{SELECT extversion FROM pg_extension WHERE extname = 'sentry_relay'};
$node->safe_psql('postgres', "CREATE DATABASE $_") for qw(fresh from010 from020 from030);

$node->safe_psql('fresh', 'CREATE EXTENSION sentry_relay');
is($node->safe_psql('fresh', $version), '0.4.0', 'fresh: CREATE EXTENSION installs 0.4.0');

$node->safe_psql('from010', q{CREATE EXTENSION sentry_relay VERSION '0.1.0'});
is($node->safe_psql('from010', $version), '0.1.0', 'from010: at 0.1.0');
$node->safe_psql('from010', 'ALTER EXTENSION sentry_relay UPDATE');
is($node->safe_psql('from010', $version), '0.4.0', 'from010: updated to 0.4.0');

$node->safe_psql('from020', q{CREATE EXTENSION sentry_relay VERSION '0.2.0'});
is($node->safe_psql('from020', $version), '0.2.0', 'from020: at 0.2.0');
$node->safe_psql('from020', q{ALTER EXTENSION sentry_relay UPDATE TO '0.4.0'});
is($node->safe_psql('from020', $version), '0.4.0', 'from020: updated to 0.4.0');

$node->safe_psql('from030', q{CREATE EXTENSION sentry_relay VERSION '0.3.0'});
is($node->safe_psql('from030', $version), '0.3.0', 'from030: at 0.3.0');
$node->safe_psql('from030', q{ALTER EXTENSION sentry_relay UPDATE TO '0.4.0'});
is($node->safe_psql('from030', $version), '0.4.0', 'from030: updated to 0.4.0');

# The fresh install ran one file, in its order: there _caller_is_superuser
# (added by the 0.1.0 -> 0.2.0 update) is created before create_stream
# (0.1.0), and decode_event_message (recreated by 0.2.0 -> 0.3.0) after
# both; the chain creates _caller_is_superuser after create_stream.
my $order = q{SELECT (SELECT oid FROM pg_proc WHERE oid = 'sentry_relay._caller_is_superuser()'::regprocedure)
  < (SELECT oid FROM pg_proc WHERE proname = 'create_stream' AND pronamespace = 'sentry_relay'::regnamespace)};
is($node->safe_psql('fresh', $order), 't', 'fresh: objects created in the order of the 0.4.0 script');
is($node->safe_psql('from010', $order), 'f', 'from010: objects created in the order of the chain');

my $schema = q{
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'sentry_relay'),
members AS (SELECT classid, objid FROM pg_depend, ext
             WHERE refclassid = 'pg_extension'::regclass AND refobjid = ext.oid AND deptype = 'e'),
rels AS (SELECT c.* FROM pg_class c WHERE c.relnamespace = 'sentry_relay'::regnamespace)
SELECT line FROM (
  SELECT 'member ' || pg_describe_object(classid, objid, 0) AS line FROM members
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' acl ' || coalesce(p.proacl::text, '-')
         || ' owner ' || p.proowner::regrole || ' comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-')
         || E'\n' || pg_get_functiondef(p.oid)
    FROM pg_proc p WHERE p.pronamespace = 'sentry_relay'::regnamespace
  UNION ALL
  SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' options ' || coalesce(c.reloptions::text, '-')
         || ' acl ' || coalesce(c.relacl::text, '-') || ' rls ' || c.relrowsecurity::text || c.relforcerowsecurity::text
         || ' persistence ' || c.relpersistence::text || ' owner ' || c.relowner::regrole
         || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
    FROM rels c
  UNION ALL
  SELECT 'column ' || c.relname || ' ' || lpad(a.attnum::text, 3, '0') || ' ' || a.attname
         || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull ' || a.attnotnull::text
         || ' identity ' || a.attidentity::text || ' generated ' || a.attgenerated::text
         || ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
         || ' collation ' || a.attcollation::regcollation::text
         || ' acl ' || coalesce(a.attacl::text, '-') || ' comment ' || coalesce(col_description(c.oid, a.attnum), '-')
    FROM pg_attribute a JOIN rels c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
         || ' comment ' || coalesce(obj_description(oid, 'pg_constraint'), '-')
    FROM pg_constraint WHERE connamespace = 'sentry_relay'::regnamespace
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN rels c ON c.oid = i.indrelid
  UNION ALL
  SELECT 'view ' || c.relname || E'\n' || pg_get_viewdef(c.oid) FROM rels c WHERE c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'sequence ' || s.seqrelid::regclass || ' ' || format_type(s.seqtypid, NULL) || ' ' || s.seqstart
         || ' ' || s.seqincrement || ' ' || s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle
    FROM pg_sequence s JOIN rels c ON c.oid = s.seqrelid
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
    FROM pg_trigger t JOIN rels c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'rule ' || r.rulename || ' ' || pg_get_ruledef(r.oid) FROM pg_rewrite r JOIN rels c ON c.oid = r.ev_class
  UNION ALL
  SELECT 'policy ' || polrelid::regclass || ' ' || polname || ' ' || polcmd::text || ' ' || polpermissive::text
         || ' ' || polroles::regrole[]::text || ' ' || coalesce(pg_get_expr(polqual, polrelid), '-')
         || ' ' || coalesce(pg_get_expr(polwithcheck, polrelid), '-')
    FROM pg_policy p JOIN rels c ON c.oid = p.polrelid
  UNION ALL
  SELECT 'config_dump ' || array(SELECT x::regclass::text FROM unnest(extconfig) WITH ORDINALITY AS u(x, i) ORDER BY i)::text
         || ' conditions ' || coalesce(extcondition::text, '-') || ' version ' || extversion
         || ' relocatable ' || extrelocatable::text || ' schema ' || extnamespace::regnamespace
    FROM pg_extension WHERE extname = 'sentry_relay'
  UNION ALL
  SELECT 'schema ' || nspname || ' acl ' || coalesce(nspacl::text, '-') || ' owner ' || nspowner::regrole
    FROM pg_namespace WHERE nspname = 'sentry_relay'
  UNION ALL
  SELECT 'init_privs ' || pg_describe_object(classoid, objoid, objsubid) || ' ' || privtype::text || ' ' || initprivs::text
    FROM pg_init_privs
   WHERE (classoid, objoid) IN (SELECT classid, objid FROM members
                                UNION ALL SELECT 'pg_class'::regclass, oid FROM rels
                                UNION ALL SELECT 'pg_namespace'::regclass, 'sentry_relay'::regnamespace)
  UNION ALL
  SELECT 'depend ' || pg_describe_object(classid, objid, objsubid) || ' -> '
         || pg_describe_object(refclassid, refobjid, refobjsubid) || ' ' || deptype::text
    FROM pg_depend
   WHERE deptype IN ('n', 'a', 'i') AND refobjid >= 16384
     AND (classid, objid) IN (SELECT classid, objid FROM members UNION ALL SELECT 'pg_class'::regclass, oid FROM rels)
) s ORDER BY line};

my $fresh = $node->safe_psql('fresh', $schema);
my @lines = split /\n(?=(?:member|function|relation|column|constraint|index|view|sequence|trigger|rule|policy|config_dump|schema|init_privs|depend) )/, $fresh;
cmp_ok(scalar(@lines), '>', 300, 'the description lists the objects (' . scalar(@lines) . ' entries)');
for my $kind (qw(member function relation column constraint index view sequence trigger config_dump schema init_privs depend))
{
	ok((grep { /^$kind / } @lines), "the description has $kind entries");
}
like($fresh, qr/^config_dump \{sentry_relay\.streams,sentry_relay\.partition_state,sentry_relay\.remote_offsets,sentry_relay\.commit_log_positions,sentry_relay\.jobs,sentry_relay\.jobs_id_seq,sentry_relay\.dead_jobs,sentry_relay\.dead_letters,sentry_relay\.dead_letters_id_seq\} /m,
	'fresh: the nine tables and sequences that pg_dump keeps are registered');
like($fresh, qr/^relation jobs r options \{[^}]*fillfactor=50\}/m, 'fresh: the queue is at fillfactor 50');
like($fresh, qr/synchronous_commit/, 'fresh: claim_jobs is the current one');

for my $db (qw(from010 from020 from030))
{
	my $updated = $node->safe_psql($db, $schema);
	my %f = map { $_ => 1 } split /\n/, $fresh;
	my %u = map { $_ => 1 } split /\n/, $updated;
	diag("$db: only in a fresh install: $_") for grep { !$u{$_} } sort keys %f;
	diag("$db: only after the update: $_") for grep { !$f{$_} } sort keys %u;
	ok($updated eq $fresh, "$db: the updated extension equals a fresh install's, line for line");
}

# a fresh install works: a stream, a job claimed and completed, a dead letter
$node->safe_psql('fresh', q{
SELECT sentry_relay.create_stream('errors', 'events', 'snuba-commit-log', ARRAY['snuba-consumers']);
SELECT sentry_relay.set_remote_offset('errors', 0, 5);
INSERT INTO sentry_relay.jobs (stream, topic, partition, "offset", queue, eventstream_type, project_id,
    event_id, is_new, is_regression, is_new_group_environment, cache_key)
  VALUES ('errors', 'events', 0, 0, 'post_process_errors', 'error', 1, 'e', NULL, true, false, 'e:e:1')});
is($node->safe_psql('fresh', q{SELECT count(*) FROM sentry_relay.claim_jobs(10)}), '1',
	'fresh: a job with a NULL flag is claimed');
is($node->safe_psql('fresh', q{SELECT sentry_relay.complete_jobs(array_agg(id), array_agg(attempts)) FROM sentry_relay.jobs}), '1',
	'fresh: and completed');
is($node->safe_psql('fresh', q{SELECT (sentry_relay.alter_stream('errors', workers => 2)).workers}), '2',
	'fresh: alter_stream works');

$node->stop;
done_testing();
