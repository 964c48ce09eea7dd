/* SPDX-License-Identifier: MIT */
/* Unit tests for cfg and cfg_load: the value parsers, reference counting, and the loader
 * over the files in testdata/cfg/ (good_*.yaml must load; each bad_*.yaml must fail with
 * exactly the listed errors) and over texts built here (alias bombs, many regions).
 * Files named by good TLS configurations exist (testdata/cfg/certs/), so these tests pass
 * whether tls_prepare really reads them or a stub stands in for tls.c. */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <grp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfg.h"
#include "cfg_load.h"
#include "tls_upstream.h"

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
    assert_false(cfg->rate_limit.enabled);
    assert_null(cfg->rate_limit.phases);
    assert_int_equal(cfg->rate_limit.scope, CFG_RL_GLOBAL);
    assert_int_equal(cfg->rate_limit.on_redis_failure, CFG_RL_FAIL_LOCAL);
    assert_int_equal(cfg->rate_limit.redis.timeout_ms, CFG_DEFAULT_REDIS_TIMEOUT_MS);
    assert_null(cfg->rate_limit.redis.key_prefix);
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

#define COUNTRY(a, b) (((a) - 'A') * 26 + ((b) - 'A'))

/* What a file without client_ip, geoip, routing or health_check gets: trust nobody, no
 * database, the default headers and spilling, no active checks anywhere. */
static void
check_routing_defaults(const struct cfg *cfg)
{
    assert_null(cfg->client_ip.nets);
    assert_int_equal(cfg->client_ip.nnets, 0);
    assert_int_equal(cfg->client_ip.nsources, 1);
    assert_int_equal(cfg->client_ip.sources[0], CLIENT_IP_XFF);
    assert_false(cfg->client_ip.use_cdn_location);
    assert_null(cfg->geoip_path);
    assert_null(cfg->geo);
    assert_true(cfg->routing.spill_below == CFG_DEFAULT_SPILL_BELOW);
    assert_string_equal(cfg->routing.country_header, "X-Client-Country");
    assert_string_equal(cfg->routing.region_header, "X-Client-Region");
    assert_false(cfg->health_check.enabled);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        assert_ptr_equal(cfg->listeners[i].client_ip, &cfg->client_ip);
        assert_null(cfg->listeners[i].client_ip_own);
        assert_false(cfg->listeners[i].proxy_protocol);
    }
    for (size_t i = 0; i < cfg->nregions; i++) {
        const struct cfg_health_check *hc = &cfg->regions[i].health_check;
        assert_null(cfg->regions[i].countries);
        assert_int_equal(cfg->regions[i].balance, CFG_BALANCE_ROUND_ROBIN);
        assert_false(hc->enabled);
        assert_string_equal(hc->path, "/");
        assert_null(hc->host);
        assert_int_equal(hc->interval_ms, CFG_DEFAULT_HC_INTERVAL_MS);
        assert_int_equal(hc->timeout_ms, CFG_DEFAULT_HC_TIMEOUT_MS);
        assert_int_equal(hc->rise, CFG_DEFAULT_HC_RISE);
        assert_int_equal(hc->fall, CFG_DEFAULT_HC_FALL);
        assert_int_equal(hc->expect_lo, 200);
        assert_int_equal(hc->expect_hi, 399);
        assert_true(hc->passive);
    }
    assert_int_equal(cfg->route.nregions, cfg->nregions);
    assert_int_equal(cfg->route.default_region, cfg->default_region);
    assert_true(cfg->route.spill_below == CFG_DEFAULT_SPILL_BELOW);
    for (size_t c = 0; c < 26 * 26; c++)
        assert_int_equal(cfg->route.by_country[c], 0);
}

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
    assert_int_equal(cfg->regions[0].backends[0].weight, CFG_DEFAULT_WEIGHT);
    assert_false(cfg->regions[0].backends[0].drain);
    assert_null(cfg->regions[0].schedule); /* equal weights: plain round-robin */
    assert_int_equal(cfg->regions[0].nserving, 1);
    assert_false(cfg->any_draining);
    assert_int_equal(cfg->http2.max_concurrent_streams, CFG_DEFAULT_H2_MAX_STREAMS);
    assert_int_equal(cfg->http2.initial_window_size, CFG_DEFAULT_H2_WINDOW);
    assert_int_equal(cfg->http2.max_header_list_size, CFG_DEFAULT_H2_MAX_HEADER_LIST);
    assert_int_equal(cfg->http2.max_resets_per_10s, CFG_DEFAULT_H2_MAX_RESETS);
    check_routing_defaults(cfg);
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

/* good_routing.yaml: every new key away from its default. */
static void
check_routing(const struct cfg *cfg)
{
    const struct client_ip_cfg *ci = &cfg->client_ip, *own;
    const struct cfg_health_check *top = &cfg->health_check, *hc;

    assert_int_equal(ci->nnets, 3);
    assert_int_equal(ci->nets[0].family, AF_INET);
    assert_int_equal(ci->nets[0].prefix, 32);
    assert_int_equal(ci->nets[1].family, AF_INET6);
    assert_int_equal(ci->nets[1].prefix, 128);
    assert_int_equal(ci->nets[2].family, AF_INET);
    assert_int_equal(ci->nets[2].prefix, 8);
    assert_int_equal(ci->nets[2].addr[0], 10);
    assert_int_equal(ci->nsources, 3); /* names in any case, in the file's order */
    assert_int_equal(ci->sources[0], CLIENT_IP_FORWARDED);
    assert_int_equal(ci->sources[1], CLIENT_IP_XFF);
    assert_int_equal(ci->sources[2], CLIENT_IP_CF_VIEWER);
    assert_true(ci->use_cdn_location);

    assert_true(cfg->routing.spill_below == 0.25f);
    assert_string_equal(cfg->routing.country_header, "X-Geo-Country");
    assert_null(cfg->routing.region_header);
    assert_null(cfg->geoip_path);

    assert_true(top->enabled);
    assert_int_equal(top->line, 12);
    assert_string_equal(top->path, "/healthz?full=1");
    assert_string_equal(top->host, "backend.example");
    assert_int_equal(top->interval_ms, 5000);
    assert_int_equal(top->timeout_ms, 500);
    assert_int_equal(top->rise, 3);
    assert_int_equal(top->fall, 4);
    assert_int_equal(top->expect_lo, 200);
    assert_int_equal(top->expect_hi, 299);
    assert_false(top->passive);

    /* A listener without client_ip borrows the top level's; one with its own owns it, and
     * what it leaves out has the defaults, not the top level's values. */
    assert_true(cfg->listeners[0].proxy_protocol);
    assert_ptr_equal(cfg->listeners[0].client_ip, &cfg->client_ip);
    assert_null(cfg->listeners[0].client_ip_own);
    assert_false(cfg->listeners[1].proxy_protocol);
    own = cfg->listeners[1].client_ip_own;
    assert_non_null(own);
    assert_ptr_equal(cfg->listeners[1].client_ip, own);
    assert_int_equal(own->nnets, 1);
    assert_int_equal(own->nets[0].prefix, 24);
    assert_int_equal(own->nets[0].addr[2], 2);
    assert_int_equal(own->nsources, 1);
    assert_int_equal(own->sources[0], CLIENT_IP_CF_VIEWER);
    assert_false(own->use_cdn_location);

    /* eu: no health_check key, so the top level's, strings copied. */
    assert_string_equal(cfg->regions[0].countries, "GBDEFR");
    assert_int_equal(cfg->regions[0].balance, CFG_BALANCE_LEAST_OUTSTANDING);
    hc = &cfg->regions[0].health_check;
    assert_true(hc->enabled);
    assert_int_equal(hc->line, 12);
    assert_string_equal(hc->path, "/healthz?full=1");
    assert_ptr_not_equal(hc->path, top->path);
    assert_string_equal(hc->host, "backend.example");
    assert_ptr_not_equal(hc->host, top->host);
    assert_int_equal(hc->interval_ms, 5000);
    assert_int_equal(hc->expect_hi, 299);
    assert_false(hc->passive);

    /* us: its keys over the top level's. */
    assert_string_equal(cfg->regions[1].countries, "USCA");
    assert_int_equal(cfg->regions[1].balance, CFG_BALANCE_ROUND_ROBIN);
    hc = &cfg->regions[1].health_check;
    assert_true(hc->enabled);
    assert_int_equal(hc->line, 42);
    assert_string_equal(hc->path, "/ready");
    assert_string_equal(hc->host, "backend.example");
    assert_int_equal(hc->interval_ms, 10000);
    assert_int_equal(hc->timeout_ms, 500);
    assert_int_equal(hc->rise, 3);
    assert_int_equal(hc->fall, 4);
    assert_int_equal(hc->expect_lo, 200);
    assert_int_equal(hc->expect_hi, 204);
    assert_false(hc->passive);

    /* ap: "health_check: false" turns checks off there. */
    assert_null(cfg->regions[2].countries);
    assert_false(cfg->regions[2].health_check.enabled);

    /* The route table: countries point at their region (index + 1). */
    assert_int_equal(cfg->route.nregions, 3);
    assert_int_equal(cfg->route.default_region, 0);
    assert_true(cfg->route.spill_below == 0.25f);
    assert_int_equal(cfg->route.by_country[COUNTRY('G', 'B')], 1);
    assert_int_equal(cfg->route.by_country[COUNTRY('D', 'E')], 1);
    assert_int_equal(cfg->route.by_country[COUNTRY('F', 'R')], 1);
    assert_int_equal(cfg->route.by_country[COUNTRY('U', 'S')], 2);
    assert_int_equal(cfg->route.by_country[COUNTRY('C', 'A')], 2);
    assert_int_equal(cfg->route.by_country[COUNTRY('J', 'P')], 0);
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
    assert_int_equal(cfg->regions[2].backends[0].weight, 3); /* the mapping form */
    assert_int_equal(cfg->regions[2].backends[1].weight, CFG_DEFAULT_WEIGHT);
    assert_int_equal(cfg->regions[2].nschedule, 4);
    assert_false(cfg->rate_limit.enabled); /* commented out: see test_ratelimit_example */

    /* Loopback proxies trusted; no GeoIP database (its section is commented out). */
    assert_int_equal(cfg->client_ip.nnets, 2);
    assert_int_equal(cfg->client_ip.nsources, 1);
    assert_int_equal(cfg->client_ip.sources[0], CLIENT_IP_XFF);
    assert_false(cfg->client_ip.use_cdn_location);
    assert_ptr_equal(cfg->listeners[0].client_ip, &cfg->client_ip);
    assert_false(cfg->listeners[0].proxy_protocol);
    assert_null(cfg->geoip_path);
    assert_null(cfg->geo);
    assert_true(cfg->routing.spill_below == 0.5f);
    assert_string_equal(cfg->routing.country_header, "X-Client-Country");
    assert_string_equal(cfg->routing.region_header, "X-Client-Region");
    /* The health_check section shows the defaults. */
    assert_true(cfg->health_check.enabled);
    assert_string_equal(cfg->health_check.path, "/");
    assert_null(cfg->health_check.host);
    assert_int_equal(cfg->health_check.interval_ms, CFG_DEFAULT_HC_INTERVAL_MS);
    assert_int_equal(cfg->health_check.timeout_ms, CFG_DEFAULT_HC_TIMEOUT_MS);
    assert_int_equal(cfg->health_check.rise, CFG_DEFAULT_HC_RISE);
    assert_int_equal(cfg->health_check.fall, CFG_DEFAULT_HC_FALL);
    assert_int_equal(cfg->health_check.expect_lo, 200);
    assert_int_equal(cfg->health_check.expect_hi, 399);
    assert_true(cfg->health_check.passive);
    for (size_t i = 0; i < 5; i++)
        assert_true(cfg->regions[i].health_check.enabled);
    assert_int_equal(cfg->regions[0].health_check.interval_ms, CFG_DEFAULT_HC_INTERVAL_MS);
    assert_int_equal(cfg->regions[1].health_check.interval_ms, 5000);
    assert_int_equal(cfg->regions[1].health_check.fall, CFG_DEFAULT_HC_FALL);
    assert_string_equal(cfg->regions[0].countries, "GBIE");
    assert_int_equal(cfg->regions[0].balance, CFG_BALANCE_ROUND_ROBIN);
    assert_int_equal(cfg->regions[1].balance, CFG_BALANCE_LEAST_OUTSTANDING);
    assert_int_equal(cfg->route.nregions, 5);
    assert_int_equal(cfg->route.by_country[COUNTRY('I', 'E')], 1);
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
    {"/tests/unit/testdata/cfg/good_routing.yaml", check_routing},
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
      "workers, log_level, user, group, run_as_root, listeners, admin, timeouts, limits, http2, "
      "access_log, client_ip, geoip, routing, health_check, resolvers, regions, rate_limit)\n"}},
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
    {"bad_client_ip.yaml",
     12,
     {"bad_client_ip.yaml:2: client_ip.trusted_proxies[0]: \"10.0.0.1/8\" has host bits set "
      "under /8 (the network is 10.0.0.0/8)\n",
      "bad_client_ip.yaml:2: client_ip.trusted_proxies[1]: \"bogus\" is not an IP address or "
      "network (write one like 10.0.0.0/8, 2001:db8::/32 or 127.0.0.1; names are never looked "
      "up)\n",
      "bad_client_ip.yaml:2: client_ip.trusted_proxies[2]: the prefix length in \"10.0.0.0/33\" "
      "is not a number 0..32\n",
      "bad_client_ip.yaml:2: client_ip.trusted_proxies[3]: the prefix length in \"::1/129\" is "
      "not a number 0..128\n",
      "bad_client_ip.yaml:2: client_ip.trusted_proxies[4]: expected a single value, got a "
      "sequence\n",
      "bad_client_ip.yaml:3: client_ip.headers[1]: duplicate \"x-forwarded-for\" (first at "
      "client_ip.headers[0], line 3)\n",
      "bad_client_ip.yaml:3: client_ip.headers[2]: expected x-forwarded-for, forwarded or "
      "cloudfront-viewer-address, got \"x-real-ip\"\n",
      "bad_client_ip.yaml:4: client_ip.use_cdn_location: expected true or false, got \"yes\"\n",
      "bad_client_ip.yaml:8: listeners[0].proxy_protocol: expected true or false, got "
      "\"maybe\"\n",
      "bad_client_ip.yaml:9: listeners[0].client_ip.headers: expected at least one of "
      "x-forwarded-for, forwarded or cloudfront-viewer-address, got none\n",
      "bad_client_ip.yaml:9: listeners[0].client_ip: use_cdn_location needs trusted_proxies: "
      "headers are only believed from trusted peers\n",
      "bad_client_ip.yaml:12: listeners[1].client_ip: expected a mapping, got a sequence\n"}},
    {"bad_routing.yaml",
     9,
     {"bad_routing.yaml:3: routing.spill_below: expected a share from 0 to 100%, like 50% or 0.5 "
      "(0 turns spilling off), got \"150%\"\n",
      "bad_routing.yaml:4: routing.country_header: expected a header field name (letters, "
      "digits and !#$%&'*+-.^_`|~), or false to send none, got \"X Country\"\n",
      "bad_routing.yaml:5: routing.region_header: \"Content-Length\" is a header Meridian sets "
      "or acts on itself; choose another name\n",
      "bad_routing.yaml:6: missing required key \"database\" in geoip\n",
      "bad_routing.yaml:10: regions[0].countries[1]: expected a two-letter country code like "
      "GB, got \"DEU\"\n",
      "bad_routing.yaml:10: regions[0].countries[2]: duplicate country GB (first at line 10)\n",
      "bad_routing.yaml:10: regions[0].countries[3]: expected a two-letter country code like "
      "GB, got \"1A\"\n",
      "bad_routing.yaml:11: regions[0].balance: expected round_robin or least_outstanding, got "
      "\"random\"\n",
      "bad_routing.yaml:16: regions[1].countries[1]: country GB is listed by region \"eu\" "
      "(regions[0]), line 10, and by region \"uk\" (regions[1]), line 16; a country belongs "
      "to one region\n"}},
    {"bad_health.yaml",
     16,
     {"bad_health.yaml:3: health_check.path: expected a path starting with \"/\", at most 255 "
      "visible ASCII characters (no spaces), got \"healthz\"\n",
      "bad_health.yaml:4: health_check.host: expected a host name like backend.example, of "
      "letters, digits, \".\", \"-\", \"_\" (an IP literal and a port may use \":\", \"[\" and "
      "\"]\"), got \"back end\"\n",
      "bad_health.yaml:5: health_check.interval: \"50ms\" is out of range 100ms..1h\n",
      "bad_health.yaml:6: health_check.timeout: must be longer than 0\n",
      "bad_health.yaml:7: health_check.rise: expected a number 1..100, got \"0\"\n",
      "bad_health.yaml:8: health_check.fall: expected a number 1..100, got \"101\"\n",
      "bad_health.yaml:9: health_check.expect_status: expected a status 100..599, a class like "
      "2xx, or a range like 200-399, got \"600\"\n",
      "bad_health.yaml:10: health_check.passive: expected true or false, got \"sometimes\"\n",
      "bad_health.yaml:11: unknown key \"port\" in health_check (expected one of: path, host, "
      "interval, timeout, rise, fall, expect_status, passive)\n",
      "bad_health.yaml:16: regions[0].health_check.expect_status: expected a status 100..599, a "
      "class like 2xx, or a range like 200-399, got \"399-200\"\n",
      "bad_health.yaml:16: regions[0].health_check.timeout: 2s is longer than the interval, 1s; "
      "a check must end before the next one starts\n",
      "bad_health.yaml:21: regions[1].health_check: expected a mapping of health check keys, or "
      "false to turn checks off for this region, got \"off\"\n",
      /* The top level's timeout was refused: the default, 1s, is what the region meets. */
      "bad_health.yaml:25: regions[2].health_check.interval: 500ms is shorter than the "
      "timeout, 1s; a check must end before the next one starts\n",
      "bad_health.yaml:29: regions[3].health_check.path: expected a path starting with \"/\"",
      "bad_health.yaml:29: regions[3].health_check.interval: \"2h\" is out of range "
      "100ms..1h\n",
      "bad_health.yaml:29: regions[3].health_check.expect_status: expected a status 100..599, "
      "a class like 2xx, or a range like 200-399, got \"2xxx\"\n"}},
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

