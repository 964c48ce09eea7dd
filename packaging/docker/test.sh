#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Docker image (packaging/docker/Dockerfile) with podman and checks it end to end:
# a request proxied through the container to a real origin, the HEALTHCHECK, the user it runs
# as, a reload on SIGHUP (a new generation, no request lost; a bad file refused), and a drain
# on `podman stop` (SIGTERM) that lets a slow request in flight finish and exits 0.
#
#   bash packaging/docker/test.sh            (as root; Debian 12)
#
# Not part of CI (a cold run builds a Debian base image and the image itself: see README
# "Docker image" for the times); run it before changing the Dockerfile or resolving an issue
# that touches it. There is no Docker engine here: podman with runc and cgroupfs, and the base
# image debian:bookworm-slim made by debootstrap (once; later runs reuse it: remove it with
# `podman rmi debian:bookworm-slim`). The container shares the host's network (--network=host,
# the reliable choice here), so its test configuration binds 127.0.0.1 on free ports.
#
# Environment:
#   MERIDIAN_BUILD   build tree holding tests/tools/origin (default _build; built if missing)
#   MERIDIAN_IMAGE   the image's name (default meridian:test); removed at the end unless
#   KEEP_IMAGE=1
#   BUILD_IMAGE      the build stage, tagged so that it stays as the next run's cache (its
#                    apt-get layer: a warm run only compiles); default meridian-build:test.
#                    The one it replaces is removed; KEEP_CACHE=0 removes it at the end too.
#   DEBIAN_MIRROR    for debootstrap (default http://deb.debian.org/debian)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${MERIDIAN_BUILD:-$top/_build}
image=${MERIDIAN_IMAGE:-meridian:test}
build_image=${BUILD_IMAGE:-meridian-build:test}
base=debian:bookworm-slim
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
name=meridian-docker-test-$$
podman=(podman --runtime=runc --cgroup-manager=cgroupfs)
origin_bin=$build/tests/tools/origin

now_ms() { echo $(($(date +%s%N) / 1000000)); }
t_start=$(now_ms)
say() { printf 'docker-test: %s\n' "$*"; }
fail() {
    printf 'docker-test: FAIL: %s\n' "$*" >&2
    if [ -n "${container_started:-}" ]; then
        echo "---- container log (last 40 lines) ----" >&2
        "${podman[@]}" logs --tail 40 "$name" >&2 || true
    fi
    exit 1
}
elapsed() { # since a now_ms, in seconds with one decimal
    local ms=$(($(now_ms) - $1))
    printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

# Polls "$@" until it succeeds, every 50 ms, for at most $1 seconds.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
        sleep 0.05
    done
}

# ---- what it needs ------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || { echo "docker-test: run as root (podman, debootstrap)" >&2; exit 2; }
missing=()
for c in podman runc debootstrap curl python3; do
    command -v "$c" >/dev/null || missing+=("$c")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x "$origin_bin" ]; then
    say "building $build for tests/tools/origin"
    bash "$top/packaging/build.sh" "$build" >/dev/null
fi

tmp=$(mktemp -d /tmp/meridian-docker-test.XXXXXX)
origin_pids=()
cleanup() {
    local rc=$?
    set +e
    "${podman[@]}" rm -f -t 0 "$name" >/dev/null 2>&1
    for p in "${origin_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null
    [ "${KEEP_IMAGE:-0}" = 1 ] || "${podman[@]}" rmi -f "$image" >/dev/null 2>&1
    [ "${KEEP_CACHE:-1}" = 1 ] || "${podman[@]}" rmi -f "$build_image" >/dev/null 2>&1
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

# Free loopback ports below the ephemeral range, as tests/integration/conftest.py picks them.
read -r port admin_port < <(python3 - <<'EOF'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
ports = []
while len(ports) < 2:
    p = random.randrange(max(1024, low - 12000), low)
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))
    except OSError:
        continue
    if p not in ports:
        ports.append(p)
print(*ports)
EOF
)

# ---- the base image -----------------------------------------------------------------------------
t=$(now_ms)
if "${podman[@]}" image exists "$base"; then
    say "base image $base present"
