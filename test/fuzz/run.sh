#!/bin/bash
# run.sh SECONDS - build the decoder fuzzers with clang and libFuzzer
# (-fsanitize=fuzzer,address,undefined) and run each for SECONDS, all in
# parallel.  Seeds live in test/fuzz/corpus/<target>; new inputs that add
# coverage are merged back into it.  Crashes land in test/fuzz/artifacts/.
# Prints each target's exec count; exits non-zero on any finding.
# FUZZ_TARGETS="fuzz_event fuzz_skim" runs only some of the targets.
set -uo pipefail

SECS=${1:-600}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/sentry_relay_fuzz.XXXXXX)
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$REPO/src"
SRCS="$REPO/src/decode_common.c $REPO/src/decode_event.c $REPO/src/decode_fast.c $REPO/src/decode_python.c $REPO/src/decode_commit.c $REPO/src/json_skim.c $REPO/src/json_text.c"
TARGETS=${FUZZ_TARGETS:-"fuzz_event fuzz_commit_log fuzz_skim"}

mkdir -p "$HERE/artifacts"
for t in $TARGETS; do
	clang $CFLAGS -o "$HERE/$t" "$HERE/$t.c" $SRCS -ljson-c -lm || exit 1
done

pids=()
for t in $TARGETS; do
	corpus="$HERE/corpus/${t#fuzz_}"
	mkdir -p "$WORK/$t"
	"$HERE/$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$HERE/artifacts/$t-" \
		"$WORK/$t" "$corpus" > "$WORK/$t.log" 2>&1 &
	pids+=($!)
done

rc=0
i=0
for t in $TARGETS; do
	if ! wait "${pids[$i]}"; then
		rc=1
		echo "== $t: FINDING (see $WORK/$t.log and test/fuzz/artifacts/)"
		grep -E "ERROR|SUMMARY|runtime error" "$WORK/$t.log" | head -20
	fi
	i=$((i + 1))
	echo "== $t: $(grep -E '^Done [0-9]+ runs' "$WORK/$t.log" || echo 'no summary')," \
		"$(grep -E 'stat::number_of_executed_units' "$WORK/$t.log" | awk '{print $2}') execs," \
		"corpus $(grep -E '^#[0-9]+.*(DONE|pulse)' "$WORK/$t.log" | tail -1 | grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*')"
	# keep only inputs that add coverage
	"$HERE/$t" -merge=1 "$HERE/corpus/${t#fuzz_}" "$WORK/$t" > "$WORK/$t.merge.log" 2>&1 || true
done
[ $rc -eq 0 ] && rm -rf "$WORK"
exit $rc
