#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Meridian's benchmark: throughput and idle-connection memory of Meridian, HAProxy and nginx as
# one-worker reverse proxies in front of the same five origins (plain HTTP/1.1 keep-alive
# upstream), plus wrk straight at one origin as the ceiling of plain HTTP/1.1. Suites (SUITES,
# default all, in this order): h1 (wrk, plain HTTP/1.1 keep-alive), geo (the same with a
# different X-Forwarded-For per request, Meridian with GeoIP routing on a database of a million
# networks against the same five regions without it, every region spread over the same five
# origins, for two client populations), budget (the h1 cell through Meridian with a request
# budget in Redis far above the load, against the same without rate_limit; runs its own
# redis-server and counts its commands per cell), upstream-tls (the h1 cell of each proxy with
# clear-text upstream connections against a second process of the same proxy speaking TLS to
# the origins' TLS listeners, verifying their certificate against a CA made in the results
# directory, SNI backend.test; counts the upstream connections the origins accepted during each
# cell), idle (RSS per idle plain connection), tls (wrk, HTTP/1.1 over TLS 1.3), h2 (h2load,
# HTTP/2 over TLS), handshake (full TLS 1.3 handshakes/s, openssl s_time -new, no resumption),
# idle-tls (RSS per idle TLS connection); TLS uses a throwaway ECDSA P-256 certificate made in
# the results directory.
# Follows shared/BENCHMARKING.md: proxy alone on cpu1, clients and origins on cpu0, targets
# interleaved, repeated, medians with min-max, CPU shares measured, ratios to HAProxy from the
# same run. Builds nothing; see bench/README.md.
#
#   bench/run.sh [--quick]
#
# Environment: MERIDIAN (_build/src/meridian), ORIGIN (_build/tests/tools/origin), SUITES ("h1 geo
# budget upstream-tls idle tls h2 handshake idle-tls"), REPS (3), DURATION (10 s), WARMUP (2 s;
# TLS_WARMUP 1 s for tls, h2, handshake), CONNS (64, wrk), H2_CONNS (32), H2_STREAMS (10),
# HS_CLIENTS (2 s_time processes at once), IDLE_CONNS (10000; capped at 9900 by the 20,000 open
# files), TARGETS ("direct haproxy nginx meridian"), GEO_NETWORKS (1000000 networks in the geo
# suite's database, built once into bench/results/geo-db-HASH/), GEO_POPULATIONS ("0 10000": the
# client populations of the geo cells, each its own set of cells; 0 = all ~100k client
# addresses, N = only the first N), GEO_PERF (1: perf profiles of GEO_PERF_TARGETS
# ("meridian-geo-on") per population after the geo cells, GEO_PERF_SECONDS 5 s each).
# --quick: REPS=1 DURATION=3. A missing Meridian binary skips its rows; a Meridian that does
# not accept the TLS listener (`meridian -t`) has only its TLS cells skipped; no redis-server
# (package redis-server) skips the budget suite; an origin without TLS listeners (-L) skips the
# upstream-tls suite, and a Meridian that does not accept a region's `tls` only its TLS-upstream
# cell. This machine is shared: a cell during which other processes used more than OTHER_MAX
# (10) % CPU is recorded as not kept and run again, up to RETRIES (2) times, after waiting up to
# QUIET_WAIT (60) s for the machine to calm down (also done before starting).
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true # '&' in ${x//a/b} replacements stays '&'

usage() {
    sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
MERIDIAN=${MERIDIAN:-_build/src/meridian}
ORIGIN=${ORIGIN:-_build/tests/tools/origin}
REPS=${REPS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
TLS_WARMUP=${TLS_WARMUP:-1}
CONNS=${CONNS:-64}
H2_CONNS=${H2_CONNS:-32}
H2_STREAMS=${H2_STREAMS:-10}
HS_CLIENTS=${HS_CLIENTS:-2}
IDLE_CONNS=${IDLE_CONNS:-10000}
TARGETS=${TARGETS:-direct haproxy nginx meridian}
SUITES=${SUITES:-h1 geo budget upstream-tls idle tls h2 handshake idle-tls}
GEO_NETWORKS=${GEO_NETWORKS:-1000000}
# the client populations of the geo cells: 0 = every address of the list, N = the first N
# (GEO_CLIENTS_MAX, the older single-population setting, is taken when GEO_POPULATIONS is unset)
GEO_POPULATIONS=${GEO_POPULATIONS:-${GEO_CLIENTS_MAX:-0 10000}}
GEO_PERF_TARGETS=${GEO_PERF_TARGETS:-meridian-geo-on}
GEO_PERF=${GEO_PERF:-1}
GEO_PERF_SECONDS=${GEO_PERF_SECONDS:-5}
QUIET_WAIT=${QUIET_WAIT:-60}
OTHER_MAX=${OTHER_MAX:-10}
RETRIES=${RETRIES:-2}
if [ "$QUICK" = 1 ]; then
    REPS=1
    DURATION=3
fi
PY=/usr/bin/python3
NOFILE=20000
CLK_TCK=$(getconf CLK_TCK)


ALL_SUITES="h1 geo budget upstream-tls idle tls h2 handshake idle-tls"
for s in $SUITES; do
    case " $ALL_SUITES " in *" $s "*) ;; *) die "unknown suite '$s' (one of: $ALL_SUITES)" ;; esac
done
if [ "$IDLE_CONNS" -le 0 ]; then # IDLE_CONNS=0 skips both idle suites
    kept_suites=""
    for s in $SUITES; do
        case "$s" in idle*) ;; *) kept_suites+="$s " ;; esac
    done
    SUITES=$kept_suites
fi
has_suite() { case " $SUITES " in *" $1 "*) return 0 ;; esac; return 1; }
TLS=0 # a TLS listener is needed
for s in tls h2 handshake idle-tls; do
    if has_suite "$s"; then TLS=1; fi
done

tools="taskset ss curl $PY"
has_suite h1 && tools+=" wrk"
has_suite tls && tools+=" wrk"
has_suite geo && tools+=" wrk perl sha256sum"
has_suite budget && tools+=" wrk"
has_suite upstream-tls && tools+=" wrk openssl"
has_suite h2 && tools+=" h2load"
[ "$TLS" = 0 ] || tools+=" openssl"
for tool in $tools; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
if has_suite geo; then
    perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null ||
        die "the geo suite builds its database with MaxMind::DB::Writer::Tree: install libmaxmind-db-writer-perl"
fi
[ -x "$ORIGIN" ] || die "no origin binary at $ORIGIN: build it first (make tests/tools/origin)"
# every process started from here inherits this: the idle test needs N sockets in the client
# and N plus upstream connections in the proxy
ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
# HAProxy 2.6 budgets 2 descriptors per maxconn (plus ~14) and, when that exceeds its open-file
# limit, stays up without listening. Its maxconn must exceed N, so N is capped at what it can
# hold (9,900 with 20,000 files) for every proxy alike.
HAPROXY_MAXCONN=$(((NOFILE - 100) / 2))
if [ "$IDLE_CONNS" -gt $((HAPROXY_MAXCONN - 50)) ]; then
    log "IDLE_CONNS=$IDLE_CONNS does not fit in $NOFILE open files; using $((HAPROXY_MAXCONN - 50))"
    IDLE_CONNS=$((HAPROXY_MAXCONN - 50))
fi

STAMP=$(date +%Y%m%d-%H%M%S)
RUN=bench/results/$STAMP
mkdir -p "$RUN/conf" "$RUN/logs" "$RUN/wrk" "$RUN/nginx/tmp"
RUN_ABS=$PWD/$RUN
exec 2> >(tee -a "$RUN/run.log" >&2) # progress lines, kept with the results

# A throwaway ECDSA P-256 certificate for bench.test (HAProxy wants cert and key in one PEM)
CERT=$RUN_ABS/tls/cert.pem
KEY=$RUN_ABS/tls/key.pem
COMBINED=$RUN_ABS/tls/combined.pem
if [ "$TLS" = 1 ]; then
    mkdir -p "$RUN/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench.test \
        -addext subjectAltName=DNS:bench.test -days 2 -keyout "$KEY" -out "$CERT" \
        >"$RUN/logs/openssl-req.log" 2>&1 || die "could not make a certificate: $(cat "$RUN/logs/openssl-req.log")"
    cat "$CERT" "$KEY" >"$COMBINED"
    chmod 600 "$KEY" "$COMBINED"
fi

# The upstream-tls suite's own CA (ECDSA P-256, CA:TRUE) and the origins' certificate it signs
# (ECDSA P-256, SAN DNS:backend.test, serverAuth), in tls/upstream/: the proxies trust only
# ca.pem and check the name backend.test against the certificate.
UTLS_DIR=$RUN_ABS/tls/upstream
UTLS_CA=$UTLS_DIR/ca.pem
UTLS_CERT=$UTLS_DIR/origin.pem
UTLS_KEY=$UTLS_DIR/origin.key
UTLS_SKIP="" # why the whole upstream-tls suite is skipped
printf 'target\treason\n' >"$RUN/utls_skipped.tsv"
if has_suite upstream-tls; then
    mkdir -p "$UTLS_DIR"
    printf 'subjectAltName=DNS:backend.test\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
        >"$UTLS_DIR/origin.ext"
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=Meridian bench upstream CA" -addext basicConstraints=critical,CA:TRUE \
            -addext keyUsage=critical,keyCertSign,cRLSign -days 2 -keyout "$UTLS_DIR/ca.key" \
            -out "$UTLS_CA" &&
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=backend.test \
                -keyout "$UTLS_KEY" -out "$UTLS_DIR/origin.csr" &&
            openssl x509 -req -in "$UTLS_DIR/origin.csr" -CA "$UTLS_CA" -CAkey "$UTLS_DIR/ca.key" \
                -set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$UTLS_DIR/origin.ext" \
                -out "$UTLS_CERT" &&
            openssl verify -CAfile "$UTLS_CA" -verify_hostname backend.test "$UTLS_CERT"
    } >"$RUN/logs/openssl-upstream.log" 2>&1 ||
        die "could not make the upstream certificates: $(tail -n 3 "$RUN/logs/openssl-upstream.log")"
    chmod 600 "$UTLS_DIR/ca.key" "$UTLS_KEY"
fi

