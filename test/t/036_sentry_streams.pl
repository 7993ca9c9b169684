# 036_sentry_streams.pl - Sentry's three post-process streams through one
# server, each with its own topic, commit log and writer group (errors,
# transactions, the issue platform), in the shapes Sentry's producers send:
# bodies only, and bodies with the task headers.  Every job row must be what
# decode_event_message makes of the same message (the SQL decoder and the
# relay agree), the queue must default by stream when the message names
# none, and what Sentry forwards must never be dead-lettered.
#
# brokers: mock real
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP ();
use SentryRelay::Kafka;
use SentryRelay::Test;

my $json = JSON::PP->new->canonical;
my @streams = (
	{ name => 'errors', topic => 'events', clog => 'snuba-commit-log',
	  group => 'snuba-consumers', type => 'error', queue => 'post_process_errors' },
	{ name => 'transactions', topic => 'transactions', clog => 'snuba-transactions-commit-log',
	  group => 'transactions_group', type => 'transaction', queue => 'post_process_transactions' },
	{ name => 'issue-platform', topic => 'generic-events', clog => 'snuba-generic-events-commit-log',
	  group => 'generic_events_group', type => 'generic', queue => 'post_process_issue_platform' },
);

plan skip_all => 'java not found: no real Kafka broker here'
  unless SentryRelay::Kafka->available;
my $kafka = SentryRelay::Kafka->new(brokers => 1);
for my $s (@streams)
{
	$kafka->create_events_topic($s->{topic}, 1);
	$kafka->create_commit_log_topic($s->{clog});
}
my $node = relay_node('streams', $kafka);
for my $s (@streams)
{
	my $opts = $json->decode(fast_group_options());
	$opts->{eventstream_type} = $s->{type};
	$node->safe_psql('postgres', sprintf(q{
SELECT sentry_relay.create_stream('%s', '%s', '%s', ARRAY['%s'], options => '%s')},
		$s->{name}, $s->{topic}, $s->{clog}, $s->{group}, $json->encode($opts)));
}
ok(wait_until($node, q{SELECT count(*) = 3 FROM sentry_relay.workers WHERE status = 'running'}),
	'three streams, one worker each, running');

# ---- messages in the shapes of Sentry's published examples ----
my $n = 0;
sub eid { return sprintf('%08x%024x', 0xe0e0e0e0, ++$n) }

# The task headers as Sentry's producer sends them: "0"/"1" flags, optional
# ones left out when None, and (newest producer) no queue header.
sub sentry_headers
{
	my ($ed, $ts) = @_;
	my @h = ([ 'Received-Timestamp', '1707857566.83139' ], [ 'version', '2' ],
		[ 'operation', 'insert' ], [ 'event_id', $ed->{event_id} ],
		[ 'project_id', "$ed->{project_id}" ]);
	push @h, [ 'group_id', "$ed->{group_id}" ] if defined $ed->{group_id};
	push @h, [ 'primary_hash', $ed->{primary_hash} ] if defined $ed->{primary_hash};
	push @h, [ 'occurrence_id', $ed->{occurrence_id} ] if defined $ed->{occurrence_id};
	push @h, [ $_, $ts->{$_} ? '1' : '0' ]
	  for qw(is_new is_regression is_new_group_environment skip_consume);
	push @h, [ 'group_states', $json->encode($ts->{group_states}) ] if defined $ts->{group_states};
	return \@h;
}

sub error_event
{
	my (%o) = @_;
	my $gid = $o{group_id} // 4015;
	return ({ event_id => eid(), project_id => 42, group_id => $gid, group_ids => [$gid],
		organization_id => 1, message => 'ZeroDivisionError', platform => 'python',
		datetime => '2024-02-13T20:52:46.831390Z', primary_hash => 'c9a1f4e2b7d84e0f9a3b6c5d2e1f0a9b',
		retention_days => 90,
		data => { threads => undef, tags => [ [ 'level', 'error' ], [ undef, 'v' ] ],
			exception => { values => [ { type => 'ZeroDivisionError', value => undef } ] } } },
		{ is_new => JSON::PP::false, is_regression => exists $o{is_regression} ? $o{is_regression} : JSON::PP::true,
		  is_new_group_environment => JSON::PP::false, skip_consume => JSON::PP::false,
		  group_states => [ { id => "$gid", is_new => JSON::PP::false, is_regression => JSON::PP::true,
			is_new_group_environment => JSON::PP::false } ] });
}

