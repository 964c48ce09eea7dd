/* SPDX-License-Identifier: MIT */
/* Unit tests for cfg and cfg_load: the value parsers, reference counting, and the loader
 * over the files in testdata/cfg/ (good_*.yaml must load; each bad_*.yaml must fail with
 * exactly the listed errors) and over texts built here (alias bombs, many regions).
 * Files named by good TLS configurations exist (testdata/cfg/certs/), so these tests pass
 * whether tls_prepare really reads them or a stub stands in for tls.c. */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>

#include "cfg.h"
#include "cfg_load.h"

#ifndef SRCDIR
#error "build with -DSRCDIR='\"/abs/top/srcdir\"'"
#endif
#define TESTDATA SRCDIR "/tests/unit/testdata/cfg/"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- value parsers ---------------------------------------------------------------- */

struct duration_case {
    const char *text;
    int rc;
    uint32_t ms;
};

static const struct duration_case duration_cases[] = {
    {"250ms", 0, 250},
    {"10s", 0, 10000},
    {"2m", 0, 120000},
    {"1h", 0, 3600000},
    {"10", 0, 10000},
    {"0", 0, 0},
    {"0ms", 0, 0},
    {"007s", 0, 7000},
    {"24h", 0, 86400000},
    {"1440m", 0, 86400000},
    {"86400", 0, 86400000},
    {"86400000ms", 0, 86400000},
    {"25h", -1, 0},
    {"86401", -1, 0},
    {"86400001ms", -1, 0},
    {"1441m", -1, 0},
    {"99999999999999999999999s", -1, 0},
    {"", -1, 0},
    {"s", -1, 0},
    {"ms", -1, 0},
    {"1.5s", -1, 0},
    {"-1s", -1, 0},
    {"+1s", -1, 0},
    {" 1s", -1, 0},
    {"1s ", -1, 0},
    {"1 s", -1, 0},
    {"10S", -1, 0},
    {"1H", -1, 0},
    {"1d", -1, 0},
    {"1sm", -1, 0},
    {"1hh", -1, 0},
    {"ten", -1, 0},
    {NULL, -1, 0},
};

static void
test_parse_duration(void **state)
{
    for (size_t i = 0; i < N_ELEMS(duration_cases); i++) {
        const struct duration_case *c = &duration_cases[i];
        uint32_t ms = 12345;
        int rc = cfg_parse_duration_ms(c->text, &ms);
        if (rc != c->rc)
            fail_msg("duration \"%s\": rc %d, want %d", c->text ? c->text : "(null)", rc, c->rc);
        if (rc == 0 && ms != c->ms)
            fail_msg("duration \"%s\": %u ms, want %u", c->text, ms, c->ms);
        if (rc != 0 && ms != 12345)
            fail_msg("duration \"%s\": output written on failure", c->text ? c->text : "(null)");
    }
}

struct size_case {
    const char *text;
    int rc;
    uint64_t bytes;
};

static const struct size_case size_cases[] = {
    {"0", 0, 0},
    {"512", 0, 512},
    {"16k", 0, 16384},
    {"16K", 0, 16384},
    {"10m", 0, 10485760},
    {"10M", 0, 10485760},
    {"1g", 0, 1073741824},
    {"1G", 0, 1073741824},
    {"0k", 0, 0},
    {"18446744073709551615", 0, UINT64_MAX},
    {"17179869183g", 0, UINT64_C(17179869183) << 30},
    {"18446744073709551616", -1, 0},
    {"17179869184g", -1, 0},
    {"18014398509481984k", -1, 0},
    {"", -1, 0},
    {"k", -1, 0},
    {"1kb", -1, 0},
    {"1KiB", -1, 0},
    {"1.5k", -1, 0},
    {"-1", -1, 0},
    {"+1", -1, 0},
    {" 1", -1, 0},
    {"1 ", -1, 0},
    {"1 k", -1, 0},
    {"1t", -1, 0},
    {"0x10", -1, 0},
    {"lots", -1, 0},
    {NULL, -1, 0},
};

static void
test_parse_size(void **state)
{
    for (size_t i = 0; i < N_ELEMS(size_cases); i++) {
        const struct size_case *c = &size_cases[i];
        uint64_t bytes = 12345;
        int rc = cfg_parse_size(c->text, &bytes);
        if (rc != c->rc)
            fail_msg("size \"%s\": rc %d, want %d", c->text ? c->text : "(null)", rc, c->rc);
        if (rc == 0 && bytes != c->bytes)
            fail_msg("size \"%s\": %llu, want %llu", c->text, (unsigned long long)bytes,
                     (unsigned long long)c->bytes);
        if (rc != 0 && bytes != 12345)
            fail_msg("size \"%s\": output written on failure", c->text ? c->text : "(null)");
    }
}

struct addr_case {
    const char *text;
    int rc;
    int family;
    unsigned port;
    const char *normalised;
};

