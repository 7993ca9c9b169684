#!/bin/bash
# fetch.sh - resolve the Apache Kafka broker's run-time classpath (the
# dependencies of test/kafka/pom.xml) from Maven Central into a cache outside
# the work tree, and print the path of the classpath file on stdout.
#
#   test/kafka/fetch.sh            # prints e.g. /var/cache/sentry_relay/kafka-4.4.0.classpath
#
# The cache ($SR_KAFKA_CACHE, default /var/cache/sentry_relay) holds the
# Maven repository (m2/) and kafka-<version>.classpath, one line of jar paths
# joined by ':'.  Everything in it is made readable by all users: the tests
# run as `postgres`.  A second run fetches nothing: if the classpath file
# exists, was made from the same pom.xml and every jar in it exists, mvn is
# not run at all.  Needs java and mvn only when it has something to fetch;
# writing the cache usually needs root.  It also keeps kafka-<version>.jsa
# there, a class data sharing archive that makes the broker start faster.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
POM="$HERE/pom.xml"
CACHE=${SR_KAFKA_CACHE:-/var/cache/sentry_relay}
VERSION=$(sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' "$POM")
[ -n "$VERSION" ] || { echo "fetch.sh: no <kafka.version> in $POM" >&2; exit 1; }
CPFILE="$CACHE/kafka-$VERSION.classpath"
POMSUM=$(sha256sum "$POM" | cut -d' ' -f1)

# Is the cached classpath complete and made from this pom.xml?
cached() {
	[ -s "$CPFILE" ] && [ -s "$CPFILE.pom-sha256" ] || return 1
	[ "$(cat "$CPFILE.pom-sha256")" = "$POMSUM" ] || return 1
	local jar
	IFS=: read -r -a jars < "$CPFILE"
	[ ${#jars[@]} -gt 0 ] || return 1
	for jar in "${jars[@]}"; do
		[ -r "$jar" ] || return 1
	done
}

# A class data sharing archive of the broker's classes, which cuts each JVM's
# start-up by 1 to 2 s (cluster.sh uses it when it exists): dumped at the exit
# of a broker started once by cluster.sh.  Best effort: a failure is only
# reported (once; remove $JSA.failed to retry).
JSA="$CACHE/kafka-$VERSION.jsa"
make_cds_archive() {
	[ -w "$CACHE" ] && command -v java >/dev/null && command -v kcat >/dev/null || return 0
	# an archive of another JVM build (Debian updated java) is of no use
	if [ -s "$JSA" ] && ! java -XX:SharedArchiveFile="$JSA" -Xshare:on -XX:+UseSerialGC \
		-cp "$(cat "$CPFILE")" -version >/dev/null 2>&1; then
		echo "fetch.sh: $JSA does not fit this JVM: dumping it again" >&2
		rm -f "$JSA" "$JSA.failed"
	fi
	[ -s "$JSA" ] || [ -e "$JSA.failed" ] && return 0
	local d
	d=$(mktemp -d /tmp/sr_kafka_cds.XXXXXX)
	echo "fetch.sh: dumping the class data sharing archive $JSA" >&2
	if SR_KAFKA_CLASSPATH="$CPFILE" SR_KAFKA_CDS_DUMP="$JSA.tmp.$$" \
		"$HERE/cluster.sh" start "$d" >/dev/null &&
		"$HERE/cluster.sh" stop "$d" && [ -s "$JSA.tmp.$$" ]; then
		mv "$JSA.tmp.$$" "$JSA"
		chmod a+r "$JSA"
	else
		echo "fetch.sh: could not dump $JSA (not fatal; logs in $d)" >&2
		"$HERE/cluster.sh" stop "$d" >/dev/null 2>&1
		rm -f "$JSA.tmp.$$"
		touch "$JSA.failed"
		return 0
	fi
	rm -rf "$d"
}

if cached; then
	make_cds_archive
	echo "$CPFILE"
	exit 0
fi

for tool in java mvn; do
	command -v "$tool" >/dev/null ||
		{ echo "fetch.sh: $tool not found (test/setup-deps.sh installs it)" >&2; exit 1; }
done
umask 022
mkdir -p "$CACHE/m2"
tmp="$CPFILE.tmp.$$"
trap 'rm -f "$tmp"' EXIT
echo "fetch.sh: resolving org.apache.kafka:kafka_2.13:$VERSION into $CACHE/m2" >&2
# -f with the pom's own directory as the base: mvn writes nothing in the work
# tree (a pom-packaged project has no build output).  Maven's own output goes
# to stderr, so that stdout is only the classpath file's path.
mvn -B -q -Dstyle.color=never -f "$POM" -Dmaven.repo.local="$CACHE/m2" \
	dependency:build-classpath -Dmdep.includeScope=runtime \
	-Dmdep.outputFile="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g; /^$/d' >&2
[ -s "$tmp" ] || { echo "fetch.sh: mvn wrote no classpath" >&2; exit 1; }
echo >> "$tmp"		# one newline-terminated line, for `read`
rm -f "$JSA" "$JSA.failed"	# made for the old classpath
mv "$tmp" "$CPFILE"
echo "$POMSUM" > "$CPFILE.pom-sha256"
chmod -R a+rX "$CACHE"
cached || { echo "fetch.sh: $CPFILE names a jar that does not exist" >&2; exit 1; }
make_cds_archive
echo "$CPFILE"
