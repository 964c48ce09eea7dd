#!/bin/bash
# SPDX-License-Identifier: MIT
# The image's HEALTHCHECK: GET /healthz on the admin listener, healthy on 200 only, so that it
# fails once Meridian drains after SIGTERM (admin.c answers 503 "stopping" then; today the admin
# listener does not answer at all during the drain, which fails too, after the read timeout).
# The admin address comes from $MERIDIAN_ADMIN (host:port or [v6]:port; the image sets
# 127.0.0.1:9900, the default configuration's). Bash's /dev/tcp does the HTTP: bash is already
# in every Debian image, where curl would bring libcurl and a dozen libraries (LDAP, SSH,
# Kerberos...) into the runtime image for one request a few seconds apart, and busybox
# another binary to keep patched.
set -u

addr=${MERIDIAN_ADMIN:-127.0.0.1:9900}
host=${addr%:*}
port=${addr##*:}
host=${host#[}
host=${host%]}

if ! exec 3<>"/dev/tcp/$host/$port"; then
    echo "meridian-healthcheck: cannot connect to $addr" >&2
    exit 1
fi
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$addr" >&3
if ! IFS= read -r -t 4 status <&3; then
    echo "meridian-healthcheck: $addr: no answer" >&2
    exit 1
fi
status=${status%$'\r'}
case $status in
"HTTP/1."?" 200 "*) exit 0 ;;
esac
echo "meridian-healthcheck: $addr: $status" >&2
exit 1