/* ---- backend weights and drain ----------------------------------------------------- */

#define WEIGHTS_HEAD "listeners: [{name: http, address: \"127.0.0.1:8080\"}]\nregions:\n"

/* The string form and the mapping form in one list; the smooth weighted round-robin cycle
 * laid out for unequal weights (least_outstanding breaks its ties by it), none for equal
 * weights; a region whose
 * every backend drains loads (it has nothing to send to, which routing sees). */
static void
test_backend_weights(void **state)
{
    static const char text[] = WEIGHTS_HEAD
        "  - name: eu\n"                                         /* 3 */
        "    location: {lat: 50, lon: 8}\n"                      /* 4 */
        "    default: true\n"                                    /* 5 */
        "    backends:\n"                                        /* 6 */
        "      - \"127.0.0.1:9001\"\n"                           /* 7 */
        "      - { address: \"127.0.0.1:9002\", weight: 5 }\n"   /* 8 */
        "      - { address: \"127.0.0.1:9003\", drain: true }\n" /* 9 */
        "      - address: \"127.0.0.1:9004\"\n"                  /* 10 */
        "        weight: 0\n"                                    /* 11 */
        "      - { address: \"127.0.0.1:9005\", weight: 256, drain: false }\n"
        "  - name: us\n"
        "    location: {lat: 40, lon: -77}\n"
        "    balance: least_outstanding\n"
        "    backends: [{address: \"127.0.0.1:9011\", weight: 3}, \"127.0.0.1:9012\"]\n"
        "  - name: ap\n"
        "    location: {lat: 1, lon: 103}\n"
        "    backends: [{address: \"127.0.0.1:9021\", drain: true},\n"
        "               {address: \"127.0.0.1:9022\", weight: 0}]\n"
        "  - name: sa\n"
        "    location: {lat: -23, lon: -46}\n"
        "    backends: [{address: \"127.0.0.1:9031\", weight: 2}, "
        "{address: \"127.0.0.1:9032\", weight: 2}]\n";
    char *errors = NULL;
    struct cfg *cfg = cfg_load_text("inline", text, sizeof(text) - 1, &errors);
    (void)state;

    if (cfg == NULL)
        fail_msg("did not load:\n%s", errors ? errors : "(no errors text)");
    const struct cfg_region *eu = &cfg->regions[0], *us = &cfg->regions[1];
    const struct cfg_region *ap = &cfg->regions[2], *sa = &cfg->regions[3];
    static const char *const addrs[] = {"127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003",
                                        "127.0.0.1:9004", "127.0.0.1:9005"};
    static const uint32_t weights[] = {1, 5, 1, 0, 256};
    static const bool drains[] = {false, false, true, false, false};
    assert_int_equal(eu->nbackends, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(eu->backends[i].addr.text, addrs[i]);
        assert_int_equal(eu->backends[i].weight, weights[i]);
        assert_int_equal(eu->backends[i].drain, drains[i]);
    }
    assert_int_equal(cfg_backend_weight(&eu->backends[2]), 0);
    assert_int_equal(eu->nserving, 3);
    assert_true(cfg->any_draining);
    /* 1:5:0:0:256 - one cycle of 262, the drained ones never in it. */
    assert_int_equal(eu->nschedule, 262);
    uint32_t count[5] = {0};
    for (size_t k = 0; k < eu->nschedule; k++)
        count[eu->schedule[k]]++;
    assert_int_equal(count[0], 1);
    assert_int_equal(count[1], 5);
    assert_int_equal(count[2], 0);
    assert_int_equal(count[3], 0);
    assert_int_equal(count[4], 256);

    assert_int_equal(us->backends[0].weight, 3);
    assert_int_equal(us->backends[1].weight, CFG_DEFAULT_WEIGHT);
    /* least_outstanding: the 3:1 cycle, for its ties (a a b a) */
    assert_int_equal(us->nschedule, 4);
    assert_non_null(us->schedule);
    assert_int_equal(us->schedule[0] + us->schedule[1] + us->schedule[2] + us->schedule[3], 1);
    assert_int_equal(us->nserving, 2);

    assert_int_equal(ap->nserving, 0);
    assert_null(ap->schedule);
    assert_int_equal(ap->nschedule, 0);

    assert_null(sa->schedule); /* 2:2 is plain round-robin */
    assert_int_equal(sa->nserving, 2);
    cfg_unref(cfg);
}

struct weight_error_case {
    const char *backends; /* the region's backends: line 6 of the file */
    const char *fragment;
};

static const struct weight_error_case weight_errors[] = {
    {"[{address: \"127.0.0.1:9001\", weight: 257}]",
     "inline:6: regions[0].backends[0].weight: expected a number 0..256, got \"257\"\n"},
    {"[{address: \"127.0.0.1:9001\", weight: -1}]",
     "inline:6: regions[0].backends[0].weight: expected a number 0..256, got \"-1\"\n"},
    {"[{address: \"127.0.0.1:9001\", weight: 1.5}]",
     "inline:6: regions[0].backends[0].weight: expected a number 0..256, got \"1.5\"\n"},
    {"[{address: \"127.0.0.1:9001\", weight: heavy}]",
     "inline:6: regions[0].backends[0].weight: expected a number 0..256, got \"heavy\"\n"},
    {"[{address: \"127.0.0.1:9001\", weight: [1]}]",
     "inline:6: regions[0].backends[0].weight: expected a single value, got a sequence\n"},
    {"[{address: \"127.0.0.1:9001\", drain: yes}]",
     "inline:6: regions[0].backends[0].drain: expected true or false, got \"yes\"\n"},
    {"[\"127.0.0.1:9002\", {address: \"127.0.0.1:9001\", wieght: 2}]",
     "inline:6: unknown key \"wieght\" in regions[0].backends[1] (expected one of: address, "
     "weight, drain, tls)\n"},
    {"[{weight: 2}]", "inline:6: missing required key \"address\" in regions[0].backends[0]\n"},
    {"[{address: \"local_host:80\", weight: 2}]",
     "inline:6: regions[0].backends[0].address: \"local_host\" is neither an IP address nor a "
     "host name"},
    {"[\"api.example:0\"]", "inline:6: regions[0].backends[0]: port \"0\" is not a number "
                            "1..65535"},
    {"[\"api.example:80\", \"API.example.:80\"]",
     "inline:6: regions[0].backends[1]: duplicate backend \"api.example:80\""},
    {"[\"-api.example:80\"]", "inline:6: regions[0].backends[0]: \"-api.example\" is neither"},
    {"[{address: \"127.0.0.1:9001\"}, \"127.0.0.1:9001\"]",
     "inline:6: regions[0].backends[1]: duplicate backend \"127.0.0.1:9001\""},
    {"[[\"127.0.0.1:9001\"]]",
     "inline:6: regions[0].backends[0]: expected a backend address like \"127.0.0.1:9001\" or "
     "\"api-eu.internal.example:443\", or a mapping { address, weight, drain, tls }, got a "
     "sequence\n"},
};

/* Every error of the new keys says file:line, which key, and what was expected. */
static void
test_backend_weight_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(weight_errors); i++) {
        struct text t = {0};
        text_add(&t,
                 WEIGHTS_HEAD "  - name: eu\n    location: {lat: 50, lon: 8}\n"
                              "    default: true\n    backends: %s\n",
                 weight_errors[i].backends);
        expect_error(t.buf, t.len, weight_errors[i].fragment);
        free(t.buf);
    }
}

/* CFG_MAX_REGIONS regions load (the route table's size) and the default is found; one
 * more is refused, and the regions past the cap are still walked for their own errors. */
