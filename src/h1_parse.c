/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 grammar and framing decisions (RFC 9110/9112), in one pass over the caller's
 * bytes: request heads, response heads, chunked bodies. It owns no memory, does no I/O and
 * knows nothing of connections; h1_conn feeds it bytes and acts on what it answers.
 *
 * The head parsers restart from byte 0 on every call and look at no more than
 * max_head_bytes of it, so a peer that never ends its head is stopped by the limit, not by
 * our patience. Syntax is checked while scanning (a bad byte fails at once, even in a
 * partial head); meaning (Host, framing) is settled once the blank line has been seen. */

#include "h1_parse.h"

#include <limits.h>
#include <string.h>

/* Character classes, one byte per input byte, so each scanning loop is one load and one
 * test. Generated from the RFC 9110 ABNF; rows are 0x00, 0x10, ... 0xf0. */
enum {
    CC_TCHAR = 0x01, /* tchar: header names, methods, tokens */
    CC_VCHAR = 0x02, /* 0x21..0x7e: request-target bytes */
    CC_FVAL = 0x04,  /* field-value: HTAB, SP, VCHAR, obs-text (0x80..0xff) */
    CC_HOST = 0x08,  /* reg-name: unreserved, sub-delims, '%' */
    CC_DIGIT = 0x10,
    CC_HEX = 0x20,
    CC_OWS = 0x40, /* SP, HTAB */
};

// clang-format off
static const unsigned char cc[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x44, 0x0f, 0x06, 0x07, 0x0f, 0x0f, 0x0f, 0x0f, 0x0e, 0x0e, 0x0f, 0x0f, 0x0e, 0x0f, 0x0f, 0x06,
    0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x06, 0x0e, 0x06, 0x0e, 0x06, 0x06,
    0x06, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f,
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x06, 0x06, 0x06, 0x07, 0x0f,
    0x07, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x2f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f,
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x06, 0x07, 0x06, 0x0f, 0x00,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
};
// clang-format on

static inline bool
is_class(unsigned char c, unsigned cls)
{
    return (cc[c] & cls) != 0;
}

#define IS(p, cls) is_class((unsigned char)*(p), (cls))

/* Largest Content-Length we accept: anything that fits in an off_t, so the glue can do
 * signed arithmetic on it without a second check. */
#define CONTENT_LENGTH_MAX ((uint64_t)INT64_MAX)

/* A chunk-size line (size and extensions) longer than this is an attack, not a chunk. */
#define CHUNK_LINE_MAX 4096
/* 15 hex digits keep the size below 2^60: no overflow, whatever the leading zeros. */
#define CHUNK_SIZE_DIGITS_MAX 15

/* Everything the head parsers learn along the way, before it is copied out. `error` is
 * the status to answer a request with; response parsing turns every error into 502. */
struct head_ctx {
    const char *end; /* end of what we may look at: min(len, max) */
    size_t max;      /* max_head_bytes, clamped so that a head length fits the int return */
    struct h1_header *headers; /* borrows the caller's array */
    size_t max_headers;
    size_t num_headers;
    bool is_request;
    bool absolute_form; /* request target in absolute-form: an empty Host is allowed */
    int minor_version;
    int error;
    unsigned flags;
    unsigned host_count;
    struct span host;
    bool has_cl;
    uint64_t cl;
    bool has_te;
    unsigned te_codings; /* transfer codings listed, across all Transfer-Encoding lines */
    unsigned te_chunked; /* how many of them were "chunked" */
    bool te_last_chunked;
};

static inline struct span
span_make(const char *p, const char *e)
{
    return (struct span){p, (size_t)(e - p)};
}

/* ASCII case-insensitive equality against a lowercase literal of the same length. */
static inline bool
lower_eq(const char *s, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z')
            c |= 0x20;
        if (c != (unsigned char)lower[i])
            return false;
    }
    return true;
}

#define SPAN_LOWER_EQ(sp, lit)                                                                     \
    ((sp).len == sizeof(lit) - 1 && lower_eq((sp).ptr, (lit), sizeof(lit) - 1))

static inline const char *
skip_ows(const char *p, const char *e)
{
    while (p < e && IS(p, CC_OWS))
        p++;
    return p;
}