# The geo suite's large GeoIP database and its client addresses, built once per version of the
# generator and size (about 40 s and 300 MB of memory for a million networks) and kept in
# bench/results/geo-db-HASH/ for the next runs
GEO_DB=""
GEO_CLIENTS=""
if has_suite geo; then
    GEO_CACHE=bench/results/geo-db-$({ cat bench/gen_large_mmdb.pl; echo "$GEO_NETWORKS"; } | sha256sum | cut -c1-12)
    GEO_DB=$PWD/$GEO_CACHE/large.mmdb
    GEO_CLIENTS=$PWD/$GEO_CACHE/clients.txt
    if [ -s "$GEO_DB" ] && [ -s "$GEO_CLIENTS" ] && [ -s "$GEO_CLIENTS.regions" ]; then
        log "geo: database from the cache: $GEO_CACHE"
    else
        log "geo: building a database of $GEO_NETWORKS networks in $GEO_CACHE (about 40 s per million)"
        mkdir -p "$GEO_CACHE"
        perl bench/gen_large_mmdb.pl "$GEO_DB" "$GEO_CLIENTS" "$GEO_NETWORKS" 2>"$GEO_CACHE/build.log" ||
            die "bench/gen_large_mmdb.pl failed: $(tail -n 3 "$GEO_CACHE/build.log")"
    fi
    cp "$GEO_CACHE/build.log" "$RUN/logs/geo-db.log"
    tail -n 1 "$GEO_CACHE/build.log" | sed 's/^/    /' >&2
    # the populations, as the number of distinct addresses each one sends (no duplicates)
    GEO_N_ALL=$(grep -c . "$GEO_CLIENTS")
    GEO_POP_SIZES=()
    for p in $GEO_POPULATIONS; do
        [[ "$p" =~ ^[0-9]+$ ]] || die "GEO_POPULATIONS: '$p' is not a number of clients (0: all)"
        [ "$p" -gt 0 ] && [ "$p" -lt "$GEO_N_ALL" ] || p=$GEO_N_ALL
        case " ${GEO_POP_SIZES[*]} " in *" $p "*) ;; *) GEO_POP_SIZES+=("$p") ;; esac
    done
    [ ${#GEO_POP_SIZES[@]} -gt 0 ] || die "GEO_POPULATIONS is empty"
    log "geo: client populations: ${GEO_POP_SIZES[*]} distinct addresses (of $GEO_N_ALL)"
fi

# ---- processes: everything started is stopped by PID on exit ----------------------------------

PIDS=()     # everything to stop, children or not (nginx's worker is its master's child)
CHILDREN=() # our own background children, to reap


cleanup() {
    local pid i any
    trap - EXIT INT TERM
    [ ${#PIDS[@]} -gt 0 ] || return 0
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for i in $(seq 50); do
        any=0
        for pid in "${PIDS[@]}"; do
            is_alive "$pid" && any=1
        done
        [ $any = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do
        is_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    done
    # not a bare `wait`: it would also wait for the tee that logs this very script
    for pid in "${CHILDREN[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# Replaces @KEY@ by VALUE for each KEY=VALUE argument. Without a TLS suite (TLS=0), drops the
# template's lines from "# tls-begin" to "# tls-end". The upstream-tls suite's proxies are
# rendered with RENDER_UPSTREAM=tls: their templates' "upstream-tls" parts (TLS to the origins)
# are kept, the "upstream-plain" parts and the TLS listener dropped; otherwise the
# "upstream-tls" parts are dropped.
RENDER_UPSTREAM=plain
render() {
    local tpl=$1 out=$2 text kv drop
    shift 2
    text=$(<"$tpl")
    for kv in "$@"; do
        text=${text//@${kv%%=*}@/${kv#*=}}
    done
    local m='^[[:space:]]*# upstream' # the upstream markers: lines of their own
    if [ "$RENDER_UPSTREAM" = tls ]; then
        drop="/# tls-begin/,/# tls-end/d; /$m-plain-begin\$/,/$m-plain-end\$/d; /$m-tls-\\(begin\\|end\\)\$/d"
    else
        drop="/$m-tls-begin\$/,/$m-tls-end\$/d; /$m-plain-\\(begin\\|end\\)\$/d"
        [ "$TLS" = 1 ] || drop+='; /# tls-begin/,/# tls-end/d'
    fi
    printf '%s\n' "$text" | sed "$drop" >"$out"
}

pid_ticks() { # utime + stime of one process (all its threads), in clock ticks
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    st=${st##*) }
    set -- $st
    echo $((${12} + ${13}))
}

ticks() { # summed over the PIDs given
    local pid sum=0
    for pid in "$@"; do
        sum=$((sum + $(pid_ticks "$pid")))
    done
    echo "$sum"
}

machine_busy_ticks() { # all CPUs, all processes: everything but idle and iowait
    local cpu user nice sys idle iowait irq softirq steal rest
    read -r cpu user nice sys idle iowait irq softirq steal rest </proc/stat
    echo $((user + nice + sys + irq + softirq + steal))
}

descendants() { # PID and every process below it
    local pid=$1 child
    echo "$pid"
    for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
        descendants "$child"
    done
}

# ---- is the machine quiet? ------------------------------------------------------------------

busy_pct() { # CPU busy share of the whole machine over 2 s, in % of one CPU
    local b0
    b0=$(machine_busy_ticks)
    sleep 2
    awk -v d=$(($(machine_busy_ticks) - b0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", d / hz / 2 * 100 }'
}
wait_quiet() { # sets BUSY to the machine's busy % once below 10 %, or after QUIET_WAIT s
    local waited=0
    BUSY=$(busy_pct)
    while [ "$BUSY" -gt 10 ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
        [ "$waited" = 0 ] && log "machine ${BUSY}% busy; waiting up to ${QUIET_WAIT}s for it to calm down"
        sleep 8
        waited=$((waited + 10))
        BUSY=$(busy_pct)
    done
}
wait_quiet
BUSY_BEFORE=$BUSY
if [ "$BUSY_BEFORE" -gt 10 ]; then
    log "warning: the machine is already ${BUSY_BEFORE}% busy (of $(nproc) CPUs x 100%) before we start:"
    ps -eo pcpu=,pid=,comm= --sort=-pcpu | head -n 3 | sed 's/^/    /' >&2
fi

# ---- origins ------------------------------------------------------------------------------

utls_skip() {
    log "upstream-tls: skipping $1: $2"
    printf '%s\t%s\n' "$1" "$2" >>"$RUN/utls_skipped.tsv"
}

# The upstream-tls suite needs the origins' TLS listeners (origin -L ADDR:PORT -c CERT -k KEY,
# which prints `ready NAME ADDR:PORT tls`). An origin built before them is found out by a probe
# (started, waited for, stopped by PID); then the suite is skipped and the origins run as usual.
ORIGIN_TLS_ARGS=()
if has_suite upstream-tls; then
    taskset -c 0 "$ORIGIN" -q -n probe -L 127.0.0.1:0 -c "$UTLS_CERT" -k "$UTLS_KEY" \
        >"$RUN/logs/origin-probe.out" 2>"$RUN/logs/origin-probe.err" &
    probe=$!
    PIDS+=("$probe")
    CHILDREN+=("$probe")
    for try in $(seq 50); do
        grep -q '^ready .* tls$' "$RUN/logs/origin-probe.out" && break
        is_alive "$probe" || break
        sleep 0.1
    done
    if grep -q '^ready .* tls$' "$RUN/logs/origin-probe.out"; then
        ORIGIN_TLS_ARGS=(-L 127.0.0.1:0 -c "$UTLS_CERT" -k "$UTLS_KEY")
    else
        UTLS_SKIP="$ORIGIN has no TLS listener (-L ADDR:PORT -c CERT -k KEY): $(grep -v '^ *$' "$RUN/logs/origin-probe.err" | head -n 1)"
        utls_skip upstream-tls "$UTLS_SKIP"
    fi
    kill -TERM "$probe" 2>/dev/null || true
    wait "$probe" 2>/dev/null || true
fi

# Five origins, each with one plain listener and, for the upstream-tls suite, one TLS listener
# in the same process (so that the origins' CPU is counted alike in both of its cells)
ORIGIN_PIDS=()
ORIGIN_PORTS=()
ORIGIN_TLS_PORTS=()
for i in 1 2 3 4 5; do
    taskset -c 0 "$ORIGIN" -q -n "region-$i" -l 127.0.0.1:0 "${ORIGIN_TLS_ARGS[@]}" \
        >"$RUN/logs/origin-$i.out" 2>"$RUN/logs/origin-$i.err" &
    PIDS+=($!)
    CHILDREN+=($!)
    ORIGIN_PIDS+=($!)
done
for i in 0 1 2 3 4; do
    out=$RUN/logs/origin-$((i + 1)).out
    for try in $(seq 50); do
        [ "$(grep -c '^ready ' "$out")" -gt "$((${#ORIGIN_TLS_ARGS[@]} > 0))" ] && break
        sleep 0.1
    done
    line=$(grep '^ready ' "$out" | grep -v ' tls$' | head -n 1) ||
        die "origin $((i + 1)) did not start: $(cat "$RUN/logs/origin-$((i + 1)).err")"
    ORIGIN_PORTS+=("${line##*:}")
    if [ ${#ORIGIN_TLS_ARGS[@]} -gt 0 ]; then
        line=$(grep '^ready .* tls$' "$out" | head -n 1) ||
            die "origin $((i + 1)) did not open its TLS listener: $(cat "$RUN/logs/origin-$((i + 1)).err")"
        line=${line% tls}
        ORIGIN_TLS_PORTS+=("${line##*:}")
    fi
done
log "origins on ports ${ORIGIN_PORTS[*]}${ORIGIN_TLS_PORTS[*]:+; TLS on ${ORIGIN_TLS_PORTS[*]}}"

# The budget suite's Redis: a throwaway redis-server on a free loopback port, on cpu0 with the
# origins (its CPU is counted with theirs), no persistence. Without it, the suite is skipped.
REDIS_PORT=""
BUDGET_SKIP="" # why the whole budget suite is skipped
printf 'target\treason\n' >"$RUN/budget_skipped.tsv"
if has_suite budget; then
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        BUDGET_SKIP="no redis-server or redis-cli (package redis-server)"
    else
        pick_port
        REDIS_PORT=$PORT
        mkdir -p "$RUN/redis"
        taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --dir "$RUN_ABS/redis" >"$RUN/logs/redis.log" 2>&1 &
        PIDS+=($!)
        CHILDREN+=($!)
        REDIS_PID=$!
        for try in $(seq 50); do
            [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
            sleep 0.1
        done
        if [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
            ORIGIN_PIDS+=("$REDIS_PID")
            log "redis-server on port $REDIS_PORT (pid $REDIS_PID)"
        else
            BUDGET_SKIP="redis-server did not answer PING on port $REDIS_PORT; see $RUN/logs/redis.log"
        fi
    fi
    if [ -n "$BUDGET_SKIP" ]; then
        log "budget: skipping the suite: $BUDGET_SKIP"
        printf 'redis-server\t%s\n' "$BUDGET_SKIP" >>"$RUN/budget_skipped.tsv"
    fi
fi

# ---- proxies -----------------------------------------------------------------------------

declare -A TPORT TPIDS TLS_PORT
declare -A TLS_OK # target -> 1 when its TLS listener answers, and H2_OK when it speaks h2
declare -A H2_OK
declare -A NO_TLS    # target -> 1 when all its TLS cells are skipped
declare -A SKIP_CELL # "suite/target" -> 1 when that suite's cells of the target are skipped
SKIPPED=()
printf 'target\treason\n' >"$RUN/skipped.tsv"
printf 'suite\ttarget\treason\n' >"$RUN/tls_skipped.tsv"

skip() {
    log "skipping $1: $2"
    SKIPPED+=("$1")
    printf '%s\t%s\n' "$1" "$2" >>"$RUN/skipped.tsv"
}
tls_skip() { # target reason [suites]: skips the target's TLS cells (all of them by default)
    local s
    [ -n "${3:-}" ] || NO_TLS[$1]=1
    log "skipping ${3:-the TLS} cells of $1: $2"
    for s in ${3:-tls h2 handshake idle-tls}; do
        SKIP_CELL[$s/$1]=1
        has_suite "$s" && printf '%s\t%s\t%s\n' "$s" "$1" "$2" >>"$RUN/tls_skipped.tsv"
    done
    return 0
}

# Checks the TLS listener: HTTP/1.1 and (ALPN) h2 over TLS, and the one-request-per-connection
# HTTP/1.0 exchange of the handshake test. Sets TLS_OK and H2_OK.
tls_ready() {
    local t=$1 port=${TLS_PORT[$1]} try got
    for try in $(seq 20); do
        got=$(curl -sk -o /dev/null -m 2 -w '%{http_code} %{http_version}' --http1.1 "https://127.0.0.1:$port/" || true)
        [ "$got" = "200 1.1" ] && break
        sleep 0.1
    done
    if [ "$got" != "200 1.1" ]; then
        tls_skip "$t" "no HTTP/1.1 200 over TLS on port $port (got '$got'); see $RUN/logs/$t.log"
        return
    fi
    # exactly what the handshake test's s_time sends: no ALPN, GET / HTTP/1.0, no Host
    got=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 openssl s_client -connect "127.0.0.1:$port" \
        -quiet -tls1_3 -no-CAfile -no-CApath -no-CAstore 2>/dev/null | head -n 1 | tr -d '\r' || true)
    case "$got" in
    "HTTP/1."[01]" 200 "*) ;;
    *) tls_skip "$t" "no 200 to an HTTP/1.0 request over TLS without ALPN on port $port (got '$got')" handshake ;;
    esac
    TLS_OK[$t]=1
    got=$(curl -sk -o /dev/null -m 2 -w '%{http_code} %{http_version}' --http2 "https://127.0.0.1:$port/" || true)
    if [ "$got" = "200 2" ]; then
        H2_OK[$t]=1
    else
        tls_skip "$t" "no HTTP/2 200 over TLS with ALPN h2 on port $port (got '$got')" h2
    fi
}

# Waits until the proxy answers 200, then checks that it spreads requests over all five.
wait_ready() {
    local target=$1 pid=$2 port=$3 try code seen
    for try in $(seq 100); do
        is_alive "$pid" || return 1
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/" || true)
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    [ "$code" = 200 ] || return 1
    seen=$(for try in $(seq 20); do
        curl -s -m 2 -D - -o /dev/null "http://127.0.0.1:$port/" | tr -d '\r' |
            sed -n 's/^[Xx]-[Oo]rigin: //p'
    done | sort -u | wc -l)
    [ "$seen" = 5 ] || log "warning: $target reached $seen of 5 origins in 20 requests"
    return 0
}

start_haproxy() {
    local servers="" i
    for i in 0 1 2 3 4; do
        servers+="    server o$((i + 1)) 127.0.0.1:${ORIGIN_PORTS[i]}"$'\n'
    done
    pick_port
    TPORT[haproxy]=$PORT
    pick_port
    TLS_PORT[haproxy]=$PORT
    render bench/haproxy.cfg.in "$RUN/conf/haproxy.cfg" PORT="${TPORT[haproxy]}" \
        TLS_PORT="${TLS_PORT[haproxy]}" COMBINED="$COMBINED" SOCK="$RUN_ABS/haproxy.sock" \
        SERVERS="${servers%$'\n'}" MAXCONN="$HAPROXY_MAXCONN" NOFILE="$NOFILE"
    taskset -c 1 haproxy -f "$RUN/conf/haproxy.cfg" >"$RUN/logs/haproxy.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPIDS[haproxy]=$!
}

start_nginx() {
    local servers="" i
    for i in 0 1 2 3 4; do
        servers+="        server 127.0.0.1:${ORIGIN_PORTS[i]};"$'\n'
    done
    pick_port
    TPORT[nginx]=$PORT
    pick_port
    TLS_PORT[nginx]=$PORT
    render bench/nginx.conf.in "$RUN/conf/nginx.conf" PORT="${TPORT[nginx]}" \
        TLS_PORT="${TLS_PORT[nginx]}" CERT="$CERT" KEY="$KEY" SERVERS="${servers%$'\n'}" \
        DIR="$RUN_ABS/nginx" NOFILE="$NOFILE" WORKER_CONNECTIONS=$((2 * IDLE_CONNS + 200 < NOFILE ? 2 * IDLE_CONNS + 200 : NOFILE))
    taskset -c 1 nginx -c "$RUN_ABS/conf/nginx.conf" -p "$RUN_ABS/nginx" \
        >"$RUN/logs/nginx.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPIDS[nginx]=$!
}

start_meridian() {
    local backends="" i
    for i in 0 1 2 3 4; do
        backends+="\"127.0.0.1:${ORIGIN_PORTS[i]}\", "
    done
    pick_port
    TPORT[meridian]=$PORT
    pick_port
    TLS_PORT[meridian]=$PORT
    pick_port
    MERIDIAN_ADMIN_PORT=$PORT
    render bench/meridian.yaml.in "$RUN/conf/meridian-with-tls.yaml" PORT="${TPORT[meridian]}" \
        TLS_PORT="${TLS_PORT[meridian]}" ADMIN_PORT="$MERIDIAN_ADMIN_PORT" CERT="$CERT" \
        KEY="$KEY" BACKENDS="${backends%, }"
    # Meridian's TLS listener is recent: when this binary does not accept it, run Meridian
    # without it (its plain cells still count) and skip its TLS cells
    if [ "$TLS" = 0 ] ||
        "$MERIDIAN" -t -c "$RUN/conf/meridian-with-tls.yaml" >"$RUN/logs/meridian-check.log" 2>&1; then
        mv "$RUN/conf/meridian-with-tls.yaml" "$RUN/conf/meridian.yaml"
    else
        tls_skip meridian "its TLS listener is not accepted by \`meridian -t\` yet ($(grep -v '^ *$' "$RUN/logs/meridian-check.log" | tail -n 1))"
        sed '/# tls-begin/,/# tls-end/d' "$RUN/conf/meridian-with-tls.yaml" >"$RUN/conf/meridian.yaml"
    fi
    taskset -c 1 "$MERIDIAN" -c "$RUN/conf/meridian.yaml" >"$RUN/logs/meridian.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPIDS[meridian]=$!
}

ACTIVE=()
for t in $TARGETS; do
    case "$t" in
    direct)
        TPORT[direct]=${ORIGIN_PORTS[0]}
        TPIDS[direct]=""
        ACTIVE+=(direct)
        continue
        ;;
    haproxy | nginx)
        command -v "$t" >/dev/null || { skip "$t" "not installed"; continue; }
        ;;
    meridian)
        [ -x "$MERIDIAN" ] || { skip meridian "no binary at $MERIDIAN (build it first)"; continue; }
        ;;
    *) die "unknown target '$t' (direct, haproxy, nginx, meridian)" ;;
    esac
    "start_$t"
    if wait_ready "$t" "${TPIDS[$t]}" "${TPORT[$t]}"; then
        # the processes to charge CPU and memory to: e.g. nginx's master and its worker
        TPIDS[$t]=$(descendants "${TPIDS[$t]}" | tr '\n' ' ')
        for pid in ${TPIDS[$t]}; do
            case " ${PIDS[*]} " in *" $pid "*) ;; *) PIDS+=("$pid") ;; esac
        done
        ACTIVE+=("$t")
        log "$t ready on port ${TPORT[$t]} (pids ${TPIDS[$t]})"
        if [ "$TLS" = 1 ] && [ -z "${NO_TLS[$t]:-}" ]; then
            tls_ready "$t"
            [ -z "${TLS_OK[$t]:-}" ] || log "$t: TLS on port ${TLS_PORT[$t]}$([ -n "${H2_OK[$t]:-}" ] && echo ', with h2')"
        fi
    else
        skip "$t" "did not answer 200 on port ${TPORT[$t]}; see $RUN/logs/$t.log"
        tail -n 5 "$RUN/logs/$t.log" >&2 || true
    fi
done
[ ${#ACTIVE[@]} -gt 0 ] || die "nothing to measure"

# ---- the geo suite's targets -----------------------------------------------------------------

# HAProxy and nginx as above (round-robin over one pool of five origins, ignoring
# X-Forwarded-For but for appending to it), and two more Meridians made from
# meridian-geo.yaml.in: five regions whose backends are all the same five origins
# (round-robin), with GeoIP routing (on) or without (off). Whatever the region, a request is
# spread over the five origins the same way, so on and off differ only by the routing work.
GEO_ACTIVE=()
printf 'target\treason\n' >"$RUN/geo_skipped.tsv"
printf 'target\tchecked\tmisrouted\tdetail\n' >"$RUN/geo_checks.tsv"
geo_skip() {
    log "geo: skipping $1: $2"
    printf '%s\t%s\n' "$1" "$2" >>"$RUN/geo_skipped.tsv"
}

start_meridian_geo() { # on|off; returns 1 when meridian -t rejects the configuration
    local t=meridian-geo-$1 backends="" i
    for i in 0 1 2 3 4; do
        backends+="\"127.0.0.1:${ORIGIN_PORTS[i]}\", "
    done
    pick_port
    TPORT[$t]=$PORT
    render bench/meridian-geo.yaml.in "$RUN/conf/$t.yaml" PORT="$PORT" GEOIP_DB="$GEO_DB" \
        BACKENDS="${backends%, }"
    [ "$1" = on ] || sed -i '/# geo-begin/,/# geo-end/d' "$RUN/conf/$t.yaml"
    if ! "$MERIDIAN" -t -c "$RUN/conf/$t.yaml" >"$RUN/logs/$t-check.log" 2>&1; then
        geo_skip "$t" "\`meridian -t\` rejects $RUN/conf/$t.yaml ($(grep -v '^ *$' "$RUN/logs/$t-check.log" | tail -n 1))"
        return 1
    fi
    taskset -c 1 "$MERIDIAN" -c "$RUN/conf/$t.yaml" >"$RUN/logs/$t.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPIDS[$t]=$!
}

# Sends the generator's sample clients (four per region) through X-Forwarded-For to the
# origin's /headers, which answers with the request head it received, and reads the
# X-Client-Region that Meridian added: with routing on, the client's region; off, eu (the
# default) for all. Then sends ten requests of one non-default client (ap) and checks that they
# reach all five origins: the spread of a region that is not the default one. A misrouted
# request or a narrower spread is reported, not fixed: the cells still run.
geo_check() {
    local t=$1 ip region want got n=0 bad=0 detail="" ap_ip="" seen
    while read -r ip region; do
        case $region in eu | us-east | us-west | ap | sa) ;; *) continue ;; esac
        want=$region
        [ "$t" = meridian-geo-on ] || want=eu
        got=$(curl -s -m 2 -H "X-Forwarded-For: $ip" "http://127.0.0.1:${TPORT[$t]}/headers" |
            tr -d '\r' | sed -n 's/^[Xx]-[Cc]lient-[Rr]egion: //p' | head -n 1 || true)
        n=$((n + 1))
        if [ "$got" != "$want" ]; then
            bad=$((bad + 1))
            [ $bad -gt 3 ] || detail+="$ip ($region) -> ${got:-no X-Client-Region}, expected $want; "
        fi
        [ "$region" != ap ] || [ -n "$ap_ip" ] || ap_ip=$ip
    done <"$GEO_CLIENTS.regions"
    if [ -n "$ap_ip" ]; then
        seen=$(for i in $(seq 10); do
            curl -s -m 2 -D - -o /dev/null -H "X-Forwarded-For: $ap_ip" "http://127.0.0.1:${TPORT[$t]}/" |
                tr -d '\r' | sed -n 's/^[Xx]-[Oo]rigin: //p' || true
        done | sort -u | wc -l)
        n=$((n + 1))
        if [ "$seen" != 5 ]; then
            bad=$((bad + 1))
            detail+="the ap client $ap_ip reached $seen of 5 origins in 10 requests; "
        fi
    fi
    printf '%s\t%s\t%s\t%s\n' "$t" "$n" "$bad" "${detail%; }" >>"$RUN/geo_checks.tsv"
    if [ $bad -gt 0 ]; then
        log "geo: warning: $t failed $bad of $n routing checks: ${detail%; }"
    else
        log "geo: $t passed all $n routing checks (20 sample clients' X-Client-Region at the origin, one region's spread)"
    fi
}

if has_suite geo; then
    for t in haproxy nginx; do
        case " ${ACTIVE[*]} " in *" $t "*) GEO_ACTIVE+=("$t") ;; esac
    done
    case " $TARGETS " in
    *" meridian "*)
        if [ -x "$MERIDIAN" ]; then
            for v in off on; do
                t=meridian-geo-$v
                start_meridian_geo "$v" || continue
                # the same spread check as the others: 20 requests without X-Forwarded-For
                # (the default region; for "on", 127.0.0.1 has no location) reach all five
                if wait_ready "$t" "${TPIDS[$t]}" "${TPORT[$t]}"; then
                    for pid in $(descendants "${TPIDS[$t]}"); do
                        case " ${PIDS[*]} " in *" $pid "*) ;; *) PIDS+=("$pid") ;; esac
                    done
                    TPIDS[$t]=$(descendants "${TPIDS[$t]}" | tr '\n' ' ')
                    log "$t ready on port ${TPORT[$t]} (pids ${TPIDS[$t]})"
                    geo_check "$t"
                    GEO_ACTIVE+=("$t")
                else
                    geo_skip "$t" "did not answer 200 on port ${TPORT[$t]}; see $RUN/logs/$t.log"
                    tail -n 5 "$RUN/logs/$t.log" >&2 || true
                fi
            done
        else
            geo_skip meridian-geo "no binary at $MERIDIAN (build it first)"
        fi
        ;;
    esac
    [ ${#GEO_ACTIVE[@]} -gt 0 ] || log "geo: nothing to measure"
fi

# ---- the budget suite's targets --------------------------------------------------------------

# HAProxy and nginx as above, and two more Meridians made from meridian-budget.yaml.in: the
# plain bench Meridian (one region of the five origins, round-robin), with a rate_limit section
# whose budget (10 million req/s) is far above any load here, kept in the suite's redis-server
# (on), or without it (off): on and off differ only by the rate_limit work.
BUDGET_ACTIVE=()
declare -A BUDGET_ADMIN # target -> its admin port
printf 'target\tchecked\tfailed\tdetail\n' >"$RUN/budget_checks.tsv"
budget_skip() {
    log "budget: skipping $1: $2"
    printf '%s\t%s\n' "$1" "$2" >>"$RUN/budget_skipped.tsv"
}

start_meridian_budget() { # on|off; returns 1 when meridian -t rejects the configuration
    local t=meridian-budget-$1 backends="" i
    for i in 0 1 2 3 4; do
        backends+="\"127.0.0.1:${ORIGIN_PORTS[i]}\", "
    done
    pick_port
    TPORT[$t]=$PORT
    pick_port
    BUDGET_ADMIN[$t]=$PORT
    render bench/meridian-budget.yaml.in "$RUN/conf/$t.yaml" PORT="${TPORT[$t]}" \
        ADMIN_PORT="${BUDGET_ADMIN[$t]}" REDIS_PORT="$REDIS_PORT" BACKENDS="${backends%, }"
    [ "$1" = on ] || sed -i '/# budget-begin/,/# budget-end/d' "$RUN/conf/$t.yaml"
    if ! "$MERIDIAN" -t -c "$RUN/conf/$t.yaml" >"$RUN/logs/$t-check.log" 2>&1; then
        budget_skip "$t" "\`meridian -t\` rejects $RUN/conf/$t.yaml ($(grep -v '^ *$' "$RUN/logs/$t-check.log" | tail -n 1))"
        return 1
    fi
    taskset -c 1 "$MERIDIAN" -c "$RUN/conf/$t.yaml" >"$RUN/logs/$t.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPIDS[$t]=$!
}

# 20 requests must all answer 200, and then the admin /status must show the rate limiter: for
# "on" a rate_limit object whose every worker is in mode "shared" (the Redis bucket, not the
# local fallback), for "off" none (rate_limit null). A failed check is reported, not fixed.
budget_check() {
    local t=$1 i code bad=0 n=0 detail="" got try
    for i in $(seq 20); do
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:${TPORT[$t]}/" || true)
        n=$((n + 1))
        if [ "$code" != 200 ]; then
            bad=$((bad + 1))
            [ $bad -gt 3 ] || detail+="request $i answered ${code:-nothing}; "
        fi
    done
    for try in $(seq 20); do # the worker connects to Redis in the background
        got=$("$PY" - "${BUDGET_ADMIN[$t]}" "$([ "$t" = meridian-budget-on ] && echo on || echo off)" <<'PYEOF' 2>&1
import json, sys, urllib.request
st = json.load(urllib.request.urlopen("http://127.0.0.1:%s/status" % sys.argv[1], timeout=5))
rl = st.get("rate_limit", "missing")
if sys.argv[2] == "off":
    print("ok" if rl is None else "rate_limit is %s, expected null" % json.dumps(rl)[:80])
elif not isinstance(rl, dict):
    print("rate_limit is %s, expected an object" % json.dumps(rl)[:80])
else:
    modes = [w.get("mode") for w in rl.get("workers", [])]
    print("ok" if modes and all(m == "shared" for m in modes)
          else "worker modes %s, expected shared" % modes)
PYEOF
        ) || true
        [ "$got" != ok ] || break
        sleep 0.1
    done
    n=$((n + 1))
    if [ "$got" != ok ]; then
        bad=$((bad + 1))
        detail+="/status: $(tail -n 1 <<<"$got"); "
    fi
    printf '%s\t%s\t%s\t%s\n' "$t" "$n" "$bad" "${detail%; }" >>"$RUN/budget_checks.tsv"
    if [ $bad -gt 0 ]; then
        log "budget: warning: $t failed $bad of $n checks: ${detail%; }"
    else
        log "budget: $t passed all $n checks (20 requests answered 200; /status: $([ "$t" = meridian-budget-on ] && echo 'every worker on the shared budget' || echo 'no rate_limit'))"
    fi
}

if has_suite budget && [ -z "$BUDGET_SKIP" ]; then
    for t in haproxy nginx; do
        case " ${ACTIVE[*]} " in *" $t "*) BUDGET_ACTIVE+=("$t") ;; esac
    done
    case " $TARGETS " in
    *" meridian "*)
        if [ -x "$MERIDIAN" ]; then
            for v in off on; do
                t=meridian-budget-$v
                start_meridian_budget "$v" || continue
                if wait_ready "$t" "${TPIDS[$t]}" "${TPORT[$t]}"; then
                    for pid in $(descendants "${TPIDS[$t]}"); do
                        case " ${PIDS[*]} " in *" $pid "*) ;; *) PIDS+=("$pid") ;; esac
                    done
                    TPIDS[$t]=$(descendants "${TPIDS[$t]}" | tr '\n' ' ')
                    log "$t ready on port ${TPORT[$t]} (pids ${TPIDS[$t]})"
                    budget_check "$t"
                    BUDGET_ACTIVE+=("$t")
                else
                    budget_skip "$t" "did not answer 200 on port ${TPORT[$t]}; see $RUN/logs/$t.log"
                    tail -n 5 "$RUN/logs/$t.log" >&2 || true
                fi
            done
        else
            budget_skip meridian-budget "no binary at $MERIDIAN (build it first)"
        fi
        ;;
    esac
    [ ${#BUDGET_ACTIVE[@]} -gt 0 ] || log "budget: nothing to measure"
fi

# ---- the upstream-tls suite's targets --------------------------------------------------------

# Cell A of a proxy is the process of the other suites (HAProxy, nginx, Meridian: clear-text
# keep-alive connections to the origins' plain listeners). Cell B is a second process of the
# same proxy, PROXY-utls, rendered from the same template with RENDER_UPSTREAM=tls (no TLS
# listener of its own): the same configuration but for its upstream, the origins' TLS listeners
# (TLS with keep-alive and session resumption, the certificate verified against the bench's CA
# and the name backend.test, also sent as SNI). The proxies' own counters of those handshakes
# are read from HAProxy's stats socket (its own, PROXY-utls.sock) and Meridian's admin /metrics.
UTLS_PROXIES=()             # proxies with cells in this suite, in the order of the cells
declare -A UTLS_B           # proxy -> 1 when its B process runs
declare -A UTLS_ADMIN       # meridian-utls -> its admin port
printf 'target\tchecked\tfailed\tdetail\n' >"$RUN/utls_checks.tsv"

start_haproxy_utls() {
    local t=haproxy-utls servers="" i
    for i in 0 1 2 3 4; do
        servers+="    server o$((i + 1)) 127.0.0.1:${ORIGIN_TLS_PORTS[i]}"$'\n'
    done
    pick_port
    TPORT[$t]=$PORT
    RENDER_UPSTREAM=tls render bench/haproxy.cfg.in "$RUN/conf/$t.cfg" PORT="${TPORT[$t]}" \
        SOCK="$RUN_ABS/$t.sock" SERVERS="${servers%$'\n'}" MAXCONN="$HAPROXY_MAXCONN" \
        NOFILE="$NOFILE" UPSTREAM_CA="$UTLS_CA"
    taskset -c 1 haproxy -f "$RUN/conf/$t.cfg" >"$RUN/logs/$t.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPIDS[$t]=$!
}

start_nginx_utls() {
    local t=nginx-utls servers="" i
    for i in 0 1 2 3 4; do
        servers+="        server 127.0.0.1:${ORIGIN_TLS_PORTS[i]};"$'\n'
    done
    pick_port
    TPORT[$t]=$PORT
    mkdir -p "$RUN/$t/tmp"
    RENDER_UPSTREAM=tls render bench/nginx.conf.in "$RUN/conf/$t.conf" PORT="${TPORT[$t]}" \
        SERVERS="${servers%$'\n'}" DIR="$RUN_ABS/$t" NOFILE="$NOFILE" UPSTREAM_CA="$UTLS_CA" \
        WORKER_CONNECTIONS=$((2 * IDLE_CONNS + 200 < NOFILE ? 2 * IDLE_CONNS + 200 : NOFILE))
    taskset -c 1 nginx -c "$RUN_ABS/conf/$t.conf" -p "$RUN_ABS/$t" >"$RUN/logs/$t.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPIDS[$t]=$!
}

start_meridian_utls() { # returns 1 when meridian -t rejects the configuration
    local t=meridian-utls backends="" i
    # By name, as a region's load balancer is reached: backend.test, which the hosts file
    # (read by Meridian's resolver, no DNS query) says is 127.0.0.1.
    for i in 0 1 2 3 4; do
        backends+="\"backend.test:${ORIGIN_TLS_PORTS[i]}\", "
    done
    printf '127.0.0.1 backend.test\n' >"$RUN/conf/$t.hosts"
    pick_port
    TPORT[$t]=$PORT
    pick_port
    UTLS_ADMIN[$t]=$PORT
    RENDER_UPSTREAM=tls render bench/meridian.yaml.in "$RUN/conf/$t.yaml" PORT="${TPORT[$t]}" \
        ADMIN_PORT="${UTLS_ADMIN[$t]}" UPSTREAM_CA="$UTLS_CA" BACKENDS="${backends%, }" \
        HOSTS_FILE="$RUN_ABS/conf/$t.hosts"
    # TLS to backends is recent: a binary that does not accept the region's `tls` section has
    # only this cell skipped (its cell A still runs)
    if ! "$MERIDIAN" -t -c "$RUN/conf/$t.yaml" >"$RUN/logs/$t-check.log" 2>&1; then
        utls_skip "$t" "\`meridian -t\` rejects the region's tls section in $RUN/conf/$t.yaml ($(grep -v '^ *$' "$RUN/logs/$t-check.log" | tail -n 1))"
        return 1
    fi
    taskset -c 1 "$MERIDIAN" -c "$RUN/conf/$t.yaml" >"$RUN/logs/$t.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPIDS[$t]=$!
}

# The X-Conn-Id that a new connection to each origin gets (the origin numbers the connections
# it accepts, on all its listeners), summed over the five: "plain" on their plain listeners,
# "tls" on their TLS listeners (verifying the certificate as the proxies do: the bench's CA,
# SNI and name backend.test); "-" when one of them does not answer. Between two such sums S0
# and S1, the proxy under test opened S1 - S0 - 5 connections to the origins.
origin_conn_ids() {
    local i id sum=0 port
    for i in 0 1 2 3 4; do
        if [ "$1" = tls ]; then
            port=${ORIGIN_TLS_PORTS[i]}
            id=$(curl -s -m 2 -D - -o /dev/null --cacert "$UTLS_CA" \
                --resolve "backend.test:$port:127.0.0.1" "https://backend.test:$port/" |
                tr -d '\r' | sed -n 's/^[Xx]-[Cc]onn-[Ii]d: //p' || true)
        else
            id=$(curl -s -m 2 -D - -o /dev/null "http://127.0.0.1:${ORIGIN_PORTS[i]}/" |
                tr -d '\r' | sed -n 's/^[Xx]-[Cc]onn-[Ii]d: //p' || true)
        fi
        [[ "$id" =~ ^[0-9]+$ ]] || { echo -; return 0; }
        sum=$((sum + id))
    done
    echo "$sum"
}

# "full resumed": the TLS handshakes with the origins that the B process of a proxy has counted
# so far; "- -" where it has no such counter (nginx) or for A cells. HAProxy: ssl_sess (full)
# and ssl_reused_sess (resumed) of the backend in `show stat` (its servers' sum when the
# backend row has none); Meridian: meridian_upstream_tls_handshakes_total{kind="full"|"resumed"}
# in its admin /metrics.
proxy_upstream_handshakes() {
    case $1 in
    haproxy-utls)
        "$PY" - "$RUN_ABS/haproxy-utls.sock" <<'EOF' 2>/dev/null || echo "- -"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
lines = out.decode().splitlines()
head = lines[0].lstrip("# ").split(",")
rows = [dict(zip(head, l.split(","))) for l in lines[1:] if l]
rows = [r for r in rows if r.get("pxname") == "origins"]
be = [r for r in rows if r.get("svname") == "BACKEND"]
for pick in (be, [r for r in rows if r.get("svname") not in ("BACKEND", "FRONTEND")]):
    if pick and all(r.get("ssl_sess", "") != "" and r.get("ssl_reused_sess", "") != "" for r in pick):
        # ssl_sess counts the full handshakes, ssl_reused_sess the resumed ones
        print(sum(int(r["ssl_sess"]) for r in pick), sum(int(r["ssl_reused_sess"]) for r in pick))
        break
else:
    print("- -")
EOF
        ;;
    meridian-utls)
        curl -s -m 5 "http://127.0.0.1:${UTLS_ADMIN[meridian-utls]}/metrics" 2>/dev/null |
            awk '/^meridian_upstream_tls_handshakes_total\{/ {
                    n++; if ($1 ~ /kind="resumed"/) r += $NF; else f += $NF }
                END { if (n) printf "%.0f %.0f\n", f, r; else print "- -" }' || echo "- -"
        ;;
    *) echo "- -" ;;
    esac
}

