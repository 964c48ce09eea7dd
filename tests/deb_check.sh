#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deb_check.sh: builds Meridian's Debian package (packaging/debian/build-deb.sh: from the
# `make dist` tarball) and checks it without installing it on this machine: the host's dpkg
# database and /etc are never touched. The package is unpacked with `dpkg-deb -x` into a
# scratch root; its metadata (Depends, conffiles, maintainer scripts) is read with
# `dpkg-deb -I`/`-f`/`-e`; the unpacked binary runs against the host's shared libraries and
# checks the shipped configuration (`meridian -t`); systemd-sysusers makes the account under
# the scratch root the way the postinst does; man renders the pages; lintian (when installed)
# finds no error or warning.
#
#   tests/deb_check.sh [WORKDIR]
#
# Environment: MERIDIAN_BUILD, a configured build directory to run `make dist` in (default:
# build-deb.sh configures a fresh one); MERIDIAN_DEB, check this .deb instead of building one.
# Prints one line per check and a summary line last. Exit status: 0 every check passed, 1 not.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)
work=${1:-}
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/deb_check.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
root=$work/root

passed=0
failed=0
# check NAME COMMAND...: runs COMMAND in a subshell with errexit on (not inside `if` or `||`,
# where bash would ignore it), counts it, and on failure shows the end of what it printed.
check() {
    local name=$1 rc
    shift
    set +e
    (set -e; "$@") >"$work/check.out" 2>&1
    rc=$?
    set -e
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok    $name"
    else
        failed=$((failed + 1))
        echo "FAIL  $name"
        tail -n 20 "$work/check.out" | sed 's/^/      /'
    fi
}
summary() {
    local what=$1
    echo "deb_check: $passed checks passed, $failed failed: $what; $(($(date +%s) - start)) s in all"
}
# fail MESSAGE: a check function's way of saying why it failed (status 1). Pipelines into grep
# use >/dev/null, not -q: with pipefail, a writer cut short by grep -q's early exit would fail.
fail() {
    echo "$*"
    return 1
}

# --- the package -------------------------------------------------------------------------
build_s=
if [ -n "${MERIDIAN_DEB:-}" ]; then
    deb=$MERIDIAN_DEB
else
    t0=$(date +%s)
    rc=0
    bash "$top/packaging/debian/build-deb.sh" ${MERIDIAN_BUILD:+-b "$MERIDIAN_BUILD"} \
        "$work/out" >"$work/build-deb.log" 2>&1 || rc=$?
    build_s=$(($(date +%s) - t0))
    if [ $rc -ne 0 ]; then
        failed=1
        echo "FAIL  build the package (packaging/debian/build-deb.sh)"
        tail -n 40 "$work/build-deb.log" | sed 's/^/      /'
        summary "no package"
        exit 1
    fi
    deb=$(tail -n 1 "$work/build-deb.log")
    passed=1
    echo "ok    build the package in ${build_s} s: $(basename "$deb")"
fi
[ -f "$deb" ] || { echo "deb_check: no package at $deb" >&2; exit 1; }

dpkg-deb -c "$deb" >"$work/contents"
dpkg-deb -e "$deb" "$work/control"
mkdir -p "$root"
dpkg-deb -x "$deb" "$root"
# Where the pieces must be: the unit's ExecStart, the binary's default -c (src/main.c's
# MERIDIAN_SYSCONFDIR, from --sysconfdir=/etc/meridian in debian/rules) and the README agree.
bin=usr/sbin/meridian
conf=etc/meridian/meridian.yaml
files=(
    "$bin"
    "$conf"
    lib/systemd/system/meridian.service
    usr/lib/sysusers.d/meridian.conf
    etc/logrotate.d/meridian
    usr/share/man/man8/meridian.8.gz
    usr/share/man/man5/meridian.yaml.5.gz
    usr/share/meridian/geoip/sample.mmdb
    usr/share/doc/meridian/copyright
)

