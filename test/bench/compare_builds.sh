#!/bin/bash
# compare_builds.sh - make bench's scenarios for two revisions of the relay in
# one run, interleaved (before, after, before, after, ...), so that both see
# the same machine load.  As root, from the repository:
#
#   test/bench/compare_builds.sh REV_BEFORE [REV_AFTER (HEAD)]
#
# Each revision is built in a throwaway git worktree; before each round its
# build is installed into the system PostgreSQL (make install) and
# relay_bench.sh runs from the current tree, so both revisions see the same
# benchmark.  The tree's own build is installed again at the end.
# Knobs: BENCH_COMPARE_ROUNDS (2), BENCH_BROKERS (mock), BENCH_SCENARIOS
# ("A B C D"), BENCH_WORKERS ("1"), and every relay_bench.sh knob.  Output:
# test/bench/results/compare/ (each round's relay.json and relay.txt) and
# compare.txt, the rounds side by side.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BEFORE=${1:?usage: compare_builds.sh REV_BEFORE [REV_AFTER]}
AFTER=${2:-HEAD}
ROUNDS=${BENCH_COMPARE_ROUNDS:-2}
BROKER=${BENCH_BROKERS:-mock}
case $BROKER in mock | real) ;; *) echo "BENCH_BROKERS: one broker, mock or real" >&2; exit 2 ;; esac
export BENCH_SCENARIOS=${BENCH_SCENARIOS:-A B C D}
export BENCH_WORKERS=${BENCH_WORKERS:-1}
export BENCH_PY=${BENCH_PY:-0} BENCH_NOWAKE=${BENCH_NOWAKE:-0} BENCH_PERF=${BENCH_PERF:-0}
OUT=$REPO/test/bench/results/compare
WT=$(mktemp -d /tmp/sentry_relay_compare.XXXXXX)
trap 'git -C "$REPO" worktree remove --force "$WT/before" 2>/dev/null; git -C "$REPO" worktree remove --force "$WT/after" 2>/dev/null; rm -rf "$WT"; make -s -C "$REPO" install >/dev/null' EXIT

mkdir -p "$OUT"
rm -f "$OUT"/*
for side in before after; do
	rev=$BEFORE
	[ $side = after ] && rev=$AFTER
	git -C "$REPO" worktree add --detach "$WT/$side" "$rev" >/dev/null
	echo "$side: $(git -C "$WT/$side" log --oneline -1)" | tee -a "$OUT/revisions.txt"
	make -s -C "$WT/$side" >/dev/null
done
make -s -C "$REPO/test/kafka_mock" >/dev/null

args=()
START=$(date +%s)
for r in $(seq 1 "$ROUNDS"); do
	for side in before after; do
		echo "=== round $r: $side ==="
		make -s -C "$WT/$side" install >/dev/null
		BENCH_BROKERS=$BROKER "$REPO/test/bench/relay_bench.sh" >"$OUT/$side-$r.log" 2>&1 ||
			{ tail -20 "$OUT/$side-$r.log"; exit 1; }
		cp "$REPO/test/bench/results/$BROKER/relay.json" "$OUT/$side-$r.json"
		cp "$REPO/test/bench/results/$BROKER/relay.txt" "$OUT/$side-$r.txt"
		args+=("$side-$r=$OUT/$side-$r.json")
	done
done
{
	cat "$OUT/revisions.txt"
	/usr/bin/python3 "$REPO/test/bench/relay_report.py" --compare "${args[@]}" --elapsed $(($(date +%s) - START))
} | tee "$OUT/compare.txt"
