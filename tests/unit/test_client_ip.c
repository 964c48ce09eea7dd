/* SPDX-License-Identifier: MIT */
/* client_ip: network parsing and matching, the X-Forwarded-For / Forwarded /
 * CloudFront-Viewer-Address walks from a trusted peer, the source order, and the
 * CloudFront location headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "client_ip.h"

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_HDRS 5

/* "addr" or "addr port N" of a sockaddr, for comparisons and messages. */
static void
fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char text[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, text, sizeof(text));
        port = ntohs(s->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, text, sizeof(text));
        port = ntohs(s->sin6_port);
    }
    if (port)
        snprintf(buf, len, "%s port %u", text, port);
    else
        snprintf(buf, len, "%s", text);
}

/* A sockaddr exactly as written: IPv4-mapped IPv6 stays AF_INET6. */
static void
make_sa(struct sockaddr_storage *ss, const char *text, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
        s->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s->sin6_addr), 1);
        s->sin6_port = htons(port);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        s->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &s->sin_addr), 1);
        s->sin_port = htons(port);
    }
}

static bool
near(double a, double b)
{
    return a - b < 1e-4 && b - a < 1e-4;
}

static struct span
span_of(const char *s)
{
    return (struct span){s, strlen(s)};
}

/* ---- networks ---- */

struct net_case {
    const char *text;
    int want_rc;
    int family;
    unsigned prefix;
    const char *addr; /* the network address, as inet_ntop writes it */
};

static const struct net_case net_cases[] = {
    {"10.0.0.0/8", 0, AF_INET, 8, "10.0.0.0"},
    {"192.168.1.128/25", 0, AF_INET, 25, "192.168.1.128"},
    {"0.0.0.0/0", 0, AF_INET, 0, "0.0.0.0"},
    {"1.2.3.4/32", 0, AF_INET, 32, "1.2.3.4"},
    {"1.2.3.4", 0, AF_INET, 32, "1.2.3.4"},
    {"2001:db8::/32", 0, AF_INET6, 32, "2001:db8::"},
    {"2001:db8::1/128", 0, AF_INET6, 128, "2001:db8::1"},
    {"2001:db8::1", 0, AF_INET6, 128, "2001:db8::1"},
    {"::/0", 0, AF_INET6, 0, "::"},
    {"2001:db8::/127", 0, AF_INET6, 127, "2001:db8::"},
    {"::ffff:10.0.0.0/104", 0, AF_INET, 8, "10.0.0.0"},
    {"::ffff:1.2.3.4", 0, AF_INET, 32, "1.2.3.4"},
    {"10.0.0.1/8", -1, 0, 0, NULL},         /* host bits set */
    {"192.168.1.64/25", -1, 0, 0, NULL},    /* host bits set */
    {"10.0.0.0/0", -1, 0, 0, NULL},         /* host bits set under /0 */
    {"2001:db8::1/32", -1, 0, 0, NULL},     /* host bits set */
    {"2001:db8::1/127", -1, 0, 0, NULL},    /* the last bit is a host bit */
    {"::ffff:10.0.0.0/95", -1, 0, 0, NULL}, /* cuts into the mapping prefix */
    {"10.0.0.0/33", -1, 0, 0, NULL},
    {"2001:db8::/129", -1, 0, 0, NULL},
    {"10.0.0.0/", -1, 0, 0, NULL},
    {"10.0.0.0/08", -1, 0, 0, NULL},
    {"10.0.0.0/-1", -1, 0, 0, NULL},
    {"10.0.0.0/a", -1, 0, 0, NULL},
    {"10.0.0.0/8/8", -1, 0, 0, NULL},
    {"10.0.0.0/1000", -1, 0, 0, NULL},
    {"10.0.0.0/8 ", -1, 0, 0, NULL},
    {" 10.0.0.0/8", -1, 0, 0, NULL},
    {"10.0.0/8", -1, 0, 0, NULL},
    {"010.0.0.0/8", -1, 0, 0, NULL},
    {"/8", -1, 0, 0, NULL},
    {"", -1, 0, 0, NULL},
    {"garbage", -1, 0, 0, NULL},
    {"fe80::1%eth0/128", -1, 0, 0, NULL},
};

