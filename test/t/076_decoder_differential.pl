# 076_decoder_differential.pl - the C event decoder against the Python
# reference decoder (test/reference/sentry_reference.py, written from
# docs/decoding.md and Sentry's protocol.py), on every input of the event and
# skim fuzz corpora, every message of 075's generator (SentryRelay::Mutate),
# the Sentry-shaped fixtures of test/fixtures/sentry and the reference's edge
# cases (test/reference/edge_cases.py).  For each input the outcome (job,
# skip, error) must agree, and for a job every field, group_states compared
# as JSON values with their types.  No server: test/unit/decode_dump (built
# by make unit) links the pure decoder.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use SentryRelay::Watchdog;
use File::Basename qw(basename dirname);
use IPC::Run ();
use JSON::PP ();
use SentryRelay::Mutate qw(mutated_messages);

my $repo = $ENV{SR_REPO} // dirname(__FILE__) . '/../..';
my $python = '/usr/bin/python3';
my $dump = "$repo/test/unit/decode_dump";
my $differential = "$repo/test/reference/differential.py";
my $dir = PostgreSQL::Test::Utils::tempdir();
my ($cases, $labels, $c_out, $results) =
  map { "$dir/$_" } qw(cases.bin labels.tsv decode_dump.jsonl results.jsonl);

if (!ok(-x $dump, 'test/unit/decode_dump is built (make unit)'))
{
	done_testing();
	exit 0;
}

# ---- the reference's own unit tests ----
my ($ut_out, $ut_err) = ('', '');
my $ut_ok = IPC::Run::run([ $python, '-B', '-m', 'unittest', 'discover', '-s', "$repo/test/reference" ],
	'>', \$ut_out, '2>', \$ut_err);
ok($ut_ok, 'the reference decoder passes its unit tests') or diag($ut_err);

# ---- the cases file: a record per input (layouts: differential.py) ----
sub bytes_of
{
	my ($v) = @_;
	return undef unless defined $v;
	$v = "$v";
	utf8::encode($v) if $v =~ /[^\x00-\xff]/;
	return $v;
}