static void
test_many_regions(void **state)
{
    for (size_t n = CFG_MAX_REGIONS; n <= CFG_MAX_REGIONS + 2; n++) {
        struct text t = {NULL, 0, 0};
        char *errors = NULL;
        struct cfg *cfg;

        text_add(&t, "%sregions:\n", base_yaml);
        for (size_t i = 0; i < n; i++)
            text_add(&t,
                     "  - {name: r%zu, location: {lat: %zu, lon: %zu}, backends: "
                     "[\"10.%zu.%zu.1:80\"]%s}\n",
                     i, i % 90, i % 180, i / 256, i % 256,
                     i == CFG_MAX_REGIONS - 1 ? ", default: true"
                     : i == CFG_MAX_REGIONS   ? ", balance: nearest"
                                              : "");
        cfg = cfg_load_text("many", t.buf, t.len, &errors);
        if (n == CFG_MAX_REGIONS) {
            if (cfg == NULL)
                fail_msg("did not load:\n%.2000s", errors);
            assert_int_equal(cfg->nregions, n);
            assert_int_equal(cfg->default_region, CFG_MAX_REGIONS - 1);
            assert_int_equal(cfg->route.nregions, n);
            assert_int_equal(cfg->route.default_region, CFG_MAX_REGIONS - 1);
            assert_int_equal(cfg_region_index(cfg, "r12"), 12);
            assert_string_equal(cfg->path, "many");
            cfg_unref(cfg);
        } else {
            char want[128];
            assert_null(cfg);
            snprintf(want, sizeof(want), "many:3: regions: expected at most %d regions, got %zu\n",
                     CFG_MAX_REGIONS, n);
            if (strstr(errors, want) == NULL)
                fail_msg("missing \"%s\" in:\n%s", want, errors);
            assert_non_null(strstr(errors, "many:19: regions[16].balance: expected round_robin or "
                                           "least_outstanding, got \"nearest\"\n"));
            assert_int_equal(count_lines(errors), 2);
            free(errors);
        }
        free(t.buf);
    }
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

/* ---- client_ip, geoip, routing, health_check, region and listener keys ------------- */

/* One listener on line 1 and one region on line 2; a case's own lines follow from 3. */
#define L1 "listeners: [{name: a, address: \"127.0.0.1:8080\"}]\n"
#define R2 "regions: [{name: a, location: {lat: 0, lon: 0}, backends: [\"127.0.0.1:9001\"]}]\n"
/* The same region with `extra` keys, on line 2. */
#define R2X(extra)                                                                                 \
    "regions: [{name: a, location: {lat: 0, lon: 0}, backends: [\"127.0.0.1:9001\"], " extra "}]"  \
    "\n"

/* Each text must fail with exactly `nlines` lines, one of them `fragment`. */
struct key_case {
    const char *yaml;
    size_t nlines;
    const char *fragment;
};

static const struct key_case key_cases[] = {
    /* client_ip */
    {L1 R2 "client_ip: {trusted_proxies: 10.0.0.0/8}\n", 1,
     "inline:3: client_ip.trusted_proxies: expected a sequence, got \"10.0.0.0/8\"\n"},
    {L1 R2 "client_ip: {trusted_proxies: [\"2001:db8::1/32\"]}\n", 1,
     "inline:3: client_ip.trusted_proxies[0]: \"2001:db8::1/32\" has host bits set under /32 "
     "(the network is 2001:db8::/32)\n"},
    {L1 R2 "client_ip: {trusted_proxies: [\"10.0.0.0/\"]}\n", 1,
     "inline:3: client_ip.trusted_proxies[0]: the prefix length in \"10.0.0.0/\" is not a "
     "number 0..32\n"},
    {L1 R2 "client_ip: {trusted_proxies: [10.0.0.0/8x]}\n", 1,
     "inline:3: client_ip.trusted_proxies[0]: the prefix length in \"10.0.0.0/8x\" is not a "
     "number 0..32\n"},
    {L1 R2 "client_ip: {trusted_proxies: [localhost]}\n", 1,
     "inline:3: client_ip.trusted_proxies[0]: \"localhost\" is not an IP address or network"},
    {L1 R2 "client_ip: {trusted_proxies: [\"127.0.0.1:80\"]}\n", 1,
     "inline:3: client_ip.trusted_proxies[0]: \"127.0.0.1:80\" is not an IP address or "
     "network"},
    {L1 R2 "client_ip: {trusted_proxies: [\"\"]}\n", 1,
     "inline:3: client_ip.trusted_proxies[0]: expected an IP address or network like "
     "10.0.0.0/8, 2001:db8::/32 or 127.0.0.1, got \"\"\n"},
    {L1 R2 "client_ip:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.1/7]\n", 1,
     "inline:4: client_ip.trusted_proxies[1]: \"10.0.0.1/7\" has host bits set under /7 (the "
     "network is 10.0.0.0/7)\n"},
    {L1 R2 "client_ip: {headers: x-forwarded-for}\n", 1,
     "inline:3: client_ip.headers: expected a sequence, got \"x-forwarded-for\"\n"},
    {L1 R2 "client_ip: {headers: [forwarded, FORWARDED]}\n", 1,
     "inline:3: client_ip.headers[1]: duplicate \"forwarded\" (first at client_ip.headers[0], "
     "line 3)\n"},
    {L1 R2 "client_ip: {headers: [x-real-ip]}\n", 1,
     "inline:3: client_ip.headers[0]: expected x-forwarded-for, forwarded or "
     "cloudfront-viewer-address, got \"x-real-ip\"\n"},
    {L1 R2 "client_ip:\n  trusted_proxies: []\n  use_cdn_location: true\n", 1,
     "inline:5: client_ip: use_cdn_location needs trusted_proxies: headers are only believed "
     "from trusted peers\n"},
    {L1 R2 "client_ip: {use_cdn_location: true}\n", 1,
     "inline:3: client_ip: use_cdn_location needs trusted_proxies"},
    {L1 R2 "client_ip: {trusted: [10.0.0.0/8]}\n", 1,
     "inline:3: unknown key \"trusted\" in client_ip (expected one of: trusted_proxies, "
     "headers, use_cdn_location)\n"},
    {L1 R2 "client_ip: [10.0.0.0/8]\n", 1,
     "inline:3: client_ip: expected a mapping, got a sequence\n"},
    /* listeners */
    {"listeners:\n  - name: a\n    address: 127.0.0.1:8080\n    proxy_protocol: 1\n" R2X(""), 1,
     "inline:4: listeners[0].proxy_protocol: expected true or false, got \"1\"\n"},
    {"listeners:\n  - name: a\n    address: 127.0.0.1:8080\n"
     "    client_ip: {trusted_proxies: [bogus]}\n" R2X(""),
     1, "inline:4: listeners[0].client_ip.trusted_proxies[0]: \"bogus\" is not an IP address"},
    {"listeners:\n  - name: a\n    address: 127.0.0.1:8080\n"
     "    client_ip: {use_cdn_location: true}\n"
     "client_ip: {trusted_proxies: [10.0.0.0/8]}\n" R2X(""),
     1,
     /* The listener's section replaces the top level's: its trust is not inherited. */
     "inline:4: listeners[0].client_ip: use_cdn_location needs trusted_proxies"},
    {"listeners:\n  - name: a\n    address: 127.0.0.1:8080\n    client_ip: true\n" R2X(""), 1,
     "inline:4: listeners[0].client_ip: expected a mapping, got \"true\"\n"},
    /* geoip */
    {L1 R2 "geoip: {database: \"\"}\n", 1,
     "inline:3: geoip.database: expected the path of a MaxMind DB file (.mmdb), got an empty "
     "value\n"},
    {L1 R2 "geoip: x.mmdb\n", 1, "inline:3: geoip: expected a mapping, got \"x.mmdb\"\n"},
    {L1 R2 "geoip:\n", 1, "inline:3: geoip: expected a mapping, got an empty value\n"},
    {L1 R2 "geoip: {path: x.mmdb}\n", 2,
     "inline:3: unknown key \"path\" in geoip (expected one of: database)\n"},
    {L1 R2 "geoip: {path: x.mmdb}\n", 2, "inline:3: missing required key \"database\" in geoip\n"},
    {L1 R2 "geoip: {database: [a.mmdb]}\n", 1,
     "inline:3: geoip.database: expected a single value, got a sequence\n"},
    /* routing */
    {L1 R2 "routing: {spill_below: 0.5.1}\n", 1,
     "inline:3: routing.spill_below: expected a share from 0 to 100%, like 50% or 0.5 (0 turns "
     "spilling off), got \"0.5.1\"\n"},
    {L1 R2 "routing: {spill_below: -10%}\n", 1, "got \"-10%\"\n"},
    {L1 R2 "routing: {spill_below: 1.5}\n", 1, "inline:3: routing.spill_below: expected a share"},
    {L1 R2 "routing: {spill_below: 50}\n", 1, "inline:3: routing.spill_below: expected a share"},
    {L1 R2 "routing: {spill_below: 100.5%}\n", 1, "got \"100.5%\"\n"},
    {L1 R2 "routing: {spill_below: \"%\"}\n", 1, "got \"%\"\n"},
    {L1 R2 "routing: {spill_below: \".\"}\n", 1, "got \".\"\n"},
    {L1 R2 "routing: {spill_below: 5e-1}\n", 1, "got \"5e-1\"\n"},
    {L1 R2 "routing: {spill_below: 50 %}\n", 1, "got \"50 %\"\n"},
    {L1 R2 "routing: {spill_below: [0.5]}\n", 1,
     "inline:3: routing.spill_below: expected a single value, got a sequence\n"},
    {L1 R2 "routing: {country_header: X-Forwarded-For}\n", 1,
     "inline:3: routing.country_header: \"X-Forwarded-For\" is a header Meridian sets or acts "
     "on itself; choose another name\n"},
    {L1 R2 "routing: {region_header: host}\n", 1,
     "inline:3: routing.region_header: \"host\" is a header Meridian sets or acts on itself"},
    {L1 R2 "routing: {region_header: transfer-encoding}\n", 1,
     "inline:3: routing.region_header: \"transfer-encoding\" is a header Meridian sets"},
    {L1 R2 "routing: {region_header: \"X:Region\"}\n", 1,
     "inline:3: routing.region_header: expected a header field name (letters, digits and "
     "!#$%&'*+-.^_`|~), or false to send none, got \"X:Region\"\n"},
    {L1 R2 "routing: {country_header: \"X-Ctry\\n\"}\n", 1,
     "inline:3: routing.country_header: expected a header field name"},
    {L1 R2 "routing:\n  country_header: x-a\n  region_header: X-A\n", 1,
     "inline:5: routing.region_header: \"X-A\" is also routing.country_header; the two headers "
     "need different names\n"},
    {L1 R2 "routing: {country_header: x-client-region}\n", 1,
     "inline:3: routing.country_header: \"x-client-region\" is also routing.region_header; the "
     "two headers need different names\n"},
    {L1 R2 "routing: {spill: 50%}\n", 1,
     "inline:3: unknown key \"spill\" in routing (expected one of: spill_below, country_header, "
     "region_header)\n"},
    {L1 R2 "routing: []\n", 1, "inline:3: routing: expected a mapping, got a sequence\n"},
    /* health_check */
    {L1 R2 "health_check: true\n", 1, "inline:3: health_check: expected a mapping, got \"true\"\n"},
    {L1 R2 "health_check: {interval: 1h, timeout: 24h}\n", 1,
     "inline:3: health_check.timeout: 24h is longer than the interval, 1h; a check must end "
     "before the next one starts\n"},
    {L1 R2 "health_check: {timeout: 2001ms}\n", 1,
     "inline:3: health_check.timeout: 2001ms is longer than the interval, 2s; a check must end "
     "before the next one starts\n"},
    {L1 R2 "health_check: {interval: 61m}\n", 1,
     "inline:3: health_check.interval: \"61m\" is out of range 100ms..1h\n"},
    {L1 R2 "health_check: {interval: 99ms}\n", 1,
     "inline:3: health_check.interval: \"99ms\" is out of range 100ms..1h\n"},
    {L1 R2 "health_check: {interval: 0}\n", 1,
     "inline:3: health_check.interval: \"0\" is out of range 100ms..1h\n"},
    {L1 R2 "health_check: {interval: 25h}\n", 1,
     "inline:3: health_check.interval: \"25h\" is longer than the maximum, 24h\n"},
    {L1 R2 "health_check: {interval: soon}\n", 1,
     "inline:3: health_check.interval: expected a duration like 500ms, 10s, 2m, got \"soon\""},
    {L1 R2 "health_check: {timeout: 0ms}\n", 1,
     "inline:3: health_check.timeout: must be longer than 0\n"},
    {L1 R2 "health_check: {rise: 1k}\n", 1,
     "inline:3: health_check.rise: expected a number 1..100, got \"1k\"\n"},
    {L1 R2 "health_check: {fall: 0}\n", 1,
     "inline:3: health_check.fall: expected a number 1..100, got \"0\"\n"},
    {L1 R2 "health_check: {path: \"\"}\n", 1,
     "inline:3: health_check.path: expected a path starting with \"/\", at most 255 visible "
     "ASCII characters (no spaces), got an empty value\n"},
    {L1 R2 "health_check: {path: \"/\\x7f\"}\n", 1,
     "inline:3: health_check.path: expected a path starting with \"/\", at most 255 visible "
     "ASCII characters (no spaces), got \"/\\x7f\"\n"},
    {L1 R2 "health_check: {path: \"/caf\xc3\xa9\"}\n", 1, "inline:3: health_check.path: expected"},
    {L1 R2 "health_check: {path: \"/a\\tb\"}\n", 1, "got \"/a\\x09b\"\n"},
    {L1 R2 "health_check: {host: \"\"}\n", 1,
     "inline:3: health_check.host: expected a host name like backend.example"},
    {L1 R2 "health_check: {host: \"a/b\"}\n", 1,
     "inline:3: health_check.host: expected a host name like backend.example"},
    {L1 R2 "health_check: {expect_status: 99}\n", 1,
     "inline:3: health_check.expect_status: expected a status 100..599, a class like 2xx, or a "
     "range like 200-399, got \"99\"\n"},
    {L1 R2 "health_check: {expect_status: 6xx}\n", 1, "got \"6xx\"\n"},
    {L1 R2 "health_check: {expect_status: 0xx}\n", 1, "got \"0xx\"\n"},
    {L1 R2 "health_check: {expect_status: 20x}\n", 1, "got \"20x\"\n"},
    {L1 R2 "health_check: {expect_status: 2000}\n", 1, "got \"2000\"\n"},
    {L1 R2 "health_check: {expect_status: 200-}\n", 1, "got \"200-\"\n"},
    {L1 R2 "health_check: {expect_status: -200}\n", 1, "got \"-200\"\n"},
    {L1 R2 "health_check: {expect_status: 200-600}\n", 1, "got \"200-600\"\n"},
    {L1 R2 "health_check: {expect_status: 200 - 399}\n", 1, "got \"200 - 399\"\n"},
    {L1 R2 "health_check: {expect_status: 2xx-3xx}\n", 1, "got \"2xx-3xx\"\n"},
    {L1 R2 "health_check: {expect_status: [200]}\n", 1,
     "inline:3: health_check.expect_status: expected a single value, got a sequence\n"},
    {L1 R2 "health_check: {passive: on}\n", 1,
     "inline:3: health_check.passive: expected true or false, got \"on\"\n"},
    /* a region's keys */
    {L1 R2X("countries: GB"), 1,
     "inline:2: regions[0].countries: expected a sequence, got \"GB\"\n"},
    {L1 R2X("countries: [G]"), 1,
     "inline:2: regions[0].countries[0]: expected a two-letter country code like GB, got "
     "\"G\"\n"},
    {L1 R2X("countries: [\"\xc3\x89\"]"), 1,
     "inline:2: regions[0].countries[0]: expected a two-letter country code like GB, got "
     "\"\xc3\x89\"\n"},
    {L1 R2X("countries: [G1]"), 1, "got \"G1\"\n"},
    {L1 R2X("countries: [[GB]]"), 1,
     "inline:2: regions[0].countries[0]: expected a single value, got a sequence\n"},
    {L1 R2X("countries: [GB, FR, gb]"), 1,
     "inline:2: regions[0].countries[2]: duplicate country GB (first at line 2)\n"},
    {L1 "regions:\n  - {name: eu, location: {lat: 0, lon: 0}, backends: [\"127.0.0.1:1\"], "
        "countries: [FR, DE], default: true}\n"
        "  - {name: fr, location: {lat: 1, lon: 1}, backends: [\"127.0.0.1:2\"]}\n"
        "  - name: world\n    location: {lat: 2, lon: 2}\n    backends: [\"127.0.0.1:3\"]\n"
        "    countries:\n      - US\n      - fr\n",
     1,
     "inline:10: regions[2].countries[1]: country FR is listed by region \"eu\" (regions[0]), "
     "line 3, and by region \"world\" (regions[2]), line 10; a country belongs to one region\n"},
    {L1 R2X("balance: Round_Robin"), 1,
     "inline:2: regions[0].balance: expected round_robin or least_outstanding, got "
     "\"Round_Robin\"\n"},
    {L1 R2X("balance: [round_robin]"), 1,
     "inline:2: regions[0].balance: expected a single value, got a sequence\n"},
    {L1 R2X("health_check: [1]"), 1,
     "inline:2: regions[0].health_check: expected a mapping of health check keys, or false to "
     "turn checks off for this region, got a sequence\n"},
    {L1 R2X("health_check: no"), 1,
     "inline:2: regions[0].health_check: expected a mapping of health check keys, or false to "
     "turn checks off for this region, got \"no\"\n"},
    {L1 R2X("health_check: \"a\\0b\""), 1,
     "inline:2: regions[0].health_check: contains a NUL byte\n"},
    {L1 R2X("health_check: {timeout: 3s}"), 1,
     "inline:2: regions[0].health_check.timeout: 3s is longer than the interval, 2s; a check "
     "must end before the next one starts\n"},
    {L1 R2X("health_check: {interval: 1s}") "health_check: {timeout: 1500ms}\n", 1,
     "inline:2: regions[0].health_check.interval: 1s is shorter than the timeout, 1500ms; a "
     "check must end before the next one starts\n"},
    {L1 R2X("health_check: {rise: 2, port: 80}"), 1,
     "inline:2: unknown key \"port\" in regions[0].health_check (expected one of: path, host, "
     "interval, timeout, rise, fall, expect_status, passive)\n"},
    {L1 R2X("weight: 2"), 1,
     "inline:2: unknown key \"weight\" in regions[0] (expected one of: name, location, "
     "backends, default, countries, balance, health_check, tls)\n"},
    /* user, group, run_as_root */
    {L1 R2 "user: \"\"\n", 1,
     "inline:3: user: expected the name of the account to switch to from root, like meridian "
     "or nobody (1 to 32 letters, digits, \".\", \"_\" or \"-\", not starting with \"-\"), got "
     "an empty value\n"},
    {L1 R2 "user: -meridian\n", 1, "inline:3: user: expected the name of the account"},
    {L1 R2 "user: \"mer idian\"\n", 1, "got \"mer idian\"\n"},
    {L1 R2 "user: abcdefghijklmnopqrstuvwxyz0123456\n", 1,
     "got \"abcdefghijklmnopqrstuvwxyz0123456\"\n"},
    {L1 R2 "user: [meridian]\n", 1, "inline:3: user: expected a single value, got a sequence\n"},
    {L1 R2 "user: meridian\ngroup: \"a:b\"\n", 1,
     "inline:4: group: expected the name of the group to switch to from root, like meridian or "
     "nogroup"},
    {L1 R2 "group: meridian\n", 1,
     "inline:3: group: needs user: Meridian switches to a group only along with a user\n"},
    {L1 R2 "run_as_root: yes\n", 1, "inline:3: run_as_root: expected true or false, got \"yes\"\n"},
    {L1 R2 "user: meridian\nrun_as_root: true\n", 1,
     "inline:4: run_as_root: true contradicts user: \"meridian\" (line 3), which gives root up; "
     "keep one of them\n"},
    {L1 R2 "user: meridian\nuser: nobody\n", 1,
     "inline:4: duplicate key \"user\" in the top level (first at line 3)\n"},
    /* admin stays on loopback unless allow_remote says otherwise */
    {L1 R2 "admin: {address: \"0.0.0.0:9900\"}\n", 1,
     "inline:3: admin.address: 0.0.0.0:9900 is not a loopback address; the admin endpoint has "
     "no authentication, so it listens on 127.0.0.1 or [::1] unless admin.allow_remote: true "
     "says it is meant to be reached from elsewhere\n"},
    {L1 R2 "admin: {address: \"[::]:9900\"}\n", 1,
     "inline:3: admin.address: [::]:9900 is not a loopback address"},
    {L1 R2 "admin: {address: \"10.1.2.3:9900\", allow_remote: false}\n", 1,
     "inline:3: admin.address: 10.1.2.3:9900 is not a loopback address"},
    {L1 R2 "admin: {address: \"10.1.2.3:9900\", allow_remote: yes}\n", 2,
     "inline:3: admin.allow_remote: expected true or false, got \"yes\"\n"},
    {L1 R2 "admin: {address: \"127.0.0.1:9900\", remote: true}\n", 1,
     "inline:3: unknown key \"remote\" in admin (expected one of: address, allow_remote)\n"},
};

static void
test_key_cases(void **state)
{
    for (size_t i = 0; i < N_ELEMS(key_cases); i++) {
        const struct key_case *c = &key_cases[i];
        char *errors = NULL;
        struct cfg *cfg = cfg_load_text("inline", c->yaml, strlen(c->yaml), &errors);

        if (cfg != NULL)
            fail_msg("case %zu loaded, but should fail with %s", i, c->fragment);
        assert_non_null(errors);
        if (strstr(errors, c->fragment) == NULL)
            fail_msg("case %zu: missing\n  %s\nin\n%s", i, c->fragment, errors);
        if (count_lines(errors) != c->nlines)
            fail_msg("case %zu: %zu error lines, want %zu:\n%s", i, count_lines(errors), c->nlines,
                     errors);
        free(errors);
    }
}

static struct cfg *load_text_or_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Loads the text `fmt` makes; fails the test when it does not load. */
static struct cfg *
load_text_or_fail(const char *fmt, ...)
{
    struct text t = {NULL, 0, 0};
    char *errors = NULL, buf[4096];
    struct cfg *cfg;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    text_add(&t, "%s", buf);
    cfg = cfg_load_text("inline", t.buf, t.len, &errors);
    if (cfg == NULL)
        fail_msg("did not load:\n%s\nerrors:\n%s", t.buf, errors);
    assert_null(errors);
    free(t.buf);
    return cfg;
}

/* ---- backends by DNS name ------------------------------------------------------------ */

/* A resolver stand-in: "two.example" has 127.0.0.2 and ::2 (IPv4 first, as resolver.c
 * sorts), "dup.example" has 127.0.0.1 (which the region has as a literal too), and any
 * other name nothing. Counts the questions. */
static unsigned fake_resolve_calls;

static size_t
fake_resolve(const void *ctx, const char *host, struct sockaddr_storage *out, size_t max)
{
    (void)ctx;
    fake_resolve_calls++;
    static const char *const two[] = {"127.0.0.2", "::2"};
    size_t n = 0;
    if (strcmp(host, "two.example") == 0) {
        for (size_t i = 0; i < 2 && n < max; i++, n++) {
            memset(&out[n], 0, sizeof(out[n]));
            if (strchr(two[i], ':')) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out[n];
                s6->sin6_family = AF_INET6;
                inet_pton(AF_INET6, two[i], &s6->sin6_addr);
            } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&out[n];
                s4->sin_family = AF_INET;
                inet_pton(AF_INET, two[i], &s4->sin_addr);
            }
        }
    } else if (strcmp(host, "dup.example") == 0 && max > 0) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out[0];
        memset(&out[0], 0, sizeof(out[0]));
        s4->sin_family = AF_INET;
        inet_pton(AF_INET, "127.0.0.1", &s4->sin_addr);
        n = 1;
    }
    return n;
}

#define NAMES_YAML                                                                                 \
    WEIGHTS_HEAD                                                                                   \
    "  - name: eu\n"                                                                               \
    "    location: {lat: 50, lon: 8}\n"                                                            \
    "    default: true\n"                                                                          \
    "    tls: {ca_file: %scerts/rsa.pem}\n"                                                        \
    "    backends:\n"                                                                              \
    "      - \"127.0.0.1:9001\"\n"                                                                 \
    "      - {address: \"Two.Example.:8443\", weight: 3}\n"                                        \
    "      - {address: \"dup.example:9001\", tls: {sni: other.example}}\n"                         \
    "      - \"none.example:9002\"\n"                                                              \
    "  - name: us\n"                                                                               \
    "    location: {lat: 40, lon: -77}\n"                                                          \
    "    backends: [\"only.example:80\"]\n"                                                        \
    "resolvers:\n"                                                                                 \
    "  nameservers: [\"127.0.0.1:5353\", \"::1\"]\n"                                               \
    "  hosts_file: false\n"                                                                        \
    "  min_ttl: 250ms\n"                                                                           \
    "  max_ttl: 1m\n"                                                                              \
    "  families: [ipv4]\n"

static struct cfg *
load_names(const struct cfg_load_opts *opts)
{
    struct text t = {NULL, 0, 0};
    char *errors = NULL;
    text_add(&t, NAMES_YAML, TESTDATA);
    struct cfg *cfg = cfg_load_text_opts("inline", t.buf, t.len, opts, &errors);
    if (cfg == NULL)
        fail_msg("did not load:\n%s\nerrors:\n%s", t.buf, errors);
    free(t.buf);
    return cfg;
}

/* Without answers (meridian -t, the first load at start) a name stands for no backend and
 * a region of names only loads with none; with answers each address is a backend with
 * the name's weight, port and TLS (SNI and the name checked: the name, unless the file
 * says), an address the region has already is not added twice, and the text is kept for
 * the loads that follow DNS changes. */