static void
test_parse_net(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES(net_cases); i++) {
        const struct net_case *tc = &net_cases[i];
        struct client_ip_net net;
        int rc = client_ip_parse_net(tc->text, &net);
        if (rc != tc->want_rc)
            fail_msg("\"%s\": got %d, want %d", tc->text, rc, tc->want_rc);
        if (rc != 0)
            continue;
        char text[INET6_ADDRSTRLEN];
        inet_ntop(net.family, net.addr, text, sizeof(text));
        if (net.family != tc->family || net.prefix != tc->prefix || strcmp(text, tc->addr) != 0)
            fail_msg("\"%s\": got %d %s/%u, want %d %s/%u", tc->text, net.family, text, net.prefix,
                     tc->family, tc->addr, tc->prefix);
    }
    assert_int_equal(client_ip_parse_net(NULL, &(struct client_ip_net){0}), -1);
    /* A long string is refused without reading it all. */
    char longtext[300];
    memset(longtext, '1', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = '\0';
    assert_int_equal(client_ip_parse_net(longtext, &(struct client_ip_net){0}), -1);
}

struct match_case {
    const char *nets[3];
    const char *addr;
    bool want;
};

static const struct match_case match_cases[] = {
    {{"10.0.0.0/8"}, "10.255.255.255", true},
    {{"10.0.0.0/8"}, "10.0.0.0", true},
    {{"10.0.0.0/8"}, "11.0.0.0", false},
    {{"10.0.0.0/8"}, "9.255.255.255", false},
    {{"10.0.0.0/8"}, "::ffff:10.1.2.3", true}, /* mapped: matched as IPv4 */
    {{"10.0.0.0/8"}, "::ffff:11.1.2.3", false},
    {{"10.0.0.0/8"}, "::a01:203", false}, /* IPv4-compatible is not mapped */
    {{"10.0.0.0/8"}, "2001:db8::1", false},
    {{"192.168.1.128/25"}, "192.168.1.200", true},
    {{"192.168.1.128/25"}, "192.168.1.127", false},
    {{"1.2.3.4"}, "1.2.3.4", true},
    {{"1.2.3.4"}, "1.2.3.5", false},
    {{"0.0.0.0/0"}, "203.0.113.9", true},
    {{"0.0.0.0/0"}, "2001:db8::1", false},
    {{"0.0.0.0/0"}, "::ffff:203.0.113.9", true},
    {{"::/0"}, "2001:db8::1", true},
    {{"::/0"}, "1.2.3.4", false},
    {{"::/0"}, "::ffff:1.2.3.4", false}, /* mapped is IPv4: ::/0 does not cover it */
    {{"2001:db8::/32"}, "2001:db8:ffff::1", true},
    {{"2001:db8::/32"}, "2001:db9::", false},
    {{"2001:db8::/32"}, "10.0.0.1", false},
    {{"2001:db8::/127"}, "2001:db8::1", true},
    {{"2001:db8::/127"}, "2001:db8::2", false},
    {{"::ffff:10.0.0.0/104"}, "10.9.9.9", true},
    {{"10.0.0.0/8", "2001:db8::/32", "172.16.0.0/12"}, "172.31.255.255", true},
    {{"10.0.0.0/8", "2001:db8::/32", "172.16.0.0/12"}, "172.32.0.0", false},
    {{"10.0.0.0/8", "2001:db8::/32", "172.16.0.0/12"}, "2001:db8::5", true},
    {{NULL}, "10.0.0.1", false}, /* no networks: nothing trusted */
};

static void
test_is_trusted(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES(match_cases); i++) {
        const struct match_case *tc = &match_cases[i];
        struct client_ip_net nets[3];
        size_t n = 0;
        while (n < 3 && tc->nets[n]) {
            assert_int_equal(client_ip_parse_net(tc->nets[n], &nets[n]), 0);
            n++;
        }
        struct sockaddr_storage ss;
        make_sa(&ss, tc->addr, 80);
        bool got = client_ip_is_trusted(nets, n, (struct sockaddr *)&ss);
        if (got != tc->want)
            fail_msg("%s in %s...: got %d, want %d", tc->addr, tc->nets[0] ? tc->nets[0] : "{}",
                     got, tc->want);
    }
    /* Neither IPv4 nor IPv6: never trusted. */
    struct client_ip_net any;
    assert_int_equal(client_ip_parse_net("0.0.0.0/0", &any), 0);
    struct sockaddr_storage unix_ss = {.ss_family = AF_UNIX};
    assert_false(client_ip_is_trusted(&any, 1, (struct sockaddr *)&unix_ss));
    assert_false(client_ip_is_trusted(&any, 1, NULL));
}