static const struct addr_case addr_cases[] = {
    {"127.0.0.1:80", 0, AF_INET, 80, "127.0.0.1:80"},
    {"0.0.0.0:8080", 0, AF_INET, 8080, "0.0.0.0:8080"},
    {"255.255.255.255:65535", 0, AF_INET, 65535, "255.255.255.255:65535"},
    {"10.1.2.3:1", 0, AF_INET, 1, "10.1.2.3:1"},
    {"127.0.0.1:080", 0, AF_INET, 80, "127.0.0.1:80"},
    {"[::1]:8080", 0, AF_INET6, 8080, "[::1]:8080"},
    {"[::]:80", 0, AF_INET6, 80, "[::]:80"},
    {"[0:0:0:0:0:0:0:1]:1", 0, AF_INET6, 1, "[::1]:1"},
    {"[2001:DB8::1]:443", 0, AF_INET6, 443, "[2001:db8::1]:443"},
    {"[::ffff:127.0.0.1]:9", 0, AF_INET6, 9, "[::ffff:127.0.0.1]:9"},
    {"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", 0, AF_INET6, 65535,
     "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
    {"", -1, 0, 0, NULL},
    {"127.0.0.1", -1, 0, 0, NULL},
    {"127.0.0.1:", -1, 0, 0, NULL},
    {"127.0.0.1:0", -1, 0, 0, NULL},
    {"127.0.0.1:65536", -1, 0, 0, NULL},
    {"127.0.0.1:70000", -1, 0, 0, NULL},
    {"127.0.0.1:000080", -1, 0, 0, NULL},
    {"127.0.0.1:+80", -1, 0, 0, NULL},
    {"127.0.0.1:-1", -1, 0, 0, NULL},
    {"127.0.0.1: 80", -1, 0, 0, NULL},
    {"127.0.0.1:80 ", -1, 0, 0, NULL},
    {" 127.0.0.1:80", -1, 0, 0, NULL},
    {"127.0.0.1:http", -1, 0, 0, NULL},
    {"localhost:80", -1, 0, 0, NULL},
    {"example.com:443", -1, 0, 0, NULL},
    {"1.2.3:80", -1, 0, 0, NULL},
    {"1.2.3.4.5:80", -1, 0, 0, NULL},
    {"256.0.0.1:80", -1, 0, 0, NULL},
    {"01.2.3.4:80", -1, 0, 0, NULL},
    {"0x7f.0.0.1:80", -1, 0, 0, NULL},
    {"127.1:80", -1, 0, 0, NULL},
    {"::1:80", -1, 0, 0, NULL},
    {"[::1]", -1, 0, 0, NULL},
    {"[::1]80", -1, 0, 0, NULL},
    {"[::1:80", -1, 0, 0, NULL},
    {"[::1]:80:80", -1, 0, 0, NULL},
    {"[127.0.0.1]:80", -1, 0, 0, NULL},
    {"[fe80::1%eth0]:80", -1, 0, 0, NULL},
    {"[]:80", -1, 0, 0, NULL},
    {":80", -1, 0, 0, NULL},
    {"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80", -1, 0, 0, NULL},
    {NULL, -1, 0, 0, NULL},
};

static void
test_parse_addr(void **state)
{
    for (size_t i = 0; i < N_ELEMS(addr_cases); i++) {
        const struct addr_case *c = &addr_cases[i];
        struct cfg_addr addr;
        int rc;

        memset(&addr, 0xAA, sizeof(addr));
        rc = cfg_parse_addr(c->text, &addr);
        if (rc != c->rc)
            fail_msg("addr \"%s\": rc %d, want %d", c->text ? c->text : "(null)", rc, c->rc);
        if (rc != 0)
            continue;
        if (strcmp(addr.text, c->normalised) != 0)
            fail_msg("addr \"%s\": text \"%s\", want \"%s\"", c->text, addr.text, c->normalised);
        if (addr.sa.ss_family != c->family)
            fail_msg("addr \"%s\": family %d, want %d", c->text, addr.sa.ss_family, c->family);
        if (c->family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr.sa;
            assert_int_equal(addr.salen, sizeof(struct sockaddr_in));
            assert_int_equal(ntohs(sin->sin_port), c->port);
        } else {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&addr.sa;
            assert_int_equal(addr.salen, sizeof(struct sockaddr_in6));
            assert_int_equal(ntohs(sin6->sin6_port), c->port);
            assert_int_equal(sin6->sin6_scope_id, 0);
        }
    }
}

/* ---- generations ------------------------------------------------------------------ */

static void
test_new_defaults(void **state)
{
    struct cfg *cfg = cfg_new();

    assert_non_null(cfg);
    assert_int_equal(atomic_load(&cfg->refs), 1);
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->log_level, CFG_LOG_INFO);
    assert_int_equal(cfg->nlisteners, 0);
    assert_false(cfg->has_admin);
    assert_null(cfg->access_log_path);
    assert_null(cfg->path);
    assert_int_equal(cfg->timeouts.client_header_ms, CFG_DEFAULT_CLIENT_HEADER_MS);
    assert_int_equal(cfg->timeouts.client_idle_ms, CFG_DEFAULT_CLIENT_IDLE_MS);
    assert_int_equal(cfg->timeouts.upstream_connect_ms, CFG_DEFAULT_UPSTREAM_CONNECT_MS);
    assert_int_equal(cfg->timeouts.upstream_response_ms, CFG_DEFAULT_UPSTREAM_RESPONSE_MS);
    assert_int_equal(cfg->timeouts.tunnel_ms, CFG_DEFAULT_TUNNEL_MS);
    assert_int_equal(cfg->timeouts.shutdown_ms, CFG_DEFAULT_SHUTDOWN_MS);
    assert_int_equal(cfg->limits.max_header_bytes, CFG_DEFAULT_MAX_HEADER_BYTES);
    assert_int_equal(cfg->limits.max_headers, CFG_DEFAULT_MAX_HEADERS);
    assert_int_equal(cfg->limits.max_connections, 0); /* auto */
    assert_int_equal(cfg->limits.max_body_bytes, CFG_DEFAULT_MAX_BODY_BYTES);
    assert_int_equal(cfg->http2.max_concurrent_streams, 100);
    assert_int_equal(cfg->http2.initial_window_size, 65535);
    assert_int_equal(cfg->http2.max_header_list_size, 65536);
    assert_int_equal(cfg->http2.max_resets_per_10s, 200);
    cfg_unref(cfg);
}

/* ASan's leak check is what proves that the last unref frees every owned array,
 * including the fds arrays that server.c attaches, and frees it only once. */
static void
test_ref_unref(void **state)
{
    char *errors = NULL;
    struct cfg *cfg = cfg_load_file(TESTDATA "good_full.yaml", &errors);

    assert_non_null(cfg);
    assert_null(errors);
    assert_int_equal(atomic_load(&cfg->refs), 1);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        cfg->listeners[i].fds = malloc(4 * sizeof(int));
        assert_non_null(cfg->listeners[i].fds);
    }
    assert_ptr_equal(cfg_ref(cfg), cfg);
    assert_ptr_equal(cfg_ref(cfg), cfg);
    assert_int_equal(atomic_load(&cfg->refs), 3);
    cfg_unref(cfg);
    cfg_unref(cfg);
    assert_int_equal(atomic_load(&cfg->refs), 1);
    assert_string_equal(cfg->regions[0].name, "eu-central"); /* still alive */
    cfg_unref(cfg);
    cfg_unref(NULL);
}

#define REF_THREADS 4
#define REF_ROUNDS 20000

static void *
ref_worker(void *arg)
{
    struct cfg *cfg = arg;
    for (int i = 0; i < REF_ROUNDS; i++) {
        cfg_ref(cfg);
        cfg_unref(cfg);
    }
    cfg_unref(cfg); /* the one the spawner took for this thread */
    return NULL;
}

static void
test_ref_threads(void **state)
{
    pthread_t threads[REF_THREADS];
    struct cfg *cfg = cfg_new();

    assert_non_null(cfg);
    for (int i = 0; i < REF_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, ref_worker, cfg_ref(cfg)), 0);
    for (int i = 0; i < REF_THREADS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(atomic_load(&cfg->refs), 1);
    cfg_unref(cfg);
}

static void
test_region_index(void **state)
{
    char *errors = NULL;
    struct cfg *cfg = cfg_load_file(TESTDATA "good_full.yaml", &errors);

    assert_non_null(cfg);
    assert_int_equal(cfg_region_index(cfg, "eu-central"), 0);
    assert_int_equal(cfg_region_index(cfg, "us-east"), 1);
    assert_int_equal(cfg_region_index(cfg, "sa_east.1"), 2);
    assert_int_equal(cfg_region_index(cfg, "us-west"), -1);
    assert_int_equal(cfg_region_index(cfg, ""), -1);
    assert_int_equal(cfg_region_index(cfg, "EU-CENTRAL"), -1);
    cfg_unref(cfg);
}

/* ---- good files ------------------------------------------------------------------- */

static void
check_minimal(const struct cfg *cfg)
{
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->log_level, CFG_LOG_INFO);
    assert_int_equal(cfg->nlisteners, 1);
    assert_string_equal(cfg->listeners[0].name, "http");
    assert_string_equal(cfg->listeners[0].addr.text, "127.0.0.1:8080");
    assert_int_equal(cfg->listeners[0].line, 3);
    assert_null(cfg->listeners[0].fds);
    assert_null(cfg->listeners[0].tls);
    assert_false(cfg->listeners[0].h2c);
    assert_false(cfg->has_admin);
    assert_null(cfg->access_log_path);
    assert_int_equal(cfg->timeouts.client_idle_ms, CFG_DEFAULT_CLIENT_IDLE_MS);
    assert_int_equal(cfg->timeouts.shutdown_ms, CFG_DEFAULT_SHUTDOWN_MS);
    assert_int_equal(cfg->limits.max_body_bytes, CFG_DEFAULT_MAX_BODY_BYTES);
    assert_int_equal(cfg->nregions, 1);
    assert_string_equal(cfg->regions[0].name, "local");
    assert_true(cfg->regions[0].is_default);
    assert_int_equal(cfg->default_region, 0);
    assert_int_equal(cfg->regions[0].nbackends, 1);
    assert_string_equal(cfg->regions[0].backends[0].addr.text, "127.0.0.1:9001");
    assert_int_equal(cfg->http2.max_concurrent_streams, CFG_DEFAULT_H2_MAX_STREAMS);
    assert_int_equal(cfg->http2.initial_window_size, CFG_DEFAULT_H2_WINDOW);
    assert_int_equal(cfg->http2.max_header_list_size, CFG_DEFAULT_H2_MAX_HEADER_LIST);
    assert_int_equal(cfg->http2.max_resets_per_10s, CFG_DEFAULT_H2_MAX_RESETS);
}