static void
test_backend_names(void **state)
{
    (void)state;
    struct cfg *cfg = load_names(NULL);
    const struct cfg_region *eu = &cfg->regions[0], *us = &cfg->regions[1];
    assert_int_equal(cfg->nnames, 4);
    assert_int_equal(eu->nnames, 3);
    assert_int_equal(eu->nbackends, 1);
    assert_string_equal(eu->backends[0].addr.text, "127.0.0.1:9001");
    assert_null(eu->backends[0].name);
    assert_int_equal(us->nbackends, 0);
    assert_int_equal(us->nnames, 1);
    assert_int_equal(us->nserving, 0);
    assert_string_equal(eu->names[0].host, "two.example");
    assert_string_equal(eu->names[0].text, "two.example:8443");
    assert_int_equal(eu->names[0].port, 8443);
    assert_int_equal(eu->names[0].weight, 3);
    assert_int_equal(eu->names[0].file_index, 1);
    assert_true(eu->names[0].tls.enabled);
    assert_string_equal(eu->names[0].tls.sni, "two.example");
    assert_non_null(eu->names[0].tls.runtime);
    assert_string_equal(eu->names[1].tls.sni, "other.example");
    assert_false(us->names[0].tls.enabled);
    const struct cfg_resolvers *rs = &cfg->resolvers;
    assert_int_equal(rs->nnameservers, 2);
    assert_string_equal(rs->nameservers[0].text, "127.0.0.1:5353");
    assert_string_equal(rs->nameservers[1].text, "[::1]:53");
    assert_null(rs->hosts_file);
    assert_int_equal(rs->min_ttl_ms, 250);
    assert_int_equal(rs->max_ttl_ms, 60000);
    assert_int_equal(rs->retry_ms, CFG_DEFAULT_DNS_RETRY_MS);
    assert_true(rs->ipv4);
    assert_false(rs->ipv6);
    assert_non_null(cfg->source);

    struct cfg_load_opts opts = {.prev = cfg, .resolve = fake_resolve};
    char *errors = NULL;
    fake_resolve_calls = 0;
    struct cfg *next = cfg_load_again(cfg, &opts, &errors);
    if (next == NULL)
        fail_msg("did not load again:\n%s", errors);
    assert_int_equal(fake_resolve_calls, 4);
    eu = &next->regions[0];
    us = &next->regions[1];
    assert_int_equal(eu->nbackends, 3); /* 9001, then two.example's two */
    assert_string_equal(eu->backends[1].addr.text, "127.0.0.2:8443");
    assert_string_equal(eu->backends[2].addr.text, "[::2]:8443");
    for (size_t i = 1; i < 3; i++) {
        assert_ptr_equal(eu->backends[i].name, &eu->names[0]);
        assert_int_equal(eu->backends[i].weight, 3);
        assert_int_equal(eu->backends[i].file_index, 1);
        assert_ptr_equal(cfg_backend_tls_of(eu, &eu->backends[i]), &eu->names[0].tls);
    }
    assert_int_equal(eu->names[0].naddrs, 2);
    assert_int_equal(eu->names[1].naddrs, 0); /* dup.example: 127.0.0.1:9001 is a literal */
    assert_int_equal(eu->names[2].naddrs, 0);
    assert_int_equal(eu->nserving, 3);
    assert_non_null(eu->schedule); /* 1:3:3 */
    assert_int_equal(us->nbackends, 0);
    /* A load for DNS reads no file: the TLS runtimes are the previous generation's. A
     * load without reuse_files (a reload) builds its own. */
    assert_ptr_not_equal(eu->names[0].tls.runtime, cfg->regions[0].names[0].tls.runtime);
    opts.prev = next;
    opts.reuse_files = true;
    struct cfg *again = cfg_load_again(next, &opts, &errors);
    if (again == NULL)
        fail_msg("did not load again:\n%s", errors);
    assert_ptr_equal(again->regions[0].names[0].tls.runtime, eu->names[0].tls.runtime);
    assert_ptr_equal(again->regions[0].tls.runtime, eu->tls.runtime);
    assert_int_equal(again->regions[0].nbackends, 3);
    cfg_unref(next); /* the runtimes stay with `again` */
    assert_non_null(again->regions[0].names[0].tls.runtime);
    cfg_unref(again);
    cfg_unref(cfg);
}

static const struct weight_error_case name_errors[] = {
    {"[\"api.example:80\"]\nresolvers: {nameservers: []}",
     "inline:7: resolvers.nameservers: expected 1..8 addresses, got 0"},
    {"[\"api.example:80\"]\nresolvers: {nameservers: [\"dns.example\"]}",
     "inline:7: resolvers.nameservers[0]: expected a nameserver's IP address"},
    {"[\"api.example:80\"]\nresolvers: {min_ttl: 10m, max_ttl: 1m}",
     "inline:7: resolvers: min_ttl (600000ms) is longer than max_ttl (60000ms)"},
    {"[\"api.example:80\"]\nresolvers: {families: [ipv5]}",
     "inline:7: resolvers.families[0]: expected ipv4 or ipv6, got \"ipv5\""},
    {"[\"api.example:80\"]\nresolvers: {retry: 10ms}",
     "inline:7: resolvers.retry: \"10ms\" is out of range 100ms..24h"},
    {"[\"api.example:80\"]\nresolvers: {attempts: 0}",
     "inline:7: resolvers.attempts: expected a number 1..10, got \"0\""},
    {"[\"a.b.c.toolonglabelxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx:80\"]",
     "inline:6: regions[0].backends[0]: \"a.b.c.toolonglabel"},
    {"[\"api.example:http\"]", "inline:6: regions[0].backends[0]: port \"http\" is not a number"},
    /* A refused name in a region with TLS: no host to take the SNI from (was a crash, found
     * by fuzz_cfg_load). */
    {"[\"api.example:http\"]\n    tls: {enabled: true}",
     "inline:6: regions[0].backends[0]: port \"http\" is not a number"},
};

static void
test_backend_name_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(name_errors) / sizeof(name_errors[0]); i++) {
        struct text t = {NULL, 0, 0};
        text_add(&t,
                 WEIGHTS_HEAD "  - name: eu\n"
                              "    location: {lat: 50, lon: 8}\n"
                              "    default: true\n"
                              "    backends: %s\n",
                 name_errors[i].backends);
        expect_error(t.buf, t.len, name_errors[i].fragment);
        free(t.buf);
    }
}

/* ---- privileges and the admin endpoint's exposure --------------------------------- */

static void
test_addr_is_loopback(void **state)
{
    static const struct {
        const char *addr;
        bool loopback;
    } cases[] = {
        {"127.0.0.1:9900", true},
        {"127.255.255.254:1", true},
        {"127.1.2.3:9900", true},
        {"[::1]:9900", true},
        {"[::ffff:127.0.0.1]:9900", true},
        {"0.0.0.0:9900", false},
        {"[::]:9900", false},
        {"10.0.0.1:9900", false},
        {"128.0.0.1:9900", false},
        {"126.255.255.255:9900", false},
        {"[::2]:9900", false},
        {"[::ffff:10.0.0.1]:9900", false},
        {"[::127.0.0.1]:9900", false}, /* IPv4-compatible, not mapped: not loopback */
        {"[fe80::1]:9900", false},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct cfg_addr a;
        assert_int_equal(cfg_parse_addr(cases[i].addr, &a), 0);
        if (cfg_addr_is_loopback(&a) != cases[i].loopback)
            fail_msg("%s: loopback should be %d", cases[i].addr, cases[i].loopback);
    }
}

static void
test_privileges_values(void **state)
{
    struct cfg *cfg;
    static const char *const loopback[] = {"127.0.0.1:9900", "127.9.8.7:9900", "[::1]:9900",
                                           "[::ffff:127.0.0.1]:9900"};

    cfg = load_text_or_fail(L1 R2);
    assert_null(cfg->privileges.user);
    assert_null(cfg->privileges.group);
    assert_false(cfg->privileges.run_as_root);
    assert_false(cfg->has_admin);
    cfg_unref(cfg);

    cfg = load_text_or_fail(L1 R2 "user: www-data\ngroup: ssl-cert\n");
    assert_string_equal(cfg->privileges.user, "www-data");
    assert_int_equal(cfg->privileges.user_line, 3);
    assert_string_equal(cfg->privileges.group, "ssl-cert");
    assert_int_equal(cfg->privileges.group_line, 4);
    assert_false(cfg->privileges.run_as_root);
    cfg_unref(cfg);

    /* Names are looked up at start, not by the loader: one that exists nowhere loads. */
    cfg = load_text_or_fail(L1 R2 "user: _no.such_user-32\n");
    assert_string_equal(cfg->privileges.user, "_no.such_user-32");
    assert_null(cfg->privileges.group);
    cfg_unref(cfg);

    cfg = load_text_or_fail(L1 R2 "run_as_root: true\n");
    assert_true(cfg->privileges.run_as_root);
    assert_int_equal(cfg->privileges.run_as_root_line, 3);
    assert_null(cfg->privileges.user);
    cfg_unref(cfg);

    cfg = load_text_or_fail(L1 R2 "run_as_root: false\nuser: nobody\n");
    assert_false(cfg->privileges.run_as_root);
    assert_string_equal(cfg->privileges.user, "nobody");
    cfg_unref(cfg);

    for (size_t i = 0; i < N_ELEMS(loopback); i++) {
        cfg = load_text_or_fail(L1 R2 "admin: {address: \"%s\"}\n", loopback[i]);
        assert_true(cfg->has_admin);
        assert_false(cfg->admin_allow_remote);
        cfg_unref(cfg);
    }
    cfg = load_text_or_fail(L1 R2 "admin: {address: \"0.0.0.0:9900\", allow_remote: true}\n");
    assert_true(cfg->has_admin);
    assert_true(cfg->admin_allow_remote);
    assert_string_equal(cfg->admin.text, "0.0.0.0:9900");
    cfg_unref(cfg);
    cfg = load_text_or_fail(L1 R2 "admin: {address: \"[::]:9900\", allow_remote: true}\n");
    assert_true(cfg->has_admin);
    cfg_unref(cfg);
    /* allow_remote permits, it does not require: loopback with it is fine. */
    cfg = load_text_or_fail(L1 R2 "admin: {allow_remote: true, address: \"127.0.0.1:9900\"}\n");
    assert_true(cfg->has_admin);
    cfg_unref(cfg);
}

/* Loads `text` (or, with `as_file`, the file at `path`) as a user that cannot read some of
 * the files it names: as ourselves when we are not root (the files are mode 0), else in a
 * child that became nobody (65534), as Meridian does once it gives up root. Returns the
 * errors text (malloc'd), or NULL when it loaded. */
static char *
load_as_unprivileged(const char *text, const char *path)
{
    int fds[2];
    pid_t pid;
    struct text out = {NULL, 0, 0};
    char buf[4096];
    ssize_t n;
    int status;

    if (geteuid() != 0) {
        char *errors = NULL;
        struct cfg *cfg = text != NULL ? cfg_load_text("inline", text, strlen(text), &errors)
                                       : cfg_load_file(path, &errors);
        cfg_unref(cfg);
        return errors;
    }
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *errors = NULL;
        struct cfg *cfg;

        close(fds[0]);
        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
            _exit(3);
        cfg = text != NULL ? cfg_load_text("inline", text, strlen(text), &errors)
                           : cfg_load_file(path, &errors);
        if (cfg != NULL)
            _exit(2);
        if (errors != NULL && write(fds[1], errors, strlen(errors)) < 0)
            _exit(4);
        _exit(0);
    }
    close(fds[1]);
    text_add(&out, "%s", "");
    while ((n = read(fds[0], buf, sizeof(buf) - 1)) > 0) {
        buf[n] = '\0';
        text_add(&out, "%s", buf);
    }
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 2) {
        free(out.buf);
        return NULL;
    }
    assert_int_equal(WEXITSTATUS(status), 0);
    return out.buf;
}

/* A reload after giving up root meets files only root may read: the loader says which,
 * at the line that names it, and as whom it runs, instead of a bare "Permission denied"
 * from OpenSSL or libmaxminddb; files it can read are not mentioned. */
static void
test_unreadable_as_user(void **state)
{
    char dir[] = "/tmp/meridian-test-cfg-priv-XXXXXX";
    char cert[128], key[128], db[128], conf[128], want[1024];
    struct text t = {NULL, 0, 0};
    char *errors;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(db, sizeof(db), "%s/geo.mmdb", dir);
    snprintf(conf, sizeof(conf), "%s/meridian.yaml", dir);
    /* Their contents never matter: nothing is read once one is found unreadable. */
    const char *files[] = {cert, key, db, conf};
    const mode_t modes[] = {0644, geteuid() == 0 ? 0600 : 0, geteuid() == 0 ? 0600 : 0,
                            geteuid() == 0 ? 0600 : 0};
    for (size_t i = 0; i < N_ELEMS(files); i++) {
        f = fopen(files[i], "w");
        assert_non_null(f);
        fputs("not what it should be\n", f);
        fclose(f);
        assert_int_equal(chmod(files[i], modes[i]), 0);
    }
    text_add(&t,
             "listeners:\n"
             "  - name: https\n"
             "    address: 127.0.0.1:8443\n"
             "    tls:\n"
             "      certificates:\n"
             "        - {cert: %s, key: %s}\n" R2 "geoip: {database: %s}\n",
             cert, key, db);

    errors = load_as_unprivileged(t.buf, NULL);
    assert_non_null(errors);
    if (count_lines(errors) != 2)
        fail_msg("want 2 error lines:\n%s", errors);
    snprintf(want, sizeof(want),
             "inline:6: listeners[0].tls.certificates[0].key: %s is not readable (permission "
             "denied): meridian runs as ",
             key);
    if (strstr(errors, want) == NULL)
        fail_msg("missing\n  %s\nin\n%s", want, errors);
    snprintf(want, sizeof(want),
             "inline:8: geoip.database: %s is not readable (permission denied): meridian runs "
             "as ",
             db);
    if (strstr(errors, want) == NULL)
        fail_msg("missing\n  %s\nin\n%s", want, errors);
    if (strstr(errors, "; make it readable by that user or group\n") == NULL)
        fail_msg("no advice in\n%s", errors);
    snprintf(want, sizeof(want), "uid %u", (unsigned)(geteuid() == 0 ? 65534 : geteuid()));
    if (strstr(errors, want) == NULL || strstr(errors, cert) != NULL)
        fail_msg("want \"%s\" and nothing about %s in\n%s", want, cert, errors);
    free(errors);

    /* The configuration file itself. */
    errors = load_as_unprivileged(NULL, conf);
    assert_non_null(errors);
    snprintf(want, sizeof(want), "%s: cannot open: Permission denied; meridian runs as user ",
             conf);
    if (strncmp(errors, want, strlen(want)) != 0 || count_lines(errors) != 1)
        fail_msg("want one line starting\n  %s\ngot\n%s", want, errors);
    free(errors);

    for (size_t i = 0; i < N_ELEMS(files); i++)
        assert_int_equal(unlink(files[i]), 0);
    assert_int_equal(rmdir(dir), 0);
    free(t.buf);
}