struct addr_case {
    const char *text;
    int want_rc;
    const char *want; /* as fmt_addr writes it */
};

static const struct addr_case addr_cases[] = {
    {"1.2.3.4", 0, "1.2.3.4"},
    {"2001:db8::1", 0, "2001:db8::1"},
    {"::ffff:1.2.3.4", 0, "1.2.3.4"},
    {"::1", 0, "::1"},
    {"", -1, NULL},
    {"1.2.3.4 ", -1, NULL},
    {" 1.2.3.4", -1, NULL},
    {"[::1]", -1, NULL},
    {"1.2.3.4:80", -1, NULL},
    {"1.2.3", -1, NULL},
    {"01.2.3.4", -1, NULL},
    {"1.2.3.4.5", -1, NULL},
    {"fe80::1%eth0", -1, NULL},
    {"unknown", -1, NULL},
    {"0000:0000:0000:0000:0000:ffff:255.255.255.255x", -1, NULL}, /* 46 bytes */
};

static void
test_parse_addr(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES(addr_cases); i++) {
        const struct addr_case *tc = &addr_cases[i];
        struct sockaddr_storage ss;
        int rc = client_ip_parse_addr(tc->text, strlen(tc->text), &ss);
        if (rc != tc->want_rc)
            fail_msg("\"%s\": got %d, want %d", tc->text, rc, tc->want_rc);
        if (rc == 0) {
            char got[80];
            fmt_addr(&ss, got, sizeof(got));
            if (strcmp(got, tc->want) != 0)
                fail_msg("\"%s\": got %s, want %s", tc->text, got, tc->want);
        }
    }
    /* Bytes after the length are not read; a NUL inside is not an end. */
    struct sockaddr_storage ss;
    assert_int_equal(client_ip_parse_addr("1.2.3.4junk", 7, &ss), 0);
    assert_int_equal(client_ip_parse_addr("1.2.3.4\0junk", 12, &ss), -1);
    assert_int_equal(client_ip_parse_addr("1.2.3.4\0", 8, &ss), -1);
}

/* ---- resolve ---- */

#define XFF CLIENT_IP_XFF
#define FWD CLIENT_IP_FORWARDED
#define CFV CLIENT_IP_CF_VIEWER
#define PEER (-1)

struct resolve_case {
    const char *name;
    uint8_t sources[3];
    size_t nsources;
    const char *peer;
    const char *hdrs[MAX_HDRS][2]; /* name, value */
    int want_src;                  /* enum client_ip_source, or PEER */
    const char *want;              /* as fmt_addr writes it; NULL: the peer */
};