static void
check_full(const struct cfg *cfg)
{
    assert_int_equal(cfg->workers, 4);
    assert_int_equal(cfg->log_level, CFG_LOG_DEBUG);
    assert_int_equal(cfg->nlisteners, 2);
    assert_string_equal(cfg->listeners[0].name, "http");
    assert_string_equal(cfg->listeners[0].addr.text, "0.0.0.0:8080");
    assert_string_equal(cfg->listeners[1].name, "alt");
    assert_int_equal(cfg->listeners[1].line, 7);
    assert_true(cfg->has_admin);
    assert_string_equal(cfg->admin.text, "127.0.0.1:9900");
    assert_int_equal(cfg->timeouts.client_header_ms, 5000);
    assert_int_equal(cfg->timeouts.client_idle_ms, 120000);
    assert_int_equal(cfg->timeouts.upstream_connect_ms, 250);
    assert_int_equal(cfg->timeouts.upstream_response_ms, 3600000);
    assert_int_equal(cfg->timeouts.tunnel_ms, 5400000);
    assert_int_equal(cfg->timeouts.shutdown_ms, 0);
    assert_int_equal(cfg->limits.max_header_bytes, 32768);
    assert_int_equal(cfg->limits.max_headers, 50);
    assert_int_equal(cfg->limits.max_connections, 50000);
    assert_int_equal(cfg->limits.max_body_bytes, 1073741824);
    assert_string_equal(cfg->access_log_path, "/var/log/meridian/access.log");
    assert_int_equal(cfg->nregions, 3);
    assert_int_equal(cfg->default_region, 1);
    assert_false(cfg->regions[0].is_default);
    assert_true(cfg->regions[1].is_default);
    assert_false(cfg->regions[2].is_default);
    assert_true(cfg->regions[0].lat == 50.11 && cfg->regions[0].lon == 8.68);
    assert_true(cfg->regions[1].lat == 39.04 && cfg->regions[1].lon == -77.49);
    assert_int_equal(cfg->regions[0].nbackends, 2);
    assert_string_equal(cfg->regions[0].backends[1].addr.text, "127.0.0.1:9002");
    assert_string_equal(cfg->regions[2].name, "sa_east.1");
}

static void
check_ipv6(const struct cfg *cfg)
{
    assert_int_equal(cfg->workers, 0);
    assert_int_equal(cfg->log_level, CFG_LOG_WARN);
    assert_string_equal(cfg->listeners[0].addr.text, "[::]:80");
    assert_string_equal(cfg->listeners[1].addr.text, "[::1]:8080");
    assert_string_equal(cfg->admin.text, "[::1]:9900");
    assert_string_equal(cfg->access_log_path, "-");
    assert_true(cfg->regions[0].lat == -90 && cfg->regions[0].lon == 180);
    assert_string_equal(cfg->regions[0].backends[0].addr.text, "[2001:db8::10]:443");
    assert_string_equal(cfg->regions[0].backends[1].addr.text, "[::ffff:127.0.0.1]:9001");
    assert_int_equal(cfg->regions[0].backends[0].addr.sa.ss_family, AF_INET6);
}

static void
check_anchors(const struct cfg *cfg)
{
    assert_int_equal(cfg->nregions, 2);
    assert_int_equal(cfg->default_region, 0);
    assert_true(cfg->regions[1].lat == 1.5 && cfg->regions[1].lon == 2.5);
    assert_int_equal(cfg->regions[1].nbackends, 2);
    assert_string_equal(cfg->regions[1].backends[1].addr.text, "127.0.0.1:9002");
    assert_ptr_not_equal(cfg->regions[0].backends, cfg->regions[1].backends);
}

static void
check_quoted(const struct cfg *cfg)
{
    assert_int_equal(cfg->workers, 2);
    assert_int_equal(cfg->log_level, CFG_LOG_ERROR);
    assert_string_equal(cfg->listeners[0].addr.text, "127.0.0.1:80");
    assert_int_equal(cfg->timeouts.client_idle_ms, 60000);
    assert_int_equal(cfg->timeouts.upstream_connect_ms, CFG_DEFAULT_UPSTREAM_CONNECT_MS);
    assert_int_equal(cfg->limits.max_header_bytes, 1024);
    assert_int_equal(cfg->limits.max_headers, 1000);
    assert_int_equal(cfg->limits.max_body_bytes, 0);
    assert_true(cfg->regions[0].lat == 12.5 && cfg->regions[0].lon == -0.5);
    assert_true(cfg->regions[0].is_default);
}

/* The settings good_tls.yaml gives its first listener. `dir` is what relative paths in it
 * were joined to: the file's directory as named in the load, "" for cfg_load_text. */
