#!/bin/bash
# setup-deps.sh - install the Debian 12 packages that sentry_relay's build,
# tests, demo and fuzzers need, if any is missing.  Run as root.
set -euo pipefail

PACKAGES=(
	make gcc pkg-config
	postgresql-15 postgresql-server-dev-15 postgresql-client-15
	librdkafka-dev libjson-c-dev
	libipc-run-perl
	kcat python3-confluent-kafka python3-psycopg2
	clang libclang-rt-14-dev
	gnuplot-nox
	openjdk-17-jre-headless maven
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "setup-deps: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi

echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's postgresql-common would create and start a default cluster; the
# tests start their own throwaway clusters, so skip that.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ] ||
	! grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
	echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"