/* Trusted: 10.0.0.0/8, 2001:db8:ffff::/48, 192.168.1.1. Peers carry port 9999. */
static const struct resolve_case resolve_cases[] = {
    /* X-Forwarded-For */
    {"xff single", {XFF}, 1, "10.0.0.1", {{"X-Forwarded-For", "203.0.113.7"}}, XFF, "203.0.113.7"},
    {"xff skips trusted hops from the right",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.1.1.1, 192.168.1.1"}},
     XFF,
     "203.0.113.7"},
    {"xff all trusted: leftmost",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "10.0.0.5, 192.168.1.1, 10.0.0.6"}},
     XFF,
     "10.0.0.5"},
    {"xff garbage right of the client: unusable",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "198.51.100.1, garbage, 10.0.0.6"}},
     PEER,
     NULL},
    {"xff garbage left of the client is never read",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "garbage, 203.0.113.7, 10.0.0.6"}},
     XFF,
     "203.0.113.7"},
    {"xff garbage leftmost, rest trusted",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "garbage, 10.0.0.6"}},
     PEER,
     NULL},
    {"xff unknown", {XFF}, 1, "10.0.0.1", {{"X-Forwarded-For", "unknown"}}, PEER, NULL},
    {"xff ipv4:port",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "203.0.113.7:5555"}},
     XFF,
     "203.0.113.7 port 5555"},
    {"xff [v6]:port",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "[2001:db8::7]:443, 10.0.0.2:80"}},
     XFF,
     "2001:db8::7 port 443"},
    {"xff [v6]", {XFF}, 1, "10.0.0.1", {{"X-Forwarded-For", "[2001:db8::7]"}}, XFF, "2001:db8::7"},
    {"xff bare v6", {XFF}, 1, "10.0.0.1", {{"X-Forwarded-For", "2001:db8::7"}}, XFF, "2001:db8::7"},
    {"xff trusted v6 hop",
     {XFF},
     1,
     "2001:db8:ffff::1",
     {{"X-Forwarded-For", "2001:db8::7, 2001:db8:ffff::9"}},
     XFF,
     "2001:db8::7"},
    {"xff mapped trusted hop, mapped client unmapped",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "::ffff:203.0.113.8, ::ffff:10.0.0.9"}},
     XFF,
     "203.0.113.8"},
    {"xff whitespace",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "  203.0.113.7 \t,\t10.0.0.2 "}},
     XFF,
     "203.0.113.7"},
    {"xff several lines form one list",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "203.0.113.7"},
      {"Host", "example.com"},
      {"x-forwarded-for", "198.51.100.9, 10.0.0.3"}},
     XFF,
     "198.51.100.9"},
    {"xff later line all trusted: earlier line's client",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "203.0.113.7"}, {"X-FORWARDED-FOR", "10.0.0.3, 10.0.0.4"}},
     XFF,
     "203.0.113.7"},
    {"xff garbage in a later line",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "203.0.113.7"}, {"X-Forwarded-For", "bogus"}},
     PEER,
     NULL},
    {"xff empty value", {XFF}, 1, "10.0.0.1", {{"X-Forwarded-For", ""}}, PEER, NULL},
    {"xff empty elements ignored",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", " , ,203.0.113.7,, "}},
     XFF,
     "203.0.113.7"},
    {"xff empty line then a value",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", ""}, {"X-Forwarded-For", "203.0.113.7"}},
     XFF,
     "203.0.113.7"},
    {"xff port 65536",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "203.0.113.7:65536"}},
     PEER,
     NULL},
    {"xff empty port", {XFF}, 1, "10.0.0.1", {{"X-Forwarded-For", "203.0.113.7:"}}, PEER, NULL},
    {"xff brackets around ipv4",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "[203.0.113.7]:80"}},
     PEER,
     NULL},
    {"xff unclosed bracket",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "[2001:db8::7"}},
     PEER,
     NULL},
    {"xff zone id", {XFF}, 1, "10.0.0.1", {{"X-Forwarded-For", "fe80::1%eth0"}}, PEER, NULL},
    {"xff leading zero octet",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "010.0.0.1"}},
     PEER,
     NULL},
    {"xff space inside an element",
     {XFF},
     1,
     "10.0.0.1",
     {{"X-Forwarded-For", "203.0.113.7 198.51.100.1"}},
     PEER,
     NULL},
    {"xff absent", {XFF}, 1, "10.0.0.1", {{"Host", "a"}}, PEER, NULL},

    /* Forwarded */
    {"fwd rfc example",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"}},
     FWD,
     "192.0.2.60"},
    {"fwd quoted v6 and port",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "For=\"[2001:db8:cafe::17]:4711\""}},
     FWD,
     "2001:db8:cafe::17 port 4711"},
    {"fwd quoted v4 and port",
     {FWD},
     1,
     "10.0.0.1",
     {{"forwarded", "proto=https;FOR=\"192.0.2.60:8080\""}},
     FWD,
     "192.0.2.60 port 8080"},
    {"fwd obfuscated port",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=\"192.0.2.60:_abc\""}},
     FWD,
     "192.0.2.60"},
    {"fwd unknown", {FWD}, 1, "10.0.0.1", {{"Forwarded", "for=unknown"}}, PEER, NULL},
    {"fwd obfuscated node", {FWD}, 1, "10.0.0.1", {{"Forwarded", "for=_hidden"}}, PEER, NULL},
    {"fwd obfuscated node with port",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=\"_hidden:1234\""}},
     PEER,
     NULL},
    {"fwd elements, trusted skipped",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=192.0.2.43, for=198.51.100.17;by=10.0.0.1, for=10.0.0.7"}},
     FWD,
     "198.51.100.17"},
    {"fwd unknown right of the client",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=192.0.2.43, for=unknown, for=10.0.0.7"}},
     PEER,
     NULL},
    {"fwd unknown left of the client",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=unknown, for=192.0.2.43, for=10.0.0.7"}},
     FWD,
     "192.0.2.43"},
    {"fwd all trusted: leftmost",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=10.0.0.3, for=\"[2001:db8:ffff::2]\""}},
     FWD,
     "10.0.0.3"},
    {"fwd several lines",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=192.0.2.1"}, {"Forwarded", "for=198.51.100.2, for=10.0.0.1"}},
     FWD,
     "198.51.100.2"},
    {"fwd comma inside a quoted value",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=192.0.2.5;host=\"a, for=10.0.0.1\""}},
     FWD,
     "192.0.2.5"},
    {"fwd quoted-pair",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=\"192.0.2.\\61\""}},
     FWD,
     "192.0.2.61"},
    {"fwd empty elements and OWS",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", " , for=192.0.2.9 ; proto=http ,, "}},
     FWD,
     "192.0.2.9"},
    {"fwd unquoted v6", {FWD}, 1, "10.0.0.1", {{"Forwarded", "for=[2001:db8::1]"}}, PEER, NULL},
    {"fwd v6 without brackets",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=\"2001:db8::1\""}},
     PEER,
     NULL},
    {"fwd unterminated quote",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=\"[2001:db8::1]"}},
     PEER,
     NULL},
    {"fwd broken line, good line after it",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=\"x"}, {"Forwarded", "for=192.0.2.77, for=10.0.0.9"}},
     FWD,
     "192.0.2.77"},
    {"fwd element without for", {FWD}, 1, "10.0.0.1", {{"Forwarded", "by=1.2.3.4"}}, PEER, NULL},
    {"fwd for twice",
     {FWD},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=192.0.2.1;for=192.0.2.2"}},
     PEER,
     NULL},
    {"fwd space around =", {FWD}, 1, "10.0.0.1", {{"Forwarded", "for = 192.0.2.1"}}, PEER, NULL},
    {"fwd empty value", {FWD}, 1, "10.0.0.1", {{"Forwarded", "for="}}, PEER, NULL},
    {"fwd bare token", {FWD}, 1, "10.0.0.1", {{"Forwarded", "192.0.2.1"}}, PEER, NULL},

    /* CloudFront-Viewer-Address */
    {"cf v4",
     {CFV},
     1,
     "10.0.0.1",
     {{"CloudFront-Viewer-Address", "203.0.113.7:5555"}},
     CFV,
     "203.0.113.7 port 5555"},
    {"cf v6 split at the last colon",
     {CFV},
     1,
     "10.0.0.1",
     {{"cloudfront-viewer-address", "2001:db8::1:443"}},
     CFV,
     "2001:db8::1 port 443"},
    {"cf v6 without port",
     {CFV},
     1,
     "10.0.0.1",
     {{"CloudFront-Viewer-Address", "2001:db8::1"}},
     PEER,
     NULL},
    {"cf v4 without port",
     {CFV},
     1,
     "10.0.0.1",
     {{"CloudFront-Viewer-Address", "203.0.113.7"}},
     PEER,
     NULL},
    {"cf bracketed",
     {CFV},
     1,
     "10.0.0.1",
     {{"CloudFront-Viewer-Address", "[2001:db8::1]:443"}},
     PEER,
     NULL},
    {"cf garbage", {CFV}, 1, "10.0.0.1", {{"CloudFront-Viewer-Address", "garbage:80"}}, PEER, NULL},
    {"cf two lines",
     {CFV},
     1,
     "10.0.0.1",
     {{"CloudFront-Viewer-Address", "203.0.113.7:1"},
      {"CloudFront-Viewer-Address", "203.0.113.8:1"}},
     PEER,
     NULL},

    /* Trust and order */
    {"untrusted peer: headers ignored",
     {XFF, FWD, CFV},
     3,
     "203.0.113.50",
     {{"X-Forwarded-For", "198.51.100.1"},
      {"Forwarded", "for=198.51.100.2"},
      {"CloudFront-Viewer-Address", "198.51.100.3:1"}},
     PEER,
     NULL},
    {"untrusted v6 peer",
     {XFF},
     1,
     "2001:db8::50",
     {{"X-Forwarded-For", "198.51.100.1"}},
     PEER,
     NULL},
    {"mapped peer trusted as ipv4",
     {XFF},
     1,
     "::ffff:10.0.0.1",
     {{"X-Forwarded-For", "198.51.100.1"}},
     XFF,
     "198.51.100.1"},
    {"order: xff first",
     {XFF, FWD},
     2,
     "10.0.0.1",
     {{"Forwarded", "for=198.51.100.2"}, {"X-Forwarded-For", "198.51.100.1"}},
     XFF,
     "198.51.100.1"},
    {"order: forwarded first",
     {FWD, XFF},
     2,
     "10.0.0.1",
     {{"Forwarded", "for=198.51.100.2"}, {"X-Forwarded-For", "198.51.100.1"}},
     FWD,
     "198.51.100.2"},
    {"order: malformed first source falls through",
     {FWD, XFF},
     2,
     "10.0.0.1",
     {{"Forwarded", "for=unknown"}, {"X-Forwarded-For", "198.51.100.1"}},
     XFF,
     "198.51.100.1"},
    {"order: absent first source falls through",
     {CFV, XFF},
     2,
     "10.0.0.1",
     {{"X-Forwarded-For", "198.51.100.1"}},
     XFF,
     "198.51.100.1"},
    {"order: cf before xff",
     {CFV, XFF},
     2,
     "10.0.0.1",
     {{"X-Forwarded-For", "198.51.100.1"}, {"CloudFront-Viewer-Address", "198.51.100.3:7"}},
     CFV,
     "198.51.100.3 port 7"},
    {"unconfigured source ignored",
     {XFF},
     1,
     "10.0.0.1",
     {{"Forwarded", "for=198.51.100.2"}},
     PEER,
     NULL},
    {"no sources", {XFF}, 0, "10.0.0.1", {{"X-Forwarded-For", "198.51.100.1"}}, PEER, NULL},
    {"every source bad: peer",
     {XFF, FWD, CFV},
     3,
     "10.0.0.1",
     {{"X-Forwarded-For", "x"}, {"Forwarded", "for=_y"}, {"CloudFront-Viewer-Address", "z"}},
     PEER,
     NULL},
};