static inline int
hex_value(unsigned char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* "HTTP/" DIGIT "." DIGIT at *pp. Returns 0 and advances, H1_PARTIAL if the bytes so far
 * are a prefix of a version, H1_INVALID otherwise. */
static int
parse_version(const char **pp, const char *end, int *major, int *minor)
{
    static const char proto[] = "HTTP/";
    const char *p = *pp;

    if (end - p < 8) { /* not all there yet: is it the start of a version? */
        for (size_t i = 0; p < end; i++, p++) {
            bool ok = i < 5 ? *p == proto[i] : i == 6 ? *p == '.' : IS(p, CC_DIGIT);
            if (!ok)
                return H1_INVALID;
        }
        return H1_PARTIAL;
    }
    if (memcmp(p, proto, 5) != 0 || !IS(p + 5, CC_DIGIT) || p[6] != '.' || !IS(p + 7, CC_DIGIT))
        return H1_INVALID;
    *major = p[5] - '0';
    *minor = p[7] - '0';
    *pp = p + 8;
    return 0;
}

/* CRLF at *pp: a CR alone or an LF alone is not a line ending. */
static inline int
parse_eol(const char **pp, const char *end)
{
    const char *p = *pp;
    if (p == end)
        return H1_PARTIAL;
    if (*p != '\r')
        return H1_INVALID;
    if (p + 1 == end)
        return H1_PARTIAL;
    if (p[1] != '\n')
        return H1_INVALID;
    *pp = p + 2;
    return 0;
}

/* Is `v` a plausible uri-host [ ":" port ]: a reg-name or IPv4 address (reg-name bytes with
 * well-formed percent escapes), or an IPv6 literal in brackets, then at most 5 port digits.
 * An empty host is not plausible: RFC 9110 4.2.1 forbids it for http(s). */
static bool
authority_is_plausible(struct span v)
{
    const char *p = v.ptr, *e = v.ptr + v.len, *host;

    if (p == e)
        return false;
    if (*p == '[') {
        host = ++p;
        while (p < e && (IS(p, CC_HEX) || *p == ':' || *p == '.'))
            p++;
        if (p == e || *p != ']' || p == host)
            return false;
        p++;
    } else {
        host = p;
        while (p < e && IS(p, CC_HOST)) {
            if (*p == '%') {
                if (e - p < 3 || !IS(p + 1, CC_HEX) || !IS(p + 2, CC_HEX))
                    return false;
                p += 2;
            }
            p++;
        }
        if (p == host)
            return false;
    }
    if (p == e)
        return true;
    if (*p != ':')
        return false;
    const char *port = ++p;
    while (p < e && IS(p, CC_DIGIT))
        p++;
    return p == e && p - port <= 5;
}

enum h1_method
h1_method_id(struct span m)
{
    const char *s = m.ptr;

    switch (m.len) {
    case 3:
        if (memcmp(s, "GET", 3) == 0)
            return H1_METHOD_GET;
        if (memcmp(s, "PUT", 3) == 0)
            return H1_METHOD_PUT;
        break;
    case 4:
        if (memcmp(s, "POST", 4) == 0)
            return H1_METHOD_POST;
        if (memcmp(s, "HEAD", 4) == 0)
            return H1_METHOD_HEAD;
        break;
    case 5:
        if (memcmp(s, "PATCH", 5) == 0)
            return H1_METHOD_PATCH;
        if (memcmp(s, "TRACE", 5) == 0)
            return H1_METHOD_TRACE;
        break;
    case 6:
        if (memcmp(s, "DELETE", 6) == 0)
            return H1_METHOD_DELETE;
        break;
    case 7:
        if (memcmp(s, "OPTIONS", 7) == 0)
            return H1_METHOD_OPTIONS;
        if (memcmp(s, "CONNECT", 7) == 0)
            return H1_METHOD_CONNECT;
        break;
    }
    return H1_METHOD_OTHER;
}

/* Content-Length: 1*DIGIT, or a list of identical values ("42, 42", RFC 9110 8.6), and
 * every Content-Length line must agree with the ones before it. */
static int
on_content_length(struct head_ctx *c, struct span v)
{
    const char *p = v.ptr, *e = v.ptr + v.len;

    for (;;) {
        if (p == e || !IS(p, CC_DIGIT))
            return H1_INVALID;
        uint64_t n = 0;
        do {
            unsigned d = (unsigned)(*p - '0');
            if (n > (CONTENT_LENGTH_MAX - d) / 10)
                return H1_INVALID;
            n = n * 10 + d;
            p++;
        } while (p < e && IS(p, CC_DIGIT));
        if (c->has_cl && n != c->cl)
            return H1_INVALID;
        c->has_cl = true;
        c->cl = n;
        p = skip_ows(p, e);
        if (p == e)
            return 0;
        if (*p != ',')
            return H1_INVALID;
        p = skip_ows(p + 1, e);
    }
}

/* quoted-string at *pp (which points at the opening DQUOTE); the bytes are already known
 * to be field-value bytes. */
static bool
skip_quoted_string(const char **pp, const char *e)
{
    const char *p = *pp + 1;

    while (p < e) {
        if (*p == '"') {
            *pp = p + 1;
            return true;
        }
        if (*p == '\\') {
            if (++p == e)
                return false;
        }
        p++;
    }
    return false;
}

/* Transfer-Encoding: #transfer-coding, lines combined in order. We only record what was
 * listed; the verdict (chunked last and once, unknown codings, TE with CL) waits for the
 * end of the head because a later line can change it. */
static int
on_transfer_encoding(struct head_ctx *c, struct span v)
{
    const char *p = v.ptr, *e = v.ptr + v.len;

    c->has_te = true;
    for (;;) {
        p = skip_ows(p, e);
        if (p == e)
            return 0;
        if (*p == ',') { /* empty list element: ignored (RFC 9110 5.6.1.2) */
            p++;
            continue;
        }
        const char *tok = p;
        while (p < e && IS(p, CC_TCHAR))
            p++;
        if (p == tok)
            return H1_INVALID;
        struct span coding = span_make(tok, p);
        bool has_params = false;
        for (;;) { /* *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) ) */
            p = skip_ows(p, e);
            if (p == e || *p != ';')
                break;
            has_params = true;
            p = skip_ows(p + 1, e);
            const char *name = p;
            while (p < e && IS(p, CC_TCHAR))
                p++;
            if (p == name)
                return H1_INVALID;
            p = skip_ows(p, e);
            if (p == e || *p != '=')
                return H1_INVALID;
            p = skip_ows(p + 1, e);
            if (p < e && *p == '"') {
                if (!skip_quoted_string(&p, e))
                    return H1_INVALID;
            } else {
                const char *val = p;
                while (p < e && IS(p, CC_TCHAR))
                    p++;
                if (p == val)
                    return H1_INVALID;
            }
        }
        if (p < e && *p != ',')
            return H1_INVALID;
        c->te_codings++;
        c->te_last_chunked = SPAN_LOWER_EQ(coding, "chunked");
        if (c->te_last_chunked) {
            if (has_params) /* chunked takes no parameters */
                return H1_INVALID;
            c->te_chunked++;
        }
    }
}

/* Connection: #connection-option. Options other than close, keep-alive and upgrade name
 * hop-by-hop headers, which the glue must then strip. */
static int
on_connection(struct head_ctx *c, struct span v)
{
    const char *p = v.ptr, *e = v.ptr + v.len;

    for (;;) {
        p = skip_ows(p, e);
        if (p == e)
            return 0;
        if (*p == ',') {
            p++;
            continue;
        }
        const char *tok = p;
        while (p < e && IS(p, CC_TCHAR))
            p++;
        if (p == tok)
            return H1_INVALID;
        struct span opt = span_make(tok, p);
        p = skip_ows(p, e);
        if (p < e && *p != ',')
            return H1_INVALID;
        if (SPAN_LOWER_EQ(opt, "close"))
            c->flags |= H1_F_CONN_CLOSE;
        else if (SPAN_LOWER_EQ(opt, "keep-alive"))
            c->flags |= H1_F_CONN_KEEPALIVE;
        else if (SPAN_LOWER_EQ(opt, "upgrade"))
            c->flags |= H1_F_CONN_UPGRADE;
        else
            c->flags |= H1_F_HAS_CONN_TOKENS;
    }
}

/* Upgrade: #protocol, protocol = name [ "/" version ]. We only look for websocket; the
 * header is forwarded (or refused) by the glue, so a malformed one is not our error. */
static void
on_upgrade(struct head_ctx *c, struct span v)
{
    const char *p = v.ptr, *e = v.ptr + v.len;

    while (p < e) {
        p = skip_ows(p, e);
        const char *name = p;
        while (p < e && *p != ',' && *p != '/' && !IS(p, CC_OWS))
            p++;
        if (SPAN_LOWER_EQ(span_make(name, p), "websocket")) {
            c->flags |= H1_F_UPGRADE_WEBSOCKET;
            return;
        }
        while (p < e && *p != ',')
            p++;
        if (p < e)
            p++;
    }
}

static int
on_host(struct head_ctx *c, struct span v)
{
    if (++c->host_count > 1)
        return H1_INVALID;
    c->host = v;
    if (v.len == 0)
        return c->absolute_form ? 0 : H1_INVALID;
    return authority_is_plausible(v) ? 0 : H1_INVALID;
}

/* One header line has been read: act on the few names that matter to framing and
 * routing. The switch on the length keeps this to at most one comparison per header. */
static int
on_field(struct head_ctx *c, struct span name, struct span value)
{
    switch (name.len) {
    case 4:
        if (c->is_request && lower_eq(name.ptr, "host", 4))
            return on_host(c, value);
        break;
    case 6:
        /* RFC 9110 10.1.1: a 100-continue in an HTTP/1.0 request is ignored. */
        if (c->is_request && lower_eq(name.ptr, "expect", 6) && c->minor_version >= 1 &&
            SPAN_LOWER_EQ(value, "100-continue"))
            c->flags |= H1_F_EXPECT_CONTINUE;
        break;
    case 7:
        if (lower_eq(name.ptr, "upgrade", 7))
            on_upgrade(c, value);
        break;
    case 10:
        if (lower_eq(name.ptr, "connection", 10))
            return on_connection(c, value);
        break;
    case 14:
        if (lower_eq(name.ptr, "content-length", 14))
            return on_content_length(c, value);
        break;
    case 17:
        if (lower_eq(name.ptr, "transfer-encoding", 17))
            return on_transfer_encoding(c, value);
        break;
    }
    return 0;
}

/* Header lines up to and including the blank line. Sets c->error on H1_INVALID. */
static int
parse_fields(struct head_ctx *c, const char **pp)
{
    const char *p = *pp, *end = c->end;

    for (;;) {
        if (p == end)
            return H1_PARTIAL;
        if (*p == '\r') {
            if (p + 1 == end)
                return H1_PARTIAL;
            if (p[1] != '\n')
                goto bad;
            *pp = p + 2;
            return 0;
        }
        if (c->num_headers == c->max_headers) {
            c->error = 431;
            return H1_INVALID;
        }
        /* field-name ":" OWS field-value OWS CRLF. A line that starts with SP/HTAB
         * (obs-fold), a bare LF, whitespace before the colon: all fail the token scan. */
        const char *name = p;
        while (p < end && IS(p, CC_TCHAR))
            p++;
        if (p == end)
            return H1_PARTIAL;
        if (*p != ':' || p == name)
            goto bad;
        const char *name_end = p;
        p = skip_ows(p + 1, end);
        const char *value = p;
        while (p < end && IS(p, CC_FVAL))
            p++;
        const char *value_end = p;
        int rc = parse_eol(&p, end);
        if (rc != 0) {
            if (rc == H1_INVALID)
                goto bad;
            return rc;
        }
        while (value_end > value && IS(value_end - 1, CC_OWS))
            value_end--;
        struct h1_header *h = &c->headers[c->num_headers++];
        h->name = span_make(name, name_end);
        h->value = span_make(value, value_end);
        if (on_field(c, h->name, h->value) != 0)
            goto bad;
    }
bad:
    c->error = 400;
    return H1_INVALID;
}

static void
head_ctx_init(struct head_ctx *c, const char *buf, size_t len, const struct h1_limits *limits,
              struct h1_header *headers, bool is_request)
{
    size_t max = limits->max_head_bytes;
    if (max > INT_MAX)
        max = INT_MAX; /* the return value is an int */
    *c = (struct head_ctx){
        .end = buf + (len < max ? len : max),
        .max = max,
        .headers = headers,
        .max_headers = limits->max_headers,
        .is_request = is_request,
        .error = 400,
    };
}

/* Request line: method SP request-target SP HTTP-version CRLF, after optional empty
 * lines (RFC 9112 2.2). Classifies the target. Sets c->error on H1_INVALID. */
static int
parse_request_line(struct head_ctx *c, const char **pp, struct h1_request *req)
{
    const char *p = *pp, *end = c->end;
    int rc;

    for (;;) {
        if (p == end)
            return H1_PARTIAL;
        if (*p != '\r')
            break;
        if ((rc = parse_eol(&p, end)) != 0)
            return rc;
    }

    const char *start = p;
    while (p < end && IS(p, CC_TCHAR))
        p++;
    if (p == end)
        return H1_PARTIAL;
    if (*p != ' ' || p == start)
        return H1_INVALID;
    req->method = span_make(start, p);

    start = ++p;
    while (p < end && IS(p, CC_VCHAR))
        p++;
    if (p == end)
        return H1_PARTIAL;
    if (*p != ' ' || p == start)
        return H1_INVALID;
    req->target = span_make(start, p);
    p++;

    int major, minor;
    if ((rc = parse_version(&p, end, &major, &minor)) != 0)
        return rc;
    if ((rc = parse_eol(&p, end)) != 0)
        return rc;
    if (major != 1) {
        c->error = 505;
        return H1_INVALID;
    }
    req->minor_version = c->minor_version = minor > 1 ? 1 : minor;

    req->method_id = h1_method_id(req->method);
    if (req->method_id == H1_METHOD_CONNECT) { /* we are not a forward proxy */
        c->error = 501;
        return H1_INVALID;
    }

    struct span t = req->target;
    if (t.ptr[0] == '/') {
        req->target_form = H1_TARGET_ORIGIN;
        req->path = t;
    } else if (t.len == 1 && t.ptr[0] == '*') {
        if (req->method_id != H1_METHOD_OPTIONS)
            return H1_INVALID;
        req->target_form = H1_TARGET_ASTERISK;
        req->path = t;
    } else {
        size_t skip;
        if (t.len > 7 && lower_eq(t.ptr, "http://", 7))
            skip = 7;
        else if (t.len > 8 && lower_eq(t.ptr, "https://", 8))
            skip = 8;
        else
            return H1_INVALID; /* authority-form without CONNECT, other schemes, junk */
        const char *a = t.ptr + skip, *te = t.ptr + t.len, *q = a;
        while (q < te && *q != '/' && *q != '?')
            q++;
        req->authority = span_make(a, q);
        if (!authority_is_plausible(req->authority)) /* also refuses userinfo '@' */
            return H1_INVALID;
        /* "http://h?q" gives "?q": the glue puts "/" in front when it writes the
         * origin-form, as it has to copy the path there anyway. */
        req->path = q < te ? span_make(q, te) : SPAN_LIT("/");
        req->target_form = H1_TARGET_ABSOLUTE;
        c->absolute_form = true;
    }
    *pp = p;
    return 0;
}

/* The head is complete: decide what it means. */
static int
finish_request(struct head_ctx *c, struct h1_request *req)
{
    if (c->minor_version >= 1 && c->host_count == 0)
        return 400;
    if (c->has_te) {
        if (c->minor_version == 0 || c->has_cl || c->te_codings == 0 || c->te_chunked > 1)
            return 400;
        if (c->te_chunked == 1 && !c->te_last_chunked)
            return 400;
        if (c->te_chunked == 0)
            return 501; /* a coding we cannot frame: the body length is unknowable */
        req->body = H1_BODY_CHUNKED;
    } else if (c->has_cl) {
        req->body = H1_BODY_LENGTH;
        req->content_length = c->cl;
    } else {
        req->body = H1_BODY_NONE;
    }
    return 0;
}

/* The contract is in h1_parse.h. Leading empty lines count toward max_head_bytes like
 * any other byte, so a peer cannot keep a connection busy with a stream of CRLFs. */
int
h1_parse_request(const char *buf, size_t len, const struct h1_limits *limits,
                 struct h1_header *headers, struct h1_request *req)
{
    struct head_ctx c;
    const char *p = buf;
    bool line_done = false;
    int rc;

    head_ctx_init(&c, buf, len, limits, headers, true);
    *req = (struct h1_request){.headers = headers};

    rc = parse_request_line(&c, &p, req);
    if (rc == 0) {
        line_done = true;
        rc = parse_fields(&c, &p);
    }
    req->num_headers = c.num_headers;
    if (rc == H1_PARTIAL) {
        if (len < c.max)
            return H1_PARTIAL;
        /* No end within the limit: the head is longer than we take. */
        req->error_status = line_done ? 431 : 414;
        return H1_INVALID;
    }
    if (rc == H1_INVALID) {
        req->error_status = c.error;
        return H1_INVALID;
    }
    if ((req->error_status = finish_request(&c, req)) != 0)
        return H1_INVALID;
    req->host = c.host;
    req->flags = c.flags;
    return (int)(p - buf);
}

/* Status line: HTTP-version SP 3DIGIT SP reason-phrase CRLF. A missing SP before an empty
 * reason ("HTTP/1.1 200\r\n") is accepted: many servers send it and it reads only one
 * way. */
static int
parse_status_line(struct head_ctx *c, const char **pp, struct h1_response *resp)
{
    const char *p = *pp, *end = c->end;
    int major, minor, rc;

    if ((rc = parse_version(&p, end, &major, &minor)) != 0)
        return rc;
    for (int i = 0; i < 4; i++, p++) {
        if (p == end)
            return H1_PARTIAL;
        if (i == 0 ? *p != ' ' : !IS(p, CC_DIGIT))
            return H1_INVALID;
    }
    resp->status = (p[-3] - '0') * 100 + (p[-2] - '0') * 10 + (p[-1] - '0');
    if (p == end)
        return H1_PARTIAL;
    const char *reason = p;
    if (*p == ' ') {
        reason = ++p;
        while (p < end && IS(p, CC_FVAL))
            p++;
    }
    resp->reason = span_make(reason, p);
    if ((rc = parse_eol(&p, end)) != 0)
        return rc;
    if (major != 1 || resp->status < 100)
        return H1_INVALID;
    resp->minor_version = c->minor_version = minor > 1 ? 1 : minor;
    *pp = p;
    return 0;
}

int
h1_parse_response(const char *buf, size_t len, const struct h1_limits *limits,
                  enum h1_method request_method, struct h1_header *headers,
                  struct h1_response *resp)
{
    struct head_ctx c;
    const char *p = buf;
    int rc;

    head_ctx_init(&c, buf, len, limits, headers, false);
    *resp = (struct h1_response){.headers = headers};

    rc = parse_status_line(&c, &p, resp);
    if (rc == 0)
        rc = parse_fields(&c, &p);
    resp->num_headers = c.num_headers;
    if (rc == H1_PARTIAL && len < c.max)
        return H1_PARTIAL;
    if (rc != 0)
        goto bad;

    /* Framing, RFC 9112 6.3, in its order. */
    if (c.has_te && (c.has_cl || c.te_codings == 0 || c.te_chunked > 1))
        goto bad; /* TE with CL is how responses get smuggled */
    resp->content_length = c.cl;
    int s = resp->status;
    if (request_method == H1_METHOD_HEAD || s < 200 || s == 204 || s == 304)
        resp->body = H1_BODY_NONE;
    else if (c.has_te)
        /* chunked must be last; in HTTP/1.0 the framing is faulty anyway (6.1) */
        resp->body = c.te_last_chunked && c.minor_version >= 1 ? H1_BODY_CHUNKED : H1_BODY_CLOSE;
    else if (c.has_cl)
        resp->body = H1_BODY_LENGTH;
    else
        resp->body = H1_BODY_CLOSE;
    resp->flags = c.flags;
    return (int)(p - buf);
bad:
    resp->error_status = 502;
    return H1_INVALID;
}

/* Chunked decoder states, one per place in the grammar (RFC 9112 7.1):
 *
 *   SIZE_FIRST -hex-> SIZE -CR-> SIZE_LF -LF-> DATA -> DATA_CR -> DATA_LF -> SIZE_FIRST
 *                      |  \-SP/HTAB-> SIZE_BWS -;-> EXT -CR-> SIZE_LF
 *                      \---;--------------------------^
 *   SIZE_LF with size 0 -> TRAILER_START -tchar-> TRAILER_NAME -:-> TRAILER_VALUE -CR->
 *   TRAILER_LF -LF-> TRAILER_START ;  TRAILER_START -CR-> END_LF -LF-> DONE
 */
enum chunked_state {
    CS_SIZE_FIRST = 0,
    CS_SIZE,
    CS_SIZE_BWS,
    CS_EXT,
    CS_SIZE_LF,
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TRAILER_START,
    CS_TRAILER_NAME,
    CS_TRAILER_VALUE,
    CS_TRAILER_LF,
    CS_END_LF,
    CS_DONE,
    CS_ERROR,
};

void
h1_chunked_init(struct h1_chunked *c, size_t max_trailer_bytes)
{
    *c = (struct h1_chunked){.state = CS_SIZE_FIRST, .max_trailer_bytes = max_trailer_bytes};
}

ssize_t
h1_chunked_feed(struct h1_chunked *c, const char *in, size_t len, struct span *data)
{
    const char *p = in, *end = in + len;

    *data = (struct span){in, 0};
    if (c->state == CS_ERROR)
        return H1_INVALID;
    while (p < end && !c->done) {
        unsigned char ch = (unsigned char)*p;
        switch (c->state) {
        case CS_SIZE_FIRST:
            if (!is_class(ch, CC_HEX))
                goto bad;
            c->remaining = (uint64_t)hex_value(ch);
            c->line_bytes = 0;
            c->state = CS_SIZE;
            break;
        case CS_SIZE:
            if (is_class(ch, CC_HEX)) {
                if (c->line_bytes >= CHUNK_SIZE_DIGITS_MAX)
                    goto bad;
                c->remaining = c->remaining << 4 | (uint64_t)hex_value(ch);
            } else if (ch == '\r') {
                c->state = CS_SIZE_LF;
            } else if (ch == ';') {
                c->state = CS_EXT;
            } else if (is_class(ch, CC_OWS)) {
                c->state = CS_SIZE_BWS;
            } else {
                goto bad;
            }
            break;
        case CS_SIZE_BWS: /* BWS is allowed only before an extension */
            if (ch == ';')
                c->state = CS_EXT;
            else if (!is_class(ch, CC_OWS))
                goto bad;
            break;
        case CS_EXT: /* extensions are skipped, but must be field-value bytes */
            if (ch == '\r')
                c->state = CS_SIZE_LF;
            else if (!is_class(ch, CC_FVAL))
                goto bad;
            break;
        case CS_SIZE_LF:
            if (ch != '\n')
                goto bad;
            c->line_bytes = 0;
            p++;
            if (c->remaining) {
                c->state = CS_DATA;
                continue;
            }
            c->state = CS_TRAILER_START;
            c->in_trailers = true;
            return (ssize_t)(p - in);
        case CS_DATA: {
            size_t avail = (size_t)(end - p);
            size_t n = c->remaining < avail ? (size_t)c->remaining : avail;
            *data = (struct span){p, n};
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CS_DATA_CR;
            return (ssize_t)(p + n - in);
        }
        case CS_DATA_CR:
            if (ch != '\r')
                goto bad;
            c->state = CS_DATA_LF;
            p++;
            continue;
        case CS_DATA_LF:
            if (ch != '\n')
                goto bad;
            c->state = CS_SIZE_FIRST;
            p++;
            continue;
        case CS_TRAILER_START:
            if (ch == '\r') {
                c->state = CS_END_LF;
                p++;
                continue;
            }
            if (!is_class(ch, CC_TCHAR)) /* also refuses obs-fold and bare LF */
                goto bad;
            c->state = CS_TRAILER_NAME;
            break;
        case CS_TRAILER_NAME:
            if (ch == ':')
                c->state = CS_TRAILER_VALUE;
            else if (!is_class(ch, CC_TCHAR))
                goto bad;
            break;
        case CS_TRAILER_VALUE:
            if (ch == '\r')
                c->state = CS_TRAILER_LF;
            else if (!is_class(ch, CC_FVAL))
                goto bad;
            break;
        case CS_TRAILER_LF:
            if (ch != '\n')
                goto bad;
            c->state = CS_TRAILER_START;
            break;
        case CS_END_LF:
            if (ch != '\n')
                goto bad;
            c->state = CS_DONE;
            c->done = true;
            p++;
            continue;
        default:
            goto bad;
        }
        /* Only the size-line and trailer-line states get here: bound them. */
        p++;
        if (c->state >= CS_TRAILER_START) {
            if (++c->trailer_bytes > c->max_trailer_bytes)
                goto bad;
        } else if (++c->line_bytes > CHUNK_LINE_MAX) {
            goto bad;
        }
    }
    return (ssize_t)(p - in);
bad:
    c->state = CS_ERROR;
    return H1_INVALID;
}

bool
h1_is_token_char(unsigned char c)
{
    return is_class(c, CC_TCHAR);
}

const char *
h1_status_reason(int status)
{
    switch (status) {
    // clang-format off
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 511: return "Network Authentication Required";
    default: return "";
        // clang-format on
    }
}
