# SPDX-License-Identifier: MIT
# The libFuzzer targets and their seeds, sourced by tests/run.sh (the CI smoke run) and
# tests/fuzz/long_run.sh (the long runs). A new target is added here and in Makefile.am.
fuzz_targets=(h1_request h1_response cfg_load client_ip proxy_proto redis_redirect redis_reply
    hosts_file h2_session)

# Sets corpus and dict for target $1.
fuzz_target_files() {
    case $1 in
        h1_request | h1_response) corpus=tests/fuzz/corpus/$1; dict=tests/fuzz/h1.dict ;;
        cfg_load) corpus=tests/fuzz/corpus/cfg; dict=tests/fuzz/yaml.dict ;;
        proxy_proto) corpus=tests/fuzz/corpus/proxy_proto; dict=tests/fuzz/proxy.dict ;;
        *) corpus=tests/fuzz/corpus/$1; dict=tests/fuzz/$1.dict ;;
    esac
}
