#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Meridian at its descriptor cap: the target run of issue 10 ("Hardening") for "19,000 idle
# connections: RSS per connection within 10% of the README's figures, and accepting resumes as
# soon as descriptors free up". Too heavy for CI (about 5 minutes, 19,000 sockets on each side);
# run it by hand before resolving. Three parts, each against real processes on 127.0.0.1:
#
#  1. RSS per idle connection. One Meridian (one worker, as bench/run.sh runs it) with
#     limits.max_connections = CONNS (19,000), a plain and a TLS listener (a throwaway ECDSA P-256
#     certificate) and the five origins of bench/run.sh (tests/tools/origin) behind it. CONNS idle
#     keep-alive connections, each after one request, held by bench/idle_conns.py --hold
#     processes of at most PER_CLIENT (9,500) each, since one process may hold 20,000 files here;
#     the growth of Meridian's VmRSS over the idle connections still open, as idle_conns.py
#     measures it. Plain first, then TLS 1.3 (full handshakes) in the same process, the order of
#     bench/run.sh, where the README's figures come from.
#  2. Resume at limits.max_connections: with the CONNS plain connections open, the process is at
#     its limit. A new client's request must stay unanswered for BACKLOG_WAIT (2) s, its
#     connection waiting in the listen backlog (ss shows it in the listener's Recv-Q); then one
#     idle connection is closed, and the time from that close() to the new client's 200 is the
#     resume latency. RESUME_TRIALS (5) times; each new client keeps its connection, so the
#     process is full again for the next trial.
#  3. Resume at the descriptor limit (EMFILE): a second Meridian whose open-file limit is
#     EMFILE_NOFILE (default: this shell's hard limit) and whose max_connections is far above it,
#     filled with idle connections until every descriptor it may have is in use (counted in
#     /proc/PID/fd); then the same trials. accept4() fails with EMFILE there, and Meridian pauses
#     accepting for 100 ms at a time (worker_accept_backoff in src/worker.c). Meridian's idle
#     connections to the origins close after 30 s unused and free descriptors of their own, so
#     before each trial the free ones are filled again, and a trial whose new client got in
#     before any close is started over (see trial).
#
# Beyond about 14,000 connections to one address and port, each connect() of the clients takes
# ~0.7 ms instead of ~0.04 (connect() tries the even half of the 28,232 ephemeral ports here
# first, and once those are taken towards that address, scans all of them before each odd one):
# the second client of each part opens its connections several times slower than the first. That
# is the clients' kernel, not Meridian (the same happens straight to an origin).
#
# Prints a table (also in bench/results/idle19k-STAMP/table.md, with the configurations and
# every process's output); exits 0 when every check passed, 1 otherwise.
#
#   bench/idle_19k.sh
#
# Environment: MERIDIAN_BUILD (_build: its src/meridian and tests/tools/origin), CONNS (19000),
# TLS_CONNS (CONNS; 0 skips TLS), PER_CLIENT (9500 connections per client process), WORKERS (1),
# RESUME_TRIALS (5), BACKLOG_WAIT (2 s), RESUME_MAX_MS (500: slower is a failure), EMFILE_NOFILE
# (the hard open-file limit; 0 skips part 3), TOLERANCE (10 %), README_PLAIN_KIB and
# README_TLS_KIB (read from the README's Performance table: Meridian's "RSS per idle" rows).
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
MERIDIAN_BUILD=${MERIDIAN_BUILD:-$PWD/_build}
MERIDIAN=$MERIDIAN_BUILD/src/meridian
ORIGIN=$MERIDIAN_BUILD/tests/tools/origin
CONNS=${CONNS:-19000}
TLS_CONNS=${TLS_CONNS:-$CONNS}
PER_CLIENT=${PER_CLIENT:-9500}
WORKERS=${WORKERS:-1}
RESUME_TRIALS=${RESUME_TRIALS:-5}
BACKLOG_WAIT=${BACKLOG_WAIT:-2}
RESUME_MAX_MS=${RESUME_MAX_MS:-500}
TOLERANCE=${TOLERANCE:-10}
PY=/usr/bin/python3
BATCH=500 # connections each client opens at once, as bench/run.sh's idle test