else
    say "making $base with debootstrap --variant=minbase bookworm ($mirror)"
    debootstrap --variant=minbase bookworm "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
        { tail -20 "$tmp/debootstrap.log" >&2; fail "debootstrap"; }
    # As Debian's own slim image: no package cache, no package lists.
    rm -rf "$tmp/rootfs"/var/cache/apt/archives/*.deb "$tmp/rootfs"/var/lib/apt/lists/*
    tar -C "$tmp/rootfs" -c . | "${podman[@]}" import - "$base" >/dev/null 2>&1
    rm -rf "$tmp/rootfs"
    say "base image made in $(elapsed "$t") s"
fi

# ---- the image ----------------------------------------------------------------------------------
t=$(now_ms)
say "building $image"
old_build=$("${podman[@]}" image inspect --format '{{.Id}}' "$build_image" 2>/dev/null || true)
build() {
    "${podman[@]}" build --format docker --pull=never --network=host \
        --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 \
        -f "$top/packaging/docker/Dockerfile" "$@" "$top" >>"$tmp/build.log" 2>&1 ||
        { tail -40 "$tmp/build.log" >&2; fail "podman build $*"; }
}
build --target build -t "$build_image"
build -t "$image"
t_build=$(elapsed "$t")
# The build stage this one replaces, with its compiled tree (its apt-get layer, shared, stays).
new_build=$("${podman[@]}" image inspect --format '{{.Id}}' "$build_image")
if [ -n "$old_build" ] && [ "$old_build" != "$new_build" ]; then
    "${podman[@]}" rmi "$old_build" >/dev/null 2>&1 || true
fi
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$image")
say "image built in $t_build s, $((size / 1000000)) MB"

hc=$("${podman[@]}" image inspect --format '{{json .Config.Healthcheck.Test}}' "$image")
[ "$hc" = '["CMD","/usr/local/bin/meridian-healthcheck"]' ] || fail "image HEALTHCHECK is $hc"
user=$("${podman[@]}" image inspect --format '{{.Config.User}}' "$image")
[ "$user" = 10001:10001 ] || fail "image USER is $user"
sig=$("${podman[@]}" image inspect --format '{{.Config.StopSignal}}' "$image")
[ "$sig" = SIGTERM ] || fail "image STOPSIGNAL is $sig"

# ---- two origins and a configuration naming the first -------------------------------------------
start_origin() { # name: an origin on a free port, which it prints in $tmp/NAME.out
    "$origin_bin" -l 127.0.0.1:0 -n "$1" -r "$tmp/$1.jsonl" >"$tmp/$1.out" 2>/dev/null &
    origin_pids+=($!)
    wait_for 10 "origin $1" grep -q '^ready' "$tmp/$1.out"
}
start_origin alpha
start_origin beta
alpha_port=$(awk '/^ready/ { sub(/.*:/, "", $3); print $3 }' "$tmp/alpha.out")
beta_port=$(awk '/^ready/ { sub(/.*:/, "", $3); print $3 }' "$tmp/beta.out")

# The container's user (uid 10001) must be able to read the mounted directory.
mkdir -m 0755 "$tmp/etc"
write_config() { # backend -> /etc/meridian/meridian.yaml, replaced in one rename
    cat >"$tmp/etc/.meridian.yaml.new" <<EOF
workers: 2
listeners:
  - { name: http, address: "127.0.0.1:$port" }
admin: { address: "127.0.0.1:$admin_port" }
timeouts: { shutdown: 20s }
access_log: { path: "-" }
regions:
  - name: local
    location: { lat: 50.1, lon: 8.7 }
    backends: ["127.0.0.1:$1"]
EOF
    chmod 0644 "$tmp/etc/.meridian.yaml.new"
    mv "$tmp/etc/.meridian.yaml.new" "$tmp/etc/meridian.yaml"
}
write_config "$alpha_port"

# ---- run it -------------------------------------------------------------------------------------
# `meridian -t` through the ENTRYPOINT, on the mounted directory's meridian.yaml (the default).
checked=$("${podman[@]}" run --rm --network=host --ulimit nofile=20000:20000 \
    --ulimit nproc=1000:1000 -v "$tmp/etc:/etc/meridian:ro" "$image" -t 2>&1) ||
    fail "meridian -t in the image: $checked"
grep -q '^/etc/meridian/meridian.yaml: configuration is valid$' <<<"$checked" ||
    fail "meridian -t in the image: $checked"
say "meridian -t in the image accepts the mounted configuration"

t_run=$(now_ms)
# --health-interval=disable: no systemd timer to run the check periodically here (cgroupfs, no
# systemd); the check itself stays in the container's configuration and is run below by hand.
# --read-only without podman's tmpfs mounts (docker's --read-only): Meridian writes nothing.
# Both ulimits: podman's defaults are above this machine's hard limits.
"${podman[@]}" run -d --name "$name" --network=host \
    --ulimit nofile=20000:20000 --ulimit nproc=1000:1000 \
    --read-only --read-only-tmpfs=false \
    --health-interval=disable -e "MERIDIAN_ADMIN=127.0.0.1:$admin_port" \
    -v "$tmp/etc:/etc/meridian:ro" "$image" >/dev/null 2>"$tmp/podman-run.err" ||
    { cat "$tmp/podman-run.err" >&2; fail "podman run"; }
container_started=1

healthz() { curl -sf -o /dev/null "http://127.0.0.1:$admin_port/healthz"; }
running() { [ "$("${podman[@]}" inspect --format '{{.State.Running}}' "$name")" = true ]; }
ready() { running || fail "the container exited"; healthz; }
wait_for 30 "the admin /healthz" ready
say "ready in $(elapsed "$t_run") s"

status_field() { # JSON key of /status
    curl -sf "http://127.0.0.1:$admin_port/status" |
        python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])" 2>/dev/null
}
get() { curl -sS --max-time 10 "http://127.0.0.1:$port$1"; }

body=$(get /)
[ "$body" = alpha ] || fail "proxied body is '$body', expected alpha"
grep -q '"target":"/"' "$tmp/alpha.jsonl" || fail "the origin did not record the request"
say "proxied a request: $body"

# The HEALTHCHECK as the container runs it.
"${podman[@]}" healthcheck run "$name" >/dev/null || fail "podman healthcheck run"
"${podman[@]}" exec "$name" /usr/local/bin/meridian-healthcheck || fail "meridian-healthcheck"
if "${podman[@]}" exec -e MERIDIAN_ADMIN=127.0.0.1:1 "$name" /usr/local/bin/meridian-healthcheck \
    2>/dev/null; then
    fail "the health check passed with nothing listening"
fi
say "health check passes"

# PID 1 is Meridian, as uid 10001 with no capabilities.
[ "$(status_field pid)" = 1 ] || fail "Meridian is not PID 1 in the container"
[ "$("${podman[@]}" exec "$name" cat /proc/1/comm)" = meridian ] || fail "PID 1 is not meridian"
proc1=$("${podman[@]}" exec "$name" cat /proc/1/status)
grep -qP '^Uid:\s+10001\s+10001\s+10001\s+10001$' <<<"$proc1" || fail "PID 1's uids: $proc1"
grep -qP '^Gid:\s+10001\s+10001\s+10001\s+10001$' <<<"$proc1" || fail "PID 1's gids: $proc1"
grep -qP '^CapEff:\s+0+$' <<<"$proc1" || fail "PID 1 has capabilities: $proc1"
ids=$("${podman[@]}" exec "$name" id)
[ "$ids" = "uid=10001(meridian) gid=10001(meridian) groups=10001(meridian)" ] || fail "exec: $ids"
ro=$("${podman[@]}" inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$name")
[ "$ro" = true ] || fail "the root file system is not read-only"
say "runs as PID 1, uid 10001 (meridian), no capabilities, read-only root"

# ---- SIGHUP: a new generation, no request lost --------------------------------------------------
[ "$(status_field generation)" = 1 ] || fail "generation at start is not 1"
# Requests in batches of 50 over one keep-alive connection each, until told to stop.
: >"$tmp/codes"
(
    while [ ! -e "$tmp/stop-load" ]; do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 \
            "http://127.0.0.1:$port/?n=[1-50]" >>"$tmp/codes" || echo "curl-failed" >>"$tmp/codes"
    done
) &
load_pid=$!
load_running() { [ "$(wc -l <"$tmp/codes")" -ge 100 ]; }
wait_for 20 "load to start" load_running
write_config "$beta_port"
"${podman[@]}" kill --signal HUP "$name" >/dev/null
gen_is() { [ "$(status_field generation)" = "$1" ]; }
wait_for 20 "generation 2 after SIGHUP" gen_is 2
served_by_beta() { [ "$(get /)" = beta ]; }
wait_for 10 "requests to reach the new backend" served_by_beta
before=$(wc -l <"$tmp/codes")
more_load() { [ "$(wc -l <"$tmp/codes")" -ge $((before + 100)) ]; }
wait_for 20 "load after the reload" more_load
touch "$tmp/stop-load"
wait "$load_pid"
load_pid=
total=$(wc -l <"$tmp/codes")
bad=$(grep -vc '^200$' "$tmp/codes" || true)
[ "$bad" = 0 ] ||
    fail "$bad of $total requests failed around the reload: $(sort "$tmp/codes" | uniq -c)"
say "SIGHUP: generation 1 -> 2, $total requests across it, all 200"

# A bad file, and the signal sent from inside the container (to PID 1 in its own namespace,
# where a signal without a handler would be dropped): refused, generation 2 keeps serving.
printf 'workers: 2\nlisteners: [\n' >"$tmp/etc/.bad" && chmod 0644 "$tmp/etc/.bad"
mv "$tmp/etc/.bad" "$tmp/etc/meridian.yaml"
"${podman[@]}" exec "$name" bash -c 'kill -HUP 1'
failed_reloads() {
    curl -sf "http://127.0.0.1:$admin_port/metrics" |
        grep -q '^meridian_config_reloads_total{result="failed"} 1$'
}
wait_for 20 "the bad reload to be counted" failed_reloads
gen_is 2 || fail "a refused reload changed the generation"
[ "$(get /)" = beta ] || fail "not serving after a refused reload"
say "SIGHUP with a bad file (kill -HUP 1 inside): refused, generation 2 still serving"

# ---- SIGTERM: drain, the request in flight finishes, exit 0 -------------------------------------
curl -sS --max-time 30 -o "$tmp/slow.body" -w '%{http_code}' \
    "http://127.0.0.1:$port/delay/3000" >"$tmp/slow.code" 2>"$tmp/slow.err" &
slow_pid=$!
slow_arrived() { grep -q '"target":"/delay/3000"' "$tmp/beta.jsonl"; }
wait_for 10 "the slow request to reach the origin" slow_arrived
t_stop=$(now_ms)
"${podman[@]}" stop --time 30 "$name" >/dev/null 2>"$tmp/podman-stop.err" &
stop_pid=$!
# While it drains the health check must fail, so that an orchestrator sends no new traffic.
# (admin.c answers 503 "stopping"; today the admin endpoint, on the main loop, which a stop
# leaves, does not answer at all until the exit: a failure too, after the check's timeout.)
draining() {
    local code
    code=$(curl -s -m 1 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/healthz")
    [ "$code" != 200 ]
}
wait_for 3 "/healthz to stop answering 200 while draining" draining
wait "$slow_pid" || fail "the request in flight failed: $(cat "$tmp/slow.err")"
[ "$(cat "$tmp/slow.code")" = 200 ] || fail "the request in flight got $(cat "$tmp/slow.code")"
[ "$(cat "$tmp/slow.body")" = beta ] || fail "the request in flight got '$(cat "$tmp/slow.body")'"
wait "$stop_pid" || { cat "$tmp/podman-stop.err" >&2; fail "podman stop"; }
t_stopped_ms=$(($(now_ms) - t_stop))
t_stopped=$(elapsed "$t_stop")
code=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit status $code after SIGTERM"
[ "$t_stopped_ms" -lt 10000 ] || fail "stopping took $t_stopped s"
logs=$("${podman[@]}" logs "$name" 2>&1)
grep -q 'stopping: no new connections' <<<"$logs" || fail "no drain in the log"
say "SIGTERM: the request in flight finished (200), exit 0 after $t_stopped s"

say "PASS in $(elapsed "$t_start") s (image build $t_build s)"
