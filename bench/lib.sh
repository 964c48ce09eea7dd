# SPDX-License-Identifier: MIT
# Shell functions the bench scripts share (bench/run.sh, bench/idle_19k.sh): sourced after
# `set -euo pipefail` from the top of the repository.

die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

is_alive() { # a zombie is not alive
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

# Proxy ports come from below the ephemeral range (where clients' and the proxies' own outgoing
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
