#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures and builds Meridian in a build directory (default: _build, or $1).
# Extra configure options come from $CONFIGURE_FLAGS.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/_build}
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
    autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
fi
mkdir -p "$dir"
cd "$dir"
if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ] || [ "${CONFIGURE_FLAGS:-}" != "$(cat .configure-flags 2>/dev/null)" ]; then
    # shellcheck disable=SC2086
    "$top/configure" -q ${CONFIGURE_FLAGS:-}
    echo "${CONFIGURE_FLAGS:-}" > .configure-flags
fi
make -s -j"$(nproc)" all >/dev/null
make -s -j"$(nproc)" check TESTS= >/dev/null
echo "built in $dir"