# The origins' TLS listeners must answer 200 to a client that verifies them as the proxies do
# (the bench's CA, SNI and name backend.test), and refuse one that checks another name
# (the certificate is for backend.test only); a failure skips the suite.
utls_origin_check() {
    local i port got n=0 bad=0 detail=""
    for i in 0 1 2 3 4; do
        port=${ORIGIN_TLS_PORTS[i]}
        got=$(curl -s -m 2 -o /dev/null -w '%{http_code}' --cacert "$UTLS_CA" \
            --resolve "backend.test:$port:127.0.0.1" "https://backend.test:$port/" || true)
        n=$((n + 1))
        [ "$got" = 200 ] || { bad=$((bad + 1)); detail+="origin $((i + 1)) (TLS port $port) answered '${got:-nothing}' to a verifying client; "; }
        got=$(curl -s -m 2 -o /dev/null -w '%{http_code}' --cacert "$UTLS_CA" \
            --resolve "other.test:$port:127.0.0.1" "https://other.test:$port/" || true)
        n=$((n + 1))
        [ "$got" = 000 ] || { bad=$((bad + 1)); detail+="origin $((i + 1)) (TLS port $port) was accepted under the name other.test (got '$got'); "; }
    done
    printf 'origins\t%s\t%s\t%s\n' "$n" "$bad" "${detail%; }" >>"$RUN/utls_checks.tsv"
    if [ $bad -gt 0 ]; then
        UTLS_SKIP="the origins' TLS listeners failed $bad of $n checks: ${detail%; }"
        utls_skip upstream-tls "$UTLS_SKIP"
    else
        log "upstream-tls: the origins' TLS listeners (ports ${ORIGIN_TLS_PORTS[*]}) answer 200 to a client verifying backend.test against the bench's CA, and fail a check of another name"
    fi
}

