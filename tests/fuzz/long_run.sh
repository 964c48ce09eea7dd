#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The long fuzzing run that issue 10 asks for before a fuzzer counts as tried: each named
# target (all of them without arguments) runs alone for FUZZ_LONG_SECONDS (default 1800) on
# a copy of its committed corpus, under ASan + UBSan (the --enable-fuzzing build links both),
# with a 10 s per-input timeout and LeakSanitizer on. Afterwards the units that add coverage
# are merged into tests/fuzz/corpus/<target> (commit them), and one Markdown row per target
# goes to stdout and to $FUZZ_LOG (default _build-fuzz/long_run.md):
#   | target | seconds | executions | exec/s | coverage (edges) | features | corpus | result |
# A crash, leak or timeout stops that target; its input is kept as _build-fuzz/<kind>-<sha>.
# One target at a time: each libFuzzer process is one core, and the machine has two.
#
#   bash tests/fuzz/long_run.sh                 # every target, 30 min each
#   FUZZ_LONG_SECONDS=60 bash tests/fuzz/long_run.sh h2_session
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build="$top/_build-fuzz"
seconds=${FUZZ_LONG_SECONDS:-1800}
log=${FUZZ_LOG:-$build/long_run.md}
[ -x "$build/tests/fuzz/fuzz_h1_request" ] ||
    CC=clang-14 CONFIGURE_FLAGS="--enable-fuzzing CC=clang-14" bash packaging/build.sh "$build"
# shellcheck source=tests/fuzz/targets.sh
. tests/fuzz/targets.sh
[ $# -gt 0 ] || set -- "${fuzz_targets[@]}"

status=0
for t in "$@"; do
    fuzz_target_files "$t"   # sets corpus and dict
    work=$(mktemp -d)
    cp -r "$corpus"/. "$work"/
    out="$work.log"
    rc=0
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -dict="$dict" -print_final_stats=1 -artifact_prefix="$build/" "$work" >"$out" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out")
    last=$(grep -a -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$out" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    if [ $rc -eq 0 ]; then
        result="0 crashes, 0 leaks, 0 timeouts"
    else
        result=$(grep -m1 -oE 'ERROR: (libFuzzer: [a-z -]+|LeakSanitizer|AddressSanitizer: [a-z-]+)|runtime error: .*' "$out" || echo "exit $rc")
        cp "$out" "$build/long_run-$t.log"
        status=1
    fi
    before=$(find "$corpus" -type f | wc -l)
    "$build/tests/fuzz/fuzz_$t" -merge=1 -timeout=10 "$corpus" "$work" >/dev/null 2>&1 || true
    after=$(find "$corpus" -type f | wc -l)
    row="| fuzz_$t | $seconds | ${runs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | $before -> $after | $result |"
    echo "$row" | tee -a "$log"
    rm -rf "$work" "$out"
done
exit $status