static struct client_ip_net trusted_nets[3];

static void
init_trusted(void)
{
    assert_int_equal(client_ip_parse_net("10.0.0.0/8", &trusted_nets[0]), 0);
    assert_int_equal(client_ip_parse_net("2001:db8:ffff::/48", &trusted_nets[1]), 0);
    assert_int_equal(client_ip_parse_net("192.168.1.1", &trusted_nets[2]), 0);
}

static void
test_resolve(void **state)
{
    (void)state;
    init_trusted();
    for (size_t i = 0; i < NCASES(resolve_cases); i++) {
        const struct resolve_case *tc = &resolve_cases[i];
        struct client_ip_cfg cfg = {.nets = trusted_nets, .nnets = 3, .nsources = tc->nsources};
        memcpy(cfg.sources, tc->sources, sizeof(cfg.sources));
        struct h1_header hdrs[MAX_HDRS];
        size_t n = 0;
        while (n < MAX_HDRS && tc->hdrs[n][0]) {
            hdrs[n].name = span_of(tc->hdrs[n][0]);
            hdrs[n].value = span_of(tc->hdrs[n][1]);
            n++;
        }
        struct sockaddr_storage peer, out;
        make_sa(&peer, tc->peer, 9999);
        memset(&out, 0xa5, sizeof(out));
        int src = client_ip_resolve(&cfg, (struct sockaddr *)&peer, hdrs, n, &out);
        char got[80], want[80];
        fmt_addr(&out, got, sizeof(got));
        if (tc->want)
            snprintf(want, sizeof(want), "%s", tc->want);
        else
            fmt_addr(&peer, want, sizeof(want));
        if (src != tc->want_src || strcmp(got, want) != 0)
            fail_msg("%s: got source %d %s, want %d %s", tc->name, src, got, tc->want_src, want);
        if (src == PEER && memcmp(&out, &peer, sizeof(out)) != 0)
            fail_msg("%s: the peer copy differs from the peer", tc->name);
    }
}

