#!/bin/bash
# run-tests.sh - run every test suite of sentry_relay, as `make test` does:
#   1. unit tests of the pure C modules (state machine, decoders), via prove;
#   2. pg_regress on a throwaway instance with sentry_relay preloaded;
#   3. isolation specs (test/specs/*.spec), when there are any;
#   4. TAP tests (test/t/*.pl) with PostgreSQL::Test::Cluster, when any,
#      against librdkafka's mock cluster (SentryRelay::KafkaMock);
#   5. the TAP tests written for both brokers (a line "# brokers: mock real"
#      in the file) again, against a real Apache Kafka (SR_KAFKA=real,
#      test/kafka/): suite "TAP (real Kafka)", skipped when java is missing.
# Each runner prints its own summary; the script ends with one line
# "N passed, N failed" counting suites, and exits non-zero on any failure.
# PostgreSQL refuses to run as root, so servers run as the postgres user.
# For a partial run while developing: SR_SUITES="unit regress isolation tap
# tap-real" (any subset) and SR_TAP_TESTS="test/t/070_chaos.pl ..." (default:
# all; tap-real runs those of them that are written for both brokers).
set -uo pipefail
SUITES=${SR_SUITES:-unit regress isolation tap tap-real}
want() { [[ " $SUITES " == *" $1 "* ]]; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGBIN=$($PG_CONFIG --bindir)
PGXS_DIR=$(dirname "$($PG_CONFIG --pgxs)")/../..
RUN_AS=${SR_TEST_USER:-postgres}
WORK=$(mktemp -d /tmp/sentry_relay_test.XXXXXX)
chmod 755 "$WORK"
[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$WORK"

as_user() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$RUN_AS" -- "$@"
	else
		"$@"
	fi
}

# SR_SANITIZE=address (make test SANITIZE=address): the extension is built
# with ASan but the server binary is not, so the servers (and every program
# the runners start) preload libasan, and test/sanitize/asan_init_first.c,
# without which Debian 12's binaries hang in ASan's lazy initialization.
# Reports go to $WORK/asan/asan.<pid>; any report fails the run.  Leak
# detection is off: backends exit without freeing, by design.
SAN_ENV=()
if [ "${SR_SANITIZE:-}" = address ]; then
	mkdir -p "$WORK/asan"
	gcc -shared -fPIC -O2 -o "$WORK/asan_init_first.so" \
		"$REPO/test/sanitize/asan_init_first.c" -ldl || exit 1
	[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$WORK/asan"
	SAN_ENV=(LD_PRELOAD="$(gcc -print-file-name=libasan.so) $WORK/asan_init_first.so"
		ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:disable_coredump=1:log_path=$WORK/asan/asan:${ASAN_OPTIONS:-}")
elif [ -n "${SR_SANITIZE:-}" ]; then
	echo "SR_SANITIZE=$SR_SANITIZE: only 'address' is supported" >&2
	exit 1
fi

passed=0
failed=0
failed_names=()
suite_result() {
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
		echo "== suite $1: PASS"
	else
		failed=$((failed + 1))
		failed_names+=("$1")
		echo "== suite $1: FAIL"
	fi
}

# The real Kafka broker for the TAP tests that start one (test/kafka/): its
# classpath is fetched with Maven once, into a cache outside the tree that
# $RUN_AS can read (later runs only check it).  Without java those tests
# skip; if the fetch fails they fail.
KAFKA_ENV=()
if { want tap || want tap-real; } && command -v java >/dev/null; then
	if kafka_cp=$("$REPO/test/kafka/fetch.sh"); then
		KAFKA_ENV=(SR_KAFKA_CLASSPATH="$kafka_cp")
	else
		echo "run-tests: test/kafka/fetch.sh failed: the real-broker TAP tests will fail" >&2
	fi
fi
[ -n "${SR_KAFKA:-}" ] && KAFKA_ENV+=(SR_KAFKA="$SR_KAFKA")

# The servers and test scripts run as $RUN_AS, which may not be able to read
# the checkout (CI clones anywhere): run from a copy it owns.
make -s -C "$REPO/test/kafka_mock" >/dev/null || exit 1
make -s -C "$REPO" unit >/dev/null || exit 1
if [ "$(id -u)" -eq 0 ]; then
	mkdir -p "$WORK/repo"
	tar -C "$REPO" --exclude=.git -cf - . | tar -C "$WORK/repo" -xf -
	chown -R "$RUN_AS" "$WORK/repo"
	REPO="$WORK/repo"
fi
cd "$REPO" || exit 1

if want unit; then
echo "== unit tests (pure C)"
prove --exec '' test/unit/test_state test/unit/test_decode test/unit/test_skim test/unit/call_graph.py
suite_result unit $?
fi
if want regress; then

echo "== pg_regress"
mkdir -p "$WORK/regress"
[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$WORK/regress"
as_user env "${SAN_ENV[@]}" "$PGXS_DIR/src/test/regress/pg_regress" \
	--bindir="$PGBIN" \
	--temp-instance="$WORK/regress/instance" \
	--temp-config="$REPO/test/regress.conf" \
	--inputdir="$REPO" \
	--outputdir="$WORK/regress" \
	--schedule="$REPO/test/schedule" \
	--dbname=contrib_regression
rc=$?
if [ $rc -ne 0 ] && [ -f "$WORK/regress/regression.diffs" ]; then
	echo "---- regression.diffs"
	cat "$WORK/regress/regression.diffs"
fi
suite_result pg_regress $rc
fi

if want isolation && compgen -G "test/specs/*.spec" >/dev/null; then
	echo "== isolation"
	mkdir -p "$WORK/isolation"
	[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$WORK/isolation"
	specs=$(cd test/specs && ls *.spec | sed 's/\.spec$//')
	as_user env "${SAN_ENV[@]}" "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
		--bindir="$PGBIN" \
		--temp-instance="$WORK/isolation/instance" \
		--temp-config="$REPO/test/regress.conf" \
		--inputdir="$REPO/test" \
		--outputdir="$WORK/isolation" \
		--dbname=isolation_regression \
		$specs
	rc=$?
	if [ $rc -ne 0 ] && [ -f "$WORK/isolation/regression.diffs" ]; then
		cat "$WORK/isolation/regression.diffs"
	fi
	suite_result isolation $rc
fi

# run_tap NAME DIR TEST...: prove the TAP tests with TESTDIR=$WORK/DIR (each
# run its own, so the per-test logs of the two runs do not collide); the
# extra environment (SR_KAFKA=...) comes from TAP_ENV.
run_tap() {
	local name=$1 dir=$2 rc t0=$SECONDS
	shift 2
	mkdir -p "$WORK/$dir"
	[ "$(id -u)" -eq 0 ] && chown "$RUN_AS" "$WORK/$dir"
	as_user env "${SAN_ENV[@]}" "${KAFKA_ENV[@]}" "${TAP_ENV[@]}" PATH="$PGBIN:$PATH" \
		PERL5LIB="$PGXS_DIR/src/test/perl:$REPO/test/perl" \
		TESTDIR="$WORK/$dir" \
		PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
		SR_REPO="$REPO" \
		prove ${PROVE_FLAGS:---timer} "$@"
	rc=$?
	if [ $rc -ne 0 ]; then
		for f in "$WORK/$dir"/tmp_check/log/*; do
			[ -f "$f" ] || continue
			echo "---- $f (last 60 lines)"
			tail -n 60 "$f"
		done
	fi
	echo "== $name took $((SECONDS - t0)) s"
	suite_result "$name" $rc
}

TAP_TESTS=(${SR_TAP_TESTS:-test/t/*.pl})
if want tap && compgen -G "test/t/*.pl" >/dev/null; then
	echo "== TAP"
	TAP_ENV=()
	run_tap TAP tap "${TAP_TESTS[@]}"
fi

# The same tests against a real broker: those of TAP_TESTS marked for both.
if want tap-real && compgen -G "test/t/*.pl" >/dev/null; then
	echo "== TAP (real Kafka)"
	real_tests=($(grep -l '^# brokers: mock real' "${TAP_TESTS[@]}" 2>/dev/null))
	if ! command -v java >/dev/null; then
		echo "skipped: java not found (test/setup-deps.sh installs it)"
	elif [ ${#real_tests[@]} -eq 0 ]; then
		echo "skipped: none of the tests is marked '# brokers: mock real'"
	else
		TAP_ENV=(SR_KAFKA=real)
		run_tap "TAP (real Kafka)" tap-real "${real_tests[@]}"
	fi
fi

if [ ${#SAN_ENV[@]} -gt 0 ]; then
	echo "== AddressSanitizer reports"
	if compgen -G "$WORK/asan/asan.*" >/dev/null; then
		for f in "$WORK"/asan/asan.*; do
			echo "---- $f"
			head -n 80 "$f"
		done
		suite_result asan 1
	else
		echo "none"
		suite_result asan 0
	fi
fi

echo
if [ $failed -eq 0 ]; then
	rm -rf "$WORK"
else
	echo "failed suites: ${failed_names[*]} (work files kept in $WORK)"
fi
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
