/* SPDX-License-Identifier: MIT */
/* Configuration generations: creation with defaults, reference counting, and the parsers
 * for the three kinds of value the file holds (durations, sizes, IP:port addresses).
 * Everything here is pure: no I/O and never a name lookup. Mapping YAML onto these types
 * and explaining what was wrong is cfg_load.c's job; the TLS runtime a generation carries
 * is built by tls.c and only handed back to it here when the generation goes. */
#define _POSIX_C_SOURCE 200809L

#include "cfg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"
#include "health.h"
#include "tls.h"
#include "tls_upstream.h"

#define MS_PER_DAY (24u * 60 * 60 * 1000)

struct cfg *
cfg_new(void)
{
    struct cfg *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return NULL;

    atomic_init(&cfg->refs, 1);
    cfg->workers = 0;
    cfg->log_level = CFG_LOG_INFO;
    cfg->timeouts.client_header_ms = CFG_DEFAULT_CLIENT_HEADER_MS;
    cfg->timeouts.client_idle_ms = CFG_DEFAULT_CLIENT_IDLE_MS;
    cfg->timeouts.upstream_connect_ms = CFG_DEFAULT_UPSTREAM_CONNECT_MS;
    cfg->timeouts.upstream_response_ms = CFG_DEFAULT_UPSTREAM_RESPONSE_MS;
    cfg->timeouts.tunnel_ms = CFG_DEFAULT_TUNNEL_MS;
    cfg->timeouts.shutdown_ms = CFG_DEFAULT_SHUTDOWN_MS;
    cfg->limits.max_header_bytes = CFG_DEFAULT_MAX_HEADER_BYTES;
    cfg->limits.max_headers = CFG_DEFAULT_MAX_HEADERS;
    cfg->limits.max_body_bytes = CFG_DEFAULT_MAX_BODY_BYTES;
    cfg->http2.max_concurrent_streams = CFG_DEFAULT_H2_MAX_STREAMS;
    cfg->http2.initial_window_size = CFG_DEFAULT_H2_WINDOW;
    cfg->http2.max_header_list_size = CFG_DEFAULT_H2_MAX_HEADER_LIST;
    cfg->http2.max_resets_per_10s = CFG_DEFAULT_H2_MAX_RESETS;
    cfg->access_log_path = NULL;
    cfg->client_ip.sources[0] = CLIENT_IP_XFF;
    cfg->client_ip.nsources = 1;
    cfg->routing.spill_below = CFG_DEFAULT_SPILL_BELOW;
    cfg_health_check_defaults(&cfg->health_check);
    /* Not enabled: the loader turns it on, and sets the key prefix, when the section is there. */
    cfg->rate_limit.scope = CFG_RL_GLOBAL;
    cfg->rate_limit.on_redis_failure = CFG_RL_FAIL_LOCAL;
    cfg->rate_limit.redis.timeout_ms = CFG_DEFAULT_REDIS_TIMEOUT_MS;
    return cfg;
}

/* Taking a reference needs no ordering: the caller already holds one, so the generation
 * cannot go away under it. */