static void
check_tls_first(const struct cfg_listener *l, const char *dir)
{
    const struct cfg_tls *t = l->tls;
    char want[4096];

    assert_string_equal(l->name, "https");
    assert_false(l->h2c);
    assert_non_null(t);
    assert_int_equal(t->ncerts, 2);
    snprintf(want, sizeof(want), "%scerts/rsa.pem", dir);
    assert_string_equal(t->certs[0].cert_path, want);
    snprintf(want, sizeof(want), "%scerts/rsa.key", dir);
    assert_string_equal(t->certs[0].key_path, want);
    assert_false(t->certs[0].is_default);
    assert_int_equal(t->certs[0].line, 8);
    snprintf(want, sizeof(want), "%scerts/ecdsa.pem", dir);
    assert_string_equal(t->certs[1].cert_path, want);
    snprintf(want, sizeof(want), "%scerts/ecdsa.key", dir);
    assert_string_equal(t->certs[1].key_path, want);
    assert_true(t->certs[1].is_default);
    assert_int_equal(t->certs[1].line, 10);
    assert_int_equal(t->protocols, CFG_TLS_V13);
    assert_string_equal(t->ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
    assert_string_equal(t->ciphersuites, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    assert_string_equal(t->groups, "P-256:X25519");
    assert_int_equal(t->nalpn, 2);
    assert_string_equal(t->alpn[0], "http/1.1"); /* the file's order is the server's preference */
    assert_string_equal(t->alpn[1], "h2");
    assert_true(t->tickets);
    assert_int_equal(t->ticket_rotate_ms, 30 * 60 * 1000);
    snprintf(want, sizeof(want), "%scerts/ticket.key", dir);
    assert_string_equal(t->ticket_key_file, want);
    assert_int_equal(t->session_cache, 1000);
}

static void
check_tls(const struct cfg *cfg)
{
    const struct cfg_tls *t;

    assert_int_equal(cfg->nlisteners, 4);
    check_tls_first(&cfg->listeners[0], TESTDATA);

    /* Only certificates given: every other setting at its default, the first certificate
     * the default one. */
    t = cfg->listeners[1].tls;
    assert_non_null(t);
    assert_false(cfg->listeners[1].h2c); /* "h2c: false" goes with tls */
    assert_int_equal(t->ncerts, 2);
    assert_string_equal(t->certs[0].cert_path, TESTDATA "certs/ecdsa.pem");
    assert_string_equal(t->certs[1].key_path, TESTDATA "certs/rsa.key");
    assert_true(t->certs[0].is_default);
    assert_false(t->certs[1].is_default);
    assert_int_equal(t->protocols, CFG_TLS_V12 | CFG_TLS_V13);
    assert_string_equal(t->ciphers, CFG_TLS_DEFAULT_CIPHERS);
    assert_string_equal(t->ciphersuites, CFG_TLS_DEFAULT_CIPHERSUITES);
    assert_string_equal(t->groups, CFG_TLS_DEFAULT_GROUPS);
    assert_int_equal(t->nalpn, 2);
    assert_string_equal(t->alpn[0], "h2");
    assert_string_equal(t->alpn[1], "http/1.1");
    assert_true(t->tickets);
    assert_int_equal(t->ticket_rotate_ms, CFG_DEFAULT_TICKET_ROTATE_MS);
    assert_null(t->ticket_key_file);
    assert_int_equal(t->session_cache, 0);

    assert_null(cfg->listeners[2].tls);
    assert_true(cfg->listeners[2].h2c);
    assert_null(cfg->listeners[3].tls);
    assert_false(cfg->listeners[3].h2c);

    assert_int_equal(cfg->http2.max_concurrent_streams, 250);
    assert_int_equal(cfg->http2.initial_window_size, 1048576);
    assert_int_equal(cfg->http2.max_header_list_size, 32768);
    assert_int_equal(cfg->http2.max_resets_per_10s, 50);
}

/* The shipped example must load and say what its comments promise. */
static void
check_example(const struct cfg *cfg)
{
    static const char *const names[] = {"eu-central", "us-east", "us-west", "ap-southeast",
                                        "sa-east"};

    assert_int_equal(cfg->nlisteners, 1);
    assert_string_equal(cfg->listeners[0].addr.text, "0.0.0.0:8080");
    assert_null(cfg->listeners[0].tls); /* the TLS listener is commented out */
    assert_false(cfg->listeners[0].h2c);
    assert_int_equal(cfg->http2.max_concurrent_streams, CFG_DEFAULT_H2_MAX_STREAMS);
    assert_int_equal(cfg->http2.initial_window_size, CFG_DEFAULT_H2_WINDOW);
    assert_int_equal(cfg->http2.max_header_list_size, CFG_DEFAULT_H2_MAX_HEADER_LIST);
    assert_int_equal(cfg->http2.max_resets_per_10s, CFG_DEFAULT_H2_MAX_RESETS);
    assert_true(cfg->has_admin);
    assert_string_equal(cfg->admin.text, "127.0.0.1:9900");
    assert_int_equal(cfg->nregions, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(cfg->regions[i].name, names[i]);
        assert_int_equal(cfg->regions[i].nbackends, 2);
    }
    assert_int_equal(cfg->default_region, 0);
    assert_string_equal(cfg->regions[4].backends[1].addr.text, "127.0.0.1:9010");
}

struct good_case {
    const char *path; /* under SRCDIR */
    void (*check)(const struct cfg *cfg);
};

static const struct good_case good_cases[] = {
    {"/tests/unit/testdata/cfg/good_minimal.yaml", check_minimal},
    {"/tests/unit/testdata/cfg/good_full.yaml", check_full},
    {"/tests/unit/testdata/cfg/good_ipv6.yaml", check_ipv6},
    {"/tests/unit/testdata/cfg/good_anchors.yaml", check_anchors},
    {"/tests/unit/testdata/cfg/good_quoted.yaml", check_quoted},
    {"/tests/unit/testdata/cfg/good_tls.yaml", check_tls},
    {"/conf/meridian.yaml", check_example},
};

static void
test_good_files(void **state)
{
    for (size_t i = 0; i < N_ELEMS(good_cases); i++) {
        char path[4096], *errors = (char *)"unset";
        struct cfg *cfg;

        snprintf(path, sizeof(path), "%s%s", SRCDIR, good_cases[i].path);
        cfg = cfg_load_file(path, &errors);
        if (cfg == NULL)
            fail_msg("%s did not load:\n%s", path, errors ? errors : "(no errors text)");
        assert_null(errors);
        assert_string_equal(cfg->path, path);
        assert_int_equal(atomic_load(&cfg->refs), 1);
        good_cases[i].check(cfg);
        cfg_unref(cfg);
    }
}

/* ---- bad files -------------------------------------------------------------------- */

/* Each bad file must fail with exactly `nlines` error lines, among them every fragment. */
struct bad_case {
    const char *file;
    size_t nlines;
    const char *fragments[16];
};

static const struct bad_case bad_cases[] = {
    {"bad_unknown_key.yaml",
     2,
     {"bad_unknown_key.yaml:2: missing required key \"listeners\" in the top level\n",
      "bad_unknown_key.yaml:3: unknown key \"listner\" in the top level (expected one of: "
      "workers, log_level, listeners, admin, timeouts, limits, http2, access_log, regions)\n"}},
    {"bad_duration.yaml",
     4,
     {"bad_duration.yaml:5: timeouts.client_header: must be longer than 0\n",
      "bad_duration.yaml:6: timeouts.upstream_connect: expected a duration like 500ms, 10s, "
      "2m, got \"10S\"",
      "bad_duration.yaml:7: timeouts.client_idle: expected a duration like 500ms, 10s, 2m, got "
      "\"ten\"",
      "bad_duration.yaml:8: timeouts.upstream_response: \"25h\" is longer than the maximum, "
      "24h\n"}},
    {"bad_address.yaml",
     8,
     {"bad_address.yaml:6: listeners[1].address: port 70000 out of range 1..65535\n",
      "bad_address.yaml:8: listeners[2].address: \"localhost\" is not an IP address; host names "
      "are never looked up",
      "bad_address.yaml:10: admin.address: an IPv6 address needs brackets, like [::1]:8080, got "
      "\"::1:9900\"\n",
      "bad_address.yaml:14: regions[0].backends[0]: expected an IP address and port like "
      "127.0.0.1:8080 or [::1]:8080, got \"127.0.0.1\" (no port)\n",
      "bad_address.yaml:14: regions[0].backends[1]: \"256.1.1.1\" is not a valid IPv4 address",
      "bad_address.yaml:14: regions[0].backends[2]: expected \":port\" after \"]\" in \"[::1]\"",
      "bad_address.yaml:14: regions[0].backends[3]: port \"port\" is not a number 1..65535",
      "bad_address.yaml:14: regions[0].backends[4]: \"fe80::1%eth0\" is not a valid IPv6 "
      "address"}},
    {"bad_duplicates.yaml",
     6,
     {"bad_duplicates.yaml:3: duplicate key \"workers\" in the top level (first at line 2)\n",
      "bad_duplicates.yaml:6: listeners[1].name: duplicate listener name \"http\" (first at "
      "listeners[0], line 5)\n",
      "bad_duplicates.yaml:7: listeners[2].address: duplicate address \"127.0.0.1:8080\" (first "
      "at listeners[0], line 5)\n",
      "bad_duplicates.yaml:10: duplicate key \"name\" in regions[0] (first at line 9)\n",
      "bad_duplicates.yaml:12: regions[0].backends[1]: duplicate backend \"127.0.0.1:9001\"",
      "bad_duplicates.yaml:13: regions[1].name: duplicate region name \"a\" (first at "
      "regions[0], line 9)\n"}},
    {"bad_types.yaml",
     8,
     {"bad_types.yaml:2: workers: expected a single value, got a sequence\n",
      "bad_types.yaml:4: listeners: expected a sequence, got a mapping\n",
      "bad_types.yaml:5: timeouts: expected a mapping, got \"10s\"\n",
      "bad_types.yaml:7: limits: expected a mapping, got a sequence\n",
      "bad_types.yaml:8: admin: expected a mapping, got an empty value\n",
      "bad_types.yaml:10: regions[0].name: expected a single value, got a mapping\n",
      "bad_types.yaml:11: regions[0].location: expected a mapping, got a sequence\n",
      "bad_types.yaml:12: regions[0].backends: expected a sequence, got \"127.0.0.1:9001\"\n"}},
    {"bad_empty_backends.yaml",
     1,
     {"bad_empty_backends.yaml:6: regions[0].backends: expected at least one backend address, "
      "got none\n"}},
    {"bad_no_regions.yaml",
     2,
     {"bad_no_regions.yaml:1: listeners: expected at least one listener, got none\n",
      "bad_no_regions.yaml:2: regions: expected at least one region, got none\n"}},
    {"bad_missing.yaml",
     9,
     {"bad_missing.yaml:3: missing required key \"address\" in listeners[0]\n",
      "bad_missing.yaml:4: missing required key \"name\" in listeners[1]\n",
      "bad_missing.yaml:5: missing required key \"path\" in access_log\n",
      "bad_missing.yaml:6: missing required key \"address\" in admin\n",
      "bad_missing.yaml:8: missing required key \"location\" in regions[0]\n",
      "bad_missing.yaml:8: missing required key \"backends\" in regions[0]\n",
      "bad_missing.yaml:9: missing required key \"name\" in regions[1]\n",
      "bad_missing.yaml:9: missing required key \"lon\" in regions[1].location\n",
      "bad_missing.yaml:8: regions: none has \"default: true\""}},
    {"bad_no_default.yaml",
     1,
     {"bad_no_default.yaml:4: regions: none has \"default: true\"; with several regions exactly "
      "one must be the default\n"}},
    {"bad_two_defaults.yaml",
     2,
     {"bad_two_defaults.yaml:11: regions[1].default: only one region may be the default, and "
      "regions[0] (line 7) already is\n",
      "bad_two_defaults.yaml:15: regions[2].default: expected true or false, got \"yes\"\n"}},
    {"bad_syntax.yaml",
     1,
     {"bad_syntax.yaml:5: invalid YAML: did not find expected '-' indicator"}},
    {"bad_empty.yaml", 1, {"bad_empty.yaml:1: the file is empty"}},
    {"bad_comments_only.yaml", 1, {"bad_comments_only.yaml:1: the file is empty"}},
    {"bad_root_sequence.yaml",
     1,
     {"bad_root_sequence.yaml:1: expected a mapping at the top level, got a sequence\n"}},
    {"bad_values.yaml",
     13,
     {"bad_values.yaml:2: workers: expected \"auto\" or a number 1..256, got \"0\"\n",
      "bad_values.yaml:3: log_level: expected one of error, warn, info, debug, got \"verbose\"\n",
      "bad_values.yaml:5: listeners[0].name: expected a name of 1 to 63 letters, digits, \".\", "
      "\"_\" or \"-\", got \"http server\"\n",
      "bad_values.yaml:7: limits.max_header_bytes: \"512\" is out of range 1k..64k",
      "bad_values.yaml:8: limits.max_headers: expected a number 1..1000, got \"1k\"\n",
      "bad_values.yaml:9: limits.max_body_bytes: expected a size like 512, 16k, 10m, 1g, got "
      "\"lots\"\n",
      "bad_values.yaml:10: limits.max_connections: expected \"auto\" or a number 1..10000000, "
      "got \"0\"\n",
      "bad_values.yaml:12: access_log.path: expected \"-\" for standard output or a file path",
      "bad_values.yaml:14: regions[0].name: expected a name",
      "bad_values.yaml:15: regions[0].location.lat: expected a latitude in degrees, -90..90, got "
      "\"91\"\n",
      "bad_values.yaml:15: regions[0].location.lon: expected a longitude in degrees, -180..180, "
      "got \"nan\"\n"}},
    {"bad_admin_clash.yaml",
     1,
     {"bad_admin_clash.yaml:3: admin.address: 127.0.0.1:8080 is already listeners[0].address "
      "(line 2)\n"}},
    {"bad_two_documents.yaml", 1, {"bad_two_documents.yaml:6: a second YAML document starts here"}},
    {"bad_undefined_alias.yaml",
     1,
     {"bad_undefined_alias.yaml:4: invalid YAML: found undefined alias"}},
    {"bad_tls_certs.yaml",
     7,
     {"bad_tls_certs.yaml:4: missing required key \"certificates\" in listeners[0].tls\n",
      "bad_tls_certs.yaml:8: listeners[1].tls.certificates: expected at least one certificate "
      "({cert: FILE, key: FILE}), got none\n",
      "bad_tls_certs.yaml:13: missing required key \"key\" in "
      "listeners[2].tls.certificates[0]\n",
      "bad_tls_certs.yaml:19: listeners[3].tls.certificates[1].default: only one certificate "
      "may be the default, and certificates[0] (line 18) already is\n",
      "bad_tls_certs.yaml:20: listeners[3].tls.certificates[2].cert: expected the path of a PEM "
      "certificate (chain), got an empty value\n",
      "bad_tls_certs.yaml:20: listeners[3].tls.certificates[2].default: expected true or false, "
      "got \"yes\"\n",
      "bad_tls_certs.yaml:23: listeners[4].tls: expected a mapping, got \"true\"\n"}},
    {"bad_tls_settings.yaml",
     13,
     {"bad_tls_settings.yaml:6: listeners[0].tls.protocols[0]: expected TLSv1.2 or TLSv1.3, got "
      "\"TLSv1.1\"\n",
      "bad_tls_settings.yaml:6: listeners[0].tls.protocols[2]: duplicate \"TLSv1.3\" (first at "
      "listeners[0].tls.protocols[1], line 6)\n",
      "bad_tls_settings.yaml:7: listeners[0].tls.alpn[0]: expected h2 or http/1.1, got "
      "\"spdy\"\n",
      "bad_tls_settings.yaml:8: listeners[0].tls.session_tickets.rotate: \"10s\" is shorter than "
      "the minimum, 1m\n",
      "bad_tls_settings.yaml:9: listeners[0].tls.session_cache: expected a number 0..1000000, got "
      "\"2000000\"\n",
      "bad_tls_settings.yaml:10: unknown key \"ocsp\" in listeners[0].tls (expected one of: "
      "certificates, protocols, ciphers, ciphersuites, groups, alpn, session_tickets, "
      "session_cache)\n",
      "bad_tls_settings.yaml:11: listeners[0].h2c: h2c is for plain listeners, and this one has "
      "tls (line 4); a TLS listener offers HTTP/2 through tls.alpn\n",
      "bad_tls_settings.yaml:16: listeners[1].tls.protocols: expected at least one of TLSv1.2 or "
      "TLSv1.3, got none\n",
      "bad_tls_settings.yaml:17: listeners[1].tls.alpn: expected a sequence, got \"h2\"\n",
      "bad_tls_settings.yaml:18: listeners[1].tls.ciphers: expected a TLS 1.2 cipher list in "
      "OpenSSL syntax, got an empty value\n",
      "bad_tls_settings.yaml:19: listeners[1].tls.session_tickets.enabled: expected true or "
      "false, got \"yes\"\n",
      "bad_tls_settings.yaml:19: listeners[1].tls.session_tickets.key_file: expected the path of "
      "a ticket key file, got an empty value\n",
      "bad_tls_settings.yaml:20: listeners[1].h2c: expected true or false, got \"maybe\"\n"}},
    {"bad_http2.yaml",
     5,
     {"bad_http2.yaml:4: http2.max_concurrent_streams: expected a number 1..10000, got \"0\"\n",
      "bad_http2.yaml:5: http2.initial_window_size: \"0\" is out of range 1..2147483647 bytes "
      "(2^31 - 1)\n",
      "bad_http2.yaml:6: http2.max_header_list_size: \"512\" is out of range 1k..16m "
      "(1024..16777216 bytes)\n",
      "bad_http2.yaml:7: http2.max_resets_per_10s: expected a number 1..1000000, got \"lots\"\n",
      "bad_http2.yaml:8: unknown key \"max_frame_size\" in http2 (expected one of: "
      "max_concurrent_streams, initial_window_size, max_header_list_size, "
      "max_resets_per_10s)\n"}},
};

static size_t
count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

static void
test_bad_files(void **state)
{
    for (size_t i = 0; i < N_ELEMS(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        char path[4096], *errors = NULL;
        struct cfg *cfg;

        snprintf(path, sizeof(path), "%s%s", TESTDATA, c->file);
        cfg = cfg_load_file(path, &errors);
        if (cfg != NULL)
            fail_msg("%s loaded, but should have failed", c->file);
        assert_non_null(errors);
        if (count_lines(errors) != c->nlines)
            fail_msg("%s: %zu error lines, want %zu:\n%s", c->file, count_lines(errors), c->nlines,
                     errors);
        if (errors[strlen(errors) - 1] != '\n')
            fail_msg("%s: errors do not end with a newline", c->file);
        for (size_t f = 0; f < N_ELEMS(c->fragments) && c->fragments[f] != NULL; f++)
            if (strstr(errors, c->fragments[f]) == NULL)
                fail_msg("%s: missing\n  %s\nin\n%s", c->file, c->fragments[f], errors);
        /* Every line names the file, and they come in line order. */
        for (const char *line = errors; *line; line = strchr(line, '\n') + 1)
            if (strncmp(line, path, strlen(path)) != 0)
                fail_msg("%s: line does not start with the path: %s", c->file, line);
        free(errors);
    }
}

static void
test_errors_in_line_order(void **state)
{
    char *errors = NULL, *p;
    unsigned long last = 0;
    struct cfg *cfg = cfg_load_file(TESTDATA "bad_values.yaml", &errors);

    assert_null(cfg);
    assert_non_null(errors);
    for (p = errors; *p; p = strchr(p, '\n') + 1) {
        const char *colon = strstr(p, ".yaml:");
        unsigned long line;
        assert_non_null(colon);
        line = strtoul(colon + 6, NULL, 10);
        assert_true(line >= last);
        last = line;
    }
    free(errors);
}

static void
test_unreadable_files(void **state)
{
    char *errors = NULL;

    assert_null(cfg_load_file(TESTDATA "no_such_file.yaml", &errors));
    assert_non_null(errors);
    assert_string_equal(errors, TESTDATA "no_such_file.yaml: cannot open: No such file or "
                                         "directory\n");
    free(errors);

    errors = NULL;
    assert_null(cfg_load_file(TESTDATA, &errors));
    assert_non_null(errors);
    assert_non_null(strstr(errors, ": cannot read: Is a directory\n"));
    free(errors);
}

/* ---- texts built here ------------------------------------------------------------- */

static const char base_yaml[] = "listeners: [{name: http, address: \"127.0.0.1:8080\"}]\n";

/* Appends to a growing malloc'd buffer; aborts the test when out of memory. */
struct text {
    char *buf;
    size_t len, cap;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->buf == NULL) {
        t->cap = 4096;
        t->buf = malloc(t->cap);
        assert_non_null(t->buf);
    }
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if ((size_t)n < t->cap - t->len)
            break;
        t->cap = t->cap * 2 + (size_t)n + 64;
        t->buf = realloc(t->buf, t->cap);
        assert_non_null(t->buf);
    }
    t->len += (size_t)n;
}

static void
expect_error(const char *yaml, size_t len, const char *fragment)
{
    char *errors = NULL;
    struct cfg *cfg = cfg_load_text("inline", yaml, len, &errors);

    if (cfg != NULL)
        fail_msg("loaded, but should fail with %s", fragment);
    assert_non_null(errors);
    if (strstr(errors, fragment) == NULL)
        fail_msg("missing \"%s\" in:\n%s", fragment, errors);
    free(errors);
}

/* No small cap on the number of regions: a few thousand load, and the default is found. */
static void
test_many_regions(void **state)
{
    struct text t = {NULL, 0, 0};
    char *errors = NULL;
    struct cfg *cfg;
    const size_t n = 3000;

    text_add(&t, "%sregions:\n", base_yaml);
    for (size_t i = 0; i < n; i++)
        text_add(&t,
                 "  - {name: r%zu, location: {lat: %zu, lon: %zu}, backends: [\"10.%zu.%zu.1:80\"]"
                 "%s}\n",
                 i, i % 90, i % 180, i / 256, i % 256, i == 2999 ? ", default: true" : "");
    cfg = cfg_load_text("many", t.buf, t.len, &errors);
    if (cfg == NULL)
        fail_msg("did not load:\n%.2000s", errors);
    assert_int_equal(cfg->nregions, n);
    assert_int_equal(cfg->default_region, 2999);
    assert_int_equal(cfg_region_index(cfg, "r1234"), 1234);
    assert_string_equal(cfg->path, "many");
    cfg_unref(cfg);
    free(t.buf);
}

/* Billion laughs: a small document whose aliases name a region and its backend list
 * hundreds of times each. The walk must stop at its budget instead of visiting them all. */
static void
test_alias_bomb(void **state)
{
    struct text t = {NULL, 0, 0};

    text_add(&t, "%sregions:\n  - &r {name: a, location: {lat: 0, lon: 0}, backends: [", base_yaml);
    for (int i = 0; i < 600; i++)
        text_add(&t, "%s*b", i ? ", " : "&b \"127.0.0.1:1\", ");
    text_add(&t, "]}\n");
    for (int i = 0; i < 600; i++)
        text_add(&t, "  - *r\n");
    expect_error(t.buf, t.len, "aliases repeat nodes more than 100000 times over");
    free(t.buf);
}

/* Too many errors: the first LOAD_MAX_ERRORS are shown, the rest counted. */
static void
test_error_cap(void **state)
{
    struct text t = {NULL, 0, 0};
    char *errors = NULL;

    text_add(&t,
             "%sregions: [{name: a, location: {lat: 0, lon: 0}, backends: [\"127.0.0.1:1\"]}]\n",
             base_yaml);
    for (int i = 0; i < 150; i++)
        text_add(&t, "key%d: 1\n", i);
    assert_null(cfg_load_text("inline", t.buf, t.len, &errors));
    assert_non_null(errors);
    assert_int_equal(count_lines(errors), 101);
    assert_non_null(strstr(errors, "inline: 50 more errors not shown\n"));
    free(errors);
    free(t.buf);
}

struct text_case {
    const char *yaml; /* NUL-terminated unless len is set */
    size_t len;
    const char *fragment;
};

static const struct text_case text_cases[] = {
    {"", 0, "inline:1: the file is empty"},
    {"just text", 0, "inline:1: expected a mapping at the top level, got \"just text\""},
    {"listeners: [{name: http, address: \"127.0.0.1:80\"}]\nregions:\n  - name: \"a\\0b\"\n", 0,
     "inline:3: regions[0].name: contains a NUL byte"},
    {"listeners: [{name: http, address: \"127.0.0.1:80\"}]\nregions: [{name: a, location: {lat: "
     "0, lon: 0}, backends: [\"127.0.0.1:9001\"]}]\nworkers: \xff\xfe\n",
     0, "inline:3: invalid YAML: invalid leading UTF-8 octet"},
    {"a: [1,\n", 0, "inline:2: invalid YAML:"},
    {"{? [a]: 1}\n", 0, "inline:1: expected a key name in the top level, got a sequence"},
    {"listeners: [{name: http, address: \"127.0.0.1:80\"}]\nlog_level: \"a\\nb\\\"c\"\n", 0,
     "inline:2: log_level: expected one of error, warn, info, debug, got \"a\\x0ab\\\"c\"\n"},
    {"listeners: [{name: http, address: "
     "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}]\n",
     0, "got \"012345678901234567890123456789012345678901234567\"... (no port)\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:99999999999999999999\"}]\n", 0,
     "inline:1: listeners[0].address: port 999999999999... out of range 1..65535\n"},
    {"limits: {max_body_bytes: 16777216T}\n", 0,
     "inline:1: limits.max_body_bytes: expected a size like 512, 16k, 10m, 1g, got "
     "\"16777216T\"\n"},
    {"limits: {max_body_bytes: 17179869184G}\n", 0,
     "inline:1: limits.max_body_bytes: \"17179869184G\" is too large\n"},
    {"timeouts: {shutdown: 1441m}\n", 0,
     "inline:1: timeouts.shutdown: \"1441m\" is longer than the maximum, 24h\n"},
    {"workers: 1\0listeners: []", 24, "inline:1: invalid YAML: control characters are not allowed"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {}}]\n", 0,
     "inline:1: missing required key \"certificates\" in listeners[0].tls\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: {cert: a, key: "
     "b}}}]\n",
     0, "inline:1: listeners[0].tls.certificates: expected a sequence, got a mapping\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [a.pem]}}]\n", 0,
     "inline:1: listeners[0].tls.certificates[0]: expected a mapping, got \"a.pem\"\n"},
    {"listeners:\n  - name: a\n    address: \"127.0.0.1:443\"\n    h2c: true\n    tls:\n"
     "      certificates: [{cert: a, key: b}]\n",
     0, "inline:4: listeners[0].h2c: h2c is for plain listeners, and this one has tls (line 5)"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [{cert: a, key: b}], "
     "protocols: TLSv1.3}}]\n",
     0, "inline:1: listeners[0].tls.protocols: expected a sequence, got \"TLSv1.3\"\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [{cert: a, key: b}], "
     "protocols: [tlsv1.3]}}]\n",
     0, "inline:1: listeners[0].tls.protocols[0]: expected TLSv1.2 or TLSv1.3, got \"tlsv1.3\"\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [{cert: a, key: b}], "
     "alpn: [h2, http/1.1, h2]}}]\n",
     0,
     "inline:1: listeners[0].tls.alpn[2]: duplicate \"h2\" (first at listeners[0].tls.alpn[0], "
     "line 1)\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [{cert: a, key: b}], "
     "alpn: [[h2]]}}]\n",
     0, "inline:1: listeners[0].tls.alpn[0]: expected a single value, got a sequence\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [{cert: a, key: b}], "
     "session_tickets: {rotate: 0}}}]\n",
     0,
     "inline:1: listeners[0].tls.session_tickets.rotate: \"0\" is shorter than the minimum, 1m\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [{cert: a, key: b}], "
     "session_tickets: {rotate: 25h}}}]\n",
     0,
     "inline:1: listeners[0].tls.session_tickets.rotate: \"25h\" is longer than the maximum, "
     "24h\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [{cert: a, key: b}], "
     "session_tickets: true}}]\n",
     0, "inline:1: listeners[0].tls.session_tickets: expected a mapping, got \"true\"\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [{cert: a, key: b}], "
     "session_cache: -1}}]\n",
     0, "inline:1: listeners[0].tls.session_cache: expected a number 0..1000000, got \"-1\"\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [{cert: a, key: b}], "
     "groups: \"\"}}]\n",
     0,
     "inline:1: listeners[0].tls.groups: expected a list of groups like X25519:P-256, got an "
     "empty value\n"},
    {"listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: [{cert: \"a\\0b\", "
     "key: b}]}}]\n",
     0, "inline:1: listeners[0].tls.certificates[0].cert: contains a NUL byte\n"},
    {"http2: {initial_window_size: 2147483648}\n", 0,
     "inline:1: http2.initial_window_size: \"2147483648\" is out of range 1..2147483647 bytes"},
    {"http2: {initial_window_size: 2g}\n", 0,
     "inline:1: http2.initial_window_size: \"2g\" is out of range 1..2147483647 bytes"},
    {"http2: {initial_window_size: 64KB}\n", 0,
     "inline:1: http2.initial_window_size: expected a size like 512, 16k, 10m, 1g, got \"64KB\"\n"},
    {"http2: {max_header_list_size: 17m}\n", 0,
     "inline:1: http2.max_header_list_size: \"17m\" is out of range 1k..16m"},
    {"http2: {max_concurrent_streams: 10001}\n", 0,
     "inline:1: http2.max_concurrent_streams: expected a number 1..10000, got \"10001\"\n"},
    {"http2: {max_concurrent_streams: 1k}\n", 0,
     "inline:1: http2.max_concurrent_streams: expected a number 1..10000, got \"1k\"\n"},
    {"http2: {max_resets_per_10s: 0}\n", 0,
     "inline:1: http2.max_resets_per_10s: expected a number 1..1000000, got \"0\"\n"},
    {"http2: [100]\n", 0, "inline:1: http2: expected a mapping, got a sequence\n"},
};