# --- metadata ----------------------------------------------------------------------------
control_fields() {
    local f
    [ "$(dpkg-deb -f "$deb" Package)" = meridian ] || fail "Package: $(dpkg-deb -f "$deb" Package)"
    [ "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)" ] ||
        fail "Architecture: $(dpkg-deb -f "$deb" Architecture)"
    # The version's upstream part is configure.ac's AC_INIT.
    f=$(sed -n 's/^AC_INIT(\[meridian\], \[\([^]]*\)\].*/\1/p' "$top/configure.ac")
    case $(dpkg-deb -f "$deb" Version) in
    "$f"-*) ;;
    *) fail "Version $(dpkg-deb -f "$deb" Version) is not configure.ac's $f-N" ;;
    esac
}
check "control: Package meridian, this architecture, version from configure.ac" control_fields

depends_libraries() {
    local dep lib missing=
    dep=$(dpkg-deb -f "$deb" Depends)
    echo "Depends: $dep"
    # ${shlibs:Depends} for every library the binary links, and dh_installsysusers' own.
    for lib in libc6 libevent-2.1 libssl3 libhiredis libmaxminddb0 libnghttp2 libyaml-0 \
        libsystemd0 "systemd | systemd-standalone-sysusers"; do
        case $dep in
        *"$lib"*) ;;
        *) missing="$missing $lib" ;;
        esac
    done
    [ -z "$missing" ] || fail "missing from Depends:$missing"
}
check "Depends: the shared libraries (shlibs) and systemd-sysusers" depends_libraries

conffiles() {
    local f
    for f in /etc/meridian/meridian.yaml /etc/logrotate.d/meridian; do
        grep -qx "$f" "$work/control/conffiles" || fail "$f is not a conffile"
    done
}
check "conffiles: /etc/meridian/meridian.yaml, /etc/logrotate.d/meridian" conffiles

postinst() {
    local p=$work/control/postinst
    [ -x "$p" ] || fail "no postinst"
    grep -q 'systemd-sysusers .*meridian\.conf' "$p" || fail "postinst does not run systemd-sysusers"
    grep -q "deb-systemd-helper enable 'meridian.service'" "$p" || fail "postinst does not enable the unit"
    # Started only where systemd runs (not in a chroot, a container or an image build).
    grep -q 'if \[ -d /run/systemd/system \]' "$p" || fail "start not guarded by /run/systemd/system"
    grep -q "deb-systemd-invoke .*'meridian.service'" "$p" || fail "postinst does not start the unit"
    # The account exists before the unit starts: the sysusers lines come first.
    [ "$(grep -n 'systemd-sysusers' "$p" | head -1 | cut -d: -f1)" -lt \
        "$(grep -n 'deb-systemd-invoke' "$p" | head -1 | cut -d: -f1)" ] ||
        fail "postinst starts the unit before it makes the account"
}
check "postinst: sysusers, then enable, start only under systemd" postinst

ownership() {
    ! grep -v ' root/root ' "$work/contents" || fail "files above are not owned by root/root"
}
check "contents: every file root/root" ownership

# --- files -------------------------------------------------------------------------------
files_present() {
    local f
    for f in "${files[@]}"; do
        grep -q " \./$f\$" "$work/contents" || fail "dpkg-deb -c does not list /$f"
        [ -f "$root/$f" ] || fail "/$f is missing after dpkg-deb -x"
        [ -s "$root/$f" ] || fail "/$f is empty"
    done
    [ -x "$root/$bin" ] || fail "/$bin is not executable"
}
check "files: binary, config, unit, sysusers, logrotate, man pages, GeoIP sample" files_present

same_as_source() {
    # What the package installs is what the source ships, not a stale copy.
    cmp "$top/conf/meridian.yaml" "$root/$conf"
    cmp "$top/packaging/systemd/meridian.service" "$root/lib/systemd/system/meridian.service"
    cmp "$top/packaging/systemd/meridian.conf" "$root/usr/lib/sysusers.d/meridian.conf"
    cmp "$top/packaging/logrotate/meridian" "$root/etc/logrotate.d/meridian"
}
check "files: config, unit, sysusers and logrotate are the source tree's" same_as_source