/* Every form and limit of the new values, accepted. */
static void
test_routing_values(void **state)
{
    static const struct {
        const char *text;
        float share;
    } shares[] = {
        {"50%", 0.5f}, {"0", 0.0f},        {"0%", 0.0f},      {"100%", 1.0f},
        {"1", 1.0f},   {"0.25", 0.25f},    {"12.5%", 0.125f}, {".5", 0.5f},
        {"1.0", 1.0f}, {"\"75%\"", 0.75f}, {"007%", 0.07f},   {"0.0", 0.0f},
    };
    static const struct {
        const char *text;
        unsigned lo, hi;
    } statuses[] = {
        {"200", 200, 200},     {"100", 100, 100},     {"599", 599, 599},
        {"2xx", 200, 299},     {"5XX", 500, 599},     {"1xx", 100, 199},
        {"100-599", 100, 599}, {"204-204", 204, 204}, {"\"200-399\"", 200, 399},
    };
    static const struct {
        const char *yaml;   /* country_header's value */
        const char *stored; /* NULL: not sent */
    } headers[] = {
        {"X-Geo", "X-Geo"},  {"\"x!#$%&'*+-.^_`|~9\"", "x!#$%&'*+-.^_`|~9"},
        {"\"\"", NULL},      {"false", NULL},
        {"\"false\"", NULL},
    };
    struct cfg *cfg;

    for (size_t i = 0; i < N_ELEMS(shares); i++) {
        cfg = load_text_or_fail(L1 R2 "routing: {spill_below: %s}\n", shares[i].text);
        if (fabsf(cfg->routing.spill_below - shares[i].share) > 1e-6f)
            fail_msg("spill_below %s: %g, want %g", shares[i].text, cfg->routing.spill_below,
                     shares[i].share);
        assert_true(cfg->route.spill_below == cfg->routing.spill_below);
        cfg_unref(cfg);
    }
    for (size_t i = 0; i < N_ELEMS(statuses); i++) {
        cfg = load_text_or_fail(L1 R2 "health_check: {expect_status: %s}\n", statuses[i].text);
        if (cfg->health_check.expect_lo != statuses[i].lo ||
            cfg->health_check.expect_hi != statuses[i].hi)
            fail_msg("expect_status %s: %u..%u, want %u..%u", statuses[i].text,
                     cfg->health_check.expect_lo, cfg->health_check.expect_hi, statuses[i].lo,
                     statuses[i].hi);
        assert_int_equal(cfg->regions[0].health_check.expect_lo, statuses[i].lo);
        cfg_unref(cfg);
    }
    for (size_t i = 0; i < N_ELEMS(headers); i++) {
        cfg = load_text_or_fail(L1 R2 "routing: {country_header: %s}\n", headers[i].yaml);
        if (headers[i].stored == NULL)
            assert_null(cfg->routing.country_header);
        else
            assert_string_equal(cfg->routing.country_header, headers[i].stored);
        assert_string_equal(cfg->routing.region_header, "X-Client-Region");
        cfg_unref(cfg);
    }

    /* The limits of the health check numbers, and a path of the longest length. */
    cfg = load_text_or_fail(L1 R2 "health_check: {interval: 100ms, timeout: 100ms, rise: 1, "
                                  "fall: 100, host: \"[::1]:8080\", path: \"/%0254d\"}\n",
                            0);
    assert_int_equal(cfg->health_check.interval_ms, 100);
    assert_int_equal(cfg->health_check.timeout_ms, 100);
    assert_int_equal(cfg->health_check.rise, 1);
    assert_int_equal(cfg->health_check.fall, 100);
    assert_string_equal(cfg->health_check.host, "[::1]:8080");
    assert_int_equal(strlen(cfg->health_check.path), 255);
    assert_true(cfg->health_check.passive);
    cfg_unref(cfg);
    cfg = load_text_or_fail(L1 R2 "health_check: {interval: 1h, timeout: 1h, rise: 100, fall: "
                                  "1, passive: true}\n");
    assert_int_equal(cfg->health_check.interval_ms, 3600000);
    assert_int_equal(cfg->health_check.rise, 100);
    assert_string_equal(cfg->health_check.path, "/"); /* given a section, the default path */
    cfg_unref(cfg);
    {
        struct text t = {NULL, 0, 0};
        text_add(&t, L1 R2 "health_check: {path: \"/%0255d\"}\n", 0);
        expect_error(t.buf, t.len, "inline:3: health_check.path: expected a path");
        free(t.buf);
    }

    /* Networks of every size; a listener's empty client_ip is all defaults. */
    cfg = load_text_or_fail("listeners:\n  - {name: a, address: \"127.0.0.1:8080\", "
                            "client_ip: {}}\n" R2
                            "client_ip: {trusted_proxies: [0.0.0.0/0, \"::/0\", "
                            "192.0.2.255/32, \"2001:db8::/128\"], headers: [forwarded]}\n");
    assert_int_equal(cfg->client_ip.nnets, 4);
    assert_int_equal(cfg->client_ip.nets[0].prefix, 0);
    assert_int_equal(cfg->client_ip.nets[1].prefix, 0);
    assert_int_equal(cfg->client_ip.nets[1].family, AF_INET6);
    assert_int_equal(cfg->client_ip.nsources, 1);
    assert_int_equal(cfg->client_ip.sources[0], CLIENT_IP_FORWARDED);
    assert_non_null(cfg->listeners[0].client_ip_own);
    assert_ptr_equal(cfg->listeners[0].client_ip, cfg->listeners[0].client_ip_own);
    assert_int_equal(cfg->listeners[0].client_ip->nnets, 0);
    assert_int_equal(cfg->listeners[0].client_ip->nsources, 1);
    assert_int_equal(cfg->listeners[0].client_ip->sources[0], CLIENT_IP_XFF);
    cfg_unref(cfg);

    /* An empty countries list lists none; codes are stored upper case. */
    cfg = load_text_or_fail(L1 "regions:\n  - {name: a, location: {lat: 0, lon: 0}, backends: "
                               "[\"127.0.0.1:1\"], countries: [], default: true}\n"
                               "  - {name: b, location: {lat: 9, lon: 9}, backends: "
                               "[\"127.0.0.1:2\"], countries: [nz, Au, zA]}\n");
    assert_null(cfg->regions[0].countries);
    assert_string_equal(cfg->regions[1].countries, "NZAUZA");
    assert_int_equal(cfg->route.by_country[COUNTRY('Z', 'A')], 2);
    assert_int_equal(cfg->route.by_country[COUNTRY('A', 'U')], 2);
    assert_int_equal(cfg->route.default_region, 0);
    cfg_unref(cfg);
}

/* A region's health_check: every key it gives over the top level's, the rest inherited;
 * `false` turns checks off, `true` on; without a top level, over the defaults. */
static void
test_health_inheritance(void **state)
{
    const struct cfg_health_check *hc;
    struct cfg *cfg;

    cfg = load_text_or_fail(
        L1 "health_check: {host: h.example, interval: 3s, passive: false, expect_status: 200}\n"
           "regions:\n"
           "  - {name: a, location: {lat: 0, lon: 0}, backends: [\"127.0.0.1:1\"], default: true,"
           " health_check: {path: /a, passive: true, timeout: 3s}}\n"
           "  - {name: b, location: {lat: 1, lon: 1}, backends: [\"127.0.0.1:2\"], "
           "health_check: false}\n"
           "  - {name: c, location: {lat: 2, lon: 2}, backends: [\"127.0.0.1:3\"]}\n"
           "  - {name: d, location: {lat: 3, lon: 3}, backends: [\"127.0.0.1:4\"], "
           "health_check: true}\n");
    assert_true(cfg->health_check.enabled);
    assert_int_equal(cfg->health_check.line, 2);
    hc = &cfg->regions[0].health_check;
    assert_true(hc->enabled);
    assert_int_equal(hc->line, 4);
    assert_string_equal(hc->path, "/a");
    assert_string_equal(hc->host, "h.example");
    assert_int_equal(hc->interval_ms, 3000);
    assert_int_equal(hc->timeout_ms, 3000);
    assert_int_equal(hc->rise, CFG_DEFAULT_HC_RISE);
    assert_int_equal(hc->expect_lo, 200);
    assert_int_equal(hc->expect_hi, 200);
    assert_true(hc->passive);
    hc = &cfg->regions[1].health_check;
    assert_false(hc->enabled);
    hc = &cfg->regions[2].health_check;
    assert_true(hc->enabled);
    assert_int_equal(hc->line, 2);
    assert_string_equal(hc->path, "/");
    assert_string_equal(hc->host, "h.example");
    assert_false(hc->passive);
    hc = &cfg->regions[3].health_check;
    assert_true(hc->enabled);
    assert_int_equal(hc->interval_ms, 3000);
    /* The top level's own copy is untouched by the regions'. */
    assert_string_equal(cfg->health_check.path, "/");
    assert_true(cfg->health_check.timeout_ms == CFG_DEFAULT_HC_TIMEOUT_MS);
    cfg_unref(cfg);

    cfg = load_text_or_fail(
        L1 "regions:\n"
           "  - {name: a, location: {lat: 0, lon: 0}, backends: [\"127.0.0.1:1\"], default: true,"
           " health_check: {rise: 5}}\n"
           "  - {name: b, location: {lat: 1, lon: 1}, backends: [\"127.0.0.1:2\"]}\n"
           "  - {name: c, location: {lat: 2, lon: 2}, backends: [\"127.0.0.1:3\"], "
           "health_check: {}}\n"
           "  - {name: d, location: {lat: 3, lon: 3}, backends: [\"127.0.0.1:4\"], "
           "health_check: false}\n");
    assert_false(cfg->health_check.enabled);
    hc = &cfg->regions[0].health_check;
    assert_true(hc->enabled);
    assert_string_equal(hc->path, "/");
    assert_null(hc->host);
    assert_int_equal(hc->rise, 5);
    assert_int_equal(hc->fall, CFG_DEFAULT_HC_FALL);
    assert_int_equal(hc->interval_ms, CFG_DEFAULT_HC_INTERVAL_MS);
    assert_int_equal(hc->timeout_ms, CFG_DEFAULT_HC_TIMEOUT_MS);
    assert_int_equal(hc->expect_lo, 200);
    assert_int_equal(hc->expect_hi, 399);
    assert_true(hc->passive);
    assert_false(cfg->regions[1].health_check.enabled);
    assert_true(cfg->regions[2].health_check.enabled);
    assert_false(cfg->regions[3].health_check.enabled);
    cfg_unref(cfg);
}

/* ---- TLS to backends -------------------------------------------------------------- */

/* The settings' identity of the runtime that serves backend `b` of `r` ("" for clear text). */
static const char *
tls_key_of(const struct cfg_region *r, size_t b)
{
    return tls_upstream_key(cfg_backend_tls_of(r, &r->backends[b])->runtime);
}

/* A region's `tls` as a mapping, `true`, `false` or absent; a backend's own keys over the
 * region's one by one (`false`: clear text, `true`: the region's enabled), strings copied;
 * the runtime is there exactly when enabled, and its key follows the settings. */
static void
test_backend_tls(void **state)
{
    const struct cfg_region *eu, *us, *ap, *sa, *af;
    const struct cfg_backend_tls *t, *rt;
    struct cfg *cfg;
    (void)state;

    /* Lines: eu's tls mapping starts at 7 (its first key), the backend 127.0.0.1:9003 is
     * on 14, us's tls on 19. */
    cfg = load_text_or_fail(
        WEIGHTS_HEAD
        "  - name: eu\n"
        "    location: {lat: 50, lon: 8}\n"
        "    default: true\n"
        "    tls:\n"
        "      ca_file: %scerts/rsa.pem\n"
        "      sni: api-eu.internal.example\n"
        "      alpn: [http/1.1]\n"
        "      min_protocol: TLSv1.3\n"
        "    backends:\n"
        "      - \"127.0.0.1:9001\"\n"
        "      - {address: \"127.0.0.1:9002\", tls: false}\n"
        "      - {address: \"127.0.0.1:9003\", tls: {sni: other.example}}\n"
        "      - {address: \"127.0.0.1:9004\", tls: true}\n"
        "      - {address: \"127.0.0.1:9005\", tls: {alpn: [], verify: false}}\n"
        "  - name: us\n"
        "    location: {lat: 40, lon: -77}\n"
        "    tls: true\n"
        "    backends: [\"127.0.0.1:9011\",\n"
        "               {address: \"127.0.0.1:9012\", tls: {min_protocol: TLSv1.3}},\n"
        "               {address: \"127.0.0.1:9013\", tls: {alpn: []}}]\n"
        "  - name: ap\n"
        "    location: {lat: 1, lon: 103}\n"
        "    backends: [\"127.0.0.1:9021\", {address: \"127.0.0.1:9022\", weight: 2}]\n"
        "  - name: sa\n"
        "    location: {lat: -23, lon: -46}\n"
        "    tls: true\n"
        "    backends: [\"127.0.0.1:9031\"]\n"
        "  - name: af\n"
        "    location: {lat: 0, lon: 20}\n"
        "    tls: {enabled: false, sni: af.example}\n"
        "    backends: [\"127.0.0.1:9041\", {address: \"127.0.0.1:9042\", tls: "
        "{verify: false}}]\n",
        TESTDATA);
    eu = &cfg->regions[0];
    us = &cfg->regions[1];
    ap = &cfg->regions[2];
    sa = &cfg->regions[3];
    af = &cfg->regions[4];

    /* eu: every key of the mapping; a block mapping's line is its first key's. */
    rt = &eu->tls;
    assert_true(rt->enabled);
    assert_true(rt->verify);
    assert_string_equal(rt->ca_file, TESTDATA "certs/rsa.pem");
    assert_string_equal(rt->sni, "api-eu.internal.example");
    assert_true(rt->alpn_http11);
    assert_int_equal(rt->min_protocol, CFG_TLS_V13);
    assert_null(rt->client_cert);
    assert_null(rt->client_key);
    assert_int_equal(rt->line, 7);
    assert_non_null(rt->runtime);
    assert_int_equal(eu->nbackends, 5);
    /* A plain address: the region's section itself. */
    assert_null(eu->backends[0].tls_own);
    assert_ptr_equal(cfg_backend_tls_of(eu, &eu->backends[0]), rt);
    /* tls: false - clear text to this one backend. */
    t = cfg_backend_tls_of(eu, &eu->backends[1]);
    assert_ptr_equal(t, eu->backends[1].tls_own);
    assert_false(t->enabled);
    assert_null(t->runtime);
    assert_string_equal(tls_key_of(eu, 1), "");
    /* Its own sni over the region's; the rest inherited, in strings of its own. */
    t = cfg_backend_tls_of(eu, &eu->backends[2]);
    assert_ptr_equal(t, eu->backends[2].tls_own);
    assert_true(t->enabled);
    assert_true(t->verify);
    assert_string_equal(t->sni, "other.example");
    assert_string_equal(t->ca_file, TESTDATA "certs/rsa.pem");
    assert_ptr_not_equal(t->ca_file, rt->ca_file);
    assert_true(t->alpn_http11);
    assert_int_equal(t->min_protocol, CFG_TLS_V13);
    assert_null(t->client_cert);
    assert_int_equal(t->line, 14);
    assert_non_null(t->runtime);
    assert_ptr_not_equal(t->runtime, rt->runtime);
    assert_string_not_equal(tls_key_of(eu, 2), tls_key_of(eu, 0));
    /* tls: true - the region's settings, a runtime of its own, the same key. */
    t = cfg_backend_tls_of(eu, &eu->backends[3]);
    assert_ptr_equal(t, eu->backends[3].tls_own);
    assert_true(t->enabled);
    assert_string_equal(t->sni, "api-eu.internal.example");
    assert_string_equal(t->ca_file, TESTDATA "certs/rsa.pem");
    assert_int_equal(t->min_protocol, CFG_TLS_V13);
    assert_non_null(t->runtime);
    assert_ptr_not_equal(t->runtime, rt->runtime);
    assert_string_equal(tls_key_of(eu, 3), tls_key_of(eu, 0));
    /* alpn: [] - no ALPN at all; verify off. */
    t = cfg_backend_tls_of(eu, &eu->backends[4]);
    assert_true(t->enabled);
    assert_false(t->alpn_http11);
    assert_false(t->verify);
    assert_string_equal(t->sni, "api-eu.internal.example");
    assert_non_null(t->runtime);
    assert_string_not_equal(tls_key_of(eu, 4), tls_key_of(eu, 0));
    assert_string_not_equal(tls_key_of(eu, 4), tls_key_of(eu, 2));

    /* us: tls: true - the defaults, enabled: the system's CAs, no SNI, TLSv1.2. */
    rt = &us->tls;
    assert_true(rt->enabled);
    assert_true(rt->verify);
    assert_null(rt->ca_file);
    assert_null(rt->sni);
    assert_true(rt->alpn_http11);
    assert_int_equal(rt->min_protocol, CFG_TLS_V12);
    assert_null(rt->client_cert);
    assert_null(rt->client_key);
    assert_int_equal(rt->line, 19);
    assert_non_null(rt->runtime);
    assert_ptr_equal(cfg_backend_tls_of(us, &us->backends[0]), rt);
    assert_string_not_equal(tls_key_of(us, 0), tls_key_of(eu, 0));
    t = cfg_backend_tls_of(us, &us->backends[1]);
    assert_true(t->enabled);
    assert_int_equal(t->min_protocol, CFG_TLS_V13);
    assert_null(t->ca_file);
    assert_string_not_equal(tls_key_of(us, 1), tls_key_of(us, 0));
    /* alpn: [] alone makes another key: a connection that offered no ALPN is not reused for
     * one that would have. */
    t = cfg_backend_tls_of(us, &us->backends[2]);
    assert_true(t->enabled);
    assert_false(t->alpn_http11);
    assert_true(t->verify);
    assert_non_null(t->runtime);
    assert_string_not_equal(tls_key_of(us, 2), tls_key_of(us, 0));

    /* ap: no tls - clear text, and a mapping without tls keeps the region's. */
    assert_false(ap->tls.enabled);
    assert_null(ap->tls.runtime);
    for (size_t b = 0; b < ap->nbackends; b++) {
        assert_null(ap->backends[b].tls_own);
        assert_ptr_equal(cfg_backend_tls_of(ap, &ap->backends[b]), &ap->tls);
        assert_string_equal(tls_key_of(ap, b), "");
    }
    assert_int_equal(ap->backends[1].weight, 2);

    /* sa: the same settings as us - interchangeable, though not the same runtime. */
    assert_true(sa->tls.enabled);
    assert_non_null(sa->tls.runtime);
    assert_ptr_not_equal(sa->tls.runtime, us->tls.runtime);
    assert_string_equal(tls_key_of(sa, 0), tls_key_of(us, 0));

    /* af: a section with enabled: false keeps its keys for the backends that turn it on;
     * a backend's mapping is enabled unless it says otherwise. */
    assert_false(af->tls.enabled);
    assert_null(af->tls.runtime);
    assert_string_equal(af->tls.sni, "af.example");
    assert_string_equal(tls_key_of(af, 0), "");
    t = cfg_backend_tls_of(af, &af->backends[1]);
    assert_true(t->enabled);
    assert_false(t->verify);
    assert_string_equal(t->sni, "af.example");
    assert_non_null(t->runtime);
    cfg_unref(cfg);
}

/* Writes a fresh P-256 key to a temporary file, whose path goes to `path`. */
static void
write_other_ec_key(char *path)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    int fd = mkstemp(path);
    FILE *f;

    assert_non_null(pkey);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    EVP_PKEY_free(pkey);
}

