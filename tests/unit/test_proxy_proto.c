/* SPDX-License-Identifier: MIT */
/* proxy_proto_parse: v1 lines (TCP4, TCP6, UNKNOWN) and v2 blocks (PROXY, LOCAL, UNSPEC,
 * AF_UNIX, TLVs), every prefix of a good header partial, the grammar's violations
 * invalid, and bytes after the header left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxy_proto.h"

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

/* "addr:port" of a parsed sockaddr, for comparisons. */
static void
fmt_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char text[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, text, sizeof(text));
        snprintf(buf, len, "%s:%u", text, ntohs(s->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, text, sizeof(text));
        snprintf(buf, len, "[%s]:%u", text, ntohs(s->sin6_port));
    } else {
        snprintf(buf, len, "family %d", ss->ss_family);
    }
}

/* Every prefix of a good header is partial; the header alone and the header with bytes
 * after it give the same length and result. */
static void
check_good(const char *name, const char *p, size_t hlen, const struct proxy_proto_result *want)
{
    struct proxy_proto_result r;
    char buf[1024];

    assert_true(hlen + 32 <= sizeof(buf));
    for (size_t k = 0; k < hlen; k++) {
        int rc = proxy_proto_parse(p, k, &r);
        if (rc != PROXY_PROTO_PARTIAL)
            fail_msg("%s: prefix of %zu/%zu bytes: got %d, want PARTIAL", name, k, hlen, rc);
    }
    memcpy(buf, p, hlen);
    memcpy(buf + hlen, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27);
    for (size_t extra = 0; extra <= 27; extra += 27) {
        int rc = proxy_proto_parse(buf, hlen + extra, &r);
        if (rc != (int)hlen)
            fail_msg("%s (+%zu bytes after): got %d, want %zu", name, extra, rc, hlen);
        if (r.version != want->version || r.has_addr != want->has_addr)
            fail_msg("%s: version %d has_addr %d, want %d %d", name, r.version, r.has_addr,
                     want->version, want->has_addr);
        if (want->has_addr) {
            char got_s[80], got_d[80], want_s[80], want_d[80];
            fmt_addr(&r.src, got_s, sizeof(got_s));
            fmt_addr(&r.dst, got_d, sizeof(got_d));
            fmt_addr(&want->src, want_s, sizeof(want_s));
            fmt_addr(&want->dst, want_d, sizeof(want_d));
            if (strcmp(got_s, want_s) != 0 || strcmp(got_d, want_d) != 0)
                fail_msg("%s: %s -> %s, want %s -> %s", name, got_s, got_d, want_s, want_d);
        }
    }
}

static void
set_addr(struct sockaddr_storage *ss, const char *text, unsigned port)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
        s->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s->sin6_addr), 1);
        s->sin6_port = htons((uint16_t)port);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        s->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &s->sin_addr), 1);
        s->sin_port = htons((uint16_t)port);
    }
}

/* ---- version 1 ---- */

struct v1_good {
    const char *line;
    const char *src; /* NULL: has_addr false */
    unsigned sport;
    const char *dst;
    unsigned dport;
};

#define MAX6 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

static const struct v1_good v1_good_cases[] = {
    {"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", "192.168.0.1", 56324, "192.168.0.11",
     443},
    {"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", "255.255.255.255", 65535,
     "255.255.255.255", 65535},
    {"PROXY TCP4 0.0.0.0 1.2.3.4 0 0\r\n", "0.0.0.0", 0, "1.2.3.4", 0},
    {"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", "2001:db8::1", 1, "2001:db8::2", 65535},
    {"PROXY TCP6 " MAX6 " " MAX6 " 65535 65535\r\n", MAX6, 65535, MAX6, 65535},
    {"PROXY TCP6 ::ffff:192.0.2.1 ::1 10 20\r\n", "::ffff:192.0.2.1", 10, "::1", 20},
    {"PROXY TCP6 2001:DB8::A 2001:db8::b 80 8080\r\n", "2001:db8::a", 80, "2001:db8::b", 8080},
    {"PROXY UNKNOWN\r\n", NULL, 0, NULL, 0},
    {"PROXY UNKNOWN 192.168.0.1 192.168.0.11 56324 443\r\n", NULL, 0, NULL, 0},
    /* The longest line the spec allows: 107 bytes with the CRLF. */
    {"PROXY UNKNOWN " MAX6 " " MAX6 " 65535 65535\r\n", NULL, 0, NULL, 0},
};

