# 033_insert_paths.pl - how a batch's jobs reach sentry_relay.jobs.
#
# The direct multi-row insert through the table AM (src/multi_insert.c)
# serves the table as the extension makes it, and changes that keep a row's
# meaning: an added column with a default, CHECK constraints, another index.
# Its group_states jsonb is byte for byte what jsonb_in makes of the same
# text.  A table it does not serve (a trigger, a volatile default) goes
# through COPY FROM instead, and the server log says why, once per reason.
# The workers view counts the batches of each path.  The batch's offsets
# reach the Kafka consumer group once its commit is flushed, with
# asynchronous commit (the default) and with synchronous.
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
$kafka->create_events_topic('ip-events', 1);
my $node = relay_node('paths', $kafka);
create_errors_stream($node, name => 'ip', topic => 'ip-events', commit_log => undef,
	consumer_group => 'cg-ip');

my $state = q{SELECT coalesce(local_offset::text, '-') || ' ' || state
  FROM sentry_relay.partitions WHERE stream = 'ip' AND partition = 0};
my $next = 0;	# the next offset of ip-events

# relay(@messages): produce them, open the gate past them, wait until done
sub relay
{
	my @msgs = @_;
	raw_produce_file($kafka, [ map { [ 'ip-events', 0, 'k' . ($next + $_), $msgs[$_] ] } 0 .. $#msgs ]);
	$next += @msgs;
	$node->safe_psql('postgres', qq{SELECT sentry_relay.set_remote_offset('ip', 0, $next)});
	return wait_for_value($node, $state, "$next SYNCHRONIZED");
}

# an insert whose group_states is the JSON text $gs
sub gs_message
{
	my ($seq, $gs, %f) = @_;
	my $m = event_message(seq => $seq, %f);
	$m =~ s/"group_states":null/"group_states":$gs/ or die 'no group_states in the message';
	return $m;
}

sub gs
{
	my ($id, $new, $reg, $env) = @_;
	my @b = map { $_ ? 'true' : 'false' } ($new, $reg, $env);
	return qq{{"is_new_group_environment":$b[2],"id":$id,"is_regression":$b[1],"is_new":$b[0]}};
}

sub log_count
{
	my ($pattern) = @_;
	my @hits = slurp_file($node->logfile) =~ /$pattern/g;
	return scalar @hits;
}

# the worker's batches of jobs by insert path, "direct copy", once its
# counters include every message relayed (they change together)
sub paths
{
	wait_for_value($node, qq{SELECT messages FROM sentry_relay.workers WHERE stream = 'ip'}, $next);
	return $node->safe_psql('postgres',
		q{SELECT direct_inserts || ' ' || copy_inserts FROM sentry_relay.workers WHERE stream = 'ip'});
}

# ok if the paths moved from $before: direct by more than zero or not at all, copy likewise
sub paths_moved
{
	my ($before, $direct, $copy, $what) = @_;
	my ($d0, $c0) = split / /, $before;
	my $now = paths();
	my ($d1, $c1) = split / /, $now;
	ok(($direct ? $d1 > $d0 : $d1 == $d0) && ($copy ? $c1 > $c0 : $c1 == $c0),
		"$what: the workers view counts " . ($direct ? 'direct' : 'no direct') . ' and '
		  . ($copy ? 'COPY' : 'no COPY') . " batches ($before, now $now)");
	return $now;
}

my $copy_log = qr/jobs are inserted into "jobs" through COPY FROM because ([^\n]*)/;

ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'ip' AND status = 'running'}),
	'the worker runs');

