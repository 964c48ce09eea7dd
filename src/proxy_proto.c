/* SPDX-License-Identifier: MIT */
/* The PROXY protocol header parser, versions 1 (a text line) and 2 (binary), after
 * haproxy's doc/proxy-protocol.txt. It reads bytes and fills a result; reading from the
 * socket, timeouts and what to do with the addresses are the connection's business. */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

/* "PROXY TCP6 " + two 39-byte addresses (45 in IPv4-suffixed form, which the line limit
 * still bounds) + two ports + CRLF never exceeds this. */
#define V1_MAX_BYTES 107
#define V2_HEADER_BYTES 16
#define V2_ADDR_INET 12  /* 2 x 4 address bytes, 2 x 2 port bytes */
#define V2_ADDR_INET6 36 /* 2 x 16, 2 x 2 */
#define V2_ADDR_UNIX 216 /* 2 x 108 */

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A cursor over the v1 line. Every step returns 0 (matched, cursor moved on),
 * PROXY_PROTO_PARTIAL (input ended while the bytes so far still fit) or
 * PROXY_PROTO_INVALID; a decision depends only on bytes already seen, so a longer input
 * never turns an INVALID into something else. */
struct v1_cur {
    const char *p;
    size_t len; /* bytes available, capped at V1_MAX_BYTES */
    size_t i;
};

static int
v1_lit(struct v1_cur *c, const char *lit, size_t n)
{
    size_t avail = c->len - c->i;
    size_t k = avail < n ? avail : n;

    if (memcmp(c->p + c->i, lit, k) != 0)
        return PROXY_PROTO_INVALID;
    if (k < n)
        return PROXY_PROTO_PARTIAL;
    c->i += n;
    return 0;
}

static bool
is_v4_char(char ch)
{
    return (ch >= '0' && ch <= '9') || ch == '.';
}

static bool
is_v6_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
           ch == ':' || ch == '.';
}

/* An address of `family` ending at the next space. */
static int
v1_addr(struct v1_cur *c, int family, void *addr)
{
    size_t max = family == AF_INET ? 15 : 45;
    size_t start = c->i, n;
    char text[46];

    while (c->i < c->len && c->i - start <= max &&
           (family == AF_INET ? is_v4_char(c->p[c->i]) : is_v6_char(c->p[c->i])))
        c->i++;
    n = c->i - start;
    if (n > max)
        return PROXY_PROTO_INVALID;
    if (c->i == c->len)
        return PROXY_PROTO_PARTIAL;
    if (n == 0 || c->p[c->i] != ' ')
        return PROXY_PROTO_INVALID;
    memcpy(text, c->p + start, n);
    text[n] = '\0';
    if (inet_pton(family, text, addr) != 1)
        return PROXY_PROTO_INVALID;
    return 0;
}

/* A port: decimal 0..65535, no leading zero, ending at `term` (not consumed). */
static int
v1_port(struct v1_cur *c, char term, uint16_t *port)
{
    size_t start = c->i;
    uint32_t v = 0;

    while (c->i < c->len && c->p[c->i] >= '0' && c->p[c->i] <= '9') {
        if (c->i > start && c->p[start] == '0')
            return PROXY_PROTO_INVALID; /* "the spec forbids heading zeroes" */
        v = v * 10 + (uint32_t)(c->p[c->i] - '0');
        if (v > 65535)
            return PROXY_PROTO_INVALID;
        c->i++;
    }
    if (c->i == c->len)
        return PROXY_PROTO_PARTIAL;
    if (c->i == start || c->p[c->i] != term)
        return PROXY_PROTO_INVALID;
    *port = (uint16_t)v;
    return 0;
}

/* Runs one step; leaves the function with its answer unless it matched. */
#define V1_STEP(expr)                                                                              \
    do {                                                                                           \
        int step_rc_ = (expr);                                                                     \
        if (step_rc_ != 0)                                                                         \
            return step_rc_;                                                                       \
    } while (0)