static void
test_v1_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES(v1_good_cases); i++) {
        const struct v1_good *tc = &v1_good_cases[i];
        struct proxy_proto_result want = {.version = 1, .has_addr = tc->src != NULL};
        if (tc->src) {
            set_addr(&want.src, tc->src, tc->sport);
            set_addr(&want.dst, tc->dst, tc->dport);
        }
        check_good(tc->line, tc->line, strlen(tc->line), &want);
    }
    /* The longest UNKNOWN line really is the limit. */
    assert_int_equal(strlen(v1_good_cases[NCASES(v1_good_cases) - 1].line), 107);
}

struct v1_bad {
    const char *name;
    const char *in;
    size_t len; /* 0: strlen */
    int want;   /* INVALID, or PARTIAL for a prefix that may still become good */
};

static const struct v1_bad v1_bad_cases[] = {
    {"lower case proxy", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"a plain request", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, PROXY_PROTO_INVALID},
    {"first byte of a request", "G", 0, PROXY_PROTO_INVALID},
    {"PROX then junk", "PROXz", 0, PROXY_PROTO_INVALID},
    {"no protocol", "PROXY\r\n", 0, PROXY_PROTO_INVALID},
    {"bad protocol", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"lower case protocol", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"octet 256", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"three octets", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"leading zero octet", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"overlong address seen early", "PROXY TCP4 1.2.3.4.5.6.7.8.9", 0, PROXY_PROTO_INVALID},
    {"port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 0, PROXY_PROTO_INVALID},
    {"port 65536 seen early", "PROXY TCP4 1.2.3.4 5.6.7.8 65536", 0, PROXY_PROTO_INVALID},
    {"dst port 99999", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", 0, PROXY_PROTO_INVALID},
    {"port leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", 0, PROXY_PROTO_INVALID},
    {"port 00", "PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", 0, PROXY_PROTO_INVALID},
    {"negative port", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"empty port", "PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n", 0, PROXY_PROTO_INVALID},
    {"missing dst port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 0, PROXY_PROTO_INVALID},
    {"double space", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"tab for space", "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", 0, PROXY_PROTO_INVALID},
    {"bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 0, PROXY_PROTO_INVALID},
    {"CR CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r", 0, PROXY_PROTO_INVALID},
    {"missing CRLF, more to come", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2", 0, PROXY_PROTO_PARTIAL},
    /* Found by fuzz_proxy_proto: the UNKNOWN probe once ran after "TCP6 " had matched. */
    {"TCP6 then UNKNOWN", "PROXY TCP6 UNKNOWN ::1 ::2 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"TCP4 then UNKNOWN", "PROXY TCP4 UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"IPv6 in TCP4", "PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"IPv4 in TCP6", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"bad IPv6", "PROXY TCP6 2001:db8:::1 ::2 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"IPv6 zone", "PROXY TCP6 fe80::1%eth0 ::2 1 2\r\n", 0, PROXY_PROTO_INVALID},
    {"NUL in address", "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33, PROXY_PROTO_INVALID},
    {"UNKNOWN then junk", "PROXY UNKNOWNX\r\n", 0, PROXY_PROTO_INVALID},
    {"UNKNOWN bare LF", "PROXY UNKNOWN\n", 0, PROXY_PROTO_INVALID},
    {"UNKNOWN 108 bytes", "PROXY UNKNOWN x" MAX6 " " MAX6 " 65535 65535\r\n", 0,
     PROXY_PROTO_INVALID},
    {"UNKNOWN no CRLF in 107 bytes", "PROXY UNKNOWN " MAX6 " " MAX6 " 65535 65535xx", 0,
     PROXY_PROTO_INVALID},
    {"UNKNOWN CR at byte 107", "PROXY UNKNOWN " MAX6 " " MAX6 " 65535 65535x\r\n", 0,
     PROXY_PROTO_INVALID},
    {"empty input", "", 0, PROXY_PROTO_PARTIAL},
};

static void
test_v1_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES(v1_bad_cases); i++) {
        const struct v1_bad *tc = &v1_bad_cases[i];
        struct proxy_proto_result r;
        size_t len = tc->len ? tc->len : strlen(tc->in);
        int rc = proxy_proto_parse(tc->in, len, &r);
        if (rc != tc->want)
            fail_msg("%s: got %d, want %d", tc->name, rc, tc->want);
        /* INVALID is final: more bytes never rescue it. */
        if (tc->want == PROXY_PROTO_INVALID) {
            char buf[256];
            memcpy(buf, tc->in, len);
            memcpy(buf + len, "\r\n\r\n", 4);
            if (proxy_proto_parse(buf, len + 4, &r) != PROXY_PROTO_INVALID)
                fail_msg("%s: more bytes changed INVALID", tc->name);
        }
    }
}

/* ---- version 2 ---- */

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static const uint8_t tlv_alpn_authority_noop[] = {
    0x01, 0x00, 0x02, 'h', '2',                                              /* ALPN */
    0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm', /* AUTHORITY */
    0x04, 0x00, 0x00,                                                        /* NOOP */
};
static const uint8_t tlv_aws[] = {0xea, 0x00, 0x05, 0x01, 'v', 'p', 'c', 'e'};
static const uint8_t tlv_overrun[] = {0x01, 0x00, 0x0a, 'h', '2'};
static const uint8_t tlv_stub[] = {0x01, 0x00};

enum { V2_OK = 1 };

struct v2_case {
    const char *name;
    uint8_t ver_cmd, fam;
    size_t addr_len; /* address block bytes written */
    const uint8_t *tlv;
    size_t tlv_len;
    int len_delta; /* added to the declared length */
    int want;      /* V2_OK (length 16 + addr + tlv), or INVALID */
    bool has_addr;
};

static const struct v2_case v2_cases[] = {
    {"PROXY TCP4 + TLVs", 0x21, 0x11, 12, tlv_alpn_authority_noop, sizeof(tlv_alpn_authority_noop),
     0, V2_OK, true},
    {"PROXY TCP4 bare", 0x21, 0x11, 12, NULL, 0, 0, V2_OK, true},
    {"PROXY TCP6 + AWS TLV", 0x21, 0x21, 36, tlv_aws, sizeof(tlv_aws), 0, V2_OK, true},
    {"PROXY TCP6 bare", 0x21, 0x21, 36, NULL, 0, 0, V2_OK, true},
    {"LOCAL UNSPEC", 0x20, 0x00, 0, NULL, 0, 0, V2_OK, false},
    {"LOCAL with TCP4 block", 0x20, 0x11, 12, NULL, 0, 0, V2_OK, false},
    {"LOCAL with odd family", 0x20, 0x77, 5, NULL, 0, 0, V2_OK, false},
    {"PROXY UNSPEC", 0x21, 0x00, 0, NULL, 0, 0, V2_OK, false},
    {"PROXY UNSPEC with bytes", 0x21, 0x00, 7, NULL, 0, 0, V2_OK, false},
    {"PROXY AF_UNIX stream", 0x21, 0x31, 216, NULL, 0, 0, V2_OK, false},
    {"TCP4 block short", 0x21, 0x11, 11, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"TCP6 block short", 0x21, 0x21, 35, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"TCP6 declared as 12", 0x21, 0x21, 12, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"UNIX block short", 0x21, 0x31, 215, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"UDP4 refused", 0x21, 0x12, 12, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"UDP6 refused", 0x21, 0x22, 36, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"unix dgram refused", 0x21, 0x32, 216, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"unknown family", 0x21, 0x41, 12, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"unknown transport", 0x21, 0x13, 12, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"INET without transport", 0x21, 0x10, 12, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"version 1 byte", 0x11, 0x11, 12, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"version 3", 0x31, 0x11, 12, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"command 2", 0x22, 0x11, 12, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"command 15", 0x2f, 0x11, 12, NULL, 0, 0, PROXY_PROTO_INVALID, false},
    {"TLV overruns", 0x21, 0x11, 12, tlv_overrun, sizeof(tlv_overrun), 0, PROXY_PROTO_INVALID,
     false},
    {"TLV header cut", 0x21, 0x11, 12, tlv_stub, sizeof(tlv_stub), 0, PROXY_PROTO_INVALID, false},
    /* Declares 5 bytes fewer than written: the cut lands inside the AWS TLV. */
    {"length cuts a TLV", 0x21, 0x21, 36, tlv_aws, sizeof(tlv_aws), -5, PROXY_PROTO_INVALID, false},
};

/* Build a v2 header into buf; returns its length (header + block). */
static size_t
v2_build(uint8_t *buf, const struct v2_case *tc)
{
    size_t blen = tc->addr_len + tc->tlv_len;
    size_t declared = (size_t)((int)blen + tc->len_delta);
    uint8_t *a = buf + 16;

    memcpy(buf, sig, 12);
    buf[12] = tc->ver_cmd;
    buf[13] = tc->fam;
    buf[14] = (uint8_t)(declared >> 8);
    buf[15] = (uint8_t)declared;
    for (size_t i = 0; i < tc->addr_len; i++)
        a[i] = (uint8_t)(0xa0 + i);
    if (tc->fam == 0x11 && tc->addr_len >= 12) {
        const uint8_t v4[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb};
        memcpy(a, v4, 12);
    } else if (tc->fam == 0x21 && tc->addr_len >= 36) {
        struct in6_addr s, d;
        inet_pton(AF_INET6, "2001:db8::1", &s);
        inet_pton(AF_INET6, "2001:db8::2", &d);
        memcpy(a, &s, 16);
        memcpy(a + 16, &d, 16);
        const uint8_t ports[4] = {0xdc, 0x04, 0x01, 0xbb};
        memcpy(a + 32, ports, 4);
    }
    if (tc->tlv_len)
        memcpy(a + tc->addr_len, tc->tlv, tc->tlv_len);
    return 16 + (size_t)((int)blen + tc->len_delta);
}

static void
test_v2_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCASES(v2_cases); i++) {
        const struct v2_case *tc = &v2_cases[i];
        uint8_t buf[600];
        size_t hlen = v2_build(buf, tc);

        if (tc->want == V2_OK) {
            struct proxy_proto_result want = {.version = 2, .has_addr = tc->has_addr};
            if (tc->fam == 0x11) {
                set_addr(&want.src, "192.0.2.1", 56324);
                set_addr(&want.dst, "198.51.100.2", 443);
            } else if (tc->fam == 0x21) {
                set_addr(&want.src, "2001:db8::1", 56324);
                set_addr(&want.dst, "2001:db8::2", 443);
            }
            check_good(tc->name, (const char *)buf, hlen, &want);
        } else {
            struct proxy_proto_result r;
            int rc = proxy_proto_parse((const char *)buf, hlen, &r);
            if (rc != tc->want)
                fail_msg("%s: got %d, want %d", tc->name, rc, tc->want);
            /* Whatever the first 16 bytes already condemn is refused before the rest. */
            bool head_bad = tc->fam != 0x11 && tc->fam != 0x21 && tc->fam != 0x31;
            head_bad = head_bad || (tc->ver_cmd & 0xf0) != 0x20 || (tc->ver_cmd & 0x0f) > 1;
            head_bad = head_bad || tc->addr_len < (tc->fam == 0x11   ? 12u
                                                   : tc->fam == 0x21 ? 36u
                                                                     : 216u);
            if (head_bad && proxy_proto_parse((const char *)buf, 16, &r) != tc->want)
                fail_msg("%s: not refused on its first 16 bytes", tc->name);
        }
    }
}

static void
test_v2_limits(void **state)
{
    (void)state;
    uint8_t buf[16 + 600];
    struct proxy_proto_result r;

    /* The largest block we take: 520 bytes = a TCP4 block and a 505-byte NOOP TLV. */
    memset(buf, 0, sizeof(buf));
    memcpy(buf, sig, 12);
    buf[12] = 0x21;
    buf[13] = 0x11;
    buf[14] = 520 >> 8;
    buf[15] = 520 & 0xff;
    buf[16 + 12] = 0x04;
    buf[16 + 13] = 505 >> 8;
    buf[16 + 14] = 505 & 0xff;
    assert_int_equal(proxy_proto_parse((const char *)buf, 536, &r), 536);
    assert_true(r.has_addr);
    assert_int_equal(proxy_proto_parse((const char *)buf, 535, &r), PROXY_PROTO_PARTIAL);

    /* One more is refused, on the first 16 bytes already. */
    buf[15] = 521 & 0xff;
    assert_int_equal(proxy_proto_parse((const char *)buf, 16, &r), PROXY_PROTO_INVALID);
    assert_int_equal(proxy_proto_parse((const char *)buf, sizeof(buf), &r), PROXY_PROTO_INVALID);
    buf[14] = 0xff;
    buf[15] = 0xff;
    assert_int_equal(proxy_proto_parse((const char *)buf, 16, &r), PROXY_PROTO_INVALID);
}

static void
test_v2_signature(void **state)
{
    (void)state;
    uint8_t buf[16];
    struct proxy_proto_result r;

    /* A wrong byte anywhere in the signature is refused as soon as it is seen. */
    for (size_t i = 0; i < 12; i++) {
        memcpy(buf, sig, 12);
        buf[12] = 0x21;
        buf[13] = 0x11;
        buf[14] = 0;
        buf[15] = 12;
        buf[i] ^= 0x20;
        int rc = proxy_proto_parse((const char *)buf, i + 1, &r);
        if (rc != PROXY_PROTO_INVALID)
            fail_msg("signature byte %zu: got %d", i, rc);
    }
    /* A bad version byte is refused with only 13 bytes. */
    memcpy(buf, sig, 12);
    buf[12] = 0x11;
    assert_int_equal(proxy_proto_parse((const char *)buf, 13, &r), PROXY_PROTO_INVALID);
    /* A v1 line cannot start with CR, nor v2 with P. */
    assert_int_equal(proxy_proto_parse("\r\nPROXY", 7, &r), PROXY_PROTO_INVALID);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_good),      cmocka_unit_test(test_v1_bad),
        cmocka_unit_test(test_v2_table),     cmocka_unit_test(test_v2_limits),
        cmocka_unit_test(test_v2_signature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