/* Hostile shapes: long lists, NULs, a value just over the copy buffers. */
static void
test_resolve_hostile(void **state)
{
    (void)state;
    init_trusted();
    struct client_ip_cfg cfg = {
        .nets = trusted_nets, .nnets = 3, .sources = {XFF, FWD, CFV}, .nsources = 3};
    struct sockaddr_storage peer, out;
    make_sa(&peer, "10.0.0.1", 1);
    static char big[64 * 1024];
    struct h1_header h;
    char got[80];

    /* Thousands of trusted hops: the leftmost is the client. */
    size_t len = 0;
    len += (size_t)snprintf(big, sizeof(big), "203.0.113.1");
    while (len + 16 < sizeof(big))
        len += (size_t)snprintf(big + len, sizeof(big) - len, ", 10.1.2.3");
    h = (struct h1_header){SPAN_LIT("X-Forwarded-For"), {big, len}};
    assert_int_equal(client_ip_resolve(&cfg, (struct sockaddr *)&peer, &h, 1, &out), XFF);
    fmt_addr(&out, got, sizeof(got));
    assert_string_equal(got, "203.0.113.1");

    /* Nothing but commas. */
    memset(big, ',', sizeof(big));
    h.value = (struct span){big, sizeof(big)};
    assert_int_equal(client_ip_resolve(&cfg, (struct sockaddr *)&peer, &h, 1, &out), PEER);
    h.name = SPAN_LIT("Forwarded");
    assert_int_equal(client_ip_resolve(&cfg, (struct sockaddr *)&peer, &h, 1, &out), PEER);

    /* A huge quoted for= value is not copied past its buffer. */
    memset(big, 'a', sizeof(big));
    memcpy(big, "for=\"", 5);
    big[sizeof(big) - 1] = '"';
    assert_int_equal(client_ip_resolve(&cfg, (struct sockaddr *)&peer, &h, 1, &out), PEER);

    /* An embedded NUL never ends a value early. */
    static const char nul_xff[] = "203.0.113.7\0, 10.0.0.2";
    h = (struct h1_header){SPAN_LIT("X-Forwarded-For"), {nul_xff, sizeof(nul_xff) - 1}};
    assert_int_equal(client_ip_resolve(&cfg, (struct sockaddr *)&peer, &h, 1, &out), PEER);
    static const char nul_fwd[] = "for=\"203.0.113.7\0\"";
    h = (struct h1_header){SPAN_LIT("Forwarded"), {nul_fwd, sizeof(nul_fwd) - 1}};
    assert_int_equal(client_ip_resolve(&cfg, (struct sockaddr *)&peer, &h, 1, &out), PEER);
    static const char nul_cf[] = "203.0.113.7\0:80";
    h = (struct h1_header){SPAN_LIT("CloudFront-Viewer-Address"), {nul_cf, sizeof(nul_cf) - 1}};
    assert_int_equal(client_ip_resolve(&cfg, (struct sockaddr *)&peer, &h, 1, &out), PEER);

    /* No cfg, no headers. */
    assert_int_equal(client_ip_resolve(NULL, (struct sockaddr *)&peer, NULL, 0, &out), PEER);
    assert_int_equal(client_ip_resolve(&cfg, (struct sockaddr *)&peer, NULL, 0, &out), PEER);
    assert_memory_equal(&out, &peer, sizeof(struct sockaddr_in));
}

