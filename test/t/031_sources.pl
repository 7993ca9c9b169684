# 031_sources.pl - what the worker makes of each message: jobs decoded from
# complete headers (the body is never read), from the body when the headers
# are incomplete or invalid, dead letters that keep the raw message, and
# skipped messages (skip_consume, replacement operations).
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
$kafka->create_events_topic($_, 1) for qw(hdr-events dl-events kb-events);

my $node = relay_node('sources', $kafka);

sub part
{
	my ($stream, $partition) = @_;
	return qq{SELECT coalesce(local_offset::text, '-') || ' ' || coalesce(remote_offset::text, '-')
	  || ' ' || state FROM sentry_relay.partitions WHERE stream = '$stream' AND partition = $partition};
}

# The error that the SQL decoder raises for a message: the relay must
# dead-letter with the same SQLSTATE and message.
$node->safe_psql('postgres', q{
CREATE FUNCTION decode_error(v bytea, names text[], vals bytea[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  h jsonb;
BEGIN
  SELECT jsonb_object_agg(n, convert_from(x, 'UTF8')) INTO h
    FROM unnest(names, vals) AS u(n, x);
  PERFORM sentry_relay.decode_event_message(v, h);
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || SQLERRM;
END $$});

sub hex_of { return unpack('H*', $_[0]) }

################################################################
# 4. Decoding by headers, end to end.
################################################################
create_errors_stream($node, name => 'hdr', topic => 'hdr-events', commit_log => undef,
	consumer_group => 'cg-hdr');

my $garbage = "garbage, not JSON {[";
my @incomplete = ([ 'version', '2' ], [ 'operation', 'insert' ],
	[ 'event_id', sprintf('%032x', 7777) ], [ 'project_id', '77' ]);    # no is_new...
my @invalid = @{ event_headers(seq => 8888, project_id => 88) };
$_->[1] = 'yes' for grep { $_->[0] eq 'is_new' } @invalid;            # not "0"/"1"
raw_produce_file($kafka, [
	# 0: garbage body, complete headers
	[ 'hdr-events', 0, 'k0', $garbage,
	  event_headers(seq => 1000, project_id => 7, queue => 'post_process_transactions') ],
	# 1: binary garbage, complete headers with another group id
	[ 'hdr-events', 0, 'k1', "\xff\x00\xfe binary",
	  event_headers(seq => 1001, project_id => 7, group_id => 555) ],
	# 2: no value at all (NULL), complete headers
	[ 'hdr-events', 0, 'k2', undef, event_headers(seq => 1002, project_id => 8) ],
	# 3: good body, incomplete headers that disagree with it
	[ 'hdr-events', 0, 'k3', event_message(seq => 2003, project_id => 9, group_id => 300),
	  \@incomplete ],
	# 4: good body, complete headers with an invalid value
	[ 'hdr-events', 0, 'k4', event_message(seq => 2004, project_id => 9, group_id => 301),
	  \@invalid ],
	# 5: garbage body, incomplete headers: nothing to decode
	[ 'hdr-events', 0, 'k5', $garbage, \@incomplete ],
]);
is(wait_for_value($node, part('hdr', 0), '0 - UNKNOWN'), '0 - UNKNOWN', 'hdr: partition seen');
$node->safe_psql('postgres', q{SELECT sentry_relay.set_remote_offset('hdr', 0, 6)});
is(wait_for_value($node, part('hdr', 0), '6 6 SYNCHRONIZED'), '6 6 SYNCHRONIZED',
	'hdr: all six messages handled');
is(job_offsets($node, 'hdr'), '0,1,2,3,4', 'hdr: jobs for offsets 0..4');
is($node->safe_psql('postgres', q{
SELECT "offset", event_id, project_id, coalesce(group_id::text, 'null'), queue, is_new, is_regression,
       is_new_group_environment, primary_hash, cache_key
  FROM sentry_relay.jobs WHERE stream = 'hdr' ORDER BY "offset"}),
	join("\n",
		'0|000000000000000000000000000003e8|7|100|post_process_transactions|t|f|f|49f68a5c8493ec2c0bf489821c21fc3b|e:000000000000000000000000000003e8:7',
		'1|000000000000000000000000000003e9|7|555|post_process_errors|t|f|f|49f68a5c8493ec2c0bf489821c21fc3b|e:000000000000000000000000000003e9:7',
		'2|000000000000000000000000000003ea|8|100|post_process_errors|t|f|f|49f68a5c8493ec2c0bf489821c21fc3b|e:000000000000000000000000000003ea:8',
		'3|000000000000000000000000000007d3|9|300|post_process_errors|t|f|f|49f68a5c8493ec2c0bf489821c21fc3b|e:000000000000000000000000000007d3:9',
		'4|000000000000000000000000000007d4|9|301|post_process_errors|t|f|f|49f68a5c8493ec2c0bf489821c21fc3b|e:000000000000000000000000000007d4:9'),
	'hdr: 0..2 decoded from headers (garbage or no body), 3..4 from the body');
is($node->safe_psql('postgres', q{
SELECT "offset" || ' ' || sqlstate || ' ' || error_class || ' ' || encode(key, 'escape')
  FROM sentry_relay.dead_letters WHERE stream = 'hdr'}),
	'5 22032 invalid_json k5', 'hdr: garbage with incomplete headers is a dead letter');
is($node->safe_psql('postgres', q{SELECT messages || ' ' || jobs || ' ' || skipped || ' ' || dead_letters
  FROM sentry_relay.workers WHERE stream = 'hdr'}), '6 5 0 1', 'hdr: worker counters');
is(exactly_once($node, 'hdr'), '5 5', 'hdr: each job once');
$node->safe_psql('postgres', q{SELECT sentry_relay.stop_stream('hdr')});

################################################################
# 5. Bad messages among good ones: dead letters with the raw message, the
#    worker goes on; skipped messages make no job.
################################################################
create_errors_stream($node, name => 'dl', topic => 'dl-events', commit_log => undef,
	consumer_group => 'cg-dl');
ok(wait_until($node, q{SELECT count(*) = 1 FROM sentry_relay.workers WHERE stream = 'dl' AND status = 'running'}),
	'dl: worker running');
my $dl_pid = $node->safe_psql('postgres', q{SELECT pid FROM sentry_relay.workers WHERE stream = 'dl'});

my $random = join('', map { chr } (0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x7b, 0xff, 0x80, 0x22, 0x5b, 0x0a));
my $full = event_message(seq => 5, project_id => 1);
my $truncated = substr($full, 0, int(length($full) / 2));
my $unknown = '[2, "explode", {"event_id": "00000000000000000000000000000008"}]';
my %bad = (
	2 => [ 'bad-key-2', $random, [ [ 'x-trace', 't2' ], [ 'empty', '' ], [ 'nullh', undef ] ] ],
	5 => [ undef, $truncated, undef ],
	8 => [ "k\x00\xff8", $unknown, [ [ 'version', '2' ], [ 'operation', 'explode' ] ] ],
);
my @msgs;
for my $o (0 .. 9)
{
	push @msgs, $bad{$o}
	  ? [ 'dl-events', 0, @{ $bad{$o} } ]
	  : [ 'dl-events', 0, "k$o", event_message(seq => $o) ];
}
raw_produce_file($kafka, \@msgs);
is(wait_for_value($node, part('dl', 0), '0 - UNKNOWN'), '0 - UNKNOWN', 'dl: partition seen');
$node->safe_psql('postgres', q{SELECT sentry_relay.set_remote_offset('dl', 0, 10)});
is(wait_for_value($node, part('dl', 0), '10 10 SYNCHRONIZED'), '10 10 SYNCHRONIZED',
	'dl: local offset moves past the bad messages');
is(job_offsets($node, 'dl'), '0,1,3,4,6,7,9', 'dl: 7 jobs, none for the bad offsets');
is($node->safe_psql('postgres', q{SELECT string_agg("offset"::text, ',' ORDER BY "offset") FROM sentry_relay.dead_letters WHERE stream = 'dl'}),
	'2,5,8', 'dl: 3 dead letters, at offsets 2, 5 and 8');

for my $o (2, 5, 8)
{
	my ($key, $value, $headers) = @{ $bad{$o} };
	my $row = $node->safe_psql('postgres', qq{
SELECT topic, partition, coalesce(encode(key, 'hex'), 'NULL'), encode(value, 'hex'),
       CASE WHEN cardinality(header_names) > 0 THEN array_to_string(header_names, ',', 'NULL') ELSE 'NULL' END,
       CASE WHEN cardinality(header_values) > 0
            THEN (SELECT string_agg(coalesce(encode(v, 'hex'), 'NULL'), ',' ORDER BY i)
                    FROM unnest(header_values) WITH ORDINALITY AS u(v, i)) ELSE 'NULL' END
  FROM sentry_relay.dead_letters WHERE stream = 'dl' AND "offset" = $o});
	my $names = $headers && @$headers ? join(',', map { $_->[0] } @$headers) : undef;
	my $vals = $headers && @$headers
	  ? join(',', map { defined $_->[1] ? hex_of($_->[1]) : 'NULL' } @$headers) : undef;
	is($row, join('|', 'dl-events', 0, defined $key ? hex_of($key) : 'NULL', hex_of($value),
		$names // 'NULL', $vals // 'NULL'),
		"dl: dead letter at $o keeps the exact key, value bytes and headers");
}
is($node->safe_psql('postgres', q{
SELECT "offset" || ' ' || sqlstate || ' ' || error_class || CASE WHEN "offset" = 8 THEN ': ' || error ELSE '' END
  FROM sentry_relay.dead_letters WHERE stream = 'dl' ORDER BY "offset"}),
	"2 22021 invalid_utf8\n5 22032 invalid_json\n8 0A000 unknown_operation: unknown operation \"explode\" for event message version 2",
	'dl: random bytes are invalid_utf8, truncated JSON is invalid_json, "explode" is unknown_operation');
is($node->safe_psql('postgres', q{
SELECT string_agg("offset" || ':' || (decode_error(value, header_names, header_values) = sqlstate || ' ' || error), ',' ORDER BY "offset")
  FROM sentry_relay.dead_letters WHERE stream = 'dl'}),
	'2:true,5:true,8:true', 'dl: each dead letter has the SQLSTATE and message of decode_event_message');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = 'dl'
  AND (error = '' OR sqlstate !~ '^[0-9A-Z]{5}$' OR error_class = '')}), '0',
	'dl: every dead letter has an error text, a SQLSTATE and a class');