if has_suite upstream-tls && [ -z "$UTLS_SKIP" ]; then
    utls_origin_check
fi
if has_suite upstream-tls && [ -z "$UTLS_SKIP" ]; then
    for p in haproxy nginx meridian; do
        case " ${ACTIVE[*]} " in *" $p "*) ;; *) continue ;; esac
        UTLS_PROXIES+=("$p")
        t=$p-utls
        "start_${p}_utls" || continue
        if wait_ready "$t" "${TPIDS[$t]}" "${TPORT[$t]}"; then
            for pid in $(descendants "${TPIDS[$t]}"); do
                case " ${PIDS[*]} " in *" $pid "*) ;; *) PIDS+=("$pid") ;; esac
            done
            TPIDS[$t]=$(descendants "${TPIDS[$t]}" | tr '\n' ' ')
            UTLS_B[$p]=1
            log "$t ready on port ${TPORT[$t]} (pids ${TPIDS[$t]}; TLS to the origins)"
        else
            utls_skip "$t" "did not answer 200 on port ${TPORT[$t]}; see $RUN/logs/$t.log"
            tail -n 5 "$RUN/logs/$t.log" >&2 || true
        fi
    done
    [ ${#UTLS_PROXIES[@]} -gt 0 ] || log "upstream-tls: nothing to measure"
fi

{
    printf '# run %s on %s, kernel %s, load %s, machine %s%% busy before start\n' "$STAMP" \
        "$(hostname)" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$BUSY_BEFORE"
    printf '# %s; %s; wrk -t1 -c%s -d%ss --latency; reps %s, warm-up %ss\n' \
        "$(haproxy -v 2>/dev/null | head -1)" "$(nginx -v 2>&1)" "$CONNS" "$DURATION" "$REPS" "$WARMUP"
    printf '# suites: %s\n' "$SUITES"
    if has_suite geo; then
        printf '# geo: wrk -t1 -c%s -d%ss --latency -s bench/geo_clients.lua URL -- %s N (%s addresses, populations N = %s); database %s (%s bytes): %s\n' \
            "$CONNS" "$DURATION" "$GEO_CLIENTS" "$GEO_N_ALL" "${GEO_POP_SIZES[*]}" "$GEO_DB" \
            "$(stat -c %s "$GEO_DB")" "$(tail -n 1 "$RUN/logs/geo-db.log" | sed 's/^gen_large_mmdb: //')"
    fi
    if has_suite budget && [ -n "$REDIS_PORT" ]; then
        printf '# budget: wrk -t1 -c%s -d%ss --latency URL; %s on 127.0.0.1:%s (cpu0, no persistence); rate_limit of meridian-budget-on: %s\n' \
            "$CONNS" "$DURATION" "$(redis-server --version | cut -d' ' -f1-3)" "$REDIS_PORT" \
            "$(sed -n '/# budget-begin/,/# budget-end/{/^#/d;p}' bench/meridian-budget.yaml.in | sed 's/@REDIS_PORT@/'"$REDIS_PORT"'/' | tr -s ' \n' ' ')"
    fi
    if has_suite upstream-tls && [ ${#UTLS_PROXIES[@]} -gt 0 ]; then
        printf '# upstream-tls: wrk -t1 -c%s -d%ss --latency URL; A: clear-text keep-alive to the origins, B: TLS to the origins (%s in the proxies; origins: %s) with keep-alive and session resumption, verifying against %s, SNI and name backend.test; origins'"'"' certificate ECDSA P-256, SAN DNS:backend.test (%s)\n' \
            "$CONNS" "$DURATION" "$(openssl version | cut -d' ' -f1-2)" "$ORIGIN" "$UTLS_CA" "$UTLS_CERT"
    fi
    if [ "$TLS" = 1 ]; then
        printf '# %s; %s; TLS cells: wrk -t1 -c%s, h2load -t1 -c%s -m%s -D %s, %s x openssl s_time -new -tls1_3 -www / -time %s; warm-up %ss; certificate ECDSA P-256 (%s)\n' \
            "$(openssl version)" "$(h2load --version 2>/dev/null | head -1)" "$CONNS" "$H2_CONNS" \
            "$H2_STREAMS" "$DURATION" "$HS_CLIENTS" "$DURATION" "$TLS_WARMUP" "$CERT"
    fi
} >"$RUN/meta.txt"

# ---- throughput cells ----------------------------------------------------------------------

to_us() { # wrk latency ("812.00us", "1.20ms", "2.01s") to microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "ms") n *= 1000; else if (u == "s") n *= 1000000; else if (u == "m") n *= 60000000
        printf "%.0f", n }'
}

printf 'target\trep\tduration_s\treq_s\trequests\tp50_us\tp99_us\tnon2xx\tsock_errors\tproxy_cpu_pct\torigin_cpu_pct\twrk_cpu_pct\tother_cpu_pct\tkept\n' \
    >"$RUN/cells.tsv"

# Measures one cell; returns 1 when other processes disturbed it (its row is then not kept).
# Writes its row to CELL_TSV, wrk's output to wrk/CELL_PREFIX-TARGET-REP.txt; wrk gets WRK_PRE
# before the URL and WRK_POST after it (the geo suite's Lua script and its arguments). A
# non-empty CELL_EXTRA is one more column at the end of the row (the geo suite's population).
# A non-empty CELL_HOOK is a function run as `CELL_HOOK before TARGET` after the warm-up and
# `CELL_HOOK after TARGET REQUESTS` after the measurement, which may set CELL_EXTRA (the
# budget suite's Redis command counts) and CELL_NOTE (appended to the cell's log line).
CELL_TSV=$RUN/cells.tsv
CELL_PREFIX=""
CELL_EXTRA=""
CELL_HOOK=""
CELL_NOTE=""
TAB=$'\t'
WRK_PRE=()
WRK_POST=()
run_cell() {
    local t=$1 rep=$2 last=$3 url="http://127.0.0.1:${TPORT[$1]}/" out="$RUN/wrk/$CELL_PREFIX$1-$2.txt"
    local p0 p1 o0 o1 m0 m1 t0 t1 cpu wall rps reqs p50 p99 non2xx sockerr pcpu ocpu wcpu xcpu kept
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${WARMUP}s" "${WRK_PRE[@]}" "$url" "${WRK_POST[@]}" >/dev/null
    [ -z "$CELL_HOOK" ] || "$CELL_HOOK" before "$t"
    p0=$(ticks ${TPIDS[$t]})
    o0=$(ticks "${ORIGIN_PIDS[@]}")
    m0=$(machine_busy_ticks)
    t0=$EPOCHREALTIME
    cpu=$({ TIMEFORMAT='%3U %3S'; time taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
        "${WRK_PRE[@]}" "$url" "${WRK_POST[@]}" >"$out"; } 2>&1 | tail -n 1)
    t1=$EPOCHREALTIME
    m1=$(machine_busy_ticks)
    p1=$(ticks ${TPIDS[$t]})
    o1=$(ticks "${ORIGIN_PIDS[@]}")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    reqs=$(awk '/ requests in / { print $1 }' "$out")
    p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    sockerr=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")
    [ -n "$rps" ] || die "wrk printed no result for $t; see $out"
    [ -z "$CELL_HOOK" ] || "$CELL_HOOK" after "$t" "$reqs"
    if [ -n "${TPIDS[$t]}" ]; then
        pcpu=$(awk -v d=$((p1 - p0)) -v hz="$CLK_TCK" -v w="$wall" 'BEGIN { printf "%.1f", d / hz / w * 100 }')
    else
        pcpu=-
    fi
    ocpu=$(awk -v d=$((o1 - o0)) -v hz="$CLK_TCK" -v w="$wall" 'BEGIN { printf "%.1f", d / hz / w * 100 }')
    wcpu=$(awk -v c="$cpu" -v w="$wall" 'BEGIN { split(c, a, " "); printf "%.1f", (a[1] + a[2]) / w * 100 }')
    # CPU that none of ours used: other sessions' work on this shared machine (and the kernel's)
    xcpu=$(awk -v m=$((m1 - m0)) -v hz="$CLK_TCK" -v w="$wall" -v p="$pcpu" -v o="$ocpu" -v c="$wcpu" \
        'BEGIN { x = m / hz / w * 100 - p - o - c; printf "%.1f", x < 0 ? 0 : x }')
    kept=1
    if [ "$last" = 0 ] && awk -v x="$xcpu" -v m="$OTHER_MAX" 'BEGIN { exit !(x > m) }'; then
        kept=0
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s%s\n' "$t" "$rep" "$wall" "$rps" \
        "$reqs" "$p50" "$p99" "${non2xx:-0}" "${sockerr:-0}" "$pcpu" "$ocpu" "$wcpu" "$xcpu" "$kept" \
        "${CELL_EXTRA:+$TAB$CELL_EXTRA}" >>"$CELL_TSV"
    log "$(printf '%s%-16s rep %s: %7.0f req/s  p50 %6s us  p99 %6s us  proxy %5s%%  origins %5s%%  wrk %5s%%  other %5s%%%s%s' \
        "$CELL_PREFIX" "$t" "$rep" "$rps" "$p50" "$p99" "$pcpu" "$ocpu" "$wcpu" "$xcpu" \
        "${CELL_NOTE:+  $CELL_NOTE}" "$([ $kept = 1 ] || echo '  disturbed: not kept')")"
    [ "$kept" = 1 ]
}

if has_suite h1; then
    log "throughput: ${ACTIVE[*]}, $REPS x ${DURATION}s each after ${WARMUP}s warm-up, interleaved"
    for rep in $(seq "$REPS"); do
        for t in "${ACTIVE[@]}"; do
            for try in $(seq 0 "$RETRIES"); do
                run_cell "$t" "$rep" $((try == RETRIES)) && break
                wait_quiet
            done
        done
    done
fi

# ---- GeoIP routing: the h1 cell with clients spread over the world ---------------------------

# perf profile of one target under the geo cell's load (not a measured cell), with the current
# WRK_POST (population): perf/NAME.txt (perf report --no-children, by shared object and symbol)
# and perf/NAME-top.txt (the lines of Meridian's own code and libmaxminddb, with each one's
# total), NAME = TARGET-cN, N the population's size. Debian's libmaxminddb has no symbols for
# its static functions: those show as addresses (bench/README.md names them).
geo_profile() {
    local t=$1 name=$1-c$2 pids wpid dir="$RUN/perf"
    pids=$(echo ${TPIDS[$1]} | tr ' ' ',')
    mkdir -p "$dir"
    log "geo: perf record -g -p $pids for ${GEO_PERF_SECONDS}s under load ($t, $2 clients)"
    taskset -c 0 wrk -t1 -c"$CONNS" -d"$((GEO_PERF_SECONDS + 3))s" "${WRK_PRE[@]}" \
        "http://127.0.0.1:${TPORT[$t]}/" "${WRK_POST[@]}" >"$dir/$name-wrk.txt" 2>&1 &
    wpid=$!
    PIDS+=($wpid)
    CHILDREN+=($wpid)
    sleep 1.5
    taskset -c 0 perf record -g -p "$pids" -o "$dir/$name.data" -- sleep "$GEO_PERF_SECONDS" \
        >"$dir/$name-record.log" 2>&1 || log "geo: perf record failed: $(tail -n 2 "$dir/$name-record.log")"
    wait "$wpid" || true
    [ -s "$dir/$name.data" ] || return 0
    perf report -i "$dir/$name.data" --no-children --sort dso,symbol -g none --stdio \
        >"$dir/$name.txt" 2>"$dir/$name-report.log" || true
    # "routing": what only routing runs (an upper bound: some route_* work is done without it;
    # a lower one too: stream_route(), inlined into stream_start, reads the client's place
    # from route_places' table, which `perf annotate -s stream_start` shows apart)
    awk -v bin="$(basename "$MERIDIAN")" '
        /^#/ || NF < 3 { next }
        { pct = $1; sub(/%$/, "", pct); dso = $2
          if (dso ~ /^libmaxminddb/ || dso ~ /^libm\.so/ ||
              (dso == bin && $4 ~ /^(geo_|client_ip|route_|region_health|stream_set_region|lookup_status|v4_|decode_record)/))
              routing += pct
          if (dso != bin && dso !~ /^libmaxminddb/) next
          total[dso] += pct
          if (n < 25) { line[++n] = sprintf("%7s  %-22s %s", $1, dso, $4) } }
        END { for (d in total) printf "total %s: %.2f%%\n", d, total[d]
              printf "routing (libmaxminddb, libm, geo_*, lookup_status, v4_*, client_ip*, route_*, region_health, stream_set_region; not the place read inlined in stream_start): %.2f%%\n", routing
              for (i = 1; i <= n; i++) print line[i] }' "$dir/$name.txt" >"$dir/$name-top.txt"
    sed -n '1,13p' "$dir/$name-top.txt" | sed "s/^/    $name: /" >&2
}

# The geo cells: per repetition, each population in turn (GEO_POPULATIONS), and in it each
# target: HAProxy, nginx, then the two geo Meridians, off before on in odd repetitions and on
# before off in even ones (so that a drift of the machine's speed does not favour either).
# geo_cells.tsv has the columns of cells.tsv plus "clients" (the population's size).
if has_suite geo && [ ${#GEO_ACTIVE[@]} -gt 0 ]; then
    log "geo: ${GEO_ACTIVE[*]} x populations of ${GEO_POP_SIZES[*]} clients, $REPS x ${DURATION}s each after ${WARMUP}s warm-up, interleaved"
    CELL_TSV=$RUN/geo_cells.tsv
    WRK_PRE=(-s bench/geo_clients.lua)
    printf '%s\tclients\n' "$(head -n 1 "$RUN/cells.tsv")" >"$CELL_TSV"
    for rep in $(seq "$REPS"); do
        order=("${GEO_ACTIVE[@]}")
        if [ $((rep % 2)) = 0 ]; then # swap the two geo Meridians
            order=()
            for t in "${GEO_ACTIVE[@]}"; do
                case $t in meridian-geo-*) ;; *) order+=("$t") ;; esac
            done
            for t in meridian-geo-on meridian-geo-off; do
                case " ${GEO_ACTIVE[*]} " in *" $t "*) order+=("$t") ;; esac
            done
        fi
        for n in "${GEO_POP_SIZES[@]}"; do
            CELL_PREFIX=geo-c$n-
            CELL_EXTRA=$n
            WRK_POST=(-- "$GEO_CLIENTS" "$n")
            for t in "${order[@]}"; do
                for try in $(seq 0 "$RETRIES"); do
                    run_cell "$t" "$rep" $((try == RETRIES)) && break
                    wait_quiet
                done
            done
        done
    done
    if [ "$GEO_PERF" = 1 ]; then
        if command -v perf >/dev/null; then
            for n in "${GEO_POP_SIZES[@]}"; do
                WRK_POST=(-- "$GEO_CLIENTS" "$n")
                for t in $GEO_PERF_TARGETS; do
                    case " ${GEO_ACTIVE[*]} " in *" $t "*) geo_profile "$t" "$n" ;; esac
                done
            done
        else
            log "geo: no perf (package linux-perf): no profile"
        fi
    fi
    CELL_TSV=$RUN/cells.tsv
    CELL_PREFIX=""
    CELL_EXTRA=""
    WRK_PRE=()
    WRK_POST=()
fi

# ---- request budget: the h1 cell with a shared budget in Redis far above the load -----------

# The budget cells' CELL_HOOK. For meridian-budget-on it resets Redis's statistics after the
# warm-up (CONFIG RESETSTAT), reads INFO commandstats after the measurement (kept in
# redis/commandstats-repREP-TRY.txt), and sets these columns of the row:
#   redis_commands  the calls of every command Redis ran but our CONFIG RESETSTAT and INFO,
#                   including those the Lua scripts run inside Redis (TIME, HMGET, ...)
#   redis_scripts   EVALSHA and EVAL alone: what Meridian sends, one round trip each
#   redis_failures  "rate_limit: Redis failed" warnings Meridian logged during the cell
#                   (each a switch to on_redis_failure until Redis answers again)
#   rl_admitted, rl_waited, rl_refused
#                   what the limiter counted during the cell (admin /status, all workers):
#                   admitted, waited for a lease (found the worker's lease spent), and
#                   rejected + unavailable (429s and 503s)
# "-" in all of them for the other targets.
CELL_REP=""
BUDGET_FAILS0=0
BUDGET_STATUS0=""
budget_status() { # "admitted waited refused" of meridian-budget-on's workers so far, or "- - -"
    "$PY" - "${BUDGET_ADMIN[meridian-budget-on]}" <<'PYEOF' 2>/dev/null || echo "- - -"
import json, sys, urllib.request
st = json.load(urllib.request.urlopen("http://127.0.0.1:%s/status" % sys.argv[1], timeout=5))
w = st["rate_limit"]["workers"]
print(sum(x["admitted"] for x in w), sum(x["waited"] for x in w),
      sum(x["rejected"] + x["unavailable"] for x in w))
PYEOF
}
budget_fails() { # "rate_limit: Redis failed" lines in meridian-budget-on's log so far
    local n
    n=$(grep -c 'rate_limit: Redis failed' "$RUN/logs/meridian-budget-on.log" 2>/dev/null) || true
    echo "${n:-0}"
}
budget_hook() {
    local out cmds scripts fails st=() i
    CELL_NOTE=""
    if [ "$2" != meridian-budget-on ]; then
        CELL_EXTRA="-$TAB-$TAB-$TAB-$TAB-$TAB-"
        return 0
    fi
    case $1 in
    before)
        BUDGET_FAILS0=$(budget_fails)
        BUDGET_STATUS0=$(budget_status)
        redis-cli -p "$REDIS_PORT" config resetstat >/dev/null 2>&1 || log "budget: CONFIG RESETSTAT failed"
        ;;
    after)
        fails=$(($(budget_fails) - BUDGET_FAILS0))
        read -r -a st <<<"$BUDGET_STATUS0 $(budget_status)"
        for i in 0 1 2; do # the deltas, "-" where /status did not answer
            if [ "${st[i]}" = - ] || [ "${st[i + 3]}" = - ]; then st[i]=-; else st[i]=$((st[i + 3] - st[i])); fi
        done
        out=$(redis-cli -p "$REDIS_PORT" info commandstats 2>/dev/null | tr -d '\r') || out=""
        printf '%s\n' "$out" >"$RUN/redis/commandstats-rep$CELL_REP.txt"
        if ! grep -q '^# Commandstats' <<<"$out"; then
            CELL_EXTRA="-$TAB-$TAB$fails$TAB${st[0]}$TAB${st[1]}$TAB${st[2]}"
            CELL_NOTE="redis: INFO commandstats failed"
            return 0
        fi
        read -r cmds scripts < <(awk -F'[:,]' '/^cmdstat_/ {
                name = substr($1, 9); calls = $2; sub(/^calls=/, "", calls)
                if (name == "config|resetstat" || name == "info") next
                all += calls
                if (name ~ /^eval(sha)?(_ro)?$/) sc += calls }
            END { print all + 0, sc + 0 }' <<<"$out")
        CELL_EXTRA="$cmds$TAB$scripts$TAB$fails$TAB${st[0]}$TAB${st[1]}$TAB${st[2]}"
        CELL_NOTE="redis: $cmds commands ($scripts EVALSHA/EVAL) for $3 requests: $(awk -v c="$cmds" -v r="$3" \
            'BEGIN { if (c > 0) printf "1 per %.0f", r / c; else print "none" }'); limiter: ${st[0]} admitted, ${st[1]} waited, ${st[2]} refused$([ "$fails" = 0 ] || echo "; Redis failed $fails time(s): local fallback")"
        ;;
    esac
}

