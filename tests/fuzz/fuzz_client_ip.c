/* SPDX-License-Identifier: MIT */
/* libFuzzer driver for client_ip. The input is split at '\n' into header lines whose
 * first byte picks the header name; they go through client_ip_resolve under a
 * trust-everything and a trust-some configuration, and client_ip_cdn_location; the first
 * line, NUL-terminated, goes through client_ip_parse_net and client_ip_parse_addr.
 * Invariants: results are IPv4 or unmapped IPv6, an untrusted peer is the client, a
 * parsed network contains its own address and prints back to itself. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "client_ip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 8

static const char *const names[] = {
    "X-Forwarded-For",
    "Forwarded",
    "CloudFront-Viewer-Address",
    "CloudFront-Viewer-Country",
    "CloudFront-Viewer-Latitude",
    "CloudFront-Viewer-Longitude",
    "x-forwarded-for",
    "forwarded",
    "Host",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void
make_sa(struct sockaddr_storage *ss, const char *text)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
        s->sin6_family = AF_INET6;
        CHECK(inet_pton(AF_INET6, text, &s->sin6_addr) == 1);
        s->sin6_port = htons(4321);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        s->sin_family = AF_INET;
        CHECK(inet_pton(AF_INET, text, &s->sin_addr) == 1);
        s->sin_port = htons(4321);
    }
}

/* An address we hand out is IPv4, or IPv6 that is not IPv4-mapped. */
static void
check_addr(const struct sockaddr_storage *ss)
{
    CHECK(ss->ss_family == AF_INET || ss->ss_family == AF_INET6);
    if (ss->ss_family == AF_INET6)
        CHECK(memcmp(((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr, v4_mapped, 12) != 0);
}

static void
check_resolve(const struct client_ip_cfg *cfg, const char *peer_text, const struct h1_header *h,
              size_t n)
{
    struct sockaddr_storage peer, out, again;

    make_sa(&peer, peer_text);
    int rc = client_ip_resolve(cfg, (struct sockaddr *)&peer, h, n, &out);
    CHECK(rc >= -1 && rc < CLIENT_IP_MAX_SOURCES);
    if (rc < 0) {
        CHECK(memcmp(&out, &peer, sizeof(out)) == 0);
    } else {
        bool configured = false;
        for (size_t s = 0; s < cfg->nsources; s++)
            configured = configured || cfg->sources[s] == rc;
        CHECK(configured);
        check_addr(&out);
    }
    if (!client_ip_is_trusted(cfg->nets, cfg->nnets, (struct sockaddr *)&peer))
        CHECK(rc == -1);
    CHECK(client_ip_resolve(cfg, (struct sockaddr *)&peer, h, n, &again) == rc);
    CHECK(memcmp(&out, &again, sizeof(out)) == 0);
}

static void
check_net(const char *text)
{
    struct client_ip_net net, back;
    struct sockaddr_storage ss;
    char buf[INET6_ADDRSTRLEN + 8];

    if (client_ip_parse_net(text, &net) != 0)
        return;
    CHECK(net.family == AF_INET || net.family == AF_INET6);
    CHECK(net.prefix <= (net.family == AF_INET ? 32 : 128));
    /* The network holds its own address... */
    memset(&ss, 0, sizeof(ss));
    if (net.family == AF_INET) {
        ss.ss_family = AF_INET;
        memcpy(&((struct sockaddr_in *)&ss)->sin_addr, net.addr, 4);
    } else {
        ss.ss_family = AF_INET6;
        memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, net.addr, 16);
    }
    CHECK(client_ip_is_trusted(&net, 1, (struct sockaddr *)&ss) ||
          (net.family == AF_INET6 && memcmp(net.addr, v4_mapped, 12) == 0 && net.prefix < 96));
    /* ... and prints back to itself. */
    CHECK(inet_ntop(net.family, net.addr, buf, INET6_ADDRSTRLEN) != NULL);
    snprintf(buf + strlen(buf), 8, "/%u", net.prefix);
    CHECK(client_ip_parse_net(buf, &back) == 0);
    CHECK(back.prefix == net.prefix);
    if (back.family == net.family)
        CHECK(memcmp(back.addr, net.addr, net.family == AF_INET ? 4 : 16) == 0);
}

static void
check_parse_addr(const char *p, size_t len)
{
    struct sockaddr_storage ss, back;
    char buf[INET6_ADDRSTRLEN];

    if (client_ip_parse_addr(p, len, &ss) != 0)
        return;
    check_addr(&ss);
    const void *a = ss.ss_family == AF_INET
                        ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                        : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    CHECK(inet_ntop(ss.ss_family, a, buf, sizeof(buf)) != NULL);
    CHECK(client_ip_parse_addr(buf, strlen(buf), &back) == 0);
    CHECK(memcmp(&ss, &back, sizeof(ss)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct h1_header h[MAX_LINES];
    char *copies[MAX_LINES];
    size_t n = 0;

    if (size < 1)
        return 0;
    uint8_t opts = data[0];
    const char *p = (const char *)data + 1;
    size_t len = size - 1;

    /* Each line gets its own exact-size heap copy, so a read past a value is caught. */
    while (n < MAX_LINES) {
        const char *nl = memchr(p, '\n', len);
        size_t line = nl ? (size_t)(nl - p) : len;
        size_t name = line > 0 ? (uint8_t)p[0] % NNAMES : 0;
        size_t vlen = line > 0 ? line - 1 : 0;
        copies[n] = malloc(vlen ? vlen : 1);
        CHECK(copies[n] != NULL);
        if (vlen)
            memcpy(copies[n], p + 1, vlen);
        h[n].name = (struct span){names[name], strlen(names[name])};
        h[n].value = (struct span){copies[n], vlen};
        n++;
        if (nl == NULL)
            break;
        len -= line + 1;
        p = nl + 1;
    }

    /* The sources: a permutation and a count picked by the option byte. */
    static const uint8_t orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                         {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    struct client_ip_cfg cfg = {.nsources = 1 + (opts >> 4) % 3};
    memcpy(cfg.sources, orders[(opts & 0x0f) % 6], 3);

    struct client_ip_net all[2], some[3];
    CHECK(client_ip_parse_net("0.0.0.0/0", &all[0]) == 0);
    CHECK(client_ip_parse_net("::/0", &all[1]) == 0);
    CHECK(client_ip_parse_net("10.0.0.0/8", &some[0]) == 0);
    CHECK(client_ip_parse_net("2001:db8::/32", &some[1]) == 0);
    CHECK(client_ip_parse_net("::ffff:192.168.0.0/112", &some[2]) == 0);

    cfg.nets = all;
    cfg.nnets = 2;
    check_resolve(&cfg, "203.0.113.1", h, n);
    check_resolve(&cfg, "2001:db8::1", h, n);
    cfg.nets = some;
    cfg.nnets = 3;
    check_resolve(&cfg, "10.0.0.1", h, n);
    check_resolve(&cfg, "::ffff:192.168.3.4", h, n);
    check_resolve(&cfg, "203.0.113.1", h, n);

    struct geo_info g;
    memset(&g, 0, sizeof(g));
    bool filled = client_ip_cdn_location(h, n, &g);
    CHECK(filled || (g.country[0] == '\0' && !g.has_coords));
    if (g.country[0]) {
        CHECK(g.country[0] >= 'A' && g.country[0] <= 'Z');
        CHECK(g.country[1] >= 'A' && g.country[1] <= 'Z');
        CHECK(g.country[2] == '\0');
    }
    if (g.has_coords)
        CHECK(g.lat >= -90.0f && g.lat <= 90.0f && g.lon >= -180.0f && g.lon <= 180.0f);

    /* The first line's value, NUL-terminated, as a network and as an address. */
    char text[128];
    size_t tlen = h[0].value.len < sizeof(text) - 1 ? h[0].value.len : sizeof(text) - 1;
    memcpy(text, h[0].value.ptr, tlen);
    text[tlen] = '\0';
    check_net(text);
    check_parse_addr(copies[0], h[0].value.len);

    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    return 0;
}