static void
test_text_cases(void **state)
{
    for (size_t i = 0; i < N_ELEMS(text_cases); i++) {
        const struct text_case *c = &text_cases[i];
        expect_error(c->yaml, c->len ? c->len : strlen(c->yaml), c->fragment);
    }
}

/* ---- TLS file paths and limits --------------------------------------------------- */

/* Restores the working directory a test changed, whatever it asserted on the way. */
static char saved_cwd[4096];

static int
save_cwd(void **state)
{
    return getcwd(saved_cwd, sizeof(saved_cwd)) != NULL ? 0 : -1;
}

static int
restore_cwd(void **state)
{
    return chdir(saved_cwd);
}

static struct cfg *
load_file_or_fail(const char *path)
{
    char *errors = NULL;
    struct cfg *cfg = cfg_load_file(path, &errors);

    if (cfg == NULL)
        fail_msg("%s did not load:\n%s", path, errors ? errors : "(no errors text)");
    assert_null(errors);
    return cfg;
}

/* Relative paths in a file are taken from the file's directory as the file was named,
 * so that they name the same files from the current directory; cfg_load_text has no
 * directory and keeps them as written. */
static void
test_tls_relative_paths(void **state)
{
    struct cfg *cfg;
    char *text = NULL, *errors = NULL;
    size_t len = 0;
    FILE *f;

    assert_int_equal(chdir(SRCDIR), 0);
    cfg = load_file_or_fail("tests/unit/testdata/cfg/good_tls.yaml");
    check_tls_first(&cfg->listeners[0], "tests/unit/testdata/cfg/");
    cfg_unref(cfg);

    assert_int_equal(chdir(TESTDATA), 0);
    cfg = load_file_or_fail("good_tls.yaml");
    check_tls_first(&cfg->listeners[0], "");
    cfg_unref(cfg);

    cfg = load_file_or_fail("./good_tls.yaml");
    check_tls_first(&cfg->listeners[0], "./");
    cfg_unref(cfg);

    f = fopen("good_tls.yaml", "rb");
    assert_non_null(f);
    text = malloc(8192);
    assert_non_null(text);
    len = fread(text, 1, 8192, f);
    fclose(f);
    assert_true(len > 0 && len < 8192);
    cfg = cfg_load_text("text", text, len, &errors);
    if (cfg == NULL)
        fail_msg("did not load:\n%s", errors);
    check_tls_first(&cfg->listeners[0], "");
    cfg_unref(cfg);
    free(text);
}