# Per repetition: HAProxy, nginx, then the two budget Meridians, off before on in odd
# repetitions and on before off in even ones. budget_cells.tsv has the columns of cells.tsv
# plus redis_commands, redis_scripts, redis_failures, rl_admitted, rl_waited and rl_refused
# (budget_hook), "-" but for meridian-budget-on.
if has_suite budget && [ ${#BUDGET_ACTIVE[@]} -gt 0 ]; then
    log "budget: ${BUDGET_ACTIVE[*]}, $REPS x ${DURATION}s each after ${WARMUP}s warm-up, interleaved; Redis on port $REDIS_PORT"
    CELL_TSV=$RUN/budget_cells.tsv
    CELL_PREFIX=budget-
    CELL_HOOK=budget_hook
    printf '%s\tredis_commands\tredis_scripts\tredis_failures\trl_admitted\trl_waited\trl_refused\n' \
        "$(head -n 1 "$RUN/cells.tsv")" >"$CELL_TSV"
    for rep in $(seq "$REPS"); do
        order=("${BUDGET_ACTIVE[@]}")
        if [ $((rep % 2)) = 0 ]; then # swap the two budget Meridians
            order=()
            for t in "${BUDGET_ACTIVE[@]}"; do
                case $t in meridian-budget-*) ;; *) order+=("$t") ;; esac
            done
            for t in meridian-budget-on meridian-budget-off; do
                case " ${BUDGET_ACTIVE[*]} " in *" $t "*) order+=("$t") ;; esac
            done
        fi
        for t in "${order[@]}"; do
            for try in $(seq 0 "$RETRIES"); do
                CELL_REP=$rep-$try
                run_cell "$t" "$rep" $((try == RETRIES)) && break
                wait_quiet
            done
        done
    done
    CELL_TSV=$RUN/cells.tsv
    CELL_PREFIX=""
    CELL_EXTRA=""
    CELL_HOOK=""
    CELL_NOTE=""