struct cfg *
cfg_ref(struct cfg *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

/* Also takes partly filled settings: the loader frees a generation it gave up on halfway. */
static void
cfg_tls_free(struct cfg_tls *tls)
{
    if (tls == NULL)
        return;
    /* The runtime first: its contexts were built from the strings below. */
    if (tls->runtime != NULL)
        tls_listener_free(tls->runtime);
    for (size_t i = 0; i < tls->ncerts; i++) {
        free(tls->certs[i].cert_path);
        free(tls->certs[i].key_path);
    }
    free(tls->certs);
    free(tls->ciphers);
    free(tls->ciphersuites);
    free(tls->groups);
    for (size_t i = 0; i < tls->nalpn; i++)
        free(tls->alpn[i]);
    free(tls->alpn);
    free(tls->ticket_key_file);
    free(tls);
}

void
cfg_health_check_defaults(struct cfg_health_check *hc)
{
    memset(hc, 0, sizeof(*hc));
    hc->interval_ms = CFG_DEFAULT_HC_INTERVAL_MS;
    hc->timeout_ms = CFG_DEFAULT_HC_TIMEOUT_MS;
    hc->rise = CFG_DEFAULT_HC_RISE;
    hc->fall = CFG_DEFAULT_HC_FALL;
    hc->expect_lo = 200;
    hc->expect_hi = 399;
    hc->passive = true;
}

void
cfg_backend_tls_defaults(struct cfg_backend_tls *t)
{
    memset(t, 0, sizeof(*t));
    t->verify = true;
    t->alpn_http11 = true;
    t->min_protocol = CFG_TLS_V12;
}

static bool
same_path(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool
cfg_backend_tls_same_files(const struct cfg_backend_tls *a, const struct cfg_backend_tls *b)
{
    return same_path(a->ca_file, b->ca_file) && same_path(a->client_cert, b->client_cert) &&
           same_path(a->client_key, b->client_key);
}

void
cfg_backend_tls_deinit(struct cfg_backend_tls *t)
{
    free(t->ca_file);
    free(t->sni);
    free(t->client_cert);
    free(t->client_key);
    tls_upstream_unref(t->runtime);
    memset(t, 0, sizeof(*t));
}

void
cfg_health_check_deinit(struct cfg_health_check *hc)
{
    free(hc->path);
    free(hc->host);
    hc->path = hc->host = NULL;
}

void
cfg_client_ip_free(struct client_ip_cfg *ci)
{
    if (ci == NULL)
        return;
    free(ci->nets);
    free(ci);
}

/* Also takes a section the loader gave up on halfway (names and shares may be NULL). */
static void
cfg_rate_limit_deinit(struct cfg_rate_limit *rl)
{
    for (size_t i = 0; i < rl->nphases; i++) {
        free(rl->phases[i].name);
        free(rl->phases[i].region_share);
    }
    free(rl->phases);
    free(rl->redis.addrs);
    free(rl->redis.password);
    free(rl->redis.key_prefix);
}

static void
cfg_free(struct cfg *cfg)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        cfg_client_ip_free(cfg->listeners[i].client_ip_own);
        cfg_tls_free(cfg->listeners[i].tls);
        free(cfg->listeners[i].name);
        free(cfg->listeners[i].fds); /* the array only: the sockets are the workers' */
    }
    free(cfg->listeners);

    for (size_t i = 0; i < cfg->nregions; i++) {
        struct cfg_region *r = &cfg->regions[i];
        for (size_t b = 0; b < r->nbackends; b++) {
            health_target_unref(r->backends[b].health);
            if (r->backends[b].tls_own != NULL) {
                cfg_backend_tls_deinit(r->backends[b].tls_own);
                free(r->backends[b].tls_own);
            }
        }
        for (size_t n = 0; n < r->nnames; n++) {
            cfg_backend_tls_deinit(&r->names[n].tls);
            free(r->names[n].host);
            free(r->names[n].text);
        }
        free(r->names);
        cfg_backend_tls_deinit(&r->tls);
        free(r->name);
        free(r->backends);
        free(r->schedule);
        free(r->countries);
        free(r->stats);
        cfg_health_check_deinit(&r->health_check);
    }
    free(cfg->regions);

    free(cfg->client_ip.nets);
    free(cfg->geoip_path);
    route_places_free(&cfg->places);
    geo_close(cfg->geo);
    free(cfg->routing.country_header);
    free(cfg->routing.region_header);
    cfg_health_check_deinit(&cfg->health_check);
    cfg_rate_limit_deinit(&cfg->rate_limit);
    free(cfg->access_log_path);
    free(cfg->privileges.user);
    free(cfg->privileges.group);
    free(cfg->resolvers.nameservers);
    free(cfg->resolvers.hosts_file);
    free(cfg->source);
    free(cfg->path);
    free(cfg);
}

/* Dropping a reference releases what this thread wrote; the last one acquires what every
 * other holder wrote before it frees. NULL is accepted, so error paths can unref blindly. */
void
cfg_unref(struct cfg *cfg)
{
    if (cfg == NULL)
        return;
    if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        cfg_free(cfg);
}

/* Reads the leading decimal digits of `*p` into `*out`, advancing `*p`. Returns -1 when
 * there is no digit or the number exceeds `max`; the digits are consumed either way. */
static int
parse_digits(const char **p, uint64_t max, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    bool over = false;

    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (over || v > max / 10 || (v == max / 10 && d > max % 10))
            over = true;
        else
            v = v * 10 + d;
    }
    *p = s;
    if (over)
        return -1;
    *out = v;
    return 0;
}