/* Absolute paths are kept as written, from a file and from a text. */
static void
test_tls_absolute_paths(void **state)
{
    char path[] = "/tmp/meridian-test-cfg-XXXXXX";
    struct text t = {NULL, 0, 0};
    char *errors = NULL;
    struct cfg *cfg;
    int fd;

    text_add(&t,
             "listeners:\n"
             "  - name: https\n"
             "    address: 127.0.0.1:8443\n"
             "    tls:\n"
             "      certificates: [{cert: %scerts/ecdsa.pem, key: %scerts/ecdsa.key}]\n"
             "      session_tickets: {key_file: %scerts/ticket.key}\n"
             "regions: [{name: a, location: {lat: 0, lon: 0}, backends: [127.0.0.1:9001]}]\n",
             TESTDATA, TESTDATA, TESTDATA);

    cfg = cfg_load_text("inline", t.buf, t.len, &errors);
    if (cfg == NULL)
        fail_msg("did not load:\n%s", errors);
    assert_string_equal(cfg->listeners[0].tls->certs[0].cert_path, TESTDATA "certs/ecdsa.pem");
    assert_true(cfg->listeners[0].tls->certs[0].is_default);
    cfg_unref(cfg);

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, t.buf, t.len), (ssize_t)t.len);
    close(fd);
    cfg = load_file_or_fail(path);
    assert_string_equal(cfg->listeners[0].tls->certs[0].cert_path, TESTDATA "certs/ecdsa.pem");
    assert_string_equal(cfg->listeners[0].tls->certs[0].key_path, TESTDATA "certs/ecdsa.key");
    assert_string_equal(cfg->listeners[0].tls->ticket_key_file, TESTDATA "certs/ticket.key");
    cfg_unref(cfg);
    unlink(path);
    free(t.buf);
}