is($node->safe_psql('postgres', q{SELECT pid || ' ' || messages || ' ' || jobs || ' ' || skipped || ' ' || dead_letters
  FROM sentry_relay.workers WHERE stream = 'dl'}), "$dl_pid 10 7 0 3",
	'dl: the same worker runs on, counting 10 messages, 7 jobs, 3 dead letters');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM pg_stat_activity WHERE pid = $dl_pid AND backend_type = 'sentry_relay worker'}),
	'1', 'dl: the worker is still in pg_stat_activity');

# skipped: a skip_consume insert, a replacement in the body, a replacement
# in the headers (with a body that is not even JSON)
raw_produce_file($kafka, [
	[ 'dl-events', 0, 'k10', event_message(seq => 10, skip_consume => 1) ],
	[ 'dl-events', 0, 'k11', '[2,"end_merge",{}]' ],
	[ 'dl-events', 0, 'k12', event_message(seq => 12) ],
	[ 'dl-events', 0, 'k13', $garbage, [ [ 'version', '2' ], [ 'operation', 'start_merge' ] ] ],
	[ 'dl-events', 0, 'k14', '[1,"delete",{"project_id":1}]' ],
]);
$node->safe_psql('postgres', q{SELECT sentry_relay.set_remote_offset('dl', 0, 15)});
is(wait_for_value($node, part('dl', 0), '15 15 SYNCHRONIZED'), '15 15 SYNCHRONIZED',
	'dl: all 15 messages handled');