fi

# ---- upstream TLS: the h1 cell with clear-text or TLS connections to the origins -------------

# The upstream-tls cells' CELL_HOOK: around each cell (after its warm-up, after the
# measurement) it counts the connections the origins accepted (origin_conn_ids, on the
# listeners the cell's proxy uses) and, for the B processes of HAProxy and Meridian, the TLS
# handshakes with the origins the proxy counted itself. Columns of utls_cells.tsv after those of
# cells.tsv: proxy, upstream (plain | tls), up_conns (connections the origins accepted from the
# proxy during the cell: each one a TLS handshake in B; "-" when not counted), tls_full and
# tls_resumed (the proxy's own counts; "-" where it has none).
UTLS_IDS0=""
UTLS_HS0=""
utls_hook() {
    local kind=plain ids conns hs=() full resumed
    case $2 in *-utls) kind=tls ;; esac
    case $1 in
    before)
        UTLS_IDS0=$(origin_conn_ids "$kind")
        UTLS_HS0=$(proxy_upstream_handshakes "$2")
        ;;
    after)
        ids=$(origin_conn_ids "$kind")
        conns=-
        [ "$ids" = - ] || [ "$UTLS_IDS0" = - ] || conns=$((ids - UTLS_IDS0 - 5))
        read -r -a hs <<<"$UTLS_HS0 $(proxy_upstream_handshakes "$2")"
        full=-
        resumed=-
        if [ "${hs[0]}" != - ] && [ "${hs[2]}" != - ]; then
            full=$((hs[2] - hs[0]))
            resumed=$((hs[3] - hs[1]))
        fi
        CELL_EXTRA="${2%-utls}$TAB$kind$TAB$conns$TAB$full$TAB$resumed"
        CELL_NOTE="upstream $kind: $conns new connections"
        [ "$full" = - ] || CELL_NOTE+=" ($full full + $resumed resumed TLS handshakes counted by the proxy)"
        ;;
    esac
}