################################################################
# 1. group_states, built without the JSON parser: the same jsonb as jsonb_in
################################################################
my $many = '[' . join(',', map { gs($_, $_ % 2, $_ % 3 == 0, $_ % 5 == 0) } 1 .. 40) . ']';
my @gs = (
	'[]',
	'[' . gs(0, 0, 0, 0) . ']',
	'[' . gs(10000, 1, 0, 1) . ',' . gs(100000000, 0, 1, 0) . ']',
	'[' . gs('999999999999999999', 1, 1, 1) . ']',		# 18 digits: the builder
	'[' . gs('1234567890123456789', 0, 0, 1) . ']',	# 19 digits: jsonb_in
	$many,	# more entries than jsonb's offset stride (32)
	'[ ' . gs(7, 1, 0, 0) . " ,\n " . gs(8, 0, 0, 1) . ' ]',
);
is(relay(map { gs_message($_, $gs[$_], project_id => 77) } 0 .. $#gs), scalar(@gs) . ' SYNCHRONIZED',
	'group_states: every message relayed');
is($node->safe_psql('postgres', q{
SELECT count(*) || ' ' || count(*) FILTER (WHERE jsonb_send(group_states) = jsonb_send(group_states::text::jsonb))
  FROM sentry_relay.jobs WHERE stream = 'ip' AND group_states IS NOT NULL}),
	scalar(@gs) . ' ' . scalar(@gs), 'group_states: each jsonb is byte for byte what jsonb_in makes of its text');
is($node->safe_psql('postgres', q{
SELECT string_agg(coalesce(jsonb_array_length(group_states)::text, 'NULL') || ':'
         || coalesce(group_states -> 0 ->> 'id', '-'), ' ' ORDER BY "offset")
  FROM sentry_relay.jobs WHERE stream = 'ip'}),
	'0:- 1:0 2:10000 1:999999999999999999 1:1234567890123456789 40:1 2:7',
	'group_states: lengths and first ids');
is($node->safe_psql('postgres', q{SELECT group_states::text FROM sentry_relay.jobs WHERE stream = 'ip' AND "offset" = 2}),
	'[{"id": 10000, "is_new": true, "is_regression": false, "is_new_group_environment": true}, '
	  . '{"id": 100000000, "is_new": false, "is_regression": true, "is_new_group_environment": false}]',
	'group_states: keys, numbers and booleans');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'ip'
   AND group_states @> '[{"id": 40, "is_new": false, "is_regression": false, "is_new_group_environment": true}]'}),
	'1', 'group_states: containment finds the 40th entry');
is(log_count($copy_log), 0, 'the table as the extension makes it takes the direct insert');
my $paths = paths_moved('0 0', 1, 0, 'the table as the extension makes it');

################################################################
# 2. Changes the direct insert serves: a column with a default, CHECK
#    constraints, another index
################################################################
$node->safe_psql('postgres', q{
ALTER TABLE sentry_relay.jobs ADD COLUMN note text DEFAULT 'relayed' CHECK (note <> '');
ALTER TABLE sentry_relay.jobs ADD CONSTRAINT jobs_project_positive CHECK (project_id > 0);
CREATE INDEX jobs_project_idx ON sentry_relay.jobs (project_id);
});
is(relay(map { gs_message(100 + $_, '[' . gs($_, 1, 0, 0) . ']', project_id => 88) } 0 .. 2),
	'10 SYNCHRONIZED', 'changed table: three more messages relayed');
is($node->safe_psql('postgres', q{SELECT string_agg(coalesce(note, 'NULL'), ',' ORDER BY "offset") FROM sentry_relay.jobs WHERE stream = 'ip' AND "offset" >= 7}),
	'relayed,relayed,relayed', 'changed table: the added column takes its default');
is($node->safe_psql('postgres', q{
SET enable_seqscan = off;
SELECT count(*) FROM sentry_relay.jobs WHERE project_id = 88}), '3',
	'changed table: the added index has an entry for each new job');
is($node->safe_psql('postgres', q{
SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM sentry_relay.jobs WHERE id > 0}), '10',
	'the primary key has an entry for each job');
is(log_count($copy_log), 0, 'changed table: still the direct insert');
$paths = paths_moved($paths, 1, 0, 'changed table');