static int
parse_v1(const char *p, size_t len, struct proxy_proto_result *out)
{
    struct v1_cur c = {p, len < V1_MAX_BYTES ? len : V1_MAX_BYTES, 0};
    int family;

    V1_STEP(v1_lit(&c, "PROXY ", 6));
    out->version = 1;

    /* Which protocol: "TCP4 ", "TCP6 " or "UNKNOWN"; "TCP" alone could be either. Each
     * probe starts at the same place: only a match moves the cursor. */
    int rcu = v1_lit(&c, "UNKNOWN", 7);
    if (rcu == 0) {
        /* Anything may follow UNKNOWN up to the CRLF; the receiver ignores it. */
        if (c.i == c.len)
            return PROXY_PROTO_PARTIAL;
        if (c.p[c.i] == ' ') {
            while (c.i < c.len && c.p[c.i] != '\r' && c.p[c.i] != '\n')
                c.i++;
        }
        if (c.i == c.len)
            return PROXY_PROTO_PARTIAL;
        V1_STEP(v1_lit(&c, "\r\n", 2));
        out->has_addr = false;
        return (int)c.i;
    }
    int rc4 = v1_lit(&c, "TCP4 ", 5);
    int rc6 = rc4 == 0 ? PROXY_PROTO_INVALID : v1_lit(&c, "TCP6 ", 5);
    if (rc4 == 0)
        family = AF_INET;
    else if (rc6 == 0)
        family = AF_INET6;
    else if (rc4 == PROXY_PROTO_PARTIAL || rc6 == PROXY_PROTO_PARTIAL || rcu == PROXY_PROTO_PARTIAL)
        return PROXY_PROTO_PARTIAL;
    else
        return PROXY_PROTO_INVALID;

    uint8_t src[16], dst[16];
    uint16_t sport, dport;
    V1_STEP(v1_addr(&c, family, src));
    V1_STEP(v1_lit(&c, " ", 1));
    V1_STEP(v1_addr(&c, family, dst));
    V1_STEP(v1_lit(&c, " ", 1));
    V1_STEP(v1_port(&c, ' ', &sport));
    V1_STEP(v1_lit(&c, " ", 1));
    V1_STEP(v1_port(&c, '\r', &dport));
    V1_STEP(v1_lit(&c, "\r\n", 2));

    if (family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, src, 4);
        memcpy(&d->sin_addr, dst, 4);
        s->sin_port = htons(sport);
        d->sin_port = htons(dport);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, src, 16);
        memcpy(&d->sin6_addr, dst, 16);
        s->sin6_port = htons(sport);
        d->sin6_port = htons(dport);
    }
    out->has_addr = true;
    return (int)c.i;
}

/* TLVs (type, 2-byte length, value) must tile [p, p+len) exactly. */
static bool
v2_tlvs_ok(const uint8_t *p, size_t len)
{
    size_t i = 0;

    while (i < len) {
        if (len - i < 3)
            return false;
        size_t n = (size_t)p[i + 1] << 8 | p[i + 2];
        if (len - i - 3 < n)
            return false;
        i += 3 + n;
    }
    return true;
}

static int
parse_v2(const uint8_t *p, size_t len, struct proxy_proto_result *out)
{
    size_t k = len < sizeof(v2_sig) ? len : sizeof(v2_sig);

    if (memcmp(p, v2_sig, k) != 0)
        return PROXY_PROTO_INVALID;
    out->version = 2;
    if (len <= 12)
        return PROXY_PROTO_PARTIAL;

    unsigned cmd = p[12] & 0x0f;
    if ((p[12] >> 4) != 2 || cmd > 1)
        return PROXY_PROTO_INVALID;
    bool local = cmd == 0;
    if (len == 13)
        return PROXY_PROTO_PARTIAL;

    /* LOCAL ignores the family altogether (the spec says so). For PROXY: TCP over IPv4,
     * IPv6 or a UNIX stream socket, or UNSPEC; datagram transports are refused, since
     * they cannot describe the stream connection they arrive on. */
    size_t need = 0;
    uint8_t fam = p[13];
    if (!local) {
        switch (fam) {
        case 0x00:
            need = 0;
            break;
        case 0x11:
            need = V2_ADDR_INET;
            break;
        case 0x21:
            need = V2_ADDR_INET6;
            break;
        case 0x31:
            need = V2_ADDR_UNIX;
            break;
        default:
            return PROXY_PROTO_INVALID;
        }
    }
    if (len < V2_HEADER_BYTES)
        return PROXY_PROTO_PARTIAL;

    size_t blen = (size_t)p[14] << 8 | p[15];
    if (blen > PROXY_PROTO_MAX_BYTES - V2_HEADER_BYTES || blen < need)
        return PROXY_PROTO_INVALID;
    if (len - V2_HEADER_BYTES < blen)
        return PROXY_PROTO_PARTIAL;

    const uint8_t *a = p + V2_HEADER_BYTES;
    int total = (int)(V2_HEADER_BYTES + blen);
    out->has_addr = false;
    if (local || fam == 0x00)
        return total;
    if (!v2_tlvs_ok(a + need, blen - need))
        return PROXY_PROTO_INVALID;

    if (fam == 0x11) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2); /* already in network order */
        memcpy(&d->sin_port, a + 10, 2);
        out->has_addr = true;
    } else if (fam == 0x21) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
        out->has_addr = true;
    }
    /* AF_UNIX: nothing a client address could be made of. */
    return total;
}

/* Dispatches on the first byte: 'P' can only start v1, CR only v2, and anything else is
 * not a PROXY header at all, so a plain request is refused on its first byte. *out is
 * cleared first and is meaningful only when the return is > 0. */
int
proxy_proto_parse(const char *p, size_t len, struct proxy_proto_result *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return PROXY_PROTO_PARTIAL;
    if (p[0] == 'P') {
        int rc = parse_v1(p, len, out);
        /* The line has had all the room it may take: no CRLF within 107 bytes. */
        if (rc == PROXY_PROTO_PARTIAL && len >= V1_MAX_BYTES)
            return PROXY_PROTO_INVALID;
        return rc;
    }
    if (p[0] == '\r')
        return parse_v2((const uint8_t *)p, len, out);
    return PROXY_PROTO_INVALID;
}