sub transaction_event
{
	return ({ event_id => eid(), project_id => 7, group_id => undef, group_ids => [],
		organization_id => 1, message => '/api/0/projects/', platform => 'javascript',
		datetime => '2024-02-13T20:52:48.500000Z', primary_hash => undef, retention_days => 30,
		data => { type => 'transaction', spans => [], contexts => { trace => { op => 'pageload' } } } },
		{ is_new => JSON::PP::false, is_regression => JSON::PP::false,
		  is_new_group_environment => JSON::PP::false, skip_consume => JSON::PP::false,
		  group_states => [] });
}

sub occurrence_event
{
	my $eid = eid();
	return ({ event_id => $eid, project_id => 42, group_id => undef, group_ids => [],
		organization_id => 1, message => 'N+1 Query', platform => 'python',
		datetime => '2024-02-13T20:52:47.104000Z', primary_hash => undef, retention_days => 90,
		occurrence_id => '3e9f0c1d8b7a4e6f9d2c5b8a7e6f4d3c',
		occurrence_data => { id => '3e9f0c1d8b7a4e6f9d2c5b8a7e6f4d3c', project_id => 42,
			event_id => $eid, fingerprint => ['d6e4a3c2'], issue_title => 'N+1 Query', type => 1006 },
		data => { type => 'transaction', spans => [] } },
		{ is_new => JSON::PP::true, is_regression => JSON::PP::false,
		  is_new_group_environment => JSON::PP::true, skip_consume => JSON::PP::false,
		  group_states => undef });
}

# Produce [2, "insert", $ed, $ts] to $s, with the task headers if asked;
# returns the message and headers for the comparison with the SQL decoder.
my %sent;
sub send_insert
{
	my ($s, $ed, $ts, %o) = @_;
	my $body = $json->encode([ 2, 'insert', $ed, $ts ]);
	my $h = $o{headers} ? sentry_headers($ed, $ts) : undef;
	my $off = $kafka->produce($s->{topic}, 0, 'k', $body, $h);
	$sent{ $s->{name} }{$off} = { body => $body, headers => $h, note => $o{note} };
	return $off;
}

my ($errors, $transactions, $generic) = @streams;
send_insert($errors, error_event(), note => 'error, body');
send_insert($errors, error_event(), headers => 1, note => 'error, headers');
send_insert($errors, error_event(is_regression => undef), note => 'error, null is_regression');
send_insert($errors, error_event(group_id => 9), headers => 1, note => 'error, headers, group 9');
my ($sed, $sts) = error_event();
$sts->{skip_consume} = JSON::PP::true;
send_insert($errors, $sed, $sts, headers => 1, note => 'skip_consume');
$kafka->produce('events', 0, 'k', $json->encode([ 2, 'end_merge',
	{ transaction_id => 'ab', project_id => 42, previous_group_ids => [4016], new_group_id => 4015 } ]),
	[ [ 'version', '2' ], [ 'operation', 'end_merge' ] ]);
send_insert($transactions, transaction_event(), note => 'transaction, body');
send_insert($transactions, transaction_event(), headers => 1, note => 'transaction, headers');
send_insert($generic, occurrence_event(), note => 'occurrence, body');
send_insert($generic, occurrence_event(), headers => 1, note => 'occurrence, headers');