/* Fails the test unless the text `fmt` makes fails with exactly one line, `fragment`. */
static void expect_one_error(const char *fragment, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
expect_one_error(const char *fragment, const char *fmt, ...)
{
    char yaml[4096], *errors = NULL;
    struct cfg *cfg;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(yaml, sizeof(yaml), fmt, ap);
    va_end(ap);
    cfg = cfg_load_text("inline", yaml, strlen(yaml), &errors);
    if (cfg != NULL)
        fail_msg("loaded, but should fail with %s", fragment);
    assert_non_null(errors);
    if (strstr(errors, fragment) == NULL)
        fail_msg("missing\n  %s\nin\n%s", fragment, errors);
    if (count_lines(errors) != 1)
        fail_msg("%zu error lines, want 1:\n%s", count_lines(errors), errors);
    free(errors);
}

#define TLS_REGION_HEAD                                                                            \
    WEIGHTS_HEAD "  - name: eu\n    location: {lat: 50, lon: 8}\n    default: true\n"

/* A client certificate and its key load, the region's pair or a backend's own; a key that
 * is not the certificate's is refused at the section's line, naming both files, whether
 * the section gave both or inherited one. */
static void
test_backend_tls_client_cert(void **state)
{
    char other[] = "/tmp/meridian-test-cfg-key-XXXXXX";
    const struct cfg_region *r;
    const struct cfg_backend_tls *t;
    struct cfg *cfg;
    (void)state;

    cfg = load_text_or_fail(
        TLS_REGION_HEAD "    tls: {client_cert: %scerts/ecdsa.pem, client_key: %scerts/ecdsa.key}\n"
                        "    backends:\n"
                        "      - \"127.0.0.1:9001\"\n"
                        "      - {address: \"127.0.0.1:9002\", tls: {client_cert: "
                        "%scerts/rsa.pem, client_key: %scerts/rsa.key}}\n"
                        "      - {address: \"127.0.0.1:9003\", tls: {sni: x.example}}\n",
        TESTDATA, TESTDATA, TESTDATA, TESTDATA);
    r = &cfg->regions[0];
    assert_true(r->tls.enabled);
    assert_string_equal(r->tls.client_cert, TESTDATA "certs/ecdsa.pem");
    assert_string_equal(r->tls.client_key, TESTDATA "certs/ecdsa.key");
    assert_non_null(r->tls.runtime);
    t = cfg_backend_tls_of(r, &r->backends[1]);
    assert_string_equal(t->client_cert, TESTDATA "certs/rsa.pem");
    assert_string_equal(t->client_key, TESTDATA "certs/rsa.key");
    assert_non_null(t->runtime);
    assert_string_not_equal(tls_key_of(r, 1), tls_key_of(r, 0));
    t = cfg_backend_tls_of(r, &r->backends[2]);
    assert_string_equal(t->client_cert, TESTDATA "certs/ecdsa.pem");
    assert_string_equal(t->client_key, TESTDATA "certs/ecdsa.key");
    assert_non_null(t->runtime);
    cfg_unref(cfg);

    expect_one_error("inline:6: regions[0].tls.client_key: \"" TESTDATA "certs/rsa.key\" is not "
                     "the key of \"" TESTDATA "certs/ecdsa.pem\"\n",
                     TLS_REGION_HEAD "    tls: {client_cert: %scerts/ecdsa.pem, client_key: "
                                     "%scerts/rsa.key}\n"
                                     "    backends: [\"127.0.0.1:9001\"]\n",
                     TESTDATA, TESTDATA);
    /* Only the key given, the certificate inherited. */
    expect_one_error("inline:7: regions[0].backends[0].tls.client_key: \"" TESTDATA
                     "certs/rsa.key\" is not the key of \"" TESTDATA "certs/ecdsa.pem\"\n",
                     TLS_REGION_HEAD "    tls: {client_cert: %scerts/ecdsa.pem, client_key: "
                                     "%scerts/ecdsa.key}\n"
                                     "    backends: [{address: \"127.0.0.1:9001\", tls: "
                                     "{client_key: %scerts/rsa.key}}]\n",
                     TESTDATA, TESTDATA, TESTDATA);
    /* A key of the certificate's type but not its own: refused at the same place (OpenSSL
     * already refuses it when loading the key, so the reason's wording differs). */
    write_other_ec_key(other);
    expect_one_error("inline:6: regions[0].tls.client_key: ",
                     TLS_REGION_HEAD "    tls: {client_cert: %scerts/ecdsa.pem, client_key: %s}\n"
                                     "    backends: [\"127.0.0.1:9001\"]\n",
                     TESTDATA, other);
    assert_int_equal(unlink(other), 0);
    expect_one_error("inline:6: regions[0].tls.client_cert: cannot load "
                     "\"/nonexistent/meridian.pem\": ",
                     TLS_REGION_HEAD "    tls: {client_cert: /nonexistent/meridian.pem, "
                                     "client_key: %scerts/ecdsa.key}\n"
                                     "    backends: [\"127.0.0.1:9001\"]\n",
                     TESTDATA);
}

struct backend_tls_error_case {
    const char *tls;      /* the region's tls: line 6 of the file */
    const char *backends; /* its backends: line 7 */
    const char *fragment;
};

#define TLS_SNI_EXPECTED                                                                           \
    "sni: expected a host name like \"api-eu.internal.example\" (letters, digits, '-' and '.'; "   \
    "not an IP address, which TLS does not send as SNI), got "
#define TLS_SECTION_EXPECTED                                                                       \
    ": expected a mapping of TLS keys (enabled, verify, ca_file, sni, alpn, client_cert, "         \
    "client_key, min_protocol), true or false, got "
#define ONE_BACKEND "[\"127.0.0.1:9001\"]"

static const struct backend_tls_error_case backend_tls_errors[] = {
    {"{sni: 127.0.0.1}", ONE_BACKEND,
     "inline:6: regions[0].tls." TLS_SNI_EXPECTED "\"127.0.0.1\"\n"},
    {"{sni: \"::1\"}", ONE_BACKEND, "inline:6: regions[0].tls." TLS_SNI_EXPECTED "\"::1\"\n"},
    {"{sni: bad name}", ONE_BACKEND, "inline:6: regions[0].tls." TLS_SNI_EXPECTED "\"bad name\"\n"},
    {"{sni: -x}", ONE_BACKEND, "inline:6: regions[0].tls." TLS_SNI_EXPECTED "\"-x\"\n"},
    {"{sni: \"\"}", ONE_BACKEND, "inline:6: regions[0].tls." TLS_SNI_EXPECTED "an empty value\n"},
    {"{alpn: [h2]}", ONE_BACKEND,
     "inline:6: regions[0].tls.alpn[0]: expected http/1.1 (Meridian speaks HTTP/1.1 to "
     "backends), or [] for no ALPN, got \"h2\"\n"},
    {"{alpn: http/1.1}", ONE_BACKEND,
     "inline:6: regions[0].tls.alpn: expected a sequence, got \"http/1.1\"\n"},
    {"{alpn: [http/1.1, http/1.1]}", ONE_BACKEND,
     "inline:6: regions[0].tls.alpn[1]: duplicate \"http/1.1\" (first at regions[0].tls.alpn[0], "
     "line 6)\n"},
    {"{min_protocol: TLSv1.1}", ONE_BACKEND,
     "inline:6: regions[0].tls.min_protocol: expected TLSv1.2 or TLSv1.3, got \"TLSv1.1\"\n"},
    {"{client_cert: certs/ecdsa.pem}", ONE_BACKEND,
     "inline:6: regions[0].tls: client_cert and client_key go together: give both, or "
     "neither\n"},
    {"{client_key: certs/ecdsa.key}", ONE_BACKEND,
     "inline:6: regions[0].tls: client_cert and client_key go together: give both, or "
     "neither\n"},
    {"{verify_depth: 3}", ONE_BACKEND,
     "inline:6: unknown key \"verify_depth\" in regions[0].tls (expected one of: enabled, "
     "verify, ca_file, sni, alpn, client_cert, client_key, min_protocol)\n"},
    {"{enabled: yes}", ONE_BACKEND,
     "inline:6: regions[0].tls.enabled: expected true or false, got \"yes\"\n"},
    {"{verify: 0}", ONE_BACKEND,
     "inline:6: regions[0].tls.verify: expected true or false, got \"0\"\n"},
    {"yes", ONE_BACKEND, "inline:6: regions[0].tls" TLS_SECTION_EXPECTED "\"yes\"\n"},
    {"[sni]", ONE_BACKEND, "inline:6: regions[0].tls" TLS_SECTION_EXPECTED "a sequence\n"},
    {"{ca_file: \"\"}", ONE_BACKEND,
     "inline:6: regions[0].tls.ca_file: expected the path of a PEM file of trusted CA "
     "certificates, got an empty value\n"},
    /* Files are read after the walk, at the section's line; the reason is OpenSSL's. */
    {"{ca_file: /nonexistent/meridian-ca.pem}", ONE_BACKEND,
     "inline:6: regions[0].tls.ca_file: cannot load \"/nonexistent/meridian-ca.pem\": "},
    /* A backend's own section. */
    {"false", "[{address: \"127.0.0.1:9001\", tls: [sni]}]",
     "inline:7: regions[0].backends[0].tls" TLS_SECTION_EXPECTED "a sequence\n"},
    {"false", "[{address: \"127.0.0.1:9001\", tls: on}]",
     "inline:7: regions[0].backends[0].tls" TLS_SECTION_EXPECTED "\"on\"\n"},
    {"true", "[\"127.0.0.1:9002\", {address: \"127.0.0.1:9001\", tls: {sni: \"::1\"}}]",
     "inline:7: regions[0].backends[1].tls." TLS_SNI_EXPECTED "\"::1\"\n"},
    {"true", "[{address: \"127.0.0.1:9001\", tls: {alpn: [h2, http/1.1]}}]",
     "inline:7: regions[0].backends[0].tls.alpn[0]: expected http/1.1 (Meridian speaks "
     "HTTP/1.1 to backends), or [] for no ALPN, got \"h2\"\n"},
    {"true", "[{address: \"127.0.0.1:9001\", tls: {verify_depth: 3}}]",
     "inline:7: unknown key \"verify_depth\" in regions[0].backends[0].tls (expected one of: "
     "enabled, verify, ca_file, sni, alpn, client_cert, client_key, min_protocol)\n"},
    {"true", "[{address: \"127.0.0.1:9001\", tls: {client_key: certs/ecdsa.key}}]",
     "inline:7: regions[0].backends[0].tls: client_cert and client_key go together: give both, "
     "or neither\n"},
    {"false", "[{address: \"127.0.0.1:9001\", tls: {ca_file: /nonexistent/meridian-ca.pem}}]",
     "inline:7: regions[0].backends[0].tls.ca_file: cannot load "
     "\"/nonexistent/meridian-ca.pem\": "},
    /* A disabled section's files are not read; a backend that enables it reads them. */
    {"{enabled: false, ca_file: /nonexistent/meridian-ca.pem}",
     "[\"127.0.0.1:9002\", {address: \"127.0.0.1:9001\", tls: true}]",
     "inline:7: regions[0].backends[1].tls.ca_file: cannot load "
     "\"/nonexistent/meridian-ca.pem\": "},
};

/* Every error of the tls keys says file:line, which key, and what was expected; each case
 * is one error, nothing else. */
static void
test_backend_tls_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ELEMS(backend_tls_errors); i++)
        expect_one_error(backend_tls_errors[i].fragment,
                         TLS_REGION_HEAD "    tls: %s\n    backends: %s\n",
                         backend_tls_errors[i].tls, backend_tls_errors[i].backends);
}

/* A reload of the same file: new runtimes, the same keys, so the pools keep their
 * connections; a changed setting changes the key. */
static void
test_backend_tls_reload(void **state)
{
    static const char fmt[] = TLS_REGION_HEAD
        "    tls: {ca_file: %scerts/ecdsa.pem, sni: api.meridian.test, min_protocol: %s}\n"
        "    backends: [\"127.0.0.1:9001\", {address: \"127.0.0.1:9002\", tls: {verify: false}},\n"
        "               {address: \"127.0.0.1:9003\", tls: false}]\n"
        "  - {name: us, location: {lat: 40, lon: -77}, tls: true, backends: "
        "[\"127.0.0.1:9011\"]}\n";
    struct cfg *a, *b, *c;
    (void)state;

    a = load_text_or_fail(fmt, TESTDATA, "TLSv1.2");
    b = load_text_or_fail(fmt, TESTDATA, "TLSv1.2");
    c = load_text_or_fail(fmt, TESTDATA, "TLSv1.3");
    for (size_t r = 0; r < a->nregions; r++) {
        const struct cfg_region *ra = &a->regions[r], *rb = &b->regions[r], *rc = &c->regions[r];
        for (size_t i = 0; i < ra->nbackends; i++) {
            const struct cfg_backend_tls *ta = cfg_backend_tls_of(ra, &ra->backends[i]);
            const struct cfg_backend_tls *tb = cfg_backend_tls_of(rb, &rb->backends[i]);

            assert_int_equal(ta->enabled, tb->enabled);
            assert_string_equal(tls_key_of(ra, i), tls_key_of(rb, i));
            if (!ta->enabled) {
                assert_null(ta->runtime);
                assert_null(tb->runtime);
                assert_string_equal(tls_key_of(ra, i), "");
                continue;
            }
            assert_non_null(ta->runtime);
            assert_non_null(tb->runtime);
            assert_ptr_not_equal(ta->runtime, tb->runtime);
            assert_string_not_equal(tls_key_of(ra, i), "");
            /* Only eu's sections carry min_protocol. */
            if (r == 0)
                assert_string_not_equal(tls_key_of(ra, i), tls_key_of(rc, i));
            else
                assert_string_equal(tls_key_of(ra, i), tls_key_of(rc, i));
        }
    }
    cfg_unref(a);
    cfg_unref(b);
    cfg_unref(c);
}

static void
collect_file(void *arg, const char *key, const char *path, int line)
{
    text_add(arg, "%d %s %s\n", line, key, path);
}

/* cfg_each_file names the files of every enabled section, a backend's own (inherited
 * paths included) at its own line, so that unreadable ones are reported there. */
static void
test_backend_tls_each_file(void **state)
{
    struct text got = {NULL, 0, 0};
    char want[2048];
    struct cfg *cfg;
    (void)state;

    cfg = load_text_or_fail(
        TLS_REGION_HEAD
        "    tls: {ca_file: %scerts/rsa.pem, client_cert: %scerts/ecdsa.pem, client_key: "
        "%scerts/ecdsa.key}\n"
        "    backends: [\"127.0.0.1:9001\", {address: \"127.0.0.1:9002\", tls: false},\n"
        "               {address: \"127.0.0.1:9003\", tls: {ca_file: %scerts/ecdsa.pem}}]\n"
        "  - name: us\n"
        "    location: {lat: 40, lon: -77}\n"
        "    tls: {enabled: false, ca_file: /nonexistent/meridian-ca.pem}\n"
        "    backends: [\"127.0.0.1:9011\"]\n",
        TESTDATA, TESTDATA, TESTDATA, TESTDATA);
    cfg_each_file(cfg, collect_file, &got);
    snprintf(want, sizeof(want),
             "8 regions[0].backends[2].tls.ca_file %scerts/ecdsa.pem\n"
             "8 regions[0].backends[2].tls.client_cert %scerts/ecdsa.pem\n"
             "8 regions[0].backends[2].tls.client_key %scerts/ecdsa.key\n"
             "6 regions[0].tls.ca_file %scerts/rsa.pem\n"
             "6 regions[0].tls.client_cert %scerts/ecdsa.pem\n"
             "6 regions[0].tls.client_key %scerts/ecdsa.key\n",
             TESTDATA, TESTDATA, TESTDATA, TESTDATA, TESTDATA, TESTDATA);
    assert_non_null(got.buf);
    assert_string_equal(got.buf, want);
    free(got.buf);
    cfg_unref(cfg);
}

/* A reload after giving up root meets a CA file or client key only root may read: said at
 * the section's line, like a listener's certificate; a readable file is not mentioned. All
 * files are in a directory of our own: the checkout may sit under one only root may enter
 * (mktemp -d makes 0700 ones). */
static void
test_backend_tls_unreadable(void **state)
{
    char dir[] = "/tmp/meridian-test-cfg-btls-XXXXXX";
    char ca[128], cert[128], key[128], want[1024];
    struct text t = {NULL, 0, 0};
    char *errors;
    FILE *f;
    (void)state;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    const char *files[] = {ca, cert, key};
    const mode_t modes[] = {geteuid() == 0 ? 0600 : 0, 0644, geteuid() == 0 ? 0600 : 0};
    for (size_t i = 0; i < N_ELEMS(files); i++) {
        f = fopen(files[i], "w");
        assert_non_null(f);
        fputs("not what it should be\n", f);
        fclose(f);
        assert_int_equal(chmod(files[i], modes[i]), 0);
    }
    text_add(&t,
             TLS_REGION_HEAD "    tls: {ca_file: %s}\n"
                             "    backends: [\"127.0.0.1:9001\", {address: \"127.0.0.1:9002\",\n"
                             "               tls: {ca_file: %s, client_cert: %s, "
                             "client_key: %s}}]\n",
             ca, cert, cert, key);

    errors = load_as_unprivileged(t.buf, NULL);
    assert_non_null(errors);
    if (count_lines(errors) != 2)
        fail_msg("want 2 error lines:\n%s", errors);
    snprintf(want, sizeof(want),
             "inline:6: regions[0].tls.ca_file: %s is not readable (permission denied): "
             "meridian runs as ",
             ca);
    if (strstr(errors, want) == NULL)
        fail_msg("missing\n  %s\nin\n%s", want, errors);
    snprintf(want, sizeof(want),
             "inline:8: regions[0].backends[1].tls.client_key: %s is not readable (permission "
             "denied): meridian runs as ",
             key);
    if (strstr(errors, want) == NULL)
        fail_msg("missing\n  %s\nin\n%s", want, errors);
    if (strstr(errors, cert) != NULL)
        fail_msg("nothing about %s wanted in\n%s", cert, errors);
    free(errors);

    for (size_t i = 0; i < N_ELEMS(files); i++)
        assert_int_equal(unlink(files[i]), 0);
    assert_int_equal(rmdir(dir), 0);
    free(t.buf);
}

/* ---- the GeoIP database ----------------------------------------------------------- */

