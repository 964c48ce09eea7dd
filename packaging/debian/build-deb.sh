#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds Meridian's .deb the honest way: from the `make dist` tarball (so the package sees
# exactly what a release ships), unpacked in a scratch directory with packaging/debian copied
# in as debian/, then `dpkg-buildpackage -b`. Needs the Build-Depends of
# packaging/debian/control (dpkg-buildpackage checks them and names what is missing).
#
#   packaging/debian/build-deb.sh [-b BUILDDIR | -t TARBALL] OUTDIR
#
#   -b BUILDDIR  a configured build directory to run `make dist` in (default: a fresh one,
#                configured in the scratch directory)
#   -t TARBALL   use this meridian-VERSION.tar.gz instead of making one
#   OUTDIR       where the .deb (and meridian-dbgsym's, its debug symbols) go; created if
#                missing
#
# Environment: DEB_BUILD_OPTIONS as usual (nocheck skips the unit tests, parallel=N is set
# from nproc unless given); KEEP_WORK=1 keeps the scratch directory. Prints the path of the
# .deb last.
set -euo pipefail

usage() {
    echo "usage: $0 [-b BUILDDIR | -t TARBALL] OUTDIR" >&2
    exit 2
}
die() {
    echo "build-deb: $*" >&2
    exit 1
}

top=$(cd "$(dirname "$0")/../.." && pwd)
builddir=
tarball=
while getopts "b:t:h" opt; do
    case $opt in
    b) builddir=$OPTARG ;;
    t) tarball=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
[ -z "$builddir" ] || [ -z "$tarball" ] || usage
mkdir -p "$1"
outdir=$(cd "$1" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/meridian-deb.XXXXXX")
cleanup() {
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "build-deb: scratch directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

# 1. The release tarball.
if [ -n "$tarball" ]; then
    [ -f "$tarball" ] || die "no tarball at $tarball"
    tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")
else
    if [ -z "$builddir" ]; then
        if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ] ||
            [ "$top/Makefile.am" -nt "$top/configure" ]; then
            (cd "$top" && autoreconf -fi >/dev/null 2>&1) || (cd "$top" && autoreconf -fi)
        fi
        builddir=$work/dist-build
        mkdir -p "$builddir"
        (cd "$builddir" && "$top/configure" -q) || die "configure failed in $builddir"
    fi
    [ -f "$builddir/Makefile" ] || die "$builddir is not a configured build directory"
    name=$(sed -n 's/^PACKAGE_TARNAME = //p' "$builddir/Makefile")-$(sed -n 's/^VERSION = //p' "$builddir/Makefile")
    make -C "$builddir" -s dist-gzip >"$work/dist.log" 2>&1 ||
        { cat "$work/dist.log" >&2; die "make dist failed"; }
    cp "$builddir/$name.tar.gz" "$work/"
    tarball=$work/$name.tar.gz
fi

# 2. Unpacked, with debian/ beside configure. The tarball must carry packaging/debian
#    (EXTRA_DIST in Makefile.am): a package built from files the tarball lacks would not be
#    reproducible from a release.
mkdir "$work/src"
tar -xzf "$tarball" -C "$work/src" --strip-components=1
src=$work/src
[ -f "$src/packaging/debian/control" ] ||
    die "the tarball has no packaging/debian: add packaging/debian/* to EXTRA_DIST in Makefile.am"
mkdir "$src/debian"
(cd "$src/packaging/debian" && tar -cf - --exclude=build-deb.sh .) | tar -xf - -C "$src/debian"

# The upstream part of the package version must be the tarball's (AC_INIT in configure.ac):
# a new release needs a debian/changelog entry.
upstream=$(sed -n "s/^PACKAGE_VERSION='\(.*\)'$/\1/p" "$src/configure")
debver=$(cd "$src" && dpkg-parsechangelog -S Version)
[ "${debver%-*}" = "$upstream" ] ||
    die "packaging/debian/changelog is at $debver but the tarball is $upstream: add an entry"

# 3. The package. -b: binary only, no source package (there is no .orig.tar.gz to make one).
jobs=$(nproc)
case " ${DEB_BUILD_OPTIONS:-} " in
*" parallel="*) ;;
*) export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$jobs" ;;
esac
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
    { tail -60 "$work/build.log" >&2; die "dpkg-buildpackage failed (whole log: KEEP_WORK=1)"; }

deb=$(cd "$work" && ls meridian_*.deb)
cp "$work"/*.deb "$outdir"/
echo "$outdir/$deb"