# Meridian's own figures in the README's Performance table (the fourth column)
readme_kib() {
    awk -F'|' -v row="$1" 'index($2, row) { v = $5; gsub(/[^0-9.]/, "", v); print v; exit }' README
}
README_PLAIN_KIB=${README_PLAIN_KIB:-$(readme_kib "RSS per idle keep-alive connection")}
README_TLS_KIB=${README_TLS_KIB:-$(readme_kib "RSS per idle TLS connection")}
[ -n "$README_PLAIN_KIB" ] && [ -n "$README_TLS_KIB" ] ||
    die "the README has no \"RSS per idle\" rows; set README_PLAIN_KIB and README_TLS_KIB"

for tool in taskset ss curl openssl "$PY"; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
[ -x "$MERIDIAN" ] || die "no meridian at $MERIDIAN (build it, or set MERIDIAN_BUILD)"
[ -x "$ORIGIN" ] || die "no origin at $ORIGIN (make tests/tools/origin)"

# Every process started here inherits the hard limit as its soft one. Meridian holds CONNS
# client connections, up to BATCH connections to the origins (one per request in flight while
# the clients open theirs) and a few of its own (listeners, epoll, eventfds, log).
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
[ "$CONNS" -ge "$TLS_CONNS" ] || die "TLS_CONNS ($TLS_CONNS) may not exceed CONNS ($CONNS)"
[ $((CONNS + BATCH + 100)) -le "$NOFILE" ] ||
    die "$CONNS connections need about $((CONNS + BATCH + 100)) open files in Meridian; the limit is $NOFILE"
[ $((PER_CLIENT + 100)) -le "$NOFILE" ] || die "PER_CLIENT ($PER_CLIENT) does not fit in $NOFILE open files"
EMFILE_NOFILE=${EMFILE_NOFILE:-$NOFILE}
[ "$EMFILE_NOFILE" -le "$NOFILE" ] || die "EMFILE_NOFILE ($EMFILE_NOFILE) is above the hard limit $NOFILE"
[ "$EMFILE_NOFILE" = 0 ] || [ "$EMFILE_NOFILE" -ge 1000 ] || die "EMFILE_NOFILE: 0 (skip) or at least 1000"

RUN=bench/results/idle19k-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN/logs" "$RUN/tls"
RUN_ABS=$PWD/$RUN
exec 2> >(tee -a "$RUN/run.log" >&2)

# ---- processes: everything started is stopped by PID on exit -----------------------------------

PIDS=()
declare -A HPID HIN # client (holder) name -> its PID, the descriptor of its stdin (a FIFO)


stop_pid() { # TERM, then KILL after 5 s; reaps it and forgets it (its PID may be reused)
    local pid=$1 i kept=()
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
        is_alive "$pid" || break
        sleep 0.1
    done
    is_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for i in "${PIDS[@]}"; do
        [ "$i" = "$pid" ] || kept+=("$i")
    done
    PIDS=("${kept[@]}")
}