#define GEOIP_DIR SRCDIR "/../shared/geoip/"
#define CITY_DB GEOIP_DIR "GeoIP2-City-Test.mmdb"

/* A database that cannot be used is refused at the line of geoip.database, with the
 * path and geo_open's reason; it is opened only for a file that is otherwise right. */
static void
test_geoip_refused(void **state)
{
    static const char *const bad[] = {
        "/nonexistent/meridian-test.mmdb", GEOIP_DIR "MaxMind-DB-test-broken-search-tree-24.mmdb",
        GEOIP_DIR "MaxMind-DB-test-broken-pointers-24.mmdb",
        TESTDATA "good_minimal.yaml", /* not a database at all */
    };

    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        struct text t = {NULL, 0, 0};
        char *errors = NULL, want[4096];

        text_add(&t, L1 "geoip:\n  database: %s\n" R2, bad[i]);
        assert_null(cfg_load_text("inline", t.buf, t.len, &errors));
        assert_non_null(errors);
        snprintf(want, sizeof(want), "inline:3: geoip.database: %s: ", bad[i]);
        if (strncmp(errors, want, strlen(want)) != 0)
            fail_msg("want \"%s...\", got:\n%s", want, errors);
        assert_int_equal(count_lines(errors), 1);
        free(errors);

        /* With another error in the file, the database is not looked at. */
        t.len = 0;
        text_add(&t, L1 "geoip:\n  database: %s\n" R2 "workers: 0\n", bad[i]);
        assert_null(cfg_load_text("inline", t.buf, t.len, &errors));
        assert_int_equal(count_lines(errors), 1);
        assert_non_null(strstr(errors, "inline:5: workers: expected"));
        free(errors);
        free(t.buf);
    }
}

/* A relative database path is taken from the config file's directory, as certificate
 * paths are; a valid database is opened into the generation. The valid cases need
 * MaxMind's test database beside the checkout. */
static void
test_geoip_paths(void **state)
{
    char dir[] = "/tmp/meridian-test-geo-XXXXXX", conf[256], link[256], *errors = NULL, want[512];
    struct text t = {NULL, 0, 0};
    bool have_city = access(CITY_DB, R_OK) == 0;
    struct cfg *cfg;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(conf, sizeof(conf), "%s/meridian.yaml", dir);
    snprintf(link, sizeof(link), "%s/city.mmdb", dir);

    f = fopen(conf, "w");
    assert_non_null(f);
    fputs(L1 R2 "geoip: {database: absent.mmdb}\n", f);
    fclose(f);
    assert_null(cfg_load_file(conf, &errors));
    snprintf(want, sizeof(want), "%s:3: geoip.database: %s/absent.mmdb: ", conf, dir);
    if (strncmp(errors, want, strlen(want)) != 0)
        fail_msg("want \"%s...\", got:\n%s", want, errors);
    free(errors);

    if (have_city) {
        assert_int_equal(symlink(CITY_DB, link), 0);
        f = fopen(conf, "w");
        assert_non_null(f);
        fputs(L1 R2 "geoip: {database: city.mmdb}\n", f);
        fclose(f);
        cfg = load_file_or_fail(conf);
        assert_string_equal(cfg->geoip_path, link);
        assert_non_null(cfg->geo);
        cfg_unref(cfg);

        text_add(&t, L1 R2 "geoip: {database: %s}\n", CITY_DB);
        cfg = load_text_or_fail("%s", t.buf);
        assert_string_equal(cfg->geoip_path, CITY_DB);
        assert_non_null(cfg->geo);
        cfg_unref(cfg);
        free(t.buf);
        unlink(link);
    } else {
        print_message("[  SKIP    ] %s not found: valid databases not tried\n", CITY_DB);
    }
    unlink(conf);
    rmdir(dir);
}

/* ---- rate_limit ------------------------------------------------------------------- */

/* Five regions on lines 2..7, eu-central the default. */
#define RL_REGIONS5                                                                                \
    "regions:\n"                                                                                   \
    "  - {name: eu-central, location: {lat: 50, lon: 8}, backends: [\"127.0.0.1:9001\"], "         \
    "default: true}\n"                                                                             \
    "  - {name: us-east, location: {lat: 39, lon: -77}, backends: [\"127.0.0.1:9002\"]}\n"         \
    "  - {name: us-west, location: {lat: 37, lon: -121}, backends: [\"127.0.0.1:9003\"]}\n"        \
    "  - {name: ap-southeast, location: {lat: 1, lon: 103}, backends: [\"127.0.0.1:9004\"]}\n"     \
    "  - {name: sa-east, location: {lat: -23, lon: -46}, backends: [\"127.0.0.1:9005\"]}\n"

static void
assert_share(const struct cfg_rl_phase *p, size_t region, double want)
{
    assert_non_null(p->region_share);
    if (fabs(p->region_share[region] - want) > 1e-12)
        fail_msg("phase %s, region %zu: share %.17g, want %.17g", p->name, region,
                 p->region_share[region], want);
}

/* Every key given, the section before the regions it names (sections load in the table's
 * order, not the file's). */
static void
test_ratelimit_full(void **state)
{
    const struct cfg_rate_limit *rl;
    const struct cfg_rl_phase *p;
    struct cfg *cfg;

    cfg = load_text_or_fail(
        L1 "rate_limit:\n"                                                         /* 2 */
           "  phase: phase2\n"                                                     /* 3 */
           "  phases:\n"                                                           /* 4 */
           "    phase1: { rps: 100,  burst: 200 }\n"                               /* 5 */
           "    phase2: { rps: 500,  burst: 1000, regions: { us-east: 100%% } }\n" /* 6 */
           "    phase3: { rps: 5000, burst: 10000, regions: { eu-central: 40%%, us-east: 30 } }\n"
           "    p.4_x-y: { rps: 2.5, burst: 1.5, regions: { sa-east: 12.5%%, us-west: 7.5 } }\n"
           "  scope: region\n"
           "  redis:\n"
           "    address: [\"10.0.0.1:7000\", \"[2001:db8::1]:7001\", 10.0.0.3]\n"
           "    cluster: true\n"
           "    password: \"s3cret: \\\"quoted\\\"\"\n"
           "    db: 0\n"
           "    timeout: 250ms\n"
           "    key_prefix: \"edge:prod.v1-a_b\"\n"
           "  on_redis_failure: closed\n" RL_REGIONS5);
    rl = &cfg->rate_limit;
    assert_true(rl->enabled);
    assert_int_equal(rl->line, 3);
    assert_int_equal(rl->nphases, 4);
    assert_int_equal(rl->active, 1);
    assert_int_equal(rl->scope, CFG_RL_REGION);
    assert_int_equal(rl->on_redis_failure, CFG_RL_FAIL_CLOSED);

    p = &rl->phases[0];
    assert_string_equal(p->name, "phase1");
    assert_int_equal(p->line, 5);
    assert_true(p->rps == 100 && p->burst == 200);
    assert_null(p->region_share);
    /* Every region but one listed: the one gets the rest, here nothing. */
    p = &rl->phases[1];
    assert_string_equal(p->name, "phase2");
    assert_true(p->rps == 500 && p->burst == 1000);
    assert_share(p, 1, 1.0);
    for (size_t i = 0; i < 5; i++)
        if (i != 1)
            assert_share(p, i, 0.0);
    /* Two listed 40% / 30%: the other three share 30% equally. */
    p = &rl->phases[2];
    assert_string_equal(p->name, "phase3");
    assert_int_equal(p->line, 7);
    assert_true(p->rps == 5000 && p->burst == 10000);
    assert_share(p, 0, 0.40);
    assert_share(p, 1, 0.30);
    assert_share(p, 2, 0.10);
    assert_share(p, 3, 0.10);
    assert_share(p, 4, 0.10);
    p = &rl->phases[3];
    assert_string_equal(p->name, "p.4_x-y");
    assert_true(p->rps == 2.5 && p->burst == 1.5);
    assert_share(p, 4, 0.125);
    assert_share(p, 2, 0.075);
    assert_share(p, 0, 0.80 / 3);

    assert_int_equal(rl->redis.naddrs, 3);
    assert_string_equal(rl->redis.addrs[0].text, "10.0.0.1:7000");
    assert_string_equal(rl->redis.addrs[1].text, "[2001:db8::1]:7001");
    assert_string_equal(rl->redis.addrs[2].text, "10.0.0.3:6379"); /* Redis's own port */
    assert_true(rl->redis.cluster);
    assert_string_equal(rl->redis.password, "s3cret: \"quoted\"");
    assert_int_equal(rl->redis.db, 0);
    assert_int_equal(rl->redis.timeout_ms, 250);
    assert_string_equal(rl->redis.key_prefix, "edge:prod.v1-a_b");
    cfg_unref(cfg);
}

/* The least a section may say, and what it means; and no section at all. */
static void
test_ratelimit_defaults(void **state)
{
    const struct cfg_rate_limit *rl;
    struct cfg *cfg;

    cfg = load_text_or_fail(L1 R2 "rate_limit:\n  phase: p\n  phases: {p: {rps: 100}}\n"
                                  "  redis: {address: \"127.0.0.1:6379\"}\n");
    rl = &cfg->rate_limit;
    assert_true(rl->enabled);
    assert_int_equal(rl->line, 4);
    assert_int_equal(rl->nphases, 1);
    assert_int_equal(rl->active, 0);
    assert_true(rl->phases[0].rps == 100);
    assert_true(rl->phases[0].burst == 100); /* one second's worth */
    assert_null(rl->phases[0].region_share);
    assert_int_equal(rl->scope, CFG_RL_GLOBAL);
    assert_int_equal(rl->on_redis_failure, CFG_RL_FAIL_LOCAL);
    assert_int_equal(rl->redis.naddrs, 1);
    assert_string_equal(rl->redis.addrs[0].text, "127.0.0.1:6379");
    assert_false(rl->redis.cluster);
    assert_null(rl->redis.password);
    assert_int_equal(rl->redis.db, 0);
    assert_int_equal(rl->redis.timeout_ms, CFG_DEFAULT_REDIS_TIMEOUT_MS);
    assert_string_equal(rl->redis.key_prefix, "meridian");
    cfg_unref(cfg);

    /* A rate below one a second still lets one request through at once. */
    cfg = load_text_or_fail(L1 R2 "rate_limit: {phase: slow, phases: {slow: {rps: 0.25}}, "
                                  "redis: {address: \"[::1]\", password: \"\"}}\n");
    rl = &cfg->rate_limit;
    assert_true(rl->phases[0].rps == 0.25);
    assert_true(rl->phases[0].burst == 1);
    assert_string_equal(rl->redis.addrs[0].text, "[::1]:6379");
    assert_null(rl->redis.password);
    cfg_unref(cfg);

    cfg = load_text_or_fail(L1 R2);
    rl = &cfg->rate_limit;
    assert_false(rl->enabled);
    assert_null(rl->phases);
    assert_int_equal(rl->nphases, 0);
    assert_null(rl->redis.addrs);
    assert_null(rl->redis.key_prefix);
    cfg_unref(cfg);
}

/* The edges of each value, accepted. */
static void
test_ratelimit_values(void **state)
{
    static const struct {
        const char *redis; /* the redis mapping's keys */
        uint32_t timeout_ms;
        uint32_t db;
        bool cluster;
        const char *failure;
        enum cfg_rl_failure want_failure;
    } redis_cases[] = {
        {"address: 127.0.0.1:1, timeout: 1ms, db: 15", 1, 15, false, "local", CFG_RL_FAIL_LOCAL},
        {"address: [127.0.0.1:1], timeout: 10s", 10000, 0, false, "open", CFG_RL_FAIL_OPEN},
        {"address: 127.0.0.1:1, cluster: true, db: 0, timeout: 10000ms", 10000, 0, true, "closed",
         CFG_RL_FAIL_CLOSED},
        {"address: 127.0.0.1:1, cluster: false, timeout: 1", 1000, 0, false, "\"local\"",
         CFG_RL_FAIL_LOCAL},
    };
    static const struct {
        const char *rps, *burst;
        double want_rps, want_burst;
    } amounts[] = {
        {"1000000000", "1000000000", 1e9, 1e9},
        {"0.001", "1", 0.001, 1},
        {".5", "1.0", 0.5, 1},
        {"\"7\"", "007", 7, 7},
        {"3.", "2.75", 3, 2.75},
    };
    struct cfg *cfg;
    char prefix[65];

    for (size_t i = 0; i < N_ELEMS(redis_cases); i++) {
        cfg = load_text_or_fail(L1 R2 "rate_limit: {phase: p, phases: {p: {rps: 1}}, redis: {%s}, "
                                      "on_redis_failure: %s}\n",
                                redis_cases[i].redis, redis_cases[i].failure);
        assert_int_equal(cfg->rate_limit.redis.timeout_ms, redis_cases[i].timeout_ms);
        assert_int_equal(cfg->rate_limit.redis.db, redis_cases[i].db);
        assert_int_equal(cfg->rate_limit.redis.cluster, redis_cases[i].cluster);
        assert_int_equal(cfg->rate_limit.redis.naddrs, 1);
        assert_int_equal(cfg->rate_limit.on_redis_failure, redis_cases[i].want_failure);
        cfg_unref(cfg);
    }
    for (size_t i = 0; i < N_ELEMS(amounts); i++) {
        cfg = load_text_or_fail(L1 R2 "rate_limit: {phase: p, phases: {p: {rps: %s, burst: %s}}, "
                                      "redis: {address: 127.0.0.1:1}}\n",
                                amounts[i].rps, amounts[i].burst);
        if (cfg->rate_limit.phases[0].rps != amounts[i].want_rps ||
            cfg->rate_limit.phases[0].burst != amounts[i].want_burst)
            fail_msg("rps %s, burst %s: %g, %g", amounts[i].rps, amounts[i].burst,
                     cfg->rate_limit.phases[0].rps, cfg->rate_limit.phases[0].burst);
        cfg_unref(cfg);
    }

    /* Sixteen seed nodes, sixteen phases, the longest prefix and phase name. */
    memset(prefix, 'k', 64);
    prefix[64] = '\0';
    {
        struct text t = {NULL, 0, 0};
        char *errors = NULL;

        text_add(&t, L1 R2 "rate_limit:\n  phase: p15\n  phases:\n");
        for (int i = 0; i < CFG_RL_PHASES_MAX; i++)
            text_add(&t, "    p%d: {rps: %d}\n", i, i + 1);
        text_add(&t, "  redis:\n    cluster: true\n    key_prefix: %s\n    address:\n", prefix);
        for (int i = 0; i < CFG_REDIS_SEEDS_MAX; i++)
            text_add(&t, "      - 10.0.0.%d:6379\n", i + 1);
        cfg = cfg_load_text("inline", t.buf, t.len, &errors);
        if (cfg == NULL)
            fail_msg("did not load:\n%s", errors);
        assert_int_equal(cfg->rate_limit.nphases, CFG_RL_PHASES_MAX);
        assert_int_equal(cfg->rate_limit.active, 15);
        assert_true(cfg->rate_limit.phases[15].rps == 16);
        assert_int_equal(cfg->rate_limit.redis.naddrs, CFG_REDIS_SEEDS_MAX);
        assert_string_equal(cfg->rate_limit.redis.addrs[15].text, "10.0.0.16:6379");
        assert_string_equal(cfg->rate_limit.redis.key_prefix, prefix);
        cfg_unref(cfg);
        free(t.buf);
    }
    cfg = load_text_or_fail(L1 R2 "rate_limit: {phase: %s, phases: {%s: {rps: 1}}, redis: "
                                  "{address: 127.0.0.1:1}}\n",
                            "p123456789012345678901234567890123456789012345678901234567890.-",
                            "p123456789012345678901234567890123456789012345678901234567890.-");
    assert_int_equal(strlen(cfg->rate_limit.phases[0].name), 63);
    cfg_unref(cfg);

    /* Shares that add up to 100 only in decimal are 100; every region listed keeps its own,
     * and an empty mapping lists none. */
    cfg = load_text_or_fail(L1 "rate_limit:\n  phase: a\n  phases:\n"
                               "    a: {rps: 9, regions: {eu-central: 33.4%%, us-east: 33.3%%, "
                               "us-west: 33.3%%}}\n"
                               "    b: {rps: 9, regions: {eu-central: 50, us-east: 20, us-west: "
                               "10, ap-southeast: 10, sa-east: 5}}\n"
                               "    c: {rps: 9, regions: {}}\n"
                               "  redis: {address: 127.0.0.1:1}\n" RL_REGIONS5);
    assert_share(&cfg->rate_limit.phases[0], 0, 0.334);
    assert_share(&cfg->rate_limit.phases[0], 3, 0);
    /* exactly 0, not 1e-16: budget.c refuses a region with no share, and asks Redis for one
     * with any share at all */
    assert_true(cfg->rate_limit.phases[0].region_share[3] == 0.0);
    assert_share(&cfg->rate_limit.phases[1], 0, 0.5);
    assert_share(&cfg->rate_limit.phases[1], 4, 0.05);
    assert_null(cfg->rate_limit.phases[2].region_share);
    cfg_unref(cfg);
}

/* Each text must fail with exactly `nlines` lines, one of them `fragment`. The regions
 * a, b and c are on lines 2..5 and rate_limit starts on line 6. */
#define RL_REGIONS3                                                                                \
    "regions:\n"                                                                                   \
    "  - {name: a, location: {lat: 0, lon: 0}, backends: [\"127.0.0.1:9001\"], default: true}\n"   \
    "  - {name: b, location: {lat: 1, lon: 1}, backends: [\"127.0.0.1:9002\"]}\n"                  \
    "  - {name: c, location: {lat: 2, lon: 2}, backends: [\"127.0.0.1:9003\"]}\n"
