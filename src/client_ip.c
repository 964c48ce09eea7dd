/* SPDX-License-Identifier: MIT */
/* Who the client is: trusted-proxy networks, and the forwarding headers (X-Forwarded-For,
 * Forwarded, CloudFront-Viewer-Address) and CloudFront location headers a trusted peer
 * sends. Pure parsing: no allocation, no I/O; the caller decides when to ask. */
#include "client_ip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "geo_place.h"

const struct client_ip_cfg client_ip_trust_nobody = {.nets = NULL, .nnets = 0};

/* Longest textual IP literal we copy for inet_pton: INET6_ADDRSTRLEN - 1 is 45
 * ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"). */
#define ADDR_TEXT_MAX 45
/* Longest Forwarded for= value once unquoted: "[" + 45 + "]:" + a port or obfport. */
#define NODE_TEXT_MAX 96
/* Longest CloudFront-Viewer-Latitude/-Longitude value we read ("-122.332100000000"). */
#define COORD_TEXT_MAX 24

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* A list walk in progress: the state a right-to-left walk needs, kept while the elements
 * go by left to right (so nothing is stored and a quoted comma is never mis-split). The
 * walk from the right skips trusted addresses and stops at the first element that is
 * not one; that "stopper" is the last such element seen so far. */
struct walk {
    bool any;                      /* an element (not empty) was seen */
    bool have_stop;                /* some element was not a trusted address */
    bool stop_ok;                  /* ... and the last such one was a valid address */
    struct sockaddr_storage stop;  /* that address, when stop_ok */
    struct sockaddr_storage first; /* the leftmost element, while every one is trusted */
};

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 9110 tchar. */
static bool
is_tchar(char c)
{
    if (is_alpha(c) || is_digit(c))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static struct span
trim(struct span s)
{
    while (s.len > 0 && is_ows(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && is_ows(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

/* A decimal port, 1 to 5 digits, 0..65535. Returns 0 and *port, or -1. */
static int
parse_port(const char *p, size_t len, uint16_t *port)
{
    uint32_t v = 0;

    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(p[i]))
            return -1;
        v = v * 10 + (uint32_t)(p[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static void
set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* The address bytes of `sa` as matched against networks: IPv4-mapped IPv6 gives IPv4.
 * Returns the family (AF_INET or AF_INET6), or 0 for anything else. */
static int
match_bytes(const struct sockaddr *sa, uint8_t bytes[16])
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        memcpy(bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
            memcpy(bytes, a + 12, 4);
            return AF_INET;
        }
        memcpy(bytes, a, 16);
        return AF_INET6;
    }
    return 0;
}

/* Whether the first `prefix` bits of a and b agree. */
static bool
prefix_eq(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;

    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int
client_ip_parse_addr(const char *p, size_t len, struct sockaddr_storage *out)
{
    char text[ADDR_TEXT_MAX + 1];

    if (p == NULL || len == 0 || len > ADDR_TEXT_MAX)
        return -1;
    /* inet_pton stops at a NUL: "1.2.3.4\0junk" must not pass as 1.2.3.4. */
    if (memchr(p, '\0', len) != NULL)
        return -1;
    memcpy(text, p, len);
    text[len] = '\0';

    memset(out, 0, sizeof(*out));
    if (memchr(text, ':', len) == NULL) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
            return -1;
        sin->sin_family = AF_INET;
        return 0;
    }

    struct in6_addr a6;
    if (inet_pton(AF_INET6, text, &a6) != 1)
        return -1;
    if (memcmp(a6.s6_addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, a6.s6_addr + 12, 4);
        return 0;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = a6;
    return 0;
}

/* Also accepts an IPv4-mapped network ("::ffff:10.0.0.0/104"), kept as the IPv4 network
 * it means (10.0.0.0/8) so that it matches like one; its prefix must then be >= 96. A
 * prefix is 1 to 3 digits without a leading zero ("0" itself is fine). */
int
client_ip_parse_net(const char *text, struct client_ip_net *out)
{
    struct sockaddr_storage ss;
    size_t len, alen;
    const char *slash;
    unsigned prefix, max;
    bool has_prefix;

    if (text == NULL)
        return -1;
    len = strnlen(text, ADDR_TEXT_MAX + 5);
    if (len > ADDR_TEXT_MAX + 4) /* "/128" */
        return -1;
    slash = memchr(text, '/', len);
    alen = slash ? (size_t)(slash - text) : len;
    has_prefix = slash != NULL;
    if (client_ip_parse_addr(text, alen, &ss) != 0)
        return -1;

    bool written_v6 = memchr(text, ':', alen) != NULL;
    max = written_v6 ? 128 : 32;
    prefix = max;
    if (has_prefix) {
        const char *d = slash + 1;
        size_t dlen = len - alen - 1;
        if (dlen == 0 || dlen > 3 || (dlen > 1 && d[0] == '0'))
            return -1;
        prefix = 0;
        for (size_t i = 0; i < dlen; i++) {
            if (!is_digit(d[i]))
                return -1;
            prefix = prefix * 10 + (unsigned)(d[i] - '0');
        }
        if (prefix > max)
            return -1;
    }

    memset(out, 0, sizeof(*out));
    if (ss.ss_family == AF_INET) {
        if (written_v6) { /* IPv4-mapped: the mapping prefix must be whole */
            if (prefix < 96)
                return -1;
            prefix -= 96;
        }
        out->family = AF_INET;
        memcpy(out->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else {
        out->family = AF_INET6;
        memcpy(out->addr, ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr, 16);
    }
    out->prefix = (uint8_t)prefix;

    /* Host bits under the prefix: the operator meant another network. */
    size_t nbytes = out->family == AF_INET ? 4 : 16;
    uint8_t masked[16];
    memcpy(masked, out->addr, nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        unsigned bit = (unsigned)i * 8;
        if (bit >= prefix)
            masked[i] = 0;
        else if (prefix - bit < 8)
            masked[i] &= (uint8_t)(0xff << (8 - (prefix - bit)));
    }
    if (memcmp(masked, out->addr, nbytes) != 0)
        return -1;
    return 0;
}

bool
client_ip_is_trusted(const struct client_ip_net *nets, size_t n, const struct sockaddr *sa)
{
    uint8_t bytes[16];
    int family = match_bytes(sa, bytes);

    if (family == 0 || nets == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        const struct client_ip_net *net = &nets[i];
        unsigned max = net->family == AF_INET ? 32 : 128;
        if (net->family != family || net->prefix > max)
            continue;
        if (prefix_eq(bytes, net->addr, net->prefix))
            return true;
    }
    return false;
}

/* One node as proxies write it: "1.2.3.4", "1.2.3.4:port", "[v6]", "[v6]:port", and,
 * when `bare_v6` (X-Forwarded-For), "v6" without brackets (never with a port: that would
 * be ambiguous). With `obf_port` (Forwarded) the port may be an obfuscated "_ident". The
 * port, when there is a number, is kept in *out. Returns 0 or -1. */
static int
parse_node(const char *p, size_t len, bool bare_v6, bool obf_port, struct sockaddr_storage *out)
{
    const char *addr, *port = NULL;
    size_t alen, plen = 0;

    if (len == 0)
        return -1;
    if (p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (close == NULL)
            return -1;
        addr = p + 1;
        alen = (size_t)(close - addr);
        size_t after = len - (size_t)(close - p) - 1;
        if (after > 0) {
            if (close[1] != ':')
                return -1;
            port = close + 2;
            plen = after - 1;
        }
        /* Brackets hold IPv6 (possibly IPv4-mapped), never a dotted quad. */
        if (memchr(addr, ':', alen) == NULL)
            return -1;
    } else {
        const char *colon = memchr(p, ':', len);
        if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon - p) - 1) == NULL) {
            addr = p; /* exactly one colon: IPv4 and a port */
            alen = (size_t)(colon - p);
            port = colon + 1;
            plen = len - alen - 1;
            if (memchr(addr, '.', alen) == NULL)
                return -1;
        } else {
            if (colon != NULL && !bare_v6)
                return -1;
            addr = p;
            alen = len;
        }
    }
    if (client_ip_parse_addr(addr, alen, out) != 0)
        return -1;
    if (port != NULL) {
        uint16_t v;
        if (obf_port && plen > 1 && port[0] == '_') {
            for (size_t i = 1; i < plen; i++) {
                char c = port[i];
                if (!(is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-'))
                    return -1;
            }
            return 0;
        }
        if (parse_port(port, plen, &v) != 0)
            return -1;
        set_port(out, v);
    }
    return 0;
}

/* Feed the walk one list element: `addr` when it is a valid address, NULL when the
 * element is malformed, "unknown", obfuscated, or otherwise not an address. */
static void
walk_feed(struct walk *w, const struct client_ip_cfg *cfg, const struct sockaddr_storage *addr)
{
    if (!w->any && addr != NULL)
        w->first = *addr;
    w->any = true;
    if (addr != NULL && client_ip_is_trusted(cfg->nets, cfg->nnets, (const struct sockaddr *)addr))
        return;
    w->have_stop = true;
    w->stop_ok = addr != NULL;
    if (addr != NULL)
        w->stop = *addr;
}

/* The walk's answer: 0 and *out, or -1 when the list names nobody we can believe. */
static int
walk_result(const struct walk *w, struct sockaddr_storage *out)
{
    if (!w->any)
        return -1;
    if (w->have_stop) {
        if (!w->stop_ok)
            return -1;
        *out = w->stop;
        return 0;
    }
    *out = w->first; /* every hop trusted: the leftmost is the client */
    return 0;
}

static void
xff_value(struct walk *w, const struct client_ip_cfg *cfg, struct span v)
{
    size_t i = 0;

    while (i <= v.len) {
        const char *comma = i < v.len ? memchr(v.ptr + i, ',', v.len - i) : NULL;
        size_t end = comma ? (size_t)(comma - v.ptr) : v.len;
        struct span el = trim((struct span){v.ptr + i, end - i});
        /* RFC 9110 5.6.1: empty list elements are ignored. */
        if (el.len > 0) {
            struct sockaddr_storage ss;
            bool ok = parse_node(el.ptr, el.len, true, false, &ss) == 0;
            walk_feed(w, cfg, ok ? &ss : NULL);
        }
        if (comma == NULL)
            break;
        i = end + 1;
    }
}

/* One Forwarded header line, RFC 7239: elements by ',', pairs by ';', "name=value" with
 * a token or quoted-string value; OWS is allowed around ',' and ';' but not around '='.
 * Each element feeds the walk with its for= node, or NULL when it has none, has two, or
 * the node is not an address ("unknown", "_obfuscated", malformed). A line that breaks
 * the grammar feeds NULL at the break and the rest of the line is not read: nothing to
 * the left of it is believed unless an untrusted address follows on a later line. */
static void
forwarded_value(struct walk *w, const struct client_ip_cfg *cfg, const char *p, size_t len)
{
    size_t i = 0;

    for (;;) {
        char node[NODE_TEXT_MAX];
        size_t nlen = 0;
        int nfor = 0;
        bool bad = false, empty = true;

        /* One element: pairs until ',' or the end. */
        for (;;) {
            while (i < len && is_ows(p[i]))
                i++;
            if (i == len || p[i] == ',')
                break;
            if (p[i] == ';') {
                i++;
                continue;
            }
            empty = false;
            size_t name = i;
            while (i < len && is_tchar(p[i]))
                i++;
            size_t name_len = i - name;
            if (name_len == 0 || i == len || p[i] != '=')
                goto broken;
            i++;
            bool is_for = name_len == 3 && strncasecmp(p + name, "for", 3) == 0;
            char *dst = node;
            size_t cap = is_for ? sizeof(node) : 0, n = 0;
            bool overlong = false;
            if (i < len && p[i] == '"') {
                i++;
                for (;;) {
                    if (i == len)
                        goto broken;
                    char c = p[i++];
                    if (c == '"')
                        break;
                    if (c == '\\') {
                        if (i == len)
                            goto broken;
                        c = p[i++];
                    }
                    /* qdtext / quoted-pair: HTAB, SP, VCHAR, obs-text. */
                    if ((unsigned char)c < 0x20 ? c != '\t' : c == 0x7f)
                        goto broken;
                    if (n < cap)
                        dst[n] = c;
                    else
                        overlong = true;
                    n++;
                }
            } else {
                size_t v = i;
                while (i < len && is_tchar(p[i]))
                    i++;
                if (i == v)
                    goto broken;
                for (size_t k = v; k < i; k++) {
                    if (n < cap)
                        dst[n] = p[k];
                    else
                        overlong = true;
                    n++;
                }
            }
            if (is_for) {
                nfor++;
                nlen = n;
                if (overlong)
                    bad = true;
            }
            while (i < len && is_ows(p[i]))
                i++;
            if (i < len && p[i] != ';' && p[i] != ',')
                goto broken;
        }

        if (!empty) {
            struct sockaddr_storage ss;
            bool ok = !bad && nfor == 1 && parse_node(node, nlen, false, true, &ss) == 0;
            walk_feed(w, cfg, ok ? &ss : NULL);
        }
        if (i == len)
            return;
        i++; /* the ',' */
    }

broken:
    walk_feed(w, cfg, NULL);
}

static int
resolve_xff(const struct client_ip_cfg *cfg, const struct h1_header *h, size_t n,
            struct sockaddr_storage *out)
{
    struct walk w = {0};

    for (size_t i = 0; i < n; i++)
        if (SPAN_CASEEQ_LIT(h[i].name, "X-Forwarded-For"))
            xff_value(&w, cfg, h[i].value);
    return walk_result(&w, out);
}

static int
resolve_forwarded(const struct client_ip_cfg *cfg, const struct h1_header *h, size_t n,
                  struct sockaddr_storage *out)
{
    struct walk w = {0};

    for (size_t i = 0; i < n; i++)
        if (SPAN_CASEEQ_LIT(h[i].name, "Forwarded"))
            forwarded_value(&w, cfg, h[i].value.ptr, h[i].value.len);
    return walk_result(&w, out);
}

/* "ip:port", IPv6 without brackets: split at the last colon. One header line only: two
 * are ambiguous and give nothing. */
static int
resolve_cf_viewer(const struct h1_header *h, size_t n, struct sockaddr_storage *out)
{
    const struct h1_header *found = NULL;

    for (size_t i = 0; i < n; i++) {
        if (!SPAN_CASEEQ_LIT(h[i].name, "CloudFront-Viewer-Address"))
            continue;
        if (found != NULL)
            return -1;
        found = &h[i];
    }
    if (found == NULL)
        return -1;
    struct span v = trim(found->value);
    size_t colon = v.len;
    while (colon > 0 && v.ptr[colon - 1] != ':')
        colon--;
    if (colon == 0)
        return -1;
    uint16_t port;
    if (parse_port(v.ptr + colon, v.len - colon, &port) != 0)
        return -1;
    if (client_ip_parse_addr(v.ptr, colon - 1, out) != 0)
        return -1;
    set_port(out, port);
    return 0;
}

/* The port of the result is the one the header named, or 0. The peer's copy keeps its
 * own family (an IPv4-mapped peer stays AF_INET6); header addresses are unmapped. */
int
client_ip_resolve(const struct client_ip_cfg *cfg, const struct sockaddr *peer,
                  const struct h1_header *headers, size_t n, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (peer == NULL)
        return -1;
    if (peer->sa_family == AF_INET)
        memcpy(out, peer, sizeof(struct sockaddr_in));
    else if (peer->sa_family == AF_INET6)
        memcpy(out, peer, sizeof(struct sockaddr_in6));
    else
        out->ss_family = peer->sa_family;

    if (cfg == NULL || (headers == NULL && n > 0))
        return -1;
    if (!client_ip_is_trusted(cfg->nets, cfg->nnets, peer))
        return -1;

    size_t nsources = cfg->nsources < CLIENT_IP_MAX_SOURCES ? cfg->nsources : CLIENT_IP_MAX_SOURCES;
    for (size_t s = 0; s < nsources; s++) {
        struct sockaddr_storage found;
        int rc = -1;
        switch (cfg->sources[s]) {
        case CLIENT_IP_XFF:
            rc = resolve_xff(cfg, headers, n, &found);
            break;
        case CLIENT_IP_FORWARDED:
            rc = resolve_forwarded(cfg, headers, n, &found);
            break;
        case CLIENT_IP_CF_VIEWER:
            rc = resolve_cf_viewer(headers, n, &found);
            break;
        default:
            break;
        }
        if (rc == 0) {
            *out = found;
            return cfg->sources[s];
        }
    }
    return -1;
}

/* The last header line of that name, trimmed; false when there is none. */
static bool
last_header(const struct h1_header *h, size_t n, const char *name, size_t name_len,
            struct span *value)
{
    bool found = false;

    for (size_t i = 0; i < n; i++) {
        if (span_caseeq(h[i].name, name, name_len)) {
            *value = trim(h[i].value);
            found = true;
        }
    }
    return found;
}

/* A coordinate: -?D{1,3}(.D{1,15})? within [-limit, limit], parsed by hand so that
 * neither the locale nor a missing NUL matters. Returns 0 and *deg, or -1. */
static int
parse_coord(struct span v, double limit, double *deg)
{
    char text[COORD_TEXT_MAX + 1];
    size_t i = 0, int_digits = 0, frac_digits = 0;
    bool neg = false;
    uint64_t mant = 0;
    double scale = 1.0;

    if (v.len == 0 || v.len > COORD_TEXT_MAX)
        return -1;
    memcpy(text, v.ptr, v.len);
    text[v.len] = '\0';
    if (text[i] == '-' || text[i] == '+') {
        neg = text[i] == '-';
        i++;
    }
    while (is_digit(text[i]) && int_digits < 4) {
        mant = mant * 10 + (uint64_t)(text[i] - '0');
        int_digits++;
        i++;
    }
    if (int_digits == 0 || int_digits > 3)
        return -1;
    if (text[i] == '.') {
        i++;
        while (is_digit(text[i]) && frac_digits < 16) {
            mant = mant * 10 + (uint64_t)(text[i] - '0');
            scale *= 10.0;
            frac_digits++;
            i++;
        }
        if (frac_digits == 0 || frac_digits > 15)
            return -1;
    }
    if (i != v.len) /* trailing bytes, or an embedded NUL */
        return -1;
    double d = (double)mant / scale;
    if (d > limit)
        return -1;
    *deg = neg ? -d : d;
    return 0;
}

bool
client_ip_cdn_location(const struct h1_header *headers, size_t n, struct geo_info *out)
{
    struct span v, lat_v, lon_v;
    bool filled = false;

    if (headers == NULL)
        return false;
    if (last_header(headers, n, "CloudFront-Viewer-Country", 25, &v) && v.len == 2 &&
        is_alpha(v.ptr[0]) && is_alpha(v.ptr[1])) {
        char c0 = (char)(v.ptr[0] & ~0x20), c1 = (char)(v.ptr[1] & ~0x20);
        if (!(c0 == 'X' && c1 == 'X')) { /* "XX": CloudFront does not know */
            out->country[0] = c0;
            out->country[1] = c1;
            out->country[2] = '\0';
            filled = true;
        }
    }

    double lat, lon;
    if (last_header(headers, n, "CloudFront-Viewer-Latitude", 26, &lat_v) &&
        last_header(headers, n, "CloudFront-Viewer-Longitude", 27, &lon_v) &&
        parse_coord(lat_v, 90.0, &lat) == 0 && parse_coord(lon_v, 180.0, &lon) == 0) {
        geo_place_set(out, (float)lat, (float)lon);
        filled |= out->has_coords;
    }
    return filled;
}