/* ---- CloudFront location ---- */

struct cdn_case {
    const char *name;
    const char *hdrs[4][2];
    bool want_filled;
    const char *country; /* what country[] holds afterwards ("" untouched) */
    bool has_coords;
    double lat, lon;
};

static const struct cdn_case cdn_cases[] = {
    {"all three",
     {{"CloudFront-Viewer-Country", "US"},
      {"CloudFront-Viewer-Latitude", "47.60620"},
      {"CloudFront-Viewer-Longitude", "-122.33210"}},
     true,
     "US",
     true,
     47.6062,
     -122.3321},
    {"lower case names and value", {{"cloudfront-viewer-country", "gb"}}, true, "GB", false, 0, 0},
    {"XX is unknown", {{"CloudFront-Viewer-Country", "XX"}}, false, "", false, 0, 0},
    {"xx is unknown", {{"CloudFront-Viewer-Country", "xx"}}, false, "", false, 0, 0},
    {"three letters", {{"CloudFront-Viewer-Country", "USA"}}, false, "", false, 0, 0},
    {"a digit", {{"CloudFront-Viewer-Country", "T1"}}, false, "", false, 0, 0},
    {"empty country", {{"CloudFront-Viewer-Country", ""}}, false, "", false, 0, 0},
    {"latitude only", {{"CloudFront-Viewer-Latitude", "47.6"}}, false, "", false, 0, 0},
    {"longitude only", {{"CloudFront-Viewer-Longitude", "-122.3"}}, false, "", false, 0, 0},
    {"integers and bounds",
     {{"CloudFront-Viewer-Latitude", "-90"}, {"CloudFront-Viewer-Longitude", "180"}},
     true,
     "",
     true,
     -90,
     180},
    {"latitude 90.5",
     {{"CloudFront-Viewer-Latitude", "90.5"}, {"CloudFront-Viewer-Longitude", "0"}},
     false,
     "",
     false,
     0,
     0},
    {"longitude -180.001",
     {{"CloudFront-Viewer-Latitude", "0"}, {"CloudFront-Viewer-Longitude", "-180.001"}},
     false,
     "",
     false,
     0,
     0},
    {"latitude 1000",
     {{"CloudFront-Viewer-Latitude", "1000"}, {"CloudFront-Viewer-Longitude", "0"}},
     false,
     "",
     false,
     0,
     0},
    {"exponent",
     {{"CloudFront-Viewer-Latitude", "1e1"}, {"CloudFront-Viewer-Longitude", "0"}},
     false,
     "",
     false,
     0,
     0},
    {"trailing dot",
     {{"CloudFront-Viewer-Latitude", "47."}, {"CloudFront-Viewer-Longitude", "0"}},
     false,
     "",
     false,
     0,
     0},
    {"leading dot",
     {{"CloudFront-Viewer-Latitude", ".5"}, {"CloudFront-Viewer-Longitude", "0"}},
     false,
     "",
     false,
     0,
     0},
    {"comma decimal",
     {{"CloudFront-Viewer-Latitude", "47,6"}, {"CloudFront-Viewer-Longitude", "0"}},
     false,
     "",
     false,
     0,
     0},
    {"trailing junk",
     {{"CloudFront-Viewer-Latitude", "47.6x"}, {"CloudFront-Viewer-Longitude", "0"}},
     false,
     "",
     false,
     0,
     0},
    {"overlong",
     {{"CloudFront-Viewer-Latitude", "47.606200000000000000000001"},
      {"CloudFront-Viewer-Longitude", "0"}},
     false,
     "",
     false,
     0,
     0},
    {"nan",
     {{"CloudFront-Viewer-Latitude", "nan"}, {"CloudFront-Viewer-Longitude", "0"}},
     false,
     "",
     false,
     0,
     0},
    {"bad coords, good country",
     {{"CloudFront-Viewer-Country", "de"},
      {"CloudFront-Viewer-Latitude", "x"},
      {"CloudFront-Viewer-Longitude", "0"}},
     true,
     "DE",
     false,
     0,
     0},
    {"none", {{"Host", "a"}}, false, "", false, 0, 0},
};