unit_paths() {
    local unit=$root/lib/systemd/system/meridian.service exec
    exec=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit")
    [ "$exec" = "/$bin" ] || fail "ExecStart runs $exec, the package has /$bin"
    grep -q "^ExecStart=/$bin -c /$conf\$" "$unit" || fail "ExecStart does not name /$conf"
    "$root/$bin" -h | grep -F "(default /$conf)" >/dev/null || fail "the binary's default -c is not /$conf"
}
check "paths: the unit's ExecStart and -c, the binary's default -c" unit_paths

# --- the binary, on the host's libraries -------------------------------------------------
runs() {
    local libs
    libs=$(ldd "$root/$bin") || fail "ldd: $libs"
    ! grep 'not found' <<<"$libs" || fail "libraries above are not found"
    "$root/$bin" -V | grep "^meridian " >/dev/null || fail "meridian -V printed no version"
}
check "binary: links and runs (meridian -V)" runs

shipped_config() {
    "$root/$bin" -t -c "$root/$conf" | grep "configuration is valid"
}
check "meridian -t accepts the shipped /$conf" shipped_config

refuses_bad_config() {
    # The check above can fail: the same binary refuses a broken copy of the file.
    cp "$root/$conf" "$work/bad.yaml"
    echo "no_such_key: 1" >>"$work/bad.yaml"
    local out rc=0
    out=$("$root/$bin" -t -c "$work/bad.yaml" 2>&1) || rc=$?
    [ $rc -eq 1 ] || fail "meridian -t exited $rc on an unknown key: $out"
    grep "bad.yaml:[0-9]*: .*no_such_key" <<<"$out" || fail "no FILE:LINE error naming the key: $out"
}
check "meridian -t refuses a copy with an unknown key" refuses_bad_config

geoip_sample() {
    # The shipped config with its geoip section on the packaged sample database: libmaxminddb
    # opens and checks it on load, so a corrupt or wrong-schema file fails here.
    cp "$root/$conf" "$work/geo.yaml"
    printf 'geoip:\n  database: %s\n' "$root/usr/share/meridian/geoip/sample.mmdb" >>"$work/geo.yaml"
    "$root/$bin" -t -c "$work/geo.yaml" | grep "configuration is valid"
}
check "meridian -t accepts the config with the packaged GeoIP sample" geoip_sample

sysusers() {
    # What the postinst runs (systemd-sysusers --root="$DPKG_ROOT" meridian.conf), on the
    # scratch root: the account the unit's User= names.
    mkdir -p "$root/etc"
    systemd-sysusers --root="$root" meridian.conf
    grep -q '^meridian:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$' "$root/etc/passwd" ||
        fail "no meridian account: $(cat "$root/etc/passwd" 2>/dev/null)"
    grep -q '^User=meridian$' "$root/lib/systemd/system/meridian.service" || fail "User= is not meridian"
}
if command -v systemd-sysusers >/dev/null; then
    check "sysusers: the postinst's systemd-sysusers makes the meridian account" sysusers
else
    echo "skip  sysusers (no systemd-sysusers)"
fi

man_pages() {
    local page out
    for page in man8/meridian.8.gz man5/meridian.yaml.5.gz; do
        # As lintian does: any warning from groff is a failure.
        out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
            man --warnings -E UTF-8 -l -Tutf8 -Z "$root/usr/share/man/$page" 2>&1 >/dev/null)
        [ -z "$out" ] || fail "$page: $out"
        LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$root/usr/share/man/$page" 2>/dev/null |
            grep "meridian" >/dev/null || fail "$page renders empty"
    done
}
if command -v man >/dev/null; then
    check "man pages render without groff warnings" man_pages
else
    echo "skip  man pages (no man)"
fi

lintian_clean() {
    lintian --fail-on error,warning "$deb"
}
if command -v lintian >/dev/null; then
    check "lintian: no error or warning" lintian_clean
else
    echo "skip  lintian (not installed)"
fi

summary "$(basename "$deb"), $(($(stat -c %s "$deb") / 1024)) KiB${build_s:+, built in $build_s s}"
[ "$failed" -eq 0 ]