/* Every limit of the TLS and HTTP/2 settings is itself allowed. */
static void
test_tls_http2_limits(void **state)
{
    static const struct {
        const char *tls, *http2;
    } cases[] = {
        {"protocols: [TLSv1.2], alpn: [h2], session_cache: 1000000, "
         "session_tickets: {enabled: false, rotate: 1m}",
         "{max_concurrent_streams: 1, initial_window_size: 1, max_header_list_size: 1k, "
         "max_resets_per_10s: 1}"},
        {"protocols: [TLSv1.3, TLSv1.2], alpn: [http/1.1], session_cache: 0, "
         "session_tickets: {rotate: 24h}",
         "{max_concurrent_streams: 10000, initial_window_size: 2147483647, "
         "max_header_list_size: 16m, max_resets_per_10s: 1000000}"},
    };
    static const uint32_t want[][4] = {{1, 1, 1024, 1}, {10000, 2147483647, 16777216, 1000000}};

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct text t = {NULL, 0, 0};
        char *errors = NULL;
        struct cfg *cfg;
        const struct cfg_tls *tls;

        text_add(&t,
                 "listeners: [{name: a, address: \"127.0.0.1:443\", tls: {certificates: "
                 "[{cert: %scerts/rsa.pem, key: %scerts/rsa.key}], %s}}]\n"
                 "http2: %s\n"
                 "regions: [{name: a, location: {lat: 0, lon: 0}, backends: [127.0.0.1:9001]}]\n",
                 TESTDATA, TESTDATA, cases[i].tls, cases[i].http2);
        cfg = cfg_load_text("inline", t.buf, t.len, &errors);
        if (cfg == NULL)
            fail_msg("case %zu did not load:\n%s", i, errors);
        tls = cfg->listeners[0].tls;
        assert_int_equal(tls->protocols, i == 0 ? CFG_TLS_V12 : CFG_TLS_V12 | CFG_TLS_V13);
        assert_int_equal(tls->nalpn, 1);
        assert_string_equal(tls->alpn[0], i == 0 ? "h2" : "http/1.1");
        assert_int_equal(tls->session_cache, i == 0 ? 1000000 : 0);
        assert_int_equal(tls->tickets, i != 0);
        assert_int_equal(tls->ticket_rotate_ms, i == 0 ? 60000 : 86400000);
        assert_int_equal(cfg->http2.max_concurrent_streams, want[i][0]);
        assert_int_equal(cfg->http2.initial_window_size, want[i][1]);
        assert_int_equal(cfg->http2.max_header_list_size, want[i][2]);
        assert_int_equal(cfg->http2.max_resets_per_10s, want[i][3]);
        cfg_unref(cfg);
        free(t.buf);
    }
}