static void
test_cdn_location(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES(cdn_cases); i++) {
        const struct cdn_case *tc = &cdn_cases[i];
        struct h1_header hdrs[4];
        size_t n = 0;
        while (n < 4 && tc->hdrs[n][0]) {
            hdrs[n].name = span_of(tc->hdrs[n][0]);
            hdrs[n].value = span_of(tc->hdrs[n][1]);
            n++;
        }
        struct geo_info g = {.continent = "EU"};
        bool filled = client_ip_cdn_location(hdrs, n, &g);
        if (filled != tc->want_filled || strcmp(g.country, tc->country) != 0 ||
            g.has_coords != tc->has_coords)
            fail_msg("%s: filled %d country \"%s\" coords %d; want %d \"%s\" %d", tc->name, filled,
                     g.country, g.has_coords, tc->want_filled, tc->country, tc->has_coords);
        if (tc->has_coords && (!near(g.lat, tc->lat) || !near(g.lon, tc->lon)))
            fail_msg("%s: %f,%f want %f,%f", tc->name, g.lat, g.lon, tc->lat, tc->lon);
        if (strcmp(g.continent, "EU") != 0)
            fail_msg("%s: continent touched", tc->name);
    }

    /* A NUL inside a coordinate is not an end. */
    static const char lat[] = "47.6\0";
    struct h1_header h[2] = {
        {SPAN_LIT("CloudFront-Viewer-Latitude"), {lat, sizeof(lat) - 1}},
        {SPAN_LIT("CloudFront-Viewer-Longitude"), SPAN_LIT("1")},
    };
    struct geo_info g = {0};
    assert_false(client_ip_cdn_location(h, 2, &g));
    h[0].value.len = 4;
    assert_true(client_ip_cdn_location(h, 2, &g));
    assert_true(g.has_coords);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_net),       cmocka_unit_test(test_is_trusted),
        cmocka_unit_test(test_parse_addr),      cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_resolve_hostile), cmocka_unit_test(test_cdn_location),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