# Every Sentry-shaped fixture (test/fixtures/sentry), to its stream: the
# body alone, and, for the inserts that have them, the body with its
# headers and the headers with a body that is not JSON (which must not be
# read).  Replacements and skip_consume give no job, every other fixture one.
my $fixtures = "$ENV{SR_REPO}/test/fixtures/sentry";
my %expect_job;
my $nfixture = 0;
opendir(my $dh, $fixtures) or die "$fixtures: $!";
for my $f (sort grep { /\.json$/ && !/\.headers\.json$/ } readdir $dh)
{
	(my $name = $f) =~ s/\.json$//;
	my $s = $name =~ /^transaction/ ? $transactions : $name =~ /^issue_platform/ ? $generic : $errors;
	my $body = slurp_file("$fixtures/$f");
	my $job = $name !~ /^replacement_/ && $name ne 'error_skip_consume';
	my @variants = ([ 'body', $body, undef ]);
	if (-e "$fixtures/$name.headers.json")
	{
		my $h = $json->decode(slurp_file("$fixtures/$name.headers.json"));
		push @variants, [ 'body and headers', $body, $h ], [ 'headers, body not JSON', 'not json', $h ];
	}
	for my $v (@variants)
	{
		my $off = $kafka->produce($s->{topic}, 0, 'k', $v->[1], $v->[2]);
		$sent{ $s->{name} }{$off} = { body => $v->[1], headers => $v->[2], note => "$name, $v->[0]" };
		$expect_job{ $s->{name} }{$off} = $job;
		$nfixture++;
	}
}
closedir $dh;
cmp_ok($nfixture, '>=', 40, "$nfixture fixture messages produced");
my %first_fixture = map { my $sn = $_; ($sn => (sort { $a <=> $b } keys %{ $expect_job{$sn} })[0]) } keys %expect_job;

# the writers commit, each on its own commit log and in its own group
for my $s (@streams)
{
	my ($lo, $hi) = $kafka->end_offsets($s->{topic}, 0);
	commit_log($kafka, $s->{topic}, 0, $s->{group}, $hi, commit_log_topic => $s->{clog});
	is(wait_for_value($node, qq{SELECT local_offset || ' ' || state FROM sentry_relay.partitions WHERE stream = '$s->{name}'},
		"$hi SYNCHRONIZED"), "$hi SYNCHRONIZED", "$s->{name}: SYNCHRONIZED at $hi");
}

is($node->safe_psql('postgres', 'SELECT count(*) FROM sentry_relay.dead_letters'), '0',
	'nothing Sentry forwards is dead-lettered');
# the inline messages: 4 error jobs, a skip_consume and a replacement; two
# jobs on each of the other streams; then the fixtures' jobs and skips
my %want = (errors => [ 4, 2 ], transactions => [ 2, 0 ], 'issue-platform' => [ 2, 0 ]);
for my $sn (keys %expect_job)
{
	for my $j (values %{ $expect_job{$sn} }) { $want{$sn}[ $j ? 0 : 1 ]++ }
}
is($node->safe_psql('postgres', q{SELECT string_agg(stream || ':' || jobs || ':' || skipped, ' ' ORDER BY stream) FROM sentry_relay.workers}),
	join(' ', map { "$_:$want{$_}[0]:$want{$_}[1]" } sort keys %want), 'jobs and skips per stream');
for my $sn (sort keys %expect_job)
{
	my @jobs = sort { $a <=> $b } grep { $expect_job{$sn}{$_} } keys %{ $expect_job{$sn} };
	is($node->safe_psql('postgres', qq{SELECT string_agg("offset"::text, ',' ORDER BY "offset") FROM sentry_relay.jobs
  WHERE stream = '$sn' AND "offset" >= $first_fixture{$sn}}),
		join(',', @jobs), "$sn: each fixture that Sentry forwards is a job, the others are not");
}

# Each job row equals what the SQL decoder makes of the same message, with
# the stream's default queue.
my $cols = q{jsonb_build_object('project_id', project_id, 'group_id', group_id, 'event_id', event_id,
  'primary_hash', primary_hash, 'is_new', is_new, 'is_regression', is_regression,
  'is_new_group_environment', is_new_group_environment, 'group_states', group_states,
  'occurrence_id', occurrence_id, 'queue', queue, 'cache_key', cache_key)};