is(job_offsets($node, 'dl'), '0,1,3,4,6,7,9,12', 'dl: only offset 12 of 10..14 is a job');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.dead_letters WHERE stream = 'dl'}),
	'3', 'dl: skipped messages are not dead letters');
is($node->safe_psql('postgres', q{SELECT pid || ' ' || messages || ' ' || jobs || ' ' || skipped || ' ' || dead_letters
  FROM sentry_relay.workers WHERE stream = 'dl'}), "$dl_pid 15 8 4 3",
	'dl: workers.skipped counts the skip_consume insert and the three replacements');
is(exactly_once($node, 'dl'), '8 8', 'dl: each job once');

################################################################
# 6. Every column of a job row, as the batch insert (COPY binary rows)
#    writes it, equals the SQL decoder's output for the same message; with
#    keep_body the body is kept byte for byte, NULL columns stay NULL.
################################################################
create_errors_stream($node, name => 'kb', topic => 'kb-events', commit_log => undef,
	consumer_group => 'cg-kb',
	options => '{"keep_body": true, "eventstream_type": "generic", '
	  . substr(fast_group_options(), 1));
my $rich = '[2,"insert",{"event_id":"' . ('ab' x 16) . '","project_id":5,"group_id":null,'
  . '"primary_hash":null,"occurrence_id":"occ-\u00e9-1","data":{"x":[1,2,{"y":"z"}]}},'
  . '{"is_new":false,"is_regression":true,"is_new_group_environment":true,'
  . '"queue":"post_process_issue_platform","skip_consume":false,'
  . '"group_states":[{"id":10,"is_new":true,"is_regression":false,"is_new_group_environment":true},'
  . '{"id":11,"is_new":false,"is_regression":true,"is_new_group_environment":false}]}]';