/* tls_prepare runs only on a file that is otherwise right, and its verdict is the load's:
 * certificate files that do not exist either load (when no TLS back end reads them, as in
 * a schema-only build) or fail with lines in the loader's own format. Which of the two is
 * up to tls.c; the shape of the answer is not. */
static void
test_tls_prepare_contract(void **state)
{
    static const char yaml[] =
        "listeners:\n"
        "  - name: https\n"
        "    address: 127.0.0.1:8443\n"
        "    tls:\n"
        "      certificates: [{cert: /nonexistent/meridian.pem, key: /nonexistent/meridian.key}]\n"
        "regions: [{name: a, location: {lat: 0, lon: 0}, backends: [127.0.0.1:9001]}]\n";
    char *errors = (char *)"unset";
    struct cfg *cfg = cfg_load_text("inline", yaml, strlen(yaml), &errors);

    if (cfg != NULL) {
        assert_null(errors);
        cfg_unref(cfg);
        return;
    }
    assert_non_null(errors);
    assert_true(strlen(errors) > 0 && errors[strlen(errors) - 1] == '\n');
    for (const char *line = errors; *line; line = strchr(line, '\n') + 1)
        if (strncmp(line, "inline", 6) != 0)
            fail_msg("line does not start with the name: %s", line);
    free(errors);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_new_defaults),
        cmocka_unit_test(test_ref_unref),
        cmocka_unit_test(test_ref_threads),
        cmocka_unit_test(test_region_index),
        cmocka_unit_test(test_good_files),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_errors_in_line_order),
        cmocka_unit_test(test_unreadable_files),
        cmocka_unit_test(test_many_regions),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_text_cases),
        cmocka_unit_test(test_tls_absolute_paths),
        cmocka_unit_test(test_tls_http2_limits),
        cmocka_unit_test(test_tls_prepare_contract),
        cmocka_unit_test_setup_teardown(test_tls_relative_paths, save_cwd, restore_cwd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