# Per repetition, each proxy in turn (HAProxy, nginx, Meridian), its two cells next to each
# other: A (its clear-text upstream process) before B (its PROXY-utls process) in odd
# repetitions, B before A in even ones, so that a drift of the machine's speed favours neither.
if has_suite upstream-tls && [ ${#UTLS_PROXIES[@]} -gt 0 ]; then
    log "upstream-tls: ${UTLS_PROXIES[*]}, clear-text (A) and TLS (B) upstream, $REPS x ${DURATION}s each after ${WARMUP}s warm-up, interleaved"
    CELL_TSV=$RUN/utls_cells.tsv
    CELL_PREFIX=utls-
    CELL_HOOK=utls_hook
    printf '%s\tproxy\tupstream\tup_conns\ttls_full\ttls_resumed\n' "$(head -n 1 "$RUN/cells.tsv")" \
        >"$CELL_TSV"
    for rep in $(seq "$REPS"); do
        for p in "${UTLS_PROXIES[@]}"; do
            order=("$p")
            if [ -n "${UTLS_B[$p]:-}" ]; then
                if [ $((rep % 2)) = 1 ]; then order=("$p" "$p-utls"); else order=("$p-utls" "$p"); fi
            fi
            for t in "${order[@]}"; do
                for try in $(seq 0 "$RETRIES"); do
                    run_cell "$t" "$rep" $((try == RETRIES)) && break
                    wait_quiet
                done
            done
        done
    done
    CELL_TSV=$RUN/cells.tsv
    CELL_PREFIX=""
    CELL_EXTRA=""
    CELL_HOOK=""
    CELL_NOTE=""
fi

# ---- idle connections ----------------------------------------------------------------------

# idle_test TSV TLS(0|1): one row per proxy; plain keep-alive connections, or TLS ones
idle_test() {
    local tsv=$1 tls=$2 t root result key v port kind=keep-alive suffix="" opt=""
    [ "$tls" = 0 ] || { kind=TLS; suffix=-tls; opt=--tls; }
    printf 'target\tconns\tok\tfailed\tnon200\tclosed_early\trss_before_kb\trss_idle_kb\trss_after_close_kb\tbytes_per_conn\n' \
        >"$tsv"
    for t in "${ACTIVE[@]}"; do
        [ "$t" != direct ] || continue
        port=${TPORT[$t]}
        if [ "$tls" = 1 ]; then
            [ -n "${TLS_OK[$t]:-}" ] && [ -z "${SKIP_CELL[idle-tls/$t]:-}" ] || continue
            port=${TLS_PORT[$t]}
        fi
        log "idle memory: $IDLE_CONNS $kind connections to $t"
        root=${TPIDS[$t]%% *}
        taskset -c 0 "$PY" bench/idle_conns.py --port "$port" --pid "$root" $opt \
            -n "$IDLE_CONNS" >"$RUN/logs/idle$suffix-$t.txt" 2>&1 || true
        result=$(grep '^RESULT ' "$RUN/logs/idle$suffix-$t.txt" || true)
        if [ -z "$result" ]; then
            log "idle test of $t failed: $(tail -n 3 "$RUN/logs/idle$suffix-$t.txt")"
            continue
        fi
        sed -n '1,2p' "$RUN/logs/idle$suffix-$t.txt" | sed 's/^/    /' >&2
        # RESULT k=v ... -> values in the header's order
        printf '%s' "$t" >>"$tsv"
        for key in conns ok failed non200 closed_early rss_before_kb rss_idle_kb rss_after_close_kb bytes_per_conn; do
            v=$(tr ' ' '\n' <<<"$result" | sed -n "s/^$key=//p")
            printf '\t%s' "$v" >>"$tsv"
        done
        printf '\n' >>"$tsv"
    done
}

# plain idle memory before the TLS cells: memory freed by TLS connections would otherwise absorb
# part of the growth
if has_suite idle; then
    idle_test "$RUN/idle.tsv" 0
else
    printf 'target\tconns\tok\tfailed\tnon200\tclosed_early\trss_before_kb\trss_idle_kb\trss_after_close_kb\tbytes_per_conn\n' \
        >"$RUN/idle.tsv"
fi

# ---- TLS cells: HTTP/1.1 over TLS, HTTP/2 over TLS, full handshakes ---------------------------

# TLS sessions the proxy counted on its TLS listener, "full resumed failed" ("-" where unknown):
# HAProxy's TLS frontend counters (stats socket), nginx's log of resumed sessions, Meridian's
# per-worker handshake counters in its admin /status (it counts no failed handshakes).
server_tls_counters() {
    case $1 in
    haproxy)
        "$PY" - "$RUN_ABS/haproxy.sock" <<'EOF' 2>/dev/null || echo "- - -"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
lines = out.decode().splitlines()
head = lines[0].lstrip("# ").split(",")
for line in lines[1:]:
    row = dict(zip(head, line.split(",")))
    if row.get("pxname") == "bench_tls" and row.get("svname") == "FRONTEND":
        print(row["ssl_sess"], row["ssl_reused_sess"], row["ssl_failed_handshake"])
        break
else:
    print("- - -")
EOF
        ;;
    nginx) echo "- $(cat "$RUN/nginx/tls-resumed.log" 2>/dev/null | wc -l) -" ;;
    meridian)
        "$PY" - "$MERIDIAN_ADMIN_PORT" <<'EOF' 2>/dev/null || echo "- - -"