################################################################
# 3. A trigger, then a volatile default: COPY FROM, once logged per reason
################################################################
$node->safe_psql('postgres', q{
CREATE FUNCTION ip_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.note := 'trigger ' || NEW."offset"; RETURN NEW; END $$;
CREATE TRIGGER ip_note BEFORE INSERT ON sentry_relay.jobs FOR EACH ROW EXECUTE FUNCTION ip_note();
});
is(relay(map { gs_message(200 + $_, $many) } 0 .. 1), '12 SYNCHRONIZED', 'trigger: two more messages relayed');
is($node->safe_psql('postgres', q{SELECT string_agg(note, ',' ORDER BY "offset") FROM sentry_relay.jobs WHERE stream = 'ip' AND "offset" >= 10}),
	'trigger 10,trigger 11', 'trigger: the BEFORE INSERT trigger ran for each job');
is(relay(gs_message(300, $many)), '13 SYNCHRONIZED', 'trigger: a second batch');
is($node->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE jsonb_send(group_states) = jsonb_send(group_states::text::jsonb))
  FROM sentry_relay.jobs WHERE stream = 'ip' AND "offset" >= 10}), '3',
	'trigger: COPY FROM makes the same group_states');
is(log_count(qr/through COPY FROM because the table has triggers/), 1,
	'trigger: the server log says why, once for both batches');
$paths = paths_moved($paths, 0, 1, 'trigger');

$node->safe_psql('postgres', q{
DROP TRIGGER ip_note ON sentry_relay.jobs;
ALTER TABLE sentry_relay.jobs ALTER COLUMN note SET DEFAULT 'r' || random()::text;
});
is(relay(gs_message(400, '[]'), gs_message(401, '[]')), '15 SYNCHRONIZED', 'volatile default: two more relayed');
is($node->safe_psql('postgres', q{SELECT count(DISTINCT note) FROM sentry_relay.jobs WHERE stream = 'ip' AND "offset" >= 13}),
	'2', 'volatile default: evaluated for each row');
is(log_count(qr/through COPY FROM because a column default is volatile/), 1,
	'volatile default: the server log says why');
$paths = paths_moved($paths, 0, 1, 'volatile default');

################################################################
# 4. Back to the extension's table: the direct insert again
################################################################
$node->safe_psql('postgres', q{
ALTER TABLE sentry_relay.jobs DROP COLUMN note;
ALTER TABLE sentry_relay.jobs DROP CONSTRAINT jobs_project_positive;
DROP INDEX sentry_relay.jobs_project_idx;
});
my $before = log_count($copy_log);
is(relay(map { gs_message(500 + $_, $gs[$_ % @gs]) } 0 .. 9), '25 SYNCHRONIZED', 'restored table: ten more relayed');
is(log_count($copy_log), $before, 'restored table: the direct insert again');
$paths = paths_moved($paths, 1, 0, 'restored table');
is($node->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE jsonb_send(group_states) = jsonb_send(group_states::text::jsonb))
  FROM sentry_relay.jobs WHERE stream = 'ip' AND "offset" >= 15}), '10',
	'restored table: group_states as jsonb_in makes it');

################################################################
# 5. The offsets reach the Kafka consumer group once their commit is
#    flushed: batches commit asynchronously by default; with
#    sentry_relay.synchronous_commit each waits for its flush
################################################################
is(wait_for_committed($kafka, 'cg-ip', 'ip-events', [0], '0:25'), '0:25',
	'asynchronous commit: Kafka gets the local offset once the commit is flushed');
$node->safe_psql('postgres', q{ALTER SYSTEM SET sentry_relay.synchronous_commit = on; SELECT pg_reload_conf()});
is(wait_for_value($node, q{SELECT setting FROM pg_settings WHERE name = 'sentry_relay.synchronous_commit'}, 'on'),
	'on', 'sentry_relay.synchronous_commit is on after a reload');
is(relay(gs_message(600, '[]'), gs_message(601, '[]')), '27 SYNCHRONIZED', 'synchronous commit: two more relayed');
is(wait_for_committed($kafka, 'cg-ip', 'ip-events', [0], '0:27'), '0:27',
	'synchronous commit: Kafka gets the local offset');
is(exactly_once($node, 'ip'), '27 27', 'each message enqueued once');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.dead_letters}), '0', 'no dead letter');

$node->stop;
$kafka->stop;
done_testing();