for my $s (@streams)
{
	for my $off (sort { $a <=> $b } keys %{ $sent{ $s->{name} } })
	{
		my $m = $sent{ $s->{name} }{$off};
		next if $m->{note} eq 'skip_consume';
		next if exists $expect_job{ $s->{name} }{$off} && !$expect_job{ $s->{name} }{$off};
		my $hjson = $m->{headers} ? $json->encode({ map { @$_ } @{ $m->{headers} } }) : undef;
		my $body = $m->{body};
		$body =~ s/'/''/g;
		$hjson =~ s/'/''/g if defined $hjson;
		my $sql = sprintf(q{SELECT sentry_relay.decode_event_message(convert_to('%s', 'UTF8'), %s, '%s')
  - 'version' - 'operation' - 'source'},
			$body, defined $hjson ? "'$hjson'" : 'NULL', $s->{queue});
		my $expected = $node->safe_psql('postgres', $sql);
		my $row = $node->safe_psql('postgres',
			qq{SELECT $cols FROM sentry_relay.jobs WHERE stream = '$s->{name}' AND "offset" = $off});
		is($row, $expected, "$s->{name} offset $off ($m->{note}): the job row is the SQL decoder's job");
	}
}

# and the values themselves, as Sentry passes them on
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT stream || '=' || queue, ' ') FROM sentry_relay.jobs}),
	'errors=post_process_errors issue-platform=post_process_issue_platform transactions=post_process_transactions',
	'the queue defaults by stream when the message names none');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT group_states::text, ' ') FROM sentry_relay.jobs WHERE stream = 'errors' AND group_id = 4015}),
	'[{"id": "4015", "is_new": false, "is_regression": true, "is_new_group_environment": false}]',
	'group_states with string ids, as sent, on both paths');
is($node->safe_psql('postgres', q{SELECT count(*) FROM sentry_relay.jobs WHERE stream = 'errors' AND is_regression IS NULL}),
	'1', 'a null is_regression is stored as NULL');
is($node->safe_psql('postgres', qq{SELECT string_agg(coalesce(group_id::text, '-') || ':' || group_states::text || ':' || eventstream_type, ' ') FROM sentry_relay.jobs WHERE stream = 'transactions' AND "offset" < $first_fixture{transactions}}),
	'-:[]:transaction -:[]:transaction', 'transactions: no group, empty group_states');
is($node->safe_psql('postgres', qq{SELECT string_agg(coalesce(group_id::text, '-') || ':' || occurrence_id || ':' || coalesce(group_states::text, '-') || ':' || eventstream_type, ' ') FROM sentry_relay.jobs WHERE stream = 'issue-platform' AND "offset" < $first_fixture{'issue-platform'}}),
	'-:3e9f0c1d8b7a4e6f9d2c5b8a7e6f4d3c:-:generic -:3e9f0c1d8b7a4e6f9d2c5b8a7e6f4d3c:-:generic',
	'issue platform: the occurrence, no group');

# A stream's default_queue option names the queue for messages that name none.
$node->safe_psql('postgres', q{SELECT sentry_relay.alter_stream('transactions',
  options => (SELECT options || '{"default_queue": "txn_low"}' FROM sentry_relay.streams WHERE name = 'transactions'))});
ok(wait_until($node, q{SELECT count(*) = 3 FROM sentry_relay.workers WHERE status = 'running'}),
	'the altered stream runs again');
my $off = send_insert($transactions, transaction_event(), headers => 1, note => 'transaction, default_queue');
commit_log($kafka, 'transactions', 0, 'transactions_group', $off + 1,
	commit_log_topic => 'snuba-transactions-commit-log');
is(wait_for_value($node, qq{SELECT queue FROM sentry_relay.jobs WHERE stream = 'transactions' AND "offset" = $off}, 'txn_low'),
	'txn_low', 'the stream\'s default_queue applies');

$node->stop;
$kafka->stop;
done_testing();
