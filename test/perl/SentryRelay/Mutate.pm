# SentryRelay::Mutate - the generator of random and mutated event messages
# (bit flips, truncations, splices, random bytes, random headers, wrong JSON
# types, NULL values) that 075_mutated_messages.pl produces into a running
# worker and 076_decoder_differential.pl decodes with both the C decoder and
# the Python reference.
#
# The messages are drawn from Perl's rand(): seed it with srand() first.  The
# same seed gives the same messages (but for the Received-Timestamp header
# of event_headers(), which is the time of day).
package SentryRelay::Mutate;

use strict;
use warnings;
use Exporter 'import';
use JSON::PP ();
use SentryRelay::Test qw(event_message event_headers);

our @EXPORT_OK = qw(mutated_messages);

sub rbytes { my $n = shift; return join '', map { chr(int(rand(256))) } 1 .. $n }
sub pick { return $_[ int(rand(@_)) ] }

my $json = JSON::PP->new->canonical;
sub valid_message
{
	my ($seq) = @_;
	my $r = rand;
	return event_message(seq => $seq, skip_consume => 1) if $r < 0.05;
	return $json->encode([ 2, pick(qw(start_merge end_merge start_delete_groups tombstone_events exclude_groups)),
		{ project_id => 1, transaction_id => 'x' } ]) if $r < 0.10;
	return $json->encode([ 1, 'insert', { event_id => sprintf('%032x', $seq), project_id => 3, group_id => 7,
		primary_hash => 'abc', data => {} }, { is_new => JSON::PP::false, is_regression => JSON::PP::true,
		is_sample => JSON::PP::false, is_new_group_environment => JSON::PP::false } ]) if $r < 0.15;
	return event_message(seq => $seq, project_id => 1 + $seq % 5);
}

my @header_names = qw(version operation event_id project_id group_id primary_hash is_new
  is_regression is_new_group_environment skip_consume queue occurrence_id group_states
  Received-Timestamp);
sub random_value
{
	return pick(undef, '', '0', '1', '2', 'insert', 'start_merge', 'explode', '-1',
		'99999999999999999999999', sprintf('%032x', int(rand(1e9))), 'ZZ' x 16,
		'[{"id": 1, "is_new": true, "is_regression": false, "is_new_group_environment": false}]',
		'[{"id": "x"}]', '{', rbytes(1 + int(rand(40))), "a\x00b", "\xff\xfe");
}
sub random_headers
{
	my @h;
	push @h, [ pick(@header_names, 'x-' . int(rand(100))), random_value() ] for 1 .. int(rand(10));
	return \@h;
}

sub mutate
{
	my ($v, $other) = @_;
	my $kind = int(rand(9));
	if ($kind == 0)    # bit flips
	{
		for (1 .. 1 + int(rand(8)))
		{
			my $i = int(rand(length $v));
			substr($v, $i, 1) = chr(ord(substr($v, $i, 1)) ^ (1 << int(rand(8))));
		}
		return ($v, 'bitflip');
	}
	return (substr($v, 0, int(rand(length $v))), 'truncate') if $kind == 1;
	return (substr($v, 0, int(rand(length $v))) . substr($other, int(rand(length $other))), 'splice')
	  if $kind == 2;
	return (rbytes(int(rand(300))), 'random') if $kind == 3;
	if ($kind == 4)    # delete, duplicate or insert a chunk
	{
		my $i = int(rand(length $v));
		my $n = 1 + int(rand(20));
		my $op = int(rand(3));
		substr($v, $i, $n) = '' if $op == 0;
		substr($v, $i, 0) = substr($v, $i, $n) if $op == 1;
		substr($v, $i, 0) = rbytes($n) if $op == 2;
		return ($v, 'chunk');
	}
	if ($kind == 5)    # a value of the wrong JSON type
	{
		my $repl = pick('"1"', '-5', '1e400', '99999999999999999999', 'null', 'true', '[]', '{}',
			'"' . ('\ud800' x 2) . '"', '"\u0000"', '[' x 100 . ']' x 100);
		my @keys = ('"project_id": ', '"event_id": ', '"group_id": ', '"is_new": ',
			'"group_states": ', '"queue": ', '"skip_consume": ', '"primary_hash": ');
		my $k = pick(@keys);
		$v =~ s/(\Q$k\E)("[^"]*"|[^,}\]]*)/$1$repl/;
		return ($v, 'wrongtype');
	}
	return ('[' x (50 + int(rand(100))) . ']' x int(rand(200)), 'nesting') if $kind == 6;
	return (undef, 'null') if $kind == 7 && rand() < 0.3;
	return ($v, 'valid');
}

# mutated_messages($total): $total messages, each a hash:
#   value    the message value (undef: a message without a value)
#   headers  undef, or [[name, value-or-undef], ...]
#   kind     how it was made ('valid', 'bitflip', ..., with '+headers' when
#            it carries complete, valid task headers, '+badheader' when one
#            of them is broken)
#   base     the unmutated message it was made from
#   key      the Kafka key (undef for a tenth of them)
# Message $i is drawn right after message $i - 1, in the order 075 always
# drew them (value, headers, key), so a seed gives the messages it always did.
sub mutated_messages
{
	my ($total) = @_;
	my @out;
	for my $i (0 .. $total - 1)
	{
		my $base = valid_message($i);
		my ($value, $kind) = rand() < 0.1 ? ($base, 'valid') : mutate($base, valid_message($i + 1));
		my $headers;
		my $hr = rand;
		if ($hr < 0.3)
		{
			$headers = random_headers();
		}
		elsif ($hr < 0.5 && $base =~ /"event_id":"([0-9a-f]{32})"/)
		{
			# complete, valid task headers (the body is then never read)...
			$headers = event_headers(event_id => $1);
			# ... or one of them broken
			if (rand() < 0.5)
			{
				$headers->[ 1 + int(rand(@$headers - 1)) ][1] = random_value();
				$kind .= '+badheader';
			}
			else
			{
				$kind .= '+headers';
			}
		}
		my $key = rand() < 0.1 ? undef : "k$i";
		push @out, { value => $value, headers => $headers, kind => $kind, base => $base, key => $key };
	}
	return @out;
}

1;