#define RL6 L1 RL_REGIONS3 "rate_limit:\n"
/* A good phase, phases and redis, each on one line. */
#define RL_PHASE "  phase: p1\n"
#define RL_PHASES "  phases: {p1: {rps: 100}}\n"
#define RL_REDIS "  redis: {address: \"127.0.0.1:6379\"}\n"

static const struct key_case ratelimit_cases[] = {
    /* the section and its required keys */
    {RL6 "  []\n", 1, "inline:7: rate_limit: expected a mapping, got a sequence\n"},
    {L1 R2 "rate_limit:\n", 1, "inline:3: rate_limit: expected a mapping, got an empty value\n"},
    {RL6 RL_PHASES RL_REDIS, 1, "inline:7: missing required key \"phase\" in rate_limit\n"},
    {RL6 RL_PHASE RL_REDIS, 1, "inline:7: missing required key \"phases\" in rate_limit\n"},
    {RL6 RL_PHASE RL_PHASES, 1, "inline:7: missing required key \"redis\" in rate_limit\n"},
    {RL6 RL_PHASE RL_PHASES RL_REDIS "  burst: 10\n", 1,
     "inline:10: unknown key \"burst\" in rate_limit (expected one of: phase, phases, scope, "
     "redis, on_redis_failure)\n"},
    /* phase */
    {RL6 "  phase: p9\n  phases: {p1: {rps: 1}, p2: {rps: 2}}\n" RL_REDIS, 1,
     "inline:7: rate_limit.phase: expected the name of one of rate_limit.phases (p1, p2), got "
     "\"p9\"\n"},
    {RL6 "  phase: [p1]\n" RL_PHASES RL_REDIS, 1,
     "inline:7: rate_limit.phase: expected a single value, got a sequence\n"},
    /* phases */
    {RL6 RL_PHASE "  phases: {}\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases: expected 1 to 16 phases, got 0\n"},
    {RL6 RL_PHASE "  phases: [p1]\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases: expected a mapping, got a sequence\n"},
    {RL6 RL_PHASE "  phases:\n    p1: {rps: 1}\n    p1: {rps: 2}\n" RL_REDIS, 1,
     "inline:10: duplicate key \"p1\" in rate_limit.phases (first at line 9)\n"},
    {RL6 "  phase: \"p 1\"\n  phases: {\"p 1\": {rps: 0}}\n" RL_REDIS, 2,
     "inline:8: rate_limit.phases: expected a phase name of 1 to 63 letters, digits, \".\", "
     "\"_\" or \"-\" (it goes into Redis keys and response headers), got \"p 1\"\n"},
    {RL6 "  phase: \"p 1\"\n  phases: {\"p 1\": {rps: 0}}\n" RL_REDIS, 2,
     "inline:8: rate_limit.phases.\"p 1\".rps: expected a rate above 0"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 1}, [p2]: {rps: 2}}\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases: expected a phase name as the key, got a sequence\n"},
    {RL6 RL_PHASE "  phases: {p1: 100}\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases.p1: expected a mapping, got \"100\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {burst: 100}}\n" RL_REDIS, 1,
     "inline:8: missing required key \"rps\" in rate_limit.phases.p1\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 1, rate: 2}}\n" RL_REDIS, 1,
     "inline:8: unknown key \"rate\" in rate_limit.phases.p1 (expected one of: rps, burst, "
     "regions)\n"},
    /* rps and burst */
    {RL6 RL_PHASE "  phases: {p1: {rps: 0}}\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases.p1.rps: expected a rate above 0 and at most 1000000000 "
     "requests per second, like 100 or 2.5, got \"0\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 0.0}}\n" RL_REDIS, 1, "got \"0.0\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: -5}}\n" RL_REDIS, 1, "got \"-5\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 1e3}}\n" RL_REDIS, 1, "got \"1e3\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 1000000000.5}}\n" RL_REDIS, 1, "got \"1000000000.5\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: fast}}\n" RL_REDIS, 1, "got \"fast\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 1.2.3}}\n" RL_REDIS, 1, "got \"1.2.3\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: .}}\n" RL_REDIS, 1, "got \".\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, burst: 0}}\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases.p1.burst: expected a number of requests from 1 to 1000000000 "
     "that may pass at once, like 200, got \"0\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, burst: 0.99}}\n" RL_REDIS, 1, "got \"0.99\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, burst: [1]}}\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases.p1.burst: expected a single value, got a sequence\n"},
    /* a phase's regions */
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: {a: 0%}}}\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases.p1.regions.a: expected a share above 0 and at most 100%, like "
     "40% (a plain number is a percentage too), got \"0%\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: {a: 101%}}}\n" RL_REDIS, 1, "got \"101%\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: {a: 100.5}}}\n" RL_REDIS, 1,
     "got \"100.5\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: {a: 40 %}}}\n" RL_REDIS, 1, "got \"40 %\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: {a: \"%\"}}}\n" RL_REDIS, 1, "got \"%\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: {a: -5%}}}\n" RL_REDIS, 1, "got \"-5%\"\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: {a: 0.4}}}\n" RL_REDIS, 0, NULL},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: {a: 60%, b: 30%, c: 20%}}}\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases.p1.regions: the shares add up to 110%, more than 100%\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: {a: 60%, b: 50%, c: 0%, d: 1%}}}\n" RL_REDIS,
     3, "inline:8: rate_limit.phases.p1.regions: the shares add up to 110%, more than 100%\n"},
    {RL6 RL_PHASE "  phases:\n    p1:\n      rps: 100\n      regions:\n        a: 10%\n"
                  "        eu-west: 20%\n" RL_REDIS,
     1,
     "inline:13: rate_limit.phases.p1.regions.eu-west: no region of that name (regions: a, b, "
     "c)\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: {\"a\\nb\": 20%}}}\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases.p1.regions.\"a\\x0ab\": no region of that name"},
    {RL6 RL_PHASE "  phases:\n    p1:\n      rps: 100\n      regions: {a: 10%, b: 5%, a: 20%}\n"
                  "" RL_REDIS,
     1, "inline:11: duplicate key \"a\" in rate_limit.phases.p1.regions (first at line 11)\n"},
    {RL6 RL_PHASE "  phases: {p1: {rps: 100, regions: [a]}}\n" RL_REDIS, 1,
     "inline:8: rate_limit.phases.p1.regions: expected a mapping, got a sequence\n"},
    /* a region that lost its name to its own error is not reported again */
    {L1 "regions: [{name: \"a b\", location: {lat: 0, lon: 0}, backends: [\"127.0.0.1:1\"]}]\n"
        "rate_limit:\n" RL_PHASE "  phases: {p1: {rps: 1, regions: {\"a b\": 50%}}}\n" RL_REDIS,
     1, "inline:2: regions[0].name: expected a name"},
    /* scope and on_redis_failure */
    {RL6 RL_PHASE RL_PHASES RL_REDIS "  scope: regional\n", 1,
     "inline:10: rate_limit.scope: expected global or region, got \"regional\"\n"},
    {RL6 RL_PHASE RL_PHASES RL_REDIS "  scope: Global\n", 1,
     "inline:10: rate_limit.scope: expected global or region, got \"Global\"\n"},
    {RL6 RL_PHASE RL_PHASES RL_REDIS "  on_redis_failure: fail\n", 1,
     "inline:10: rate_limit.on_redis_failure: expected local, open or closed, got \"fail\"\n"},
    {RL6 RL_PHASE RL_PHASES RL_REDIS "  on_redis_failure: [open]\n", 1,
     "inline:10: rate_limit.on_redis_failure: expected a single value, got a sequence\n"},
    /* redis */
    {RL6 RL_PHASE RL_PHASES "  redis: 127.0.0.1:6379\n", 1,
     "inline:9: rate_limit.redis: expected a mapping, got \"127.0.0.1:6379\"\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {cluster: false}\n", 1,
     "inline:9: missing required key \"address\" in rate_limit.redis\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:6379, host: x}\n", 1,
     "inline:9: unknown key \"host\" in rate_limit.redis (expected one of: address, cluster, "
     "password, db, timeout, key_prefix)\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: \"localhost:6379\"}\n", 1,
     "inline:9: rate_limit.redis.address: \"localhost\" is not an IP address; host names are "
     "never looked up"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: redis.internal}\n", 1,
     "inline:9: rate_limit.redis.address: \"redis.internal\" is not an IP address"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: \"127.0.0.1:99999\"}\n", 1,
     "inline:9: rate_limit.redis.address: port 99999 out of range 1..65535\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: \"::1\"}\n", 1,
     "inline:9: rate_limit.redis.address: an IPv6 address needs brackets"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: \"\"}\n", 1,
     "inline:9: rate_limit.redis.address: expected an IP address and port like 127.0.0.1:8080 "
     "or [::1]:8080, got an empty value\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: {ip: 127.0.0.1}}\n", 1,
     "inline:9: rate_limit.redis.address: expected a single value, got a mapping\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: [127.0.0.1:1, 127.0.0.1:2]}\n", 1,
     "inline:9: rate_limit.redis.address: 2 addresses are seed nodes of a Redis Cluster and need "
     "\"cluster: true\"; a single Redis server has one address\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: [], cluster: true}\n", 1,
     "inline:9: rate_limit.redis.address: expected 1 to 16 addresses, got 0\n"},
    {RL6 RL_PHASE RL_PHASES
     "  redis:\n    cluster: true\n    address:\n      - 10.0.0.1:7000\n      - 10.0.0.2\n"
     "      - 10.0.0.1:7000\n      - bogus:1\n",
     2,
     "inline:14: rate_limit.redis.address[2]: duplicate address \"10.0.0.1:7000\" (first at "
     "rate_limit.redis.address[0], line 12)\n"},
    {RL6 RL_PHASE RL_PHASES
     "  redis:\n    cluster: true\n    address:\n      - 10.0.0.1:7000\n      - 10.0.0.2\n"
     "      - 10.0.0.1:7000\n      - bogus:1\n",
     2, "inline:15: rate_limit.redis.address[3]: \"bogus\" is not an IP address"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, cluster: yes}\n", 1,
     "inline:9: rate_limit.redis.cluster: expected true or false, got \"yes\"\n"},
    {RL6 RL_PHASE RL_PHASES "  redis:\n    address: 127.0.0.1:1\n    cluster: true\n    db: 3\n", 1,
     "inline:12: rate_limit.redis.db: must be 0 with \"cluster: true\": Redis Cluster has only "
     "database 0\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, db: 16}\n", 1,
     "inline:9: rate_limit.redis.db: expected a number 0..15, got \"16\"\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, db: -1}\n", 1, "got \"-1\"\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, password: [a]}\n", 1,
     "inline:9: rate_limit.redis.password: expected a single value, got a sequence\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, timeout: 0}\n", 1,
     "inline:9: rate_limit.redis.timeout: \"0\" is out of range 1ms..10s\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, timeout: 10001ms}\n", 1,
     "inline:9: rate_limit.redis.timeout: \"10001ms\" is out of range 1ms..10s\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, timeout: 25h}\n", 1,
     "inline:9: rate_limit.redis.timeout: \"25h\" is longer than the maximum, 24h\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, timeout: 0.5s}\n", 1,
     "inline:9: rate_limit.redis.timeout: expected a duration like 500ms, 10s, 2m, got "
     "\"0.5s\""},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, key_prefix: \"{meridian}\"}\n", 1,
     "inline:9: rate_limit.redis.key_prefix: expected 1 to 64 letters, digits, \"_\", \".\", "
     "\":\" or \"-\" (no braces: Meridian adds the hash tag itself), got \"{meridian}\"\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, key_prefix: \"\"}\n", 1,
     "inline:9: rate_limit.redis.key_prefix: expected 1 to 64 letters"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, key_prefix: \"a b\"}\n", 1,
     "got \"a b\"\n"},
    {RL6 RL_PHASE RL_PHASES "  redis: {address: 127.0.0.1:1, key_prefix: "
                            "k1234567890123456789012345678901234567890123456789012345678901234}\n",
     1, "inline:9: rate_limit.redis.key_prefix: expected 1 to 64 letters"},
    /* errors in several places are all reported */
    {RL6 "  phase: p1\n  phases: {p1: {rps: 0, burst: 0}}\n"
         "  redis: {address: bogus, db: 99, timeout: 0ms}\n  scope: x\n  on_redis_failure: y\n",
     7, "inline:9: rate_limit.redis.db: expected a number 0..15, got \"99\"\n"},
};

static void
test_ratelimit_cases(void **state)
{
    for (size_t i = 0; i < N_ELEMS(ratelimit_cases); i++) {
        const struct key_case *c = &ratelimit_cases[i];
        char *errors = NULL;
        struct cfg *cfg = cfg_load_text("inline", c->yaml, strlen(c->yaml), &errors);

        if (c->fragment == NULL) { /* a case that must load, beside ones that must not */
            if (cfg == NULL)
                fail_msg("case %zu did not load:\n%s", i, errors);
            cfg_unref(cfg);
            continue;
        }
        if (cfg != NULL)
            fail_msg("case %zu loaded, but should fail with %s", i, c->fragment);
        assert_non_null(errors);
        if (strstr(errors, c->fragment) == NULL)
            fail_msg("case %zu: missing\n  %s\nin\n%s", i, c->fragment, errors);
        if (count_lines(errors) != c->nlines)
            fail_msg("case %zu: %zu error lines, want %zu:\n%s", i, count_lines(errors), c->nlines,
                     errors);
        free(errors);
    }
}

/* The shipped example's rate_limit section is commented out (it needs a Redis); with its
 * "# " taken off it must load and say what its comments promise. */
static void
test_ratelimit_example(void **state)
{
    char path[4096], *text, *start, *errors = NULL;
    struct text t = {NULL, 0, 0};
    const struct cfg_rate_limit *rl;
    struct cfg *cfg;
    FILE *f;
    long size;

    snprintf(path, sizeof(path), "%s/conf/meridian.yaml", SRCDIR);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size > 0);
    rewind(f);
    text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(fread(text, 1, (size_t)size, f), (size_t)size);
    text[size] = '\0';
    fclose(f);

    /* The block runs from "# rate_limit:" to the first line that is not a comment. */
    start = strstr(text, "\n# rate_limit:\n");
    assert_non_null(start);
    text_add(&t, "%.*s", (int)(start + 1 - text), text);
    for (char *line = start + 1; *line == '#';) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        text_add(&t, "%.*s\n", (int)(end - line - (line[1] == ' ' ? 2 : 1)),
                 line + (line[1] == ' ' ? 2 : 1));
        line = end + 1;
        start = line;
    }
    text_add(&t, "%s", start);

    cfg = cfg_load_text("example", t.buf, t.len, &errors);
    if (cfg == NULL)
        fail_msg("the uncommented example did not load:\n%s", errors);
    rl = &cfg->rate_limit;
    assert_true(rl->enabled);
    assert_int_equal(rl->nphases, 3);
    assert_string_equal(rl->phases[rl->active].name, "phase1");
    assert_true(rl->phases[0].rps == 100 && rl->phases[0].burst == 200);
    assert_true(rl->phases[2].rps == 5000);
    assert_share(&rl->phases[2], 0, 0.40); /* eu-central */
    assert_share(&rl->phases[2], 1, 0.30); /* us-east */
    assert_share(&rl->phases[2], 4, 0.10); /* sa-east: the rest, shared */
    assert_int_equal(rl->scope, CFG_RL_GLOBAL);
    assert_int_equal(rl->on_redis_failure, CFG_RL_FAIL_LOCAL);
    assert_string_equal(rl->redis.addrs[0].text, "127.0.0.1:6379");
    assert_int_equal(rl->redis.timeout_ms, 50);
    assert_string_equal(rl->redis.key_prefix, "meridian");
    assert_null(rl->redis.password);
    cfg_unref(cfg);
    free(t.buf);
    free(text);
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
        cmocka_unit_test(test_backend_weights),
        cmocka_unit_test(test_backend_weight_errors),
        cmocka_unit_test(test_backend_names),
        cmocka_unit_test(test_backend_name_errors),
        cmocka_unit_test(test_tls_absolute_paths),
        cmocka_unit_test(test_tls_http2_limits),
        cmocka_unit_test(test_tls_prepare_contract),
        cmocka_unit_test(test_key_cases),
        cmocka_unit_test(test_addr_is_loopback),
        cmocka_unit_test(test_privileges_values),
        cmocka_unit_test(test_unreadable_as_user),
        cmocka_unit_test(test_routing_values),
        cmocka_unit_test(test_health_inheritance),
        cmocka_unit_test(test_backend_tls),
        cmocka_unit_test(test_backend_tls_client_cert),
        cmocka_unit_test(test_backend_tls_errors),
        cmocka_unit_test(test_backend_tls_reload),
        cmocka_unit_test(test_backend_tls_each_file),
        cmocka_unit_test(test_backend_tls_unreadable),
        cmocka_unit_test(test_geoip_refused),
        cmocka_unit_test(test_geoip_paths),
        cmocka_unit_test(test_ratelimit_full),
        cmocka_unit_test(test_ratelimit_defaults),
        cmocka_unit_test(test_ratelimit_values),
        cmocka_unit_test(test_ratelimit_cases),
        cmocka_unit_test(test_ratelimit_example),
        cmocka_unit_test_setup_teardown(test_tls_relative_paths, save_cwd, restore_cwd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
