#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite, as CI runs it: installs what is missing, builds, then runs
#   1. the cmocka unit tests, make distcheck, the Debian package's check, and the
#      black-box tests on a normal (-Werror) build,
#   2. each libFuzzer target for a short while on its corpus (clang-14),
#   3. the unit and black-box tests again on an AddressSanitizer + UndefinedBehaviorSanitizer
#      build,
#   4. at the same time as 3., the black-box tests where threads meet (below) on a
#      ThreadSanitizer build (clang-14): workers, the main thread's reloads and admin reads,
#      shared health, budget and TLS ticket keys. libevent, OpenSSL and nghttp2 are not
#      instrumented, so races inside them are not seen.
# It ends with the test runners' own summary lines. FUZZ_SECONDS (default 10) per target:
# the 30-minute runs are tests/fuzz/long_run.sh; this one replays each corpus and fuzzes briefly.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash packaging/deps.sh --test
py=/usr/bin/python3   # Debian's, which has python3-pytest and python3-h2

unit() {  # build dir
    local dir=$1 rc=0
    make -C "$dir" -s -j"$(nproc)" check >/dev/null 2>&1 || rc=$?
    grep -h -E '^\[  (PASSED|FAILED)  \]|^\[==========\] .* ran' "$dir"/tests/unit/*.log || true
    if [ $rc -ne 0 ]; then
        cat "$dir"/tests/unit/*.log
        echo "unit tests failed in $dir" >&2
        return 1
    fi
}

echo "== normal build"
CONFIGURE_FLAGS="--enable-werror" bash packaging/build.sh "$top/_build"
unit "$top/_build"
echo "== make distcheck (tarball builds, checks, installs and uninstalls)"
make -C "$top/_build" -s -j"$(nproc)" distcheck >"$top/_build/distcheck.log" 2>&1 || { tail -40 "$top/_build/distcheck.log"; exit 1; }
grep -A1 'archives ready' "$top/_build/distcheck.log" | tail -1
echo "== Debian package (built from make dist, checked in a scratch root)"
MERIDIAN_BUILD="$top/_build" bash tests/deb_check.sh
echo "== black-box tests (normal build)"
MERIDIAN_BUILD="$top/_build" $py -m pytest -q -p no:cacheprovider tests/integration

echo "== fuzzing smoke (clang-14 libFuzzer)"
CC=clang-14 CONFIGURE_FLAGS="--enable-fuzzing CC=clang-14" bash packaging/build.sh "$top/_build-fuzz"
# Two fuzzers at a time (each is one process on one core; the machine has two).
# shellcheck source=tests/fuzz/targets.sh
. tests/fuzz/targets.sh
fuzz_one() {
    local f=$1 corpus dict work
    fuzz_target_files "$f"
    work=$(mktemp -d)
    cp -r "$corpus"/. "$work"/
    if ! "$top/_build-fuzz/tests/fuzz/fuzz_$f" -max_total_time="${FUZZ_SECONDS:-10}" \
            -dict="$dict" -print_final_stats=1 -artifact_prefix="$work." "$work" \
            > "$work.log" 2>&1; then
        tail -50 "$work.log"
        for a in "$work".crash-* "$work".leak-* "$work".timeout-* "$work".oom-*; do
            [ -f "$a" ] && echo "the input, base64: $(base64 -w0 "$a" | head -c 16000)"
        done
        echo "fuzz_$f: crashed" >&2
        return 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work.log")
    echo "fuzz_$f: $runs runs in ${FUZZ_SECONDS:-10}s, no crash"
    rm -rf "$work" "$work.log"
}
set -- "${fuzz_targets[@]}"
while [ $# -gt 0 ]; do
    fuzz_one "$1" & first=$!
    second=""
    if [ $# -gt 1 ]; then fuzz_one "$2" & second=$!; fi
    wait "$first" || exit 1
    if [ -n "$second" ]; then wait "$second" || exit 1; fi
    shift $(( $# > 1 ? 2 : 1 ))
done

# Tests whose length is the wall clock of a load (budget accuracy at scale, a second reload
# storm) add minutes on the sanitizer builds and reach no code that the others do not: the
# rate_limit ones that stay cover admission, the shared local bucket, Redis links, a cluster
# failover and a phase change on reload; the h2load storm covers reloads under load on both
# transports. The normal build runs them all.
wall_clock_skip=()
for t in rate_limit.py::test_one_node_at_three_times_the_budget_admits_the_budget \
    rate_limit.py::test_three_nodes_sharing_one_redis_admit_the_budget_together \
    "rate_limit.py::test_redis_killed_open_admits_all_closed_refuses_all[open]" \
    rate_limit.py::test_redis_stopped_no_request_waits_past_the_timeout \
    rate_limit.py::test_admin_endpoints_are_never_limited \
    reload_h2.py::test_wrk_loses_nothing_over_20_reloads; do
    wall_clock_skip+=(--deselect "tests/integration/test_$t")
done

echo "== sanitizer build (ASan + UBSan)"
CONFIGURE_FLAGS="--enable-sanitizers --enable-werror" bash packaging/build.sh "$top/_build-asan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
unit "$top/_build-asan"
echo "== thread sanitizer build (TSan, clang-14)"
CONFIGURE_FLAGS="--enable-sanitizers=thread --enable-werror CC=clang-14" \
    bash packaging/build.sh "$top/_build-tsan"

# The two sanitizer passes run side by side: most of their time is spent waiting on timers
# and clients, and each has the slack of MERIDIAN_TEST_SLOWDOWN. Each gets its own half of
# the tests' port range (conftest.py) and its own temporary directory.
sanitized_pass() {  # name, port range, then env assignments and pytest arguments
    local name=$1 ports=$2 tmp
    shift 2
    local rc=0
    tmp=$(mktemp -d)
    env MERIDIAN_TEST_PORTS="$ports" MERIDIAN_TEST_SLOWDOWN=3 MERIDIAN_SANITIZED=1 "$@" \
        --basetemp="$tmp/pytest" >"$top/_build-$name/pytest.log" 2>&1 || rc=$?
    rm -rf "$tmp"
    return $rc
}

# The halves of the range conftest.py uses by default: the 12,000 ports below the kernel's
# ephemeral range (a port is drawn from LOW up to, not including, HIGH).
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
ports_high=$(( ephemeral_low > 4096 ? ephemeral_low : 32768 ))
ports_low=$(( ports_high - 12000 > 1024 ? ports_high - 12000 : 1024 ))
ports_mid=$(( (ports_low + ports_high) / 2 ))

# The HTTP/2 conformance cases run over h2c here only: over TLS they are the same frames
# through the same code once the handshake is done (the normal build runs both).
sanitized_pass asan "$ports_low-$ports_mid" MERIDIAN_BUILD="$top/_build-asan" \
    MERIDIAN_H2_TRANSPORTS=h2c $py -m pytest -q -p no:cacheprovider "${wall_clock_skip[@]}" \
    tests/integration &
asan_pid=$!

# ThreadSanitizer finds races between threads, so it runs the tests where they meet: the
# main thread's reloads, signals and admin reads of the workers' counters (lifecycle,
# reload_h2, metrics, systemd, privileges), state shared by the workers (health, the
# budget's local bucket and Redis links, TLS ticket keys, backend TLS contexts held by pools
# and health checks across reloads, GeoIP databases swapped on
# reload; TLS contexts and GeoIP databases lent from one generation to the next for DNS
# changes) and a smoke run. The protocol suites (HTTP/1 errors and rejections, HTTP/2
# conformance and attacks, client identity, proxying) run each connection on one worker
# thread, and run under ASan+UBSan; here they would add five minutes and no thread.
tsan_tests=()
for t in lifecycle reload_h2 metrics systemd privileges health rate_limit tls backend_tls geo smoke; do
    tsan_tests+=("tests/integration/test_$t.py")
done
for t in an_address_change_moves_traffic_without_a_failed_request a_dns_generation_reads_no_file \
    reload_and_stop_while_a_query_is_in_flight; do
    tsan_tests+=("tests/integration/test_dns.py::test_$t")
done
sanitized_pass tsan "$ports_mid-$ports_high" TSAN_OPTIONS=halt_on_error=1 \
    MERIDIAN_BUILD="$top/_build-tsan" $py -m pytest -q -p no:cacheprovider "${wall_clock_skip[@]}" \
    "${tsan_tests[@]}" &
tsan_pid=$!

asan_rc=0 tsan_rc=0
wait "$asan_pid" || asan_rc=$?
wait "$tsan_pid" || tsan_rc=$?
echo "== black-box tests (sanitizer build: ASan + UBSan)"
cat "$top/_build-asan/pytest.log"
echo "== black-box tests (thread sanitizer build: where threads meet)"
cat "$top/_build-tsan/pytest.log"
[ "$asan_rc" -eq 0 ] && [ "$tsan_rc" -eq 0 ]