cleanup() {
    local pid name
    trap - EXIT INT TERM
    for name in "${!HIN[@]}"; do
        eval "exec ${HIN[$name]}>&-" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    while [ ${#PIDS[@]} -gt 0 ]; do
        stop_pid "${PIDS[0]}"
    done
    rm -f "$RUN"/*.in # the clients' FIFOs
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A background child must not keep the clients' FIFOs open for writing: a client would then
# never see the end of its commands.
close_holder_fds() {
    local name
    for name in "${!HIN[@]}"; do
        eval "exec ${HIN[$name]}>&-"
    done
}


origin_conns() { ss -Htn state established "( $ORIGIN_FILTER )" | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
nfds() { ls "/proc/$1/fd" | wc -l; }
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; } # kv LINE KEY: KEY=value in LINE
backlog() { # connections waiting in the accept queues of the listeners on port $1
    ss -Hltn "sport = :$1" | awk '{ n += $2 } END { print n + 0 }'
}

# ---- clients: bench/idle_conns.py --hold, driven through a FIFO --------------------------------

# holder_start NAME PORT N BATCH WAIT [idle_conns.py options]: N connections to PORT of $MPID
holder_start() {
    local name=$1 port=$2 n=$3 batch=$4 wait=$5 fd
    shift 5
    rm -f "$RUN/$name.in"
    mkfifo "$RUN/$name.in"
    (
        close_holder_fds
        exec taskset -c 0 "$PY" bench/idle_conns.py --hold --port "$port" --pid "$MPID" -n "$n" \
            --batch "$batch" --wait "$wait" "$@"
    ) <"$RUN/$name.in" >"$RUN/logs/$name.out" 2>"$RUN/logs/$name.err" &
    HPID[$name]=$!
    PIDS+=($!)
    exec {fd}>"$RUN/$name.in"
    HIN[$name]=$fd
}

# holder_line NAME PREFIX K TIMEOUT: prints the K-th line of NAME's output starting with PREFIX,
# once there is one; fails when NAME exits first or after TIMEOUT s
holder_line() {
    local name=$1 prefix=$2 k=$3 timeout=$4 t0=$SECONDS line
    while :; do
        line=$(grep "^$prefix" "$RUN/logs/$name.out" | sed -n "${k}p")
        if [ -n "$line" ]; then
            echo "$line"
            return 0
        fi
        if ! is_alive "${HPID[$name]}"; then
            log "client $name exited: $(tail -n 3 "$RUN/logs/$name.err" "$RUN/logs/$name.out")"
            return 1
        fi
        [ $((SECONDS - t0)) -lt "$timeout" ] || { log "client $name: no $prefix line in ${timeout}s"; return 1; }
        sleep 0.05
    done
}

# holder_cmd NAME COMMAND PREFIX: sends COMMAND, prints its answer
holder_cmd() {
    local n
    is_alive "${HPID[$1]}" || { log "client $1 is gone"; return 1; } # a write would kill us
    n=$(grep -c "^$3" "$RUN/logs/$1.out" || true)
    echo "$2" >&"${HIN[$1]}"
    holder_line "$1" "$3" $((n + 1)) 30
}

holder_end() { # closes NAME's stdin: it closes its connections and exits
    local fd=${HIN[$1]}
    eval "exec $fd>&-"
    unset "HIN[$1]"
    stop_pid_after "${HPID[$1]}" 60
}

stop_pid_after() { # waits up to $2 s for PID $1 to exit by itself, then stops it
    local i
    for i in $(seq $(($2 * 10))); do
        is_alive "$1" || break
        sleep 0.1
    done
    stop_pid "$1"
}

# fill NAME_PREFIX PORT TOTAL [idle_conns.py options]: TOTAL idle connections from as many
# clients of at most PER_CLIENT each; sets HOLDERS (their names) and OPENED (connections open)
fill() {
    local prefix=$1 port=$2 total=$3 i=0 n line
    shift 3
    HOLDERS=()
    OPENED=0
    while [ "$OPENED" -lt "$total" ]; do
        i=$((i + 1))
        n=$((total - OPENED))
        [ "$n" -le "$PER_CLIENT" ] || n=$PER_CLIENT
        holder_start "$prefix$i" "$port" "$n" "$BATCH" 3 "$@"
        HOLDERS+=("$prefix$i")
        line=$(holder_line "$prefix$i" HOLD 1 900) || return 1
        log "  client $prefix$i: $(kv "$line" open) of $n open ($(kv "$line" failed) failed, $(kv "$line" non200) non-200, $(kv "$line" closed_early) closed early); Meridian VmRSS $(kv "$line" rss_idle_kb) kB"
        OPENED=$((OPENED + $(kv "$line" open)))
        if [ "$(kv "$line" open)" -lt "$n" ]; then
            log "  client $prefix$i could not open all of its connections: stopping there"
            return 1
        fi
    done
}

# still_open: asks every client in HOLDERS which connections the proxy closed; sets OPENED
still_open() {
    local h line
    OPENED=0
    for h in "${HOLDERS[@]}"; do
        line=$(holder_cmd "$h" check CHECK) || return 1
        OPENED=$((OPENED + $(kv "$line" open)))
        [ "$(kv "$line" closed)" = 0 ] || log "  client $h: Meridian closed $(kv "$line" closed) idle connections"
    done
}

end_holders() {
    local h
    for h in "${HOLDERS[@]}"; do
        [ -n "${HIN[$h]:-}" ] && holder_end "$h"
    done
    HOLDERS=()
}

# ---- the new client of a resume trial ------------------------------------------------------------

# Connects, sends one request, prints `SENT at=T`, then `RESPONSE status=S at=T` when the response
# head is in (T: time.monotonic(), as idle_conns.py's CLOSED lines), and keeps its connection
# until it is stopped, so that the process it was let into is full again.
cat >"$RUN/probe.py" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: meridian-bench-probe\r\n\r\n")
print(f"SENT at={time.monotonic():.6f}", flush=True)
s.settimeout(None)
buf = b""
while b"\r\n\r\n" not in buf:
    data = s.recv(65536)
    if not data:
        print("CLOSED before a response", flush=True)
        sys.exit(1)
    buf += data
print(f"RESPONSE status={buf.split()[1].decode()} at={time.monotonic():.6f}", flush=True)
time.sleep(3600)
EOF

PROBES=() # PIDs of the trials' clients

# trial NAME PORT HOLDER MODE: one resume trial against a process full of idle connections, one
# of which HOLDER closes. MODE limit: at limits.max_connections, which /status shows; a client
# answered while the process is full is a failure. MODE emfile: at the descriptor limit, which the
# kernel enforces, so a client answered early, or fewer descriptors in use after the wait, means
# that descriptors came free meanwhile (idle connections to the origins time out after 30 s; the
# log shows how many are left): the attempt does not count, the process is filled again
# (emfile_topup) and the trial starts over, three times at most.
# Appends "latency_ms|status|note" to TRIALS (latency "-": failed).
trial() {
    local name=$1 port=$2 holder=$3 mode=$4 attempt out pid line t_close t_resp q status t0
    for attempt in 1 2 3; do
        out=$RUN/logs/$name-$attempt.out
        if [ "$mode" = emfile ]; then
            emfile_topup || { TRIALS+=("-|-|could not fill the descriptors again"); return 0; }
        fi
        if ! at_cap "$mode"; then
            TRIALS+=("-|-|not at the cap before the trial ($(cap_state "$mode"))")
            return 0
        fi
        (
            close_holder_fds
            exec taskset -c 0 "$PY" "$RUN/probe.py" "$port"
        ) >"$out" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        PROBES+=("$pid")
        t0=$SECONDS
        until grep -qs '^SENT' "$out"; do
            if ! is_alive "$pid" || [ $((SECONDS - t0)) -ge 10 ]; then
                TRIALS+=("-|-|could not connect: $(cat "$out")")
                return 0
            fi
            sleep 0.05
        done
        # the check itself: nothing may answer while the process is full
        sleep "$BACKLOG_WAIT"
        q=$(backlog "$port")
        if grep -q '^RESPONSE' "$out"; then
            if [ "$mode" = emfile ]; then
                log "  $name: answered before any close: a descriptor came free meanwhile ($(cap_state "$mode") now); again"
                continue
            fi
            TRIALS+=("-|-|answered while at the cap ($(cap_state "$mode") now)")
            return 0
        fi
        if ! at_cap "$mode"; then
            if [ "$mode" = emfile ]; then
                log "  $name: descriptors came free during the wait ($(cap_state "$mode")); again"
                continue
            fi
            TRIALS+=("-|-|the cap was lost during the wait ($(cap_state "$mode"))")
            return 0
        fi
        line=$(holder_cmd "$holder" "close 1" CLOSED) || { TRIALS+=("-|-|client $holder did not close"); return 0; }
        t_close=$(kv "$line" at)
        t0=$SECONDS
        until grep -q '^RESPONSE' "$out"; do
            if ! is_alive "$pid" || [ $((SECONDS - t0)) -ge 10 ]; then
                TRIALS+=("-|-|no response within 10 s of a close: $(cat "$out")")
                return 0
            fi
            sleep 0.01
        done
        line=$(grep '^RESPONSE' "$out")
        t_resp=$(kv "$line" at)
        status=$(kv "$line" status)
        TRIALS+=("$(awk -v a="$t_close" -v b="$t_resp" 'BEGIN { printf "%.1f", (b - a) * 1000 }')|$status|unanswered ${BACKLOG_WAIT}s at the cap (backlog $q)$([ "$attempt" = 1 ] || echo ", attempt $attempt")")
        return 0
    done
    TRIALS+=("-|-|answered early in 3 attempts: descriptors kept coming free")
}

cap_state() { # what the cap of MODE looks like now
    case $1 in
    limit) echo "connections/max_connections $(status_conns)" ;;
    emfile) echo "$(nfds "$MPID") of $EMFILE_NOFILE descriptors, $(origin_conns) of them to the origins" ;;
    esac
}

at_cap() {
    case $1 in
    limit) [ "$(status_conns)" = "$CONNS/$CONNS" ] ;;
    emfile) [ "$(nfds "$MPID")" -ge "$EMFILE_NOFILE" ] ;;
    esac
}

# emfile_topup: fills the descriptors Meridian has free (EMFILE_NOFILE less those in
# /proc/PID/fd) with idle connections from new clients, whose names go to HOLDERS. Each request
# needs a connection to an origin, which the process keeps open (idle) afterwards: large clients
# while room is plenty (BATCH at once, leaving room for up to BATCH new origin connections),
# then the rest less 30 in batches of 20, then the exact rest one at a time, on the origin
# connections now open. Fails when that takes ten clients more than the large ones.
EMFILE_CLIENTS=0
emfile_topup() {
    local free n batch line name
    while free=$((EMFILE_NOFILE - $(nfds "$MPID"))) && [ "$free" -gt 0 ]; do
        [ "$EMFILE_CLIENTS" -lt $((EMFILE_NOFILE / PER_CLIENT + 12)) ] || return 1
        if [ "$free" -gt $((BATCH + 500)) ]; then
            n=$((free - BATCH - 100))
            [ "$n" -le "$PER_CLIENT" ] || n=$PER_CLIENT
            batch=$BATCH
        elif [ "$free" -gt 40 ]; then
            n=$((free - 30))
            batch=20
        else
            n=$free
            batch=1
        fi
        EMFILE_CLIENTS=$((EMFILE_CLIENTS + 1))
        name=emfile-$EMFILE_CLIENTS
        holder_start "$name" "$HTTP_PORT" "$n" "$batch" 0
        HOLDERS+=("$name")
        line=$(holder_line "$name" HOLD 1 600) || return 1
        log "  client $name: $(kv "$line" open) of $n open ($(kv "$line" failed) failed); Meridian has $(cap_state emfile)"
    done
}

stop_probes() {
    local pid
    for pid in "${PROBES[@]}"; do
        stop_pid "$pid"
    done
    PROBES=()
}

# summarize_trials LABEL: logs each trial of TRIALS, sets RESUME_SUMMARY and RESUME_OK (0|1)
summarize_trials() {
    local t lat status note lats=() bad=0 i=0
    for t in "${TRIALS[@]}"; do
        i=$((i + 1))
        IFS='|' read -r lat status note <<<"$t"
        log "  $1 trial $i: $([ "$lat" = - ] && echo "FAILED" || echo "200 after $lat ms ($status)"): $note"
        if [ "$lat" = - ] || [ "$status" != 200 ] ||
            awk -v l="$lat" -v m="$RESUME_MAX_MS" 'BEGIN { exit !(l > m) }'; then
            bad=$((bad + 1))
        fi
        [ "$lat" = - ] || lats+=("$lat")
    done
    RESUME_OK=$([ "$bad" = 0 ] && [ ${#TRIALS[@]} -gt 0 ] && echo 1 || echo 0)
    if [ ${#lats[@]} -gt 0 ]; then
        RESUME_SUMMARY=$(printf '%s\n' "${lats[@]}" | sort -n | awk '{ v[NR] = $1 } END {
            printf "median %.1f ms, min %.1f, max %.1f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }')
    else
        RESUME_SUMMARY="no trial got through"
    fi
    RESUME_SUMMARY+=" ($((${#TRIALS[@]} - bad)) of ${#TRIALS[@]} passed)"
}

# ---- origins, certificate, Meridian -------------------------------------------------------------

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -days 2 -keyout "$RUN_ABS/tls/key.pem" \
    -out "$RUN_ABS/tls/cert.pem" >"$RUN/logs/openssl-req.log" 2>&1 ||
    die "could not make a certificate: $(cat "$RUN/logs/openssl-req.log")"
chmod 600 "$RUN_ABS/tls/key.pem"

ORIGIN_PIDS=()
BACKENDS=""
ORIGIN_FILTER="" # ss: connections to the origins (only Meridian makes them)
for i in 1 2 3 4 5; do
    taskset -c 0 "$ORIGIN" -q -n "region-$i" -l 127.0.0.1:0 \
        >"$RUN/logs/origin-$i.out" 2>"$RUN/logs/origin-$i.err" &
    PIDS+=($!)
    ORIGIN_PIDS+=($!)
done
for i in 1 2 3 4 5; do
    for _ in $(seq 100); do
        grep -q '^ready ' "$RUN/logs/origin-$i.out" && break
        is_alive "${ORIGIN_PIDS[i - 1]}" || break
        sleep 0.05
    done
    line=$(grep '^ready ' "$RUN/logs/origin-$i.out") || die "origin $i did not start: $(cat "$RUN/logs/origin-$i.err")"
    BACKENDS+="\"127.0.0.1:${line##*:}\", "
    ORIGIN_FILTER+="${ORIGIN_FILTER:+ or }dport = :${line##*:}"
done
log "origins: ${BACKENDS%, }"

pick_port
HTTP_PORT=$PORT
pick_port
TLS_PORT=$PORT
pick_port
ADMIN_PORT=$PORT

# write_conf FILE MAX_CONNECTIONS: bench/meridian.yaml.in's Meridian, with the limit, and an
# idle timeout longer than the whole run (the first of 19,000 TLS clients waits for the last)
write_conf() {
    cat >"$1" <<EOF
workers: $WORKERS
run_as_root: true
log_level: warn
listeners:
  - { name: http, address: "127.0.0.1:$HTTP_PORT" }
  - name: https
    address: "127.0.0.1:$TLS_PORT"
    tls:
      certificates:
        - { cert: $RUN_ABS/tls/cert.pem, key: $RUN_ABS/tls/key.pem }
      alpn: [h2, http/1.1]
admin: { address: "127.0.0.1:$ADMIN_PORT" }
timeouts: { client_idle: 30m }
regions:
  - name: bench
    location: { lat: 50.11, lon: 8.68 }
    backends: [${BACKENDS%, }]
    default: true
limits: { max_connections: $2 }
EOF
    "$MERIDIAN" -t -c "$1" >"$RUN/logs/meridian-check.log" 2>&1 ||
        die "meridian -t rejects $1: $(tail -n 3 "$RUN/logs/meridian-check.log")"
}

# start_meridian NAME CONF NOFILE: sets MPID; the open-file limit NOFILE (soft and hard)
start_meridian() {
    local t0 code=
    (
        close_holder_fds
        ulimit -n "$3"
        exec taskset -c 1 "$MERIDIAN" -c "$2"
    ) >"$RUN/logs/$1.log" 2>&1 &
    MPID=$!
    PIDS+=("$MPID")
    t0=$SECONDS
    while [ "$code" != 200 ]; do
        is_alive "$MPID" || die "$1 exited: $(tail -n 5 "$RUN/logs/$1.log")"
        [ $((SECONDS - t0)) -lt 20 ] || die "$1 does not answer on port $HTTP_PORT: $(tail -n 5 "$RUN/logs/$1.log")"
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/" || true)
        [ "$code" = 200 ] || sleep 0.05
    done
    code=$(curl -sk -o /dev/null -m 5 -w '%{http_code}' --resolve "bench.test:$TLS_PORT:127.0.0.1" \
        "https://bench.test:$TLS_PORT/" || true)
    [ "$code" = 200 ] || die "$1: its TLS listener answers '$code'"
    log "$1 (pid $MPID) ready on $HTTP_PORT (TLS $TLS_PORT); $(grep '^Max open files' "/proc/$MPID/limits" | tr -s ' ')"
}

status_conns() { # "connections/max_connections" from the admin /status
    curl -s -m 5 "http://127.0.0.1:$ADMIN_PORT/status" |
        sed -n 's/.*"connections":\([0-9]*\),"max_connections":\([0-9]*\).*/\1\/\2/p'
}

# rss_test KIND PORT N [idle_conns.py options]: N idle connections; sets PER_KIB, RSS_NOTE
rss_test() {
    local kind=$1 port=$2 n=$3 before after t0
    shift 3
    sleep 0.5 # as idle_conns.py: let the last requests' buffers settle
    before=$(rss_kb "$MPID")
    t0=$SECONDS
    log "$kind: $n idle connections, clients of at most $PER_CLIENT (VmRSS before: $before kB)"
    fill "$kind-" "$port" "$n" "$@" || true
    after=$(rss_kb "$MPID")
    still_open || true
    PER_KIB=$(awk -v a="$after" -v b="$before" -v n="$OPENED" 'BEGIN { if (n > 0) printf "%.2f", (a - b) / n; else print "-" }')
    RSS_NOTE="$OPENED open; VmRSS $before -> $after kB; opened in $((SECONDS - t0)) s"
    log "$kind: $RSS_NOTE: $PER_KIB KiB per idle connection"
}

# ---- 1 and 2: 19,000 plain connections, resume at max_connections, then 19,000 TLS ----------------

write_conf "$RUN/meridian.yaml" "$CONNS"
start_meridian meridian "$RUN/meridian.yaml" "$NOFILE"

rss_test plain "$HTTP_PORT" "$CONNS"
PLAIN_KIB=$PER_KIB
PLAIN_OPEN=$OPENED
PLAIN_NOTE=$RSS_NOTE
st=$(status_conns)
log "Meridian's /status: ${st:-?} connections/max_connections; $(nfds "$MPID") descriptors open"

TRIALS=()
if [ "$PLAIN_OPEN" = "$CONNS" ]; then
    log "resume at max_connections ($CONNS): $RESUME_TRIALS trials"
    for i in $(seq "$RESUME_TRIALS"); do
        trial "probe-limit-$i" "$HTTP_PORT" plain-1 limit
    done
else
    TRIALS+=("-|-|only $PLAIN_OPEN of $CONNS connections were open: not at the limit")
fi
summarize_trials max_connections
LIMIT_SUMMARY=$RESUME_SUMMARY
LIMIT_OK=$RESUME_OK
grep -m1 'max_connections' "$RUN/logs/meridian.log" | sed 's/^/    meridian: /' >&2 || true
stop_probes
end_holders

TLS_KIB=-
TLS_OPEN=0
TLS_NOTE="skipped (TLS_CONNS=0)"
if [ "$TLS_CONNS" -gt 0 ]; then
    t0=$SECONDS
    until [ "$(status_conns)" = "0/$CONNS" ]; do
        [ $((SECONDS - t0)) -lt 30 ] || die "Meridian still has connections: $(status_conns)"
        sleep 0.1
    done
    rss_test TLS "$TLS_PORT" "$TLS_CONNS" --tls
    TLS_KIB=$PER_KIB
    TLS_OPEN=$OPENED
    TLS_NOTE=$RSS_NOTE
    end_holders
fi
stop_pid "$MPID"

# ---- 3: the descriptor limit -------------------------------------------------------------------

EMFILE_SUMMARY="skipped (EMFILE_NOFILE=0)"
EMFILE_OK=1
EMFILE_NOTE=""
if [ "$EMFILE_NOFILE" -gt 0 ]; then
    write_conf "$RUN/meridian-emfile.yaml" 1000000
    start_meridian meridian-emfile "$RUN/meridian-emfile.yaml" "$EMFILE_NOFILE"
    log "EMFILE: filling Meridian's $EMFILE_NOFILE descriptors with idle connections"
    HOLDERS=()
    t0=$SECONDS
    emfile_topup || log "EMFILE: could not fill them"
    log "EMFILE: $(cap_state emfile) in use after $((SECONDS - t0)) s"
    TRIALS=()
    log "resume at the descriptor limit ($EMFILE_NOFILE): $RESUME_TRIALS trials"
    for i in $(seq "$RESUME_TRIALS"); do
        trial "probe-emfile-$i" "$HTTP_PORT" emfile-1 emfile
    done
    summarize_trials EMFILE
    EMFILE_SUMMARY=$RESUME_SUMMARY
    EMFILE_OK=$RESUME_OK
    if grep -q 'accept: Too many open files' "$RUN/logs/meridian-emfile.log"; then
        grep -m1 'accept: Too many open files' "$RUN/logs/meridian-emfile.log" | sed 's/^/    meridian: /' >&2
    else
        EMFILE_NOTE="; Meridian never logged EMFILE"
        EMFILE_OK=0
    fi
    stop_probes
    end_holders
    stop_pid "$MPID"
fi

# ---- the table -----------------------------------------------------------------------------------

# rss_row LABEL KIB README_KIB OPEN WANTED NOTE
rss_row() {
    local verdict ratio=-
    if [ "$2" = - ]; then
        verdict="not measured"
    else
        ratio=$(awk -v m="$2" -v r="$3" 'BEGIN { printf "%.2f", m / r }')
        if awk -v x="$ratio" -v t="$TOLERANCE" 'BEGIN { exit !(x >= 1 - t / 100 && x <= 1 + t / 100) }'; then
            verdict=PASS
        else
            verdict=FAIL
        fi
        [ "$4" = "$5" ] || verdict+=" (only $4 of $5 open)"
        [ "$verdict" = PASS ] || FAILED=1
    fi
    printf '| %-38s | %6s | %9s KiB | %8s KiB | %5s | %-10s |\n' "$1" "$4" "$2" "$3" "$ratio" "$verdict"
}

FAILED=0
{
    echo "$("$MERIDIAN" -V 2>/dev/null | head -n 1 || true) ($MERIDIAN), workers: $WORKERS, limits.max_connections: $CONNS, open files: $NOFILE"
    echo
    printf '| %-38s | %6s | %13s | %12s | %5s | %-10s |\n' "RSS per idle connection" conns measured README ratio "+-$TOLERANCE%"
    printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..40})" -------- --------------- -------------- ------- ------------
    rss_row "keep-alive (plain HTTP/1.1)" "$PLAIN_KIB" "$README_PLAIN_KIB" "$PLAIN_OPEN" "$CONNS"
    [ "$TLS_CONNS" = 0 ] || rss_row "TLS 1.3 (full handshakes, ECDSA P-256)" "$TLS_KIB" "$README_TLS_KIB" "$TLS_OPEN" "$TLS_CONNS"
    echo
    echo "plain: $PLAIN_NOTE"
    echo "TLS:   $TLS_NOTE"
    echo
    printf '| %-48s | %-56s | %-6s |\n' "accepting resumes (close() -> new client's 200)" "latency over $RESUME_TRIALS trials" result
    printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..50})" "$(printf -- '-%.0s' {1..58})" --------
    printf '| %-48s | %-56s | %-6s |\n' "at limits.max_connections ($CONNS)" "$LIMIT_SUMMARY" \
        "$([ "$LIMIT_OK" = 1 ] && echo PASS || echo FAIL)"
    [ "$EMFILE_NOFILE" = 0 ] ||
        printf '| %-48s | %-56s | %-6s |\n' "at the descriptor limit (EMFILE, $EMFILE_NOFILE)" "$EMFILE_SUMMARY$EMFILE_NOTE" \
            "$([ "$EMFILE_OK" = 1 ] && echo PASS || echo FAIL)"
    echo
    echo "A trial passes when the new client stays unanswered ${BACKLOG_WAIT}s while the process is full and gets a 200 within ${RESUME_MAX_MS} ms of one idle connection's close()."
} >"$RUN/table.md"
[ "$LIMIT_OK" = 1 ] && [ "$EMFILE_OK" = 1 ] || FAILED=1
echo
cat "$RUN/table.md"
echo
echo "results: $RUN/ (table.md, configurations, logs)"
exit "$FAILED"
