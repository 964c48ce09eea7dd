#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo: installs what is missing, builds, starts ten tiny local backends (two per
# region, each answering with its region's name) and runs Meridian in the foreground in
# front of them with conf/meridian.yaml, plus the sample GeoIP database the build made
# (_build/geoip/sample.mmdb, see geoip/README.md). Ctrl-C stops everything.
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

# conf/meridian.yaml with its geoip section pointed at the sample database.
demo_cfg=_build/demo.yaml
sed -e "s|^# geoip:|geoip:|" -e "s|^#   database: /var/lib/GeoIP/GeoLite2-City.mmdb|  database: $top/_build/geoip/sample.mmdb|" \
    conf/meridian.yaml > "$demo_cfg"
grep -q "^geoip:" "$demo_cfg" || { echo "demo.sh: could not enable geoip in $demo_cfg" >&2; exit 1; }

cat <<MSG
Meridian demo: five regional pools on 127.0.0.1:9001-9010, proxy on port 8080, with the
sample GeoIP database; loopback is a trusted proxy, so X-Forwarded-For picks the client:
  curl -i http://127.0.0.1:8080/                                    (no location: default region)
  curl -H 'X-Forwarded-For: 192.0.2.97' http://127.0.0.1:8080/      (Singapore: ap-southeast)
  curl -H 'X-Forwarded-For: 203.0.113.16' http://127.0.0.1:8080/    (Toronto: us-east)
  curl 'http://127.0.0.1:9900/route?ip=203.0.113.96'                (why Cape Town goes where it goes)
  curl http://127.0.0.1:9900/status       (admin: workers, regions, backends' health)
  kill -HUP <pid> after editing $demo_cfg reloads it; Ctrl-C stops.
MSG
_build/src/meridian -c "$demo_cfg" &
pids+=($!)
wait "${pids[-1]}"