my $plain = event_message(seq => 4242, project_id => 42, group_id => 4200);
raw_produce_file($kafka, [
	[ 'kb-events', 0, 'r0', $rich ],
	[ 'kb-events', 0, 'r1', $plain ],
	[ 'kb-events', 0, 'r2', undef, event_headers(seq => 4343, project_id => 43) ],
]);
is(wait_for_value($node, part('kb', 0), '0 - UNKNOWN'), '0 - UNKNOWN', 'kb: partition seen');
$node->safe_psql('postgres', q{SELECT sentry_relay.set_remote_offset('kb', 0, 3)});
is(wait_for_value($node, part('kb', 0), '3 3 SYNCHRONIZED'), '3 3 SYNCHRONIZED',
	'kb: all three messages handled');
is($node->safe_psql('postgres', qq{
SELECT count(*) FILTER (WHERE j.project_id = (d->>'project_id')::bigint
         AND j.group_id IS NOT DISTINCT FROM (d->>'group_id')::bigint
         AND j.event_id = d->>'event_id'
         AND j.primary_hash IS NOT DISTINCT FROM d->>'primary_hash'
         AND j.occurrence_id IS NOT DISTINCT FROM d->>'occurrence_id'
         AND j.queue = d->>'queue'
         AND j.is_new = (d->>'is_new')::boolean
         AND j.is_regression = (d->>'is_regression')::boolean
         AND j.is_new_group_environment = (d->>'is_new_group_environment')::boolean
         AND j.group_states IS NOT DISTINCT FROM nullif(d->'group_states', 'null')
         AND j.cache_key = d->>'cache_key')
  FROM sentry_relay.jobs AS j,
       LATERAL sentry_relay.decode_event_message(j.body) AS d
 WHERE j.stream = 'kb' AND j."offset" IN (0, 1)}), '2',
	'kb: each column of the jobs decoded from bodies equals decode_event_message');
is($node->safe_psql('postgres', q{
SELECT "offset" || ' ' || topic || ' ' || partition || ' ' || eventstream_type || ' '
       || coalesce(group_id::text, 'NULL') || ' ' || coalesce(primary_hash, 'NULL') || ' '
       || coalesce(occurrence_id, 'NULL') || ' ' || coalesce(group_states::text, 'NULL') || ' '
       || (message_timestamp IS NOT NULL) || ' ' || attempts || ' ' || (leased_until IS NULL)
       || ' ' || coalesce(length(body)::text, 'NULL')
  FROM sentry_relay.jobs WHERE stream = 'kb' ORDER BY "offset"}),
	join("\n",
		"0 kb-events 0 generic NULL NULL occ-\xc3\xa9-1 "
		  . '[{"id": 10, "is_new": true, "is_regression": false, "is_new_group_environment": true}, '
		  . '{"id": 11, "is_new": false, "is_regression": true, "is_new_group_environment": false}] '
		  . 'true 0 true ' . length($rich),
		'1 kb-events 0 generic 4200 49f68a5c8493ec2c0bf489821c21fc3b NULL NULL true 0 true '
		  . length($plain),
		'2 kb-events 0 generic 100 49f68a5c8493ec2c0bf489821c21fc3b NULL NULL true 0 true NULL'),
	'kb: topic, partition, NULL columns, group_states and defaults as expected');
is($node->safe_psql('postgres', qq{
SELECT string_agg((body = '\\x@{[ hex_of($rich) ]}'::bytea OR body = '\\x@{[ hex_of($plain) ]}'::bytea)::text, ',' ORDER BY "offset")
  FROM sentry_relay.jobs WHERE stream = 'kb' AND body IS NOT NULL}), 'true,true',
	'kb: keep_body keeps each value byte for byte');
is(exactly_once($node, 'kb'), '3 3', 'kb: each job once');

$node->stop;
$kafka->stop;
done_testing();
