#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo: installs what is missing, builds, starts ten tiny local backends (two per
# region, each answering with its region's name) and runs Meridian in the foreground in
# front of them with conf/meridian.yaml. Ctrl-C stops everything.
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

cat <<MSG
Meridian demo: five regional pools on 127.0.0.1:9001-9010, proxy on port 8080.
  curl -i http://127.0.0.1:8080/          (answered by a backend of the default region)
  curl http://127.0.0.1:9900/status       (admin: workers, regions, generation)
  kill -HUP <pid> after editing conf/meridian.yaml reloads it; Ctrl-C stops.
MSG
_build/src/meridian -c conf/meridian.yaml &
pids+=($!)
wait "${pids[-1]}"
