#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo: installs what is missing, builds, starts ten tiny local backends (two per
# region, each answering with its region's name) and a redis-server on a free loopback
# port, and runs Meridian in the foreground in front of them with conf/meridian.yaml, plus
# the sample GeoIP database the build made (_build/geoip/sample.mmdb, see geoip/README.md)
# and the rate_limit example (phase1: 100 requests/s, burst 200) pointed at that Redis.
# Ctrl-C stops everything. Without redis-server, Meridian runs in the configured fallback
# (on_redis_failure: local) and says so at start.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash packaging/deps.sh
bash packaging/build.sh

origin=_build/tests/tools/origin
regions=(eu-central us-east us-west ap-southeast sa-east)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

port=9001
for r in "${regions[@]}"; do
    for _ in 1 2; do
        "$origin" -l "127.0.0.1:$port" -n "$r" -q > /dev/null &
        pids+=($!)
        port=$((port + 1))
    done
done

# A Redis for the shared request budget, on a free loopback port, stopped with the rest.
redis_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if command -v redis-server > /dev/null; then
    mkdir -p _build/demo-redis
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$top/_build/demo-redis" --daemonize no > _build/demo-redis/redis.log 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
        sleep 0.05
    done
else
    echo "demo.sh: no redis-server: Meridian will limit locally (on_redis_failure: local)" >&2
fi

# conf/meridian.yaml with its geoip section pointed at the sample database, and its
# rate_limit example on, pointed at that Redis.
demo_cfg=_build/demo.yaml
sed -e "s|^# geoip:|geoip:|" -e "s|^#   database: /var/lib/GeoIP/GeoLite2-City.mmdb|  database: $top/_build/geoip/sample.mmdb|" \
    -e '/^# rate_limit:/,/^#   on_redis_failure:/s/^# //' \
    -e "s|address: \"127.0.0.1:6379\"|address: \"127.0.0.1:$redis_port\"|" \
    conf/meridian.yaml > "$demo_cfg"
grep -q "^geoip:" "$demo_cfg" || { echo "demo.sh: could not enable geoip in $demo_cfg" >&2; exit 1; }
grep -q "^rate_limit:" "$demo_cfg" && grep -q "127.0.0.1:$redis_port" "$demo_cfg" ||
    { echo "demo.sh: could not enable rate_limit in $demo_cfg" >&2; exit 1; }
# Run as root (deps.sh installs packages), the demo stays root: Meridian refuses that unless
# the file says so. A real deployment names an account instead (user:, group:), or runs
# under the systemd unit, which starts it as its own user.
if [ "$(id -u)" = 0 ]; then
    printf '\n# demo.sh: started as root, for the demo only.\nrun_as_root: true\n' >>"$demo_cfg"
fi

cat <<MSG
Meridian demo: five regional pools on 127.0.0.1:9001-9010, proxy on port 8080, with the
sample GeoIP database; loopback is a trusted proxy, so X-Forwarded-For picks the client:
  curl -i http://127.0.0.1:8080/                                    (no location: default region)
  curl -H 'X-Forwarded-For: 192.0.2.97' http://127.0.0.1:8080/      (Singapore: ap-southeast)
  curl -H 'X-Forwarded-For: 203.0.113.16' http://127.0.0.1:8080/    (Toronto: us-east)
  curl 'http://127.0.0.1:9900/route?ip=203.0.113.96'                (why Cape Town goes where it goes)
  curl http://127.0.0.1:9900/status       (admin: workers, regions, backends' health, budget)
  wrk -t1 -c10 -d10s http://127.0.0.1:8080/  (past phase1's 100 req/s: after the 200-request
                                              burst, ~100 req/s get 200 and the rest 429)
  kill -HUP <pid> after editing $demo_cfg reloads it; Ctrl-C stops.
MSG
_build/src/meridian -c "$demo_cfg" &
pids+=($!)
wait "${pids[-1]}"