/* Units are lower case only: "M" would read as months as easily as minutes. */
int
cfg_parse_duration_ms(const char *text, uint32_t *ms)
{
    const char *p = text;
    uint64_t n, unit;

    if (text == NULL || parse_digits(&p, MS_PER_DAY, &n) < 0)
        return -1;

    if (strcmp(p, "") == 0 || strcmp(p, "s") == 0)
        unit = 1000;
    else if (strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        unit = 60 * 60 * 1000;
    else
        return -1;

    /* n <= MS_PER_DAY and unit <= 3.6e6: the product fits in 64 bits. */
    if (n * unit > MS_PER_DAY)
        return -1;
    *ms = (uint32_t)(n * unit);
    return 0;
}

int
cfg_parse_size(const char *text, uint64_t *bytes)
{
    const char *p = text;
    uint64_t n, unit;

    if (text == NULL || parse_digits(&p, UINT64_MAX, &n) < 0)
        return -1;

    switch (p[0]) {
    case '\0':
        unit = 1;
        break;
    case 'k':
    case 'K':
        unit = UINT64_C(1) << 10;
        break;
    case 'm':
    case 'M':
        unit = UINT64_C(1) << 20;
        break;
    case 'g':
    case 'G':
        unit = UINT64_C(1) << 30;
        break;
    default:
        return -1;
    }
    if (p[0] != '\0' && p[1] != '\0')
        return -1;
    if (n > UINT64_MAX / unit)
        return -1;
    *bytes = n * unit;
    return 0;
}

/* Longest text we look at: "[" + the longest IPv6 form (45) + "]:" + 5 digits. */
#define ADDR_TEXT_MAX 60

int
cfg_parse_addr(const char *text, struct cfg_addr *addr)
{
    char host[ADDR_TEXT_MAX + 1];
    const char *port_text, *p;
    size_t len, hlen;
    uint64_t port;
    struct cfg_addr out;
    char ntop[INET6_ADDRSTRLEN];

    if (text == NULL)
        return -1;
    len = strnlen(text, ADDR_TEXT_MAX + 1);
    if (len == 0 || len > ADDR_TEXT_MAX)
        return -1;

    /* Split host and port. A bracketed host is IPv6; anything else must be IPv4, so a
     * bare IPv6 address (whose last group would read as a port) is refused. */
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hlen = (size_t)(close - text - 1);
        memcpy(host, text + 1, hlen);
        port_text = close + 2;
    } else {
        const char *colon = strchr(text, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL)
            return -1;
        hlen = (size_t)(colon - text);
        memcpy(host, text, hlen);
        port_text = colon + 1;
    }
    host[hlen] = '\0';

    p = port_text;
    if (parse_digits(&p, 65535, &port) < 0 || *p != '\0' || port == 0 || p - port_text > 5)
        return -1;

    memset(&out, 0, sizeof(out));
    if (text[0] == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out.sa;
        /* inet_pton refuses zone ids ("%eth0"); link-local listeners are not supported. */
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        out.salen = sizeof(*sin6);
        inet_ntop(AF_INET6, &sin6->sin6_addr, ntop, sizeof(ntop));
        snprintf(out.text, sizeof(out.text), "[%s]:%u", ntop, (unsigned)port);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out.sa;
        /* Strict dotted quad: glibc's inet_pton takes no hex, octal or short forms. */
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        out.salen = sizeof(*sin);
        inet_ntop(AF_INET, &sin->sin_addr, ntop, sizeof(ntop));
        snprintf(out.text, sizeof(out.text), "%s:%u", ntop, (unsigned)port);
    }
    *addr = out;
    return 0;
}