import json, sys, urllib.request
st = json.load(urllib.request.urlopen("http://127.0.0.1:%s/status" % sys.argv[1], timeout=5))
w = st["workers"]
print(sum(x["tls_handshakes_full"] for x in w), sum(x["tls_handshakes_resumed"] for x in w), "-")
EOF
        ;;
    *) echo "- - -" ;;
    esac
}

# The client of one TLS cell, on cpu0: $1 suite, $2 port, $3 seconds, $4 output file
tls_client() {
    local url="https://127.0.0.1:$2/" i pids=()
    case $1 in
    tls) taskset -c 0 wrk -t1 -c"$CONNS" -d"$3s" --latency "$url" >"$4" 2>&1 ;;
    h2) taskset -c 0 h2load -t1 -c"$H2_CONNS" -m"$H2_STREAMS" -D "$3" "$url" >"$4" 2>&1 ;;
    handshake)
        # HS_CLIENTS s_time processes at once (one alone leaves both CPUs partly idle while it
        # waits for each handshake in turn). -new: a new connection and a new session for every
        # request (GET / HTTP/1.0), never a resumption; -no-CA*: no certificate store to scan
        # on every handshake (s_time does not verify anyway)
        for i in $(seq "$HS_CLIENTS"); do
            taskset -c 0 openssl s_time -connect "127.0.0.1:$2" -new -tls1_3 -www / -time "$3" \
                -no-CAfile -no-CApath -no-CAstore >"$4.$i" 2>&1 &
            pids+=($!)
        done
        for i in "${pids[@]}"; do # not a bare wait: the origins and proxies are children too
            wait "$i" || true
        done
        ;;
    esac
}

printf 'suite\ttarget\trep\tduration_s\trate\tcount\tp50_us\tp99_us\tmean_us\terrors\tproxy_cpu_pct\torigin_cpu_pct\tclient_cpu_pct\tother_cpu_pct\tkept\tserver_full\tserver_resumed\tserver_failed\n' \
    >"$RUN/tls_cells.tsv"

# Measures one TLS cell; returns 1 when other processes disturbed it (its row is then not kept).
run_tls_cell() {
    local s=$1 t=$2 rep=$3 last=$4 port=${TLS_PORT[$2]} out="$RUN/clients/$1-$2-$3.txt"
    local p0 p1 o0 o1 m0 m1 t0 t1 cpu wall rate count p50=- p99=- mean=- errors pcpu ocpu ccpu xcpu kept
    local before after full=- resumed=- failed=- f bad=0 unit
    tls_client "$s" "$port" "$TLS_WARMUP" "$RUN/clients/warm-up.txt"
    rm -f "$RUN/clients/warm-up.txt"*
    before=$(server_tls_counters "$t")
    p0=$(ticks ${TPIDS[$t]})
    o0=$(ticks "${ORIGIN_PIDS[@]}")
    m0=$(machine_busy_ticks)
    t0=$EPOCHREALTIME
    cpu=$({ TIMEFORMAT='%3U %3S'; time tls_client "$s" "$port" "$DURATION" "$out"; } 2>&1 | tail -n 1)
    t1=$EPOCHREALTIME
    m1=$(machine_busy_ticks)
    p1=$(ticks ${TPIDS[$t]})
    o1=$(ticks "${ORIGIN_PIDS[@]}")
    after=$(server_tls_counters "$t")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    case $s in
    tls)
        rate=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
        count=$(awk '/ requests in / { print $1 }' "$out")
        p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
        p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
        errors=$(awk '/Non-2xx or 3xx responses:/ { n += $NF }
            /Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$out")
        unit=req
        ;;
    h2)
        rate=$(awk '/^finished in / { print $4 }' "$out")
        count=$(awk '/^requests: / { print $6 }' "$out") # done
        mean=$(awk '/^time for request:/ { print $6 }' "$out")
        [ -z "$mean" ] || mean=$(to_us "$mean")
        errors=$(awk '/^requests: / { print $10 }' "$out") # failed: non-2xx/3xx and errors
        unit=req
        ;;
    handshake)
        count=0
        for f in "$out".*; do
            [ -f "$f" ] || continue
            n=$(awk '/connections in .* real seconds/ { print $1 }' "$f")
            b=$(awk '/real seconds, .* bytes read per connection/ { print $(NF - 4) }' "$f")
            # an s_time that stopped early, or that got no response
            if [ -z "$n" ] || [ "${b:-0}" -lt 20 ]; then bad=$((bad + 1)); fi
            count=$((count + ${n:-0}))
        done
        cat "$out".* >"$out" && rm -f "$out".*
        rate=$(awk -v n="$count" -v w="$wall" 'BEGIN { printf "%.1f", n / w }')
        errors=$bad
        unit=hs
        ;;
    esac
    [ -n "$rate" ] || die "$s client printed no result for $t; see $out"
    set -- $before $after
    [ "$1" = - ] || full=$(($4 - $1))
    [ "$2" = - ] || resumed=$(($5 - $2))
    [ "$3" = - ] || failed=$(($6 - $3))
    [ "$s" != handshake ] || [ "$failed" = - ] || errors=$((errors + failed))
    pcpu=$(awk -v d=$((p1 - p0)) -v hz="$CLK_TCK" -v w="$wall" 'BEGIN { printf "%.1f", d / hz / w * 100 }')
    ocpu=$(awk -v d=$((o1 - o0)) -v hz="$CLK_TCK" -v w="$wall" 'BEGIN { printf "%.1f", d / hz / w * 100 }')
    ccpu=$(awk -v c="$cpu" -v w="$wall" 'BEGIN { split(c, a, " "); printf "%.1f", (a[1] + a[2]) / w * 100 }')
    xcpu=$(awk -v m=$((m1 - m0)) -v hz="$CLK_TCK" -v w="$wall" -v p="$pcpu" -v o="$ocpu" -v c="$ccpu" \
        'BEGIN { x = m / hz / w * 100 - p - o - c; printf "%.1f", x < 0 ? 0 : x }')
    kept=1
    if [ "$last" = 0 ] && awk -v x="$xcpu" -v m="$OTHER_MAX" 'BEGIN { exit !(x > m) }'; then
        kept=0
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$t" \
        "$rep" "$wall" "$rate" "$count" "$p50" "$p99" "$mean" "${errors:-0}" "$pcpu" "$ocpu" \
        "$ccpu" "$xcpu" "$kept" "$full" "$resumed" "$failed" >>"$RUN/tls_cells.tsv"
    log "$(printf '%-9s %-9s rep %s: %7.0f %s/s  proxy %5s%%  origins %5s%%  client %5s%%  other %5s%%  errors %s%s%s' \
        "$s" "$t" "$rep" "$rate" "$unit" "$pcpu" "$ocpu" "$ccpu" "$xcpu" "${errors:-0}" \
        "$([ "$s" = handshake ] && echo "  server: full $full resumed $resumed failed $failed")" \
        "$([ $kept = 1 ] || echo '  disturbed: not kept')")"
    [ "$kept" = 1 ]
}

TLS_SUITES=()
for s in tls h2 handshake; do
    has_suite "$s" && TLS_SUITES+=("$s")
done
if [ ${#TLS_SUITES[@]} -gt 0 ]; then
    mkdir -p "$RUN/clients"
    log "TLS: ${TLS_SUITES[*]}, $REPS x ${DURATION}s each after ${TLS_WARMUP}s warm-up, interleaved"
    for rep in $(seq "$REPS"); do
        for s in "${TLS_SUITES[@]}"; do
            for t in "${ACTIVE[@]}"; do
                [ "$t" != direct ] && [ -n "${TLS_OK[$t]:-}" ] && [ -z "${SKIP_CELL[$s/$t]:-}" ] || continue
                for try in $(seq 0 "$RETRIES"); do
                    run_tls_cell "$s" "$t" "$rep" $((try == RETRIES)) && break
                    wait_quiet
                done
            done
        done
    done
fi

if has_suite idle-tls; then
    idle_test "$RUN/idle_tls.tsv" 1
fi

# ---- report --------------------------------------------------------------------------------

"$PY" bench/report.py "$RUN" >"$RUN/table.md"
echo
cat "$RUN/meta.txt"
echo
cat "$RUN/table.md"
echo
echo "results: $RUN/ (cells.tsv, idle.tsv, table.md, configs, logs)"