sub record
{
	my ($headers, $body) = @_;
	my @h = map { [ bytes_of($_->[0]), bytes_of($_->[1]) ] } @{ $headers // [] };
	$body = bytes_of($body);
	my $plain = defined $body && @h <= 15;
	for (@h)
	{
		$plain = 0 if length($_->[0]) > 255 || (defined $_->[1] && length($_->[1]) > 254);
	}
	my $rec;
	if ($plain)
	{
		$rec = chr(scalar @h);
		$rec .= chr(length $_->[0]) . $_->[0]
		  . (defined $_->[1] ? chr(length $_->[1]) . $_->[1] : "\xff") for @h;
		$rec .= $body;
		return pack('N', length $rec) . $rec;
	}
	$rec = chr(defined $body ? 0 : 1) . pack('n', scalar @h);
	$rec .= pack('N', length $_->[0]) . $_->[0]
	  . (defined $_->[1] ? pack('N', length $_->[1]) . $_->[1] : pack('N', 0xffffffff)) for @h;
	$rec .= $body // '';
	return pack('N', 0x80000000 | length $rec) . $rec;
}

open(my $cf, '>:raw', $cases) or die "$cases: $!";
open(my $lf, '>:raw', $labels) or die "$labels: $!";
my %written;
sub add
{
	my ($source, $label, $rec, $expect) = @_;
	$label =~ s/[\t\r\n]/ /g;
	print $cf $rec;
	print $lf join("\t", $source, $label, $expect // ''), "\n";
	$written{$source}++;
}

# The fuzz corpora: fuzz_event and fuzz_skim read the same layout (a header
# block by fuzz_headers(), then the body), so each file is a record as is.
for my $corpus (qw(event skim))
{
	my $d = "$repo/test/fuzz/corpus/$corpus";
	opendir(my $dh, $d) or die "$d: $!";
	for my $f (sort grep { -f "$d/$_" } readdir $dh)
	{
		my $raw = slurp_file("$d/$f");
		add("corpus/$corpus", $f, pack('N', length $raw) . $raw);
	}
	closedir $dh;
}

# 075's generator, from 075's seed.
my $seed = $ENV{SR_MUTATION_SEED} // 75;
srand($seed);
note("mutation seed $seed");
my $i = 0;
for my $m (mutated_messages(10_000))
{
	add('mutated', "message $i ($m->{kind})", record($m->{headers}, $m->{value}));
	$i++;
}

# The fixtures, with the outcome each must have.  Every fixture file needs
# an entry here, so that one that both decoders reject fails the test.
my %fixture_expect = (
	error_group_states_string_ids => 'job',
	error_new_issue => 'job',
	error_regression => 'job',
	error_null_threads => 'job',
	error_null_tag_keys => 'job',
	error_null_values => 'job',
	error_no_queue => 'job',
	error_v1_insert => 'job',
	error_skip_consume => 'skip',
	issue_platform_occurrence => 'job',
	transaction_group_id_null => 'job',
	(map { ("replacement_v1_$_" => 'skip') } qw(delete delete_groups merge unmerge)),
	(map { ("replacement_v2_$_" => 'skip') } qw(start_delete_groups end_delete_groups start_merge
	  end_merge start_unmerge end_unmerge start_delete_tag end_delete_tag exclude_groups
	  tombstone_events replace_group start_unmerge_hierarchical end_unmerge_hierarchical)),
);
my $fixdir = "$repo/test/fixtures/sentry";
my %fixture_seen;
for my $path (sort glob("$fixdir/*.json"))
{
	next if $path =~ /\.headers\.json$/;
	my $name = basename($path, '.json');
	my $expect = $fixture_expect{$name} // 'none';
	$fixture_seen{$name} = 1;
	my $body = slurp_file($path);
	add('fixtures', $name, record([], $body), $expect);
	(my $hpath = $path) =~ s/\.json$/.headers.json/;
	next unless -f $hpath;
	my $headers = JSON::PP->new->decode(slurp_file($hpath));
	add('fixtures', "$name+headers", record($headers, $body), $expect);
	# the headers alone carry the job: the body is not read
	add('fixtures', "$name+headers, garbage body", record($headers, 'not json'), $expect);
}
is(join(' ', grep { !$fixture_seen{$_} } sort keys %fixture_expect), '', 'every expected fixture exists');
is(join(' ', grep { !exists $fixture_expect{$_} } sort keys %fixture_seen), '', 'every fixture has an expected outcome');
close $cf or die;
close $lf or die;

# The reference's edge cases, appended by the reference itself.
my ($out, $err) = ('', '');
ok(IPC::Run::run([ $python, '-B', $differential, 'append-edge', $cases, $labels ], '>', \$out, '2>', \$err),
	'edge cases appended') or diag($err);
chomp(my $nrecords = `wc -l < $labels`);

# ---- both decoders, compared ----
$err = '';
ok(IPC::Run::run([ $dump, $cases ], '>', $c_out, '2>', \$err), 'decode_dump decodes every record')
  or diag($err);
chomp(my $nlines = `wc -l < $c_out`);
is($nlines, $nrecords, "decode_dump wrote a line per record ($nrecords)");

($out, $err) = ('', '');
my $same = IPC::Run::run([ $python, '-B', $differential, 'compare', $cases, $labels, $c_out, $results ],
	'>', \$out, '2>', \$err);
diag($err) if $err ne '';
my %compared = $out =~ /^SOURCE (\S+) (\d+) compared/mg;
my ($total, $mismatched) = $out =~ /^TOTAL (\d+) compared (\d+) mismatched/m;
diag('inputs compared: ' . join(', ', map { "$_ $compared{$_}" } sort keys %compared)
	  . '; total ' . ($total // 0) . ', mismatched ' . ($mismatched // '?'));
ok($same && defined $mismatched && $mismatched == 0, 'the C decoder and the reference agree on every input')
  or diag($out);
cmp_ok($total // 0, '>=', 10_000, 'at least 10,000 inputs compared');
is($compared{$_} // 0, $written{$_}, "every $_ input compared") for sort keys %written;
cmp_ok($compared{$_} // 0, '>', 500, "the $_ corpus is there") for qw(corpus/event corpus/skim);
is($compared{mutated} // 0, 10_000, "075's 10,000 messages");

# ---- the outcomes the fixtures and edge cases must have ----
my @rows = map { JSON::PP->new->decode($_) } split /\n/, slurp_file($results);
for my $r (grep { $_->{source} eq 'fixtures' } @rows)
{
	is("$r->{c} $r->{ref}", "$r->{expected} $r->{expected}", "fixture $r->{label}: $r->{expected} (C, reference)");
}
my @edge_wrong = grep { $_->{source} eq 'edge' && ($_->{c} ne $_->{expected} || $_->{ref} ne $_->{expected}) } @rows;
is(scalar(@edge_wrong), 0, 'every edge case has the outcome edge_cases.py names')
  or diag(join "\n", map { "$_->{label}: expected $_->{expected}, C $_->{c}, reference $_->{ref}" } @edge_wrong);

done_testing();