bool
cfg_addr_is_loopback(const struct cfg_addr *addr)
{
    if (addr->sa.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&addr->sa;
        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->sa.ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&addr->sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

void
cfg_each_file(const struct cfg *cfg, cfg_file_cb cb, void *arg)
{
    char key[160];

    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_tls *t = cfg->listeners[i].tls;
        if (t == NULL)
            continue;
        for (size_t j = 0; j < t->ncerts; j++) {
            snprintf(key, sizeof(key), "listeners[%zu].tls.certificates[%zu].cert", i, j);
            cb(arg, key, t->certs[j].cert_path, t->certs[j].line);
            snprintf(key, sizeof(key), "listeners[%zu].tls.certificates[%zu].key", i, j);
            cb(arg, key, t->certs[j].key_path, t->certs[j].line);
        }
        if (t->tickets && t->ticket_key_file != NULL) {
            snprintf(key, sizeof(key), "listeners[%zu].tls.session_tickets.key_file", i);
            cb(arg, key, t->ticket_key_file, cfg->listeners[i].line);
        }
    }
    for (size_t i = 0; i < cfg->nregions; i++) {
        const struct cfg_region *r = &cfg->regions[i];
        for (size_t b = 0; b <= r->nbackends + r->nnames; b++) {
            /* Backends with their own section (an IP literal's), then the names', then
             * (b == nbackends + nnames) the region's own. */
            const struct cfg_backend_tls *t = b < r->nbackends ? r->backends[b].tls_own
                                              : b < r->nbackends + r->nnames
                                                  ? &r->names[b - r->nbackends].tls
                                                  : &r->tls;
            size_t in_file = b < r->nbackends               ? r->backends[b].file_index
                             : b < r->nbackends + r->nnames ? r->names[b - r->nbackends].file_index
                                                            : 0;
            char at[96];
            if (t == NULL || !t->enabled)
                continue;
            /* Files a backend inherits are named once, as the region's. */
            if (t != &r->tls && r->tls.enabled && cfg_backend_tls_same_files(t, &r->tls))
                continue;
            if (t != &r->tls)
                snprintf(at, sizeof(at), "regions[%zu].backends[%zu].tls", i, in_file);
            else
                snprintf(at, sizeof(at), "regions[%zu].tls", i);
            if (t->ca_file != NULL) {
                snprintf(key, sizeof(key), "%s.ca_file", at);
                cb(arg, key, t->ca_file, t->line);
            }
            if (t->client_cert != NULL) {
                snprintf(key, sizeof(key), "%s.client_cert", at);
                cb(arg, key, t->client_cert, t->line);
                snprintf(key, sizeof(key), "%s.client_key", at);
                cb(arg, key, t->client_key, t->line);
            }
        }
    }
    if (cfg->geoip_path != NULL)
        cb(arg, "geoip.database", cfg->geoip_path, cfg->geoip_line);
}

uint64_t
cfg_addrs_digest(const struct sockaddr_storage *addrs, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p;
        size_t len;
        if (addrs[i].ss_family == AF_INET6) {
            p = (const unsigned char *)&((const struct sockaddr_in6 *)&addrs[i])->sin6_addr;
            len = 16;
        } else {
            p = (const unsigned char *)&((const struct sockaddr_in *)&addrs[i])->sin_addr;
            len = 4;
        }
        h = (h ^ (unsigned char)addrs[i].ss_family) * 1099511628211ull;
        for (size_t k = 0; k < len; k++)
            h = (h ^ p[k]) * 1099511628211ull;
    }
    return (h ^ n) * 1099511628211ull;
}

void
cfg_addr_set(struct cfg_addr *addr, const struct sockaddr_storage *ip, uint16_t port)
{
    char ntop[INET6_ADDRSTRLEN];

    memset(addr, 0, sizeof(*addr));
    if (ip->ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&addr->sa;
        *sin6 = *(const struct sockaddr_in6 *)ip;
        sin6->sin6_port = htons(port);
        addr->salen = sizeof(*sin6);
        inet_ntop(AF_INET6, &sin6->sin6_addr, ntop, sizeof(ntop));
        snprintf(addr->text, sizeof(addr->text), "[%s]:%u", ntop, (unsigned)port);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&addr->sa;
        *sin = *(const struct sockaddr_in *)ip;
        sin->sin_port = htons(port);
        addr->salen = sizeof(*sin);
        inet_ntop(AF_INET, &sin->sin_addr, ntop, sizeof(ntop));
        snprintf(addr->text, sizeof(addr->text), "%s:%u", ntop, (unsigned)port);
    }
}

int
cfg_region_index(const struct cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nregions; i++)
        if (cfg->regions[i].name != NULL && strcmp(cfg->regions[i].name, name) == 0)
            return (int)i;
    return -1;
}
