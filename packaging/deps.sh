#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what Meridian needs to build, test and benchmark on Debian 12, and nothing
# else. Idempotent: packages already present are skipped without touching apt.
#   packaging/deps.sh          build + run (+ demo)
#   packaging/deps.sh --test   also what the test suite needs
#   packaging/deps.sh --bench  also what the benchmark needs
set -euo pipefail

build=(build-essential autoconf automake libtool pkg-config
       libevent-dev libssl-dev libhiredis-dev libmaxminddb-dev libnghttp2-dev libyaml-dev
       libcmocka-dev libmaxmind-db-writer-perl libsystemd-dev curl ca-certificates)
test=(python3 python3-pytest python3-h2 clang-14 libclang-rt-14-dev openssl nghttp2-client testssl.sh wrk slowhttptest
      redis-server mmdb-bin iproute2 procps systemd logrotate prometheus debhelper lintian)
bench=(haproxy nginx-light wrk nghttp2-client util-linux procps iproute2 openssl python3)

want=("${build[@]}")
for arg in "$@"; do
    case "$arg" in
    --test) want+=("${test[@]}") ;;
    --bench) want+=("${bench[@]}") ;;
    *) echo "deps.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages: ${missing[*]}; run as root (or install them)" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Debian's nginx, haproxy and prometheus packages start their services on install where
# systemd runs; we only want the binaries (prometheus: for promtool), started by the
# benchmark or the tests themselves.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
