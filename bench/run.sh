#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Meridian's benchmark: HTTP/1.1 keep-alive throughput and idle-connection memory of Meridian,
# HAProxy and nginx as one-worker reverse proxies in front of the same five origins, plus wrk
# straight at one origin as the ceiling. Follows shared/BENCHMARKING.md: proxy alone on cpu1,
# wrk and origins on cpu0, targets interleaved, repeated, medians with min-max, CPU shares
# measured, ratios to HAProxy from the same run. Builds nothing; see bench/README.md.
#
#   bench/run.sh [--quick]
#
# Environment: MERIDIAN (_build/src/meridian), ORIGIN (_build/tests/tools/origin), REPS (3), DURATION (10 s),
# WARMUP (2 s), CONNS (64), IDLE_CONNS (10000; capped at 9900 by the 20,000 open files), TARGETS
# ("direct haproxy nginx meridian"). --quick: REPS=1 DURATION=3. A missing Meridian binary
# skips its rows. This machine is shared: a cell during which other processes used more than
# OTHER_MAX (10) % CPU is recorded as not kept and run again, up to RETRIES (2) times, after
# waiting up to QUIET_WAIT (60) s for the machine to calm down (also done before starting).
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
MERIDIAN=${MERIDIAN:-_build/src/meridian}
ORIGIN=${ORIGIN:-_build/tests/tools/origin}
REPS=${REPS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
IDLE_CONNS=${IDLE_CONNS:-10000}
TARGETS=${TARGETS:-direct haproxy nginx meridian}
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

die() {
    echo "run.sh: $*" >&2
    exit 1
}
log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

for tool in wrk taskset ss curl "$PY"; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
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

# ---- processes: everything started is stopped by PID on exit ----------------------------------

PIDS=()     # everything to stop, children or not (nginx's worker is its master's child)
CHILDREN=() # our own background children, to reap

is_alive() { # a zombie is not alive
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

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

# Proxy ports come from below the ephemeral range (where wrk's and the proxies' own outgoing
# connections take their local ports), checked free with ss. Origins bind port 0 and say
# which port they got.
USED_PORTS=" "
EPH_LO=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
pick_port() { # sets PORT
    local lo=20000 hi=$((EPH_LO - 1)) try
    [ "$hi" -gt $((lo + 1000)) ] || hi=60000
    for try in $(seq 200); do
        PORT=$((lo + ((RANDOM << 15) | RANDOM) % (hi - lo + 1)))
        case "$USED_PORTS" in *" $PORT "*) continue ;; esac
        if [ -z "$(ss -Hltn "sport = :$PORT")" ]; then
            USED_PORTS+="$PORT "
            return 0
        fi
    done
    die "no free port found"
}

# Replaces @KEY@ by VALUE for each KEY=VALUE argument.
render() {
    local tpl=$1 out=$2 text kv
    shift 2
    text=$(<"$tpl")
    for kv in "$@"; do
        text=${text//@${kv%%=*}@/${kv#*=}}
    done
    printf '%s\n' "$text" >"$out"
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

ORIGIN_PIDS=()
ORIGIN_PORTS=()
for i in 1 2 3 4 5; do
    taskset -c 0 "$ORIGIN" -q -n "region-$i" -l 127.0.0.1:0 \
        >"$RUN/logs/origin-$i.out" 2>"$RUN/logs/origin-$i.err" &
    PIDS+=($!)
    CHILDREN+=($!)
    ORIGIN_PIDS+=($!)
done
for i in 0 1 2 3 4; do
    for try in $(seq 50); do
        grep -q '^ready ' "$RUN/logs/origin-$((i + 1)).out" && break
        sleep 0.1
    done
    line=$(grep '^ready ' "$RUN/logs/origin-$((i + 1)).out") || die "origin $((i + 1)) did not start: $(cat "$RUN/logs/origin-$((i + 1)).err")"
    ORIGIN_PORTS+=("${line##*:}")
done
log "origins on ports ${ORIGIN_PORTS[*]}"

# ---- proxies -----------------------------------------------------------------------------

declare -A TPORT TPIDS
SKIPPED=()
printf 'target\treason\n' >"$RUN/skipped.tsv"

skip() {
    log "skipping $1: $2"
    SKIPPED+=("$1")
    printf '%s\t%s\n' "$1" "$2" >>"$RUN/skipped.tsv"
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
    render bench/haproxy.cfg.in "$RUN/conf/haproxy.cfg" PORT="$PORT" SERVERS="${servers%$'\n'}" \
        MAXCONN="$HAPROXY_MAXCONN" NOFILE="$NOFILE"
    taskset -c 1 haproxy -f "$RUN/conf/haproxy.cfg" >"$RUN/logs/haproxy.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPORT[haproxy]=$PORT
    TPIDS[haproxy]=$!
}

start_nginx() {
    local servers="" i
    for i in 0 1 2 3 4; do
        servers+="        server 127.0.0.1:${ORIGIN_PORTS[i]};"$'\n'
    done
    pick_port
    render bench/nginx.conf.in "$RUN/conf/nginx.conf" PORT="$PORT" SERVERS="${servers%$'\n'}" \
        DIR="$RUN_ABS/nginx" NOFILE="$NOFILE" WORKER_CONNECTIONS=$((2 * IDLE_CONNS + 200 < NOFILE ? 2 * IDLE_CONNS + 200 : NOFILE))
    taskset -c 1 nginx -c "$RUN_ABS/conf/nginx.conf" -p "$RUN_ABS/nginx" \
        >"$RUN/logs/nginx.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPORT[nginx]=$PORT
    TPIDS[nginx]=$!
}

start_meridian() {
    local backends="" i
    for i in 0 1 2 3 4; do
        backends+="\"127.0.0.1:${ORIGIN_PORTS[i]}\", "
    done
    pick_port
    render bench/meridian.yaml.in "$RUN/conf/meridian.yaml" PORT="$PORT" \
        BACKENDS="${backends%, }"
    taskset -c 1 "$MERIDIAN" -c "$RUN/conf/meridian.yaml" >"$RUN/logs/meridian.log" 2>&1 &
    PIDS+=($!)
    CHILDREN+=($!)
    TPORT[meridian]=$PORT
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
    else
        skip "$t" "did not answer 200 on port ${TPORT[$t]}; see $RUN/logs/$t.log"
        tail -n 5 "$RUN/logs/$t.log" >&2 || true
    fi
done
[ ${#ACTIVE[@]} -gt 0 ] || die "nothing to measure"

{
    printf '# run %s on %s, kernel %s, load %s, machine %s%% busy before start\n' "$STAMP" \
        "$(hostname)" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$BUSY_BEFORE"
    printf '# %s; %s; wrk -t1 -c%s -d%ss --latency; reps %s, warm-up %ss\n' \
        "$(haproxy -v 2>/dev/null | head -1)" "$(nginx -v 2>&1)" "$CONNS" "$DURATION" "$REPS" "$WARMUP"
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
run_cell() {
    local t=$1 rep=$2 last=$3 url="http://127.0.0.1:${TPORT[$1]}/" out="$RUN/wrk/$1-$2.txt"
    local p0 p1 o0 o1 m0 m1 t0 t1 cpu wall rps reqs p50 p99 non2xx sockerr pcpu ocpu wcpu xcpu kept
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null
    p0=$(ticks ${TPIDS[$t]})
    o0=$(ticks "${ORIGIN_PIDS[@]}")
    m0=$(machine_busy_ticks)
    t0=$EPOCHREALTIME
    cpu=$({ TIMEFORMAT='%3U %3S'; time taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
        "$url" >"$out"; } 2>&1 | tail -n 1)
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
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rep" "$wall" "$rps" \
        "$reqs" "$p50" "$p99" "${non2xx:-0}" "${sockerr:-0}" "$pcpu" "$ocpu" "$wcpu" "$xcpu" "$kept" \
        >>"$RUN/cells.tsv"
    log "$(printf '%-9s rep %s: %7.0f req/s  p50 %6s us  p99 %6s us  proxy %5s%%  origins %5s%%  wrk %5s%%  other %5s%%%s' \
        "$t" "$rep" "$rps" "$p50" "$p99" "$pcpu" "$ocpu" "$wcpu" "$xcpu" \
        "$([ $kept = 1 ] || echo '  disturbed: not kept')")"
    [ "$kept" = 1 ]
}

log "throughput: ${ACTIVE[*]}, $REPS x ${DURATION}s each after ${WARMUP}s warm-up, interleaved"
for rep in $(seq "$REPS"); do
    for t in "${ACTIVE[@]}"; do
        for try in $(seq 0 "$RETRIES"); do
            run_cell "$t" "$rep" $((try == RETRIES)) && break
            wait_quiet
        done
    done
done

# ---- idle connections ----------------------------------------------------------------------

printf 'target\tconns\tok\tfailed\tnon200\tclosed_early\trss_before_kb\trss_idle_kb\trss_after_close_kb\tbytes_per_conn\n' \
    >"$RUN/idle.tsv"
if [ "$IDLE_CONNS" -gt 0 ]; then
    for t in "${ACTIVE[@]}"; do
        [ "$t" != direct ] || continue
        log "idle memory: $IDLE_CONNS keep-alive connections to $t"
        root=${TPIDS[$t]%% *}
        taskset -c 0 "$PY" bench/idle_conns.py --port "${TPORT[$t]}" --pid "$root" \
            -n "$IDLE_CONNS" >"$RUN/logs/idle-$t.txt" 2>&1 || true
        result=$(grep '^RESULT ' "$RUN/logs/idle-$t.txt" || true)
        if [ -z "$result" ]; then
            log "idle test of $t failed: $(tail -n 3 "$RUN/logs/idle-$t.txt")"
            continue
        fi
        sed -n '1,2p' "$RUN/logs/idle-$t.txt" | sed 's/^/    /' >&2
        # RESULT k=v ... -> values in the header's order
        printf '%s' "$t" >>"$RUN/idle.tsv"
        for key in conns ok failed non200 closed_early rss_before_kb rss_idle_kb rss_after_close_kb bytes_per_conn; do
            v=$(tr ' ' '\n' <<<"$result" | sed -n "s/^$key=//p")
            printf '\t%s' "$v" >>"$RUN/idle.tsv"
        done
        printf '\n' >>"$RUN/idle.tsv"
    done
fi

# ---- report --------------------------------------------------------------------------------

"$PY" bench/report.py "$RUN" >"$RUN/table.md"
echo
cat "$RUN/meta.txt"
echo
cat "$RUN/table.md"
echo
echo "results: $RUN/ (cells.tsv, idle.tsv, table.md, configs, logs)"
