#!/bin/bash
# run.sh - the full chaos soak (make chaos): test/chaos/chaos.pl for
# CHAOS_SECONDS seconds (default 900), run the way test/run-tests.sh runs the
# TAP tests: from a copy of the repository owned by the postgres user (the
# servers refuse to run as root), with PostgreSQL's TAP modules and ours on
# PERL5LIB.  Runs against the installed extension (make install).
# CHAOS_SEED=N replays a run's random choices; CHAOS_MESSAGES overrides the
# message count (at least 200,000 by default).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGBIN=$($PG_CONFIG --bindir)
PGXS_DIR=$(dirname "$($PG_CONFIG --pgxs)")/../..
RUN_AS=${SR_TEST_USER:-postgres}
export CHAOS_SECONDS=${CHAOS_SECONDS:-900}
WORK=$(mktemp -d /tmp/sentry_relay_chaos.XXXXXX)
chmod 755 "$WORK"

as_user() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$RUN_AS" -- "$@"
	else
		"$@"
	fi
}

make -s -C "$REPO/test/kafka_mock" >/dev/null || exit 1
if [ "$(id -u)" -eq 0 ]; then
	chown "$RUN_AS" "$WORK"
	mkdir -p "$WORK/repo"
	tar -C "$REPO" --exclude=.git -cf - . | tar -C "$WORK/repo" -xf -
	chown -R "$RUN_AS" "$WORK/repo"
	REPO="$WORK/repo"
fi
cd "$REPO" || exit 1
mkdir -p "$WORK/tap"
[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$WORK/tap"

echo "== chaos soak: ${CHAOS_SECONDS} s (work files in $WORK)"
as_user env PATH="$PGBIN:$PATH" \
	PERL5LIB="$PGXS_DIR/src/test/perl:$REPO/test/perl" \
	TESTDIR="$WORK/tap" \
	PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
	SR_REPO="$REPO" CHAOS_SECONDS="$CHAOS_SECONDS" \
	${CHAOS_SEED:+CHAOS_SEED="$CHAOS_SEED"} ${CHAOS_MESSAGES:+CHAOS_MESSAGES="$CHAOS_MESSAGES"} \
	prove -v test/chaos/chaos.pl
rc=$?
if [ $rc -ne 0 ]; then
	for f in "$WORK"/tap/tmp_check/log/*; do
		[ -f "$f" ] || continue
		echo "---- $f (last 60 lines)"
		tail -n 60 "$f"
	done
	echo "chaos soak FAILED (work files kept in $WORK)"
else
	rm -rf "$WORK"
	echo "chaos soak passed"
fi
exit $rc
