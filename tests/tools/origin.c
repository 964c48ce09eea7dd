/* SPDX-License-Identifier: MIT */
/* origin: a small, fast, single-threaded HTTP/1.1 origin server, the backend behind Meridian in
 * the demo ("regional backends" that answer their region's name), the black-box tests (which read
 * its record file to see exactly what reached a backend) and the benchmark (where it must cost
 * next to nothing). One file, libc and OpenSSL only, epoll; it shares no code with Meridian on
 * purpose, so that a bug in Meridian's parser cannot hide itself in its own test backend.
 *
 *   origin [-l ADDR:PORT]... [-L ADDR:PORT]... [-c CERT_PEM -k KEY_PEM [-A CA_PEM]]
 *          [-n NAME] [-r RECORD_FILE] [-q]
 *
 * ADDR is an IPv4 literal or a bracketed IPv6 literal; PORT 0 asks the kernel for a free port.
 * -l listens for plain HTTP, -L for HTTP over TLS (1.2 or 1.3; ALPN http/1.1 or none; session
 * tickets and session ids both resume) with the chain in CERT_PEM and the key in KEY_PEM; with
 * -A every TLS client must present a certificate that CA_PEM verifies. Both kinds mix freely.
 * Once every listener is bound it prints one `ready NAME ADDR:PORT` line per listener (with the
 * real port; `ready NAME ADDR:PORT tls` for a TLS one) on stdout. SIGTERM and SIGINT exit 0.
 *
 * What it answers (every response carries X-Origin, X-Conn-Id and X-Req-Seq, and on TLS
 * X-TLS-Resumed: 0 or 1; over TLS everything below behaves exactly as over plain TCP):
 *   /                    200, text/plain, body "NAME\n"
 *   /echo...             200, the request body echoed back, X-Body-Len
 *   /headers...          200, the raw request head exactly as received
 *   /delay/MS...         the default answer after MS ms (other connections keep being served)
 *   /status/CODE         that status with a small body (none for 204 and 304; a 1xx code other
 *                        than 101 is sent as an interim response followed by the default answer)
 *   /bytes/N             N bytes 'a'..'z' repeated, Content-Length, streamed as the socket allows
 *   /chunked/N           N bytes in chunks of at most 1000 bytes
 *   /noclen/N            N bytes without Content-Length, then close
 *   /close               closes the connection without answering
 *   /ws + Upgrade: websocket   101 with Sec-WebSocket-Accept, then echoes every byte raw
 *   /slowbody/N/MS       Content-Length N, then one body byte every MS ms
 *   /hostile/CASE        a response no proxy should pass on as it is (for the hostile-backend
 *                        tests); the connection stays open unless said:
 *     cl-te              Content-Length and Transfer-Encoding: chunked together
 *     two-cl             two different Content-Lengths (5 and 6), 5 body bytes
 *     bare-lf            status line and header lines ended by LF alone
 *     204-body, 304-body that status, then 5 bytes that no such response can have
 *     head-body          (to HEAD) Content-Length 5 and the 5 bytes a HEAD response never has
 *     long-status        a status line of 70,000 bytes
 *     many-headers       1,000 header lines
 *     endless-header     a header line that never ends (bytes until the peer closes)
 *     truncated          Content-Length 100, then 10 bytes and a close
 *
 * Record file (-r): one JSON line per complete request, written with one write() on an O_APPEND
 * descriptor:
 *   {"conn":N,"seq":K,"method":"GET","target":"/","version":"HTTP/1.1",
 *    "headers":[["Host","x"],...],"body_len":B}
 * plus "trailers":[[...]] when a chunked body had trailer fields, and on TLS connections
 *   "tls":{"version":"TLSv1.3","resumed":false,"sni":"name"|null,"alpn":"http/1.1"|null,
 *          "client_cert":"CN=client"|null}
 * (client_cert is the subject in RFC 2253 form, like nginx's $ssl_client_s_dn). A malformed
 * request gets a 400 (431 when its head is too large, 413 when an /echo body is too large), the
 * connection is closed and the line is {"bad":true,"conn":N,"seq":K,"reason":"..."}. Strings
 * are JSON-escaped; bytes outside printable ASCII are written as \u00XX, so a test that wants
 * the raw bytes back encodes the string as latin-1. A request whose connection closes before it
 * is complete is not recorded.
 *
 * The parser is strict on purpose (CRLF line ends, no obs-fold, exactly one Host in HTTP/1.1,
 * no Content-Length together with Transfer-Encoding, only "chunked" as transfer coding): whatever
 * a proxy forwards that a strict server would refuse shows up as {"bad":true}.
 *
 * Connection lifecycle (TLS connections start in HANDSHAKE, then go on to HEAD):
 *
 *   accept --> HEAD --head parsed--> BODY --body complete--> respond --+--> HEAD (keep-alive)
 *               ^                                                     |
 *               +------ delay timer / streamed body / slow body ------+
 *                                                                     +--> WS (101; raw echo)
 *                                                                     +--> LINGER (close after
 *                                                                          the answer: shut down
 *                                                                          writes, drain, close)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define MAX_LISTENERS 16
#define MAX_HEADERS 100
#define HEAD_MAX (64 * 1024)          /* larger request heads get a 431 */
#define IN_CHUNK (32 * 1024)          /* bytes asked of each read() at least */
#define IN_MAX (1024 * 1024)          /* stop reading when this much waits unprocessed */
#define OUT_BACKLOG (256 * 1024)      /* stop answering when this much waits unsent */
#define ECHO_MAX (256u * 1024 * 1024) /* largest /echo body */
#define TRAILER_MAX (64 * 1024)
#define STREAM_SLICE (256 * 1024) /* largest pattern slice handed to one writev() */
#define CHUNK_SIZE 1000           /* /chunked/N chunk size */
#define LINGER_MS 2000
#define BIG_N 1000000000000ull /* upper bound for /bytes, /chunked, /noclen */

enum obj_kind { OBJ_LISTENER = 0, OBJ_CONN, OBJ_SIGNAL };

/* A byte buffer: data[off, len) is live, data[len, cap) is free. */
struct buf {
    char *data; /* owns */
    size_t off;
    size_t len;
    size_t cap;
};

struct hdr {
    const char *name; /* borrows from conn.head */
    size_t name_len;
    const char *value; /* borrows from conn.head; OWS trimmed */
    size_t value_len;
};

/* One parsed request head. Every pointer borrows from conn.head, which is not touched until the
 * next head is copied in, after this request has been answered. */
struct req {
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    const char *path; /* target without scheme://authority when in absolute form */
    size_t path_len;
    const char *version;
    int minor;
    struct hdr hdrs[MAX_HEADERS];
    int nhdrs;
    bool keep_alive;
    bool is_head;
    bool chunked;
    bool expect_continue;
    bool upgrade_ws;
    uint64_t content_length;
    const char *ws_key; /* borrows */
    size_t ws_key_len;
};

enum conn_state { ST_HEAD = 0, ST_BODY, ST_WS, ST_LINGER, ST_HANDSHAKE };
enum chunk_state { CH_SIZE = 0, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER };
enum gen_kind { GEN_NONE = 0, GEN_BYTES, GEN_CHUNKED, GEN_SLOW };
enum timer_kind { TIMER_NONE = 0, TIMER_DELAY, TIMER_SLOW, TIMER_LINGER };

struct conn {
    int kind; /* OBJ_CONN; first, so an epoll pointer tells what it points at */
    int fd;
    uint64_t id;
    uint64_t seq;
    uint32_t events; /* epoll interest as registered */
    enum conn_state state;
    bool read_eof;
    bool close_after; /* no more requests: close once the answer is out */
    bool closing;     /* closed; freed at the end of the loop turn */

    struct buf in;      /* bytes read, not yet processed */
    struct buf out;     /* bytes to send */
    struct buf head;    /* copy of the current request head */
    struct buf body;    /* /echo body */
    struct buf trailer; /* trailer section of a chunked body */
    struct req req;

    /* request body decoding */
    bool body_keep;
    uint64_t body_left; /* Content-Length bytes still to come, or bytes left in this chunk */
    uint64_t body_len;  /* decoded body bytes so far */
    enum chunk_state ch;
    int ch_digits;

    /* response body generation */
    enum gen_kind gen;
    uint64_t gen_left;
    uint64_t gen_pos;
    uint32_t slow_ms;

    /* one timer at a time; armed timers form a list */
    enum timer_kind timer;
    uint64_t deadline_ms;
    struct conn *tprev;
    struct conn *tnext;
    struct conn *next_closed;
    struct conn *aprev; /* list of all live connections, to free them at exit */
    struct conn *anext;

    /* TLS; all unused when ssl is NULL (a plain connection) */
    SSL *ssl;         /* owns */
    bool tls_failed;  /* fatal TLS error: no more SSL calls but SSL_free, no close_notify */
    bool tls_resumed; /* the handshake resumed a session */
    bool tls_read_wants_write; /* SSL_accept/SSL_read must wait for EPOLLOUT to go on */
    bool tls_write_wants_read; /* SSL_write must wait for EPOLLIN to go on */
    bool tls_read_again;       /* OpenSSL may hold bytes epoll cannot see: read without waiting */
    bool tls_queued;           /* on the g_tls_again list */
    struct conn *tls_qprev;
    struct conn *tls_qnext;
    struct buf tls_record; /* the "tls" record key, built for the first request recorded */
};

struct listener {
    int kind; /* OBJ_LISTENER */
    int fd;
    bool tls;
    char text[80]; /* "ADDR:PORT" as printed */
};

static const char *g_name = "origin";
static size_t g_name_len;
static bool g_quiet;
static int g_record_fd = -1;
static int g_epfd = -1;
static uint64_t g_conn_counter;
static struct conn *g_timers;
static struct conn *g_closed;
static struct conn *g_conns;
static struct buf g_rec;           /* record line being built */
static char g_default_prefix[256]; /* default answer up to "X-Conn-Id: " */
static size_t g_default_prefix_len;
static char g_pattern[STREAM_SLICE + 26];
static SSL_CTX *g_tls_ctx;       /* owns; NULL without TLS listeners */
static struct conn *g_tls_again; /* TLS connections to read again before waiting for epoll */

/* ---- small helpers ---------------------------------------------------------------------- */

static void
die(const char *what)
{
    fprintf(stderr, "origin: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fprintf(stderr, "origin: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return q;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Makes room for `extra` more bytes after len, moving live bytes to the front first when that
 * is enough. */
static void
buf_reserve(struct buf *b, size_t extra)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len >= extra)
        return;
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= extra)
            return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void
buf_free(struct buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static size_t
buf_live(const struct buf *b)
{
    return b->len - b->off;
}

static void
buf_add(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return; /* p may be NULL then, and memcpy must not see it */
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void
buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void
buf_addc(struct buf *b, char c)
{
    buf_reserve(b, 1);
    b->data[b->len++] = c;
}

static void
buf_addu(struct buf *b, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    buf_add(b, tmp + sizeof(tmp) - n, (size_t)n);
}

static void
buf_addx(struct buf *b, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[20];
    int n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = hex[v & 15];
        v >>= 4;
    } while (v > 0);
    buf_add(b, tmp + sizeof(tmp) - n, (size_t)n);
}

static bool
is_tchar(unsigned char c)
{
    /* RFC 9110 token characters */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool
ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    return alen == blen && strncasecmp(a, b, blen) == 0;
}

/* Whether a comma-separated header value has `token` as one of its elements (any case). */
static bool
list_has(const char *v, size_t n, const char *token)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && ieq(v + s, e - s, token))
            return true;
    }
    return false;
}

/* Reads decimal digits; returns the number of digits (0 when none or on overflow past max). */
static size_t
parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v > (max - (uint64_t)(s[i] - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    *out = v;
    return i;
}

/* ---- SHA-1 and base64, for Sec-WebSocket-Accept ----------------------------------------- */

static uint32_t
rol32(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void
sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void
sha1(const void *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    const uint8_t *p = data;
    size_t left = len;
    while (left >= 64) {
        sha1_block(h, p);
        p += 64;
        left -= 64;
    }
    uint8_t last[128] = {0};
    memcpy(last, p, left);
    last[left] = 0x80;
    size_t total = left + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        last[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, last);
    if (total == 128)
        sha1_block(h, last + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

static void
base64(const uint8_t *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ---- record file -------------------------------------------------------------------------- */

static void
json_str(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(b, n * 6 + 2);
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
}

static void
json_hdrs(struct buf *b, const struct hdr *h, int n)
{
    buf_addc(b, '[');
    for (int i = 0; i < n; i++) {
        if (i > 0)
            buf_addc(b, ',');
        buf_addc(b, '[');
        json_str(b, h[i].name, h[i].name_len);
        buf_addc(b, ',');
        json_str(b, h[i].value, h[i].value_len);
        buf_addc(b, ']');
    }
    buf_addc(b, ']');
}

static void
record_write(void)
{
    buf_addc(&g_rec, '\n');
    ssize_t w = write(g_record_fd, g_rec.data, g_rec.len);
    if (w != (ssize_t)g_rec.len)
        fprintf(stderr, "origin: record write: %s\n", w < 0 ? strerror(errno) : "short write");
    g_rec.off = g_rec.len = 0;
}

static const char *parse_field_line(const char *s, const char *end, struct hdr *h);

static void
json_str_or_null(struct buf *b, const char *s, size_t n)
{
    if (s == NULL)
        buf_adds(b, "null");
    else
        json_str(b, s, n);
}

/* Appends the "tls" key of a TLS connection's record lines. It cannot change after the
 * handshake, so it is built once, for the first request recorded: the subject costs a BIO. */
static void
record_tls(struct conn *c, struct buf *b)
{
    struct buf *t = &c->tls_record;
    if (t->len == 0) {
        SSL *ssl = c->ssl;
        buf_adds(t, ",\"tls\":{\"version\":");
        const char *version = SSL_get_version(ssl);
        json_str(t, version, strlen(version));
        buf_adds(t, c->tls_resumed ? ",\"resumed\":true" : ",\"resumed\":false");
        buf_adds(t, ",\"sni\":");
        const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        json_str_or_null(t, sni, sni ? strlen(sni) : 0);
        buf_adds(t, ",\"alpn\":");
        const unsigned char *alpn = NULL;
        unsigned alpn_len = 0;
        SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
        json_str_or_null(t, alpn_len ? (const char *)alpn : NULL, alpn_len);
        buf_adds(t, ",\"client_cert\":");
        X509 *peer = SSL_get0_peer_certificate(ssl);
        BIO *mem = peer ? BIO_new(BIO_s_mem()) : NULL;
        if (mem != NULL &&
            X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
            char *subject;
            long n = BIO_get_mem_data(mem, &subject);
            json_str(t, subject, (size_t)n);
        } else {
            buf_adds(t, "null");
        }
        BIO_free(mem);
        buf_addc(t, '}');
    }
    buf_add(b, t->data, t->len);
}

static void
record_request(struct conn *c)
{
    if (g_record_fd < 0)
        return;
    struct req *r = &c->req;
    struct buf *b = &g_rec;
    buf_adds(b, "{\"conn\":");
    buf_addu(b, c->id);
    buf_adds(b, ",\"seq\":");
    buf_addu(b, c->seq);
    buf_adds(b, ",\"method\":");
    json_str(b, r->method, r->method_len);
    buf_adds(b, ",\"target\":");
    json_str(b, r->target, r->target_len);
    buf_adds(b, ",\"version\":");
    json_str(b, r->version, 8);
    buf_adds(b, ",\"headers\":");
    json_hdrs(b, r->hdrs, r->nhdrs);
    buf_adds(b, ",\"body_len\":");
    buf_addu(b, c->body_len);
    if (r->chunked && buf_live(&c->trailer) > 2) {
        /* validated when the body ended */
        struct hdr t[MAX_HEADERS];
        int nt = 0;
        const char *s = c->trailer.data + c->trailer.off;
        const char *end = c->trailer.data + c->trailer.len - 2;
        while (s < end && nt < MAX_HEADERS && (s = parse_field_line(s, end + 2, &t[nt])) != NULL)
            nt++;
        buf_adds(b, ",\"trailers\":");
        json_hdrs(b, t, nt);
    }
    if (c->ssl != NULL)
        record_tls(c, b);
    buf_addc(b, '}');
    record_write();
}

static void
record_bad(struct conn *c, const char *reason)
{
    if (g_record_fd < 0)
        return;
    buf_adds(&g_rec, "{\"bad\":true,\"conn\":");
    buf_addu(&g_rec, c->id);
    buf_adds(&g_rec, ",\"seq\":");
    buf_addu(&g_rec, c->seq);
    buf_adds(&g_rec, ",\"reason\":");
    json_str(&g_rec, reason, strlen(reason));
    buf_addc(&g_rec, '}');
    record_write();
}

/* ---- request head parsing ----------------------------------------------------------------- */

/* Parses one `name: value CRLF` line starting at s. Returns the first byte after its CRLF, or
 * NULL when the line is not a valid field line. */
static const char *
parse_field_line(const char *s, const char *end, struct hdr *h)
{
    const char *n = s;
    while (s < end && is_tchar((unsigned char)*s))
        s++;
    if (s == n || s >= end || *s != ':')
        return NULL;
    h->name = n;
    h->name_len = (size_t)(s - n);
    s++;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    const char *v = s;
    while (s < end && *s != '\r') {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return NULL;
        s++;
    }
    if (end - s < 2 || s[1] != '\n')
        return NULL;
    const char *ve = s;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    h->value = v;
    h->value_len = (size_t)(ve - v);
    return s + 2;
}

/* Parses the head in p[0, len), which ends with CRLF CRLF. Returns 0, or an HTTP status to
 * refuse it with and sets *why. */
static int
req_parse(struct req *r, const char *p, size_t len, const char **why)
{
    const char *end = p + len;
    const char *s = p;
    memset(r, 0, offsetof(struct req, hdrs));
    r->nhdrs = 0;
    r->expect_continue = r->upgrade_ws = r->chunked = false;
    r->content_length = 0;
    r->ws_key = NULL;
    r->ws_key_len = 0;

    while (s < end && is_tchar((unsigned char)*s))
        s++;
    if (s == p || *s != ' ')
        return *why = "bad method", 400;
    r->method = p;
    r->method_len = (size_t)(s - p);
    const char *t = ++s;
    while (s < end && (unsigned char)*s > ' ' && *s != 0x7f)
        s++;
    if (s == t || *s != ' ')
        return *why = "bad request target", 400;
    r->target = t;
    r->target_len = (size_t)(s - t);
    s++;
    if (end - s < 10 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != '\r' ||
        s[9] != '\n')
        return *why = "bad HTTP version", 400;
    r->version = s;
    r->minor = s[7] - '0';
    s += 10;

    while (!(s[0] == '\r' && s[1] == '\n')) {
        if (r->nhdrs == MAX_HEADERS)
            return *why = "too many header fields", 431;
        s = parse_field_line(s, end, &r->hdrs[r->nhdrs]);
        if (s == NULL)
            return *why = "bad header field line", 400;
        r->nhdrs++;
    }

    int hosts = 0, clens = 0, tes = 0;
    bool conn_close = false, conn_ka = false;
    for (int i = 0; i < r->nhdrs; i++) {
        const struct hdr *h = &r->hdrs[i];
        if (ieq(h->name, h->name_len, "host")) {
            hosts++;
        } else if (ieq(h->name, h->name_len, "content-length")) {
            if (clens++ > 0)
                return *why = "repeated Content-Length", 400;
            if (h->value_len == 0 || parse_u64(h->value, h->value_len, UINT64_MAX / 2,
                                               &r->content_length) != h->value_len)
                return *why = "bad Content-Length", 400;
        } else if (ieq(h->name, h->name_len, "transfer-encoding")) {
            if (tes++ > 0 || !ieq(h->value, h->value_len, "chunked"))
                return *why = "unsupported Transfer-Encoding", 400;
            r->chunked = true;
        } else if (ieq(h->name, h->name_len, "connection")) {
            conn_close |= list_has(h->value, h->value_len, "close");
            conn_ka |= list_has(h->value, h->value_len, "keep-alive");
        } else if (ieq(h->name, h->name_len, "expect")) {
            r->expect_continue |= ieq(h->value, h->value_len, "100-continue");
        } else if (ieq(h->name, h->name_len, "upgrade")) {
            r->upgrade_ws |= list_has(h->value, h->value_len, "websocket");
        } else if (ieq(h->name, h->name_len, "sec-websocket-key")) {
            r->ws_key = h->value;
            r->ws_key_len = h->value_len;
        }
    }
    if (r->minor >= 1 && hosts != 1)
        return *why = hosts ? "repeated Host" : "no Host", 400;
    if (hosts > 1)
        return *why = "repeated Host", 400;
    if (clens && tes)
        return *why = "both Content-Length and Transfer-Encoding", 400;
    if (tes && r->minor == 0)
        return *why = "Transfer-Encoding in HTTP/1.0", 400;
    r->keep_alive = r->minor >= 1 ? !conn_close : (conn_ka && !conn_close);
    r->is_head = ieq(r->method, r->method_len, "HEAD");

    /* the path we route on: absolute-form loses its scheme and authority */
    r->path = r->target;
    r->path_len = r->target_len;
    const char *sep = memmem(r->target, r->target_len, "://", 3);
    if (sep != NULL && r->target[0] != '/') {
        const char *a = sep + 3;
        const char *te = r->target + r->target_len;
        const char *slash = memchr(a, '/', (size_t)(te - a));
        r->path = slash ? slash : "/";
        r->path_len = slash ? (size_t)(te - slash) : 1;
    }
    return 0;
}

/* ---- connections ------------------------------------------------------------------------- */

static void
timer_set(struct conn *c, enum timer_kind kind, uint64_t ms)
{
    if (c->timer == TIMER_NONE) {
        c->tprev = NULL;
        c->tnext = g_timers;
        if (g_timers)
            g_timers->tprev = c;
        g_timers = c;
    }
    c->timer = kind;
    c->deadline_ms = now_ms() + ms;
}

static void
timer_clear(struct conn *c)
{
    if (c->timer == TIMER_NONE)
        return;
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        g_timers = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    c->tprev = c->tnext = NULL;
    c->timer = TIMER_NONE;
}

/* ---- TLS glue: what OpenSSL changes in the loop ------------------------------------------ */

static void
tls_again_add(struct conn *c)
{
    if (c->tls_queued)
        return;
    c->tls_queued = true;
    c->tls_qprev = NULL;
    c->tls_qnext = g_tls_again;
    if (g_tls_again)
        g_tls_again->tls_qprev = c;
    g_tls_again = c;
}

static void
tls_again_remove(struct conn *c)
{
    if (!c->tls_queued)
        return;
    if (c->tls_qprev)
        c->tls_qprev->tls_qnext = c->tls_qnext;
    else
        g_tls_again = c->tls_qnext;
    if (c->tls_qnext)
        c->tls_qnext->tls_qprev = c->tls_qprev;
    c->tls_qprev = c->tls_qnext = NULL;
    c->tls_queued = false;
}

/* Marks a fatal TLS error, after which OpenSSL allows no more I/O on the connection, not even
 * close_notify. Failed handshakes (`what` set) are logged: a refused client certificate or a
 * client without http/1.1 in its ALPN list is what a test wants to find there. */
static void
tls_fail(struct conn *c, int ssl_err, const char *what)
{
    c->tls_failed = true;
    if (what != NULL && ssl_err == SSL_ERROR_SSL) {
        char msg[256];
        ERR_error_string_n(ERR_peek_error(), msg, sizeof(msg));
        fprintf(stderr, "origin: conn %llu: TLS %s failed: %s\n", (unsigned long long)c->id, what,
                msg);
    }
    ERR_clear_error(); /* a stale error would confuse the next SSL_get_error() */
}

/* Sends close_notify, once and without waiting: a peer that reads up to the end of the stream
 * then knows the answer was not cut short. Whether it went out does not matter to us. */
static void
tls_close_notify(struct conn *c)
{
    if (c->ssl == NULL || c->tls_failed || c->state == ST_HANDSHAKE ||
        (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
        return;
    SSL_shutdown(c->ssl);
    ERR_clear_error();
}

/* Reads like read(2): bytes > 0, 0 at the end of the stream, -1 with errno (EAGAIN: nothing
 * now). On TLS one SSL_read() gives one record at most, so it goes on while OpenSSL holds more
 * and there is room, and leaves tls_read_again set when it may still hold some. */
static ssize_t
conn_recv(struct conn *c, char *p, size_t n)
{
    if (c->ssl == NULL)
        return read(c->fd, p, n);
    if (c->tls_failed) {
        errno = EIO;
        return -1;
    }
    size_t got = 0;
    int err;
    c->tls_read_wants_write = false;
    c->tls_read_again = false;
    for (;;) {
        int r = SSL_read(c->ssl, p + got, n - got > INT_MAX ? INT_MAX : (int)(n - got));
        if (r > 0) {
            got += (size_t)r;
            if (!SSL_has_pending(c->ssl))
                return (ssize_t)got;
            if (got == n) {
                c->tls_read_again = true;
                return (ssize_t)got;
            }
            continue;
        }
        err = SSL_get_error(c->ssl, r);
        break;
    }
    if (err == SSL_ERROR_WANT_WRITE)
        c->tls_read_wants_write = true;
    else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_ZERO_RETURN)
        tls_fail(c, err, NULL);
    if (got > 0) {
        /* hand over what we have; an end or an error is found again at the next read */
        c->tls_read_again = err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE;
        return (ssize_t)got;
    }
    if (err == SSL_ERROR_ZERO_RETURN)
        return 0; /* close_notify, or a plain EOF: SSL_OP_IGNORE_UNEXPECTED_EOF */
    errno = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? EAGAIN : EIO;
    return -1;
}

/* Writes like writev(2): bytes taken (short only when the socket is full), or -1 with errno
 * (EAGAIN: nothing now). SSL has no writev, so TLS writes the pieces in turn; with
 * SSL_MODE_ENABLE_PARTIAL_WRITE each SSL_write() returns after a record or so, hence the loop.
 *
 * OpenSSL wants a write that returned WANT_* retried with the same bytes and at least the same
 * length. conn_flush() keeps that: c->out only grows at its end until sent (it may move:
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), and a /bytes slice depends only on gen_pos and
 * gen_left, which move by what was written, while nothing is queued in c->out behind it. */
static ssize_t
conn_send(struct conn *c, const struct iovec *iov, int niov)
{
    if (c->ssl == NULL)
        return niov == 1 ? write(c->fd, iov[0].iov_base, iov[0].iov_len) : writev(c->fd, iov, niov);
    if (c->tls_failed) {
        errno = EIO;
        return -1;
    }
    size_t done = 0;
    c->tls_write_wants_read = false;
    for (int i = 0; i < niov; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left > 0) {
            int w = SSL_write(c->ssl, p, left > INT_MAX ? INT_MAX : (int)left);
            if (w > 0) {
                p += w;
                left -= (size_t)w;
                done += (size_t)w;
                continue;
            }
            int err = SSL_get_error(c->ssl, w);
            if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
                c->tls_write_wants_read = err == SSL_ERROR_WANT_READ;
                if (done > 0)
                    return (ssize_t)done;
                errno = EAGAIN;
                return -1;
            }
            tls_fail(c, err, NULL);
            errno = EPIPE;
            return -1;
        }
    }
    return (ssize_t)done;
}

/* ---- connections, continued ------------------------------------------------------------- */

/* Closes the socket now and frees the connection at the end of the loop turn, since events of
 * this turn may still point at it. */
static void
conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    timer_clear(c);
    tls_again_remove(c);
    tls_close_notify(c);
    close(c->fd); /* also drops it from the epoll set */
    c->next_closed = g_closed;
    g_closed = c;
}

static void
conn_free(struct conn *c)
{
    if (c->aprev)
        c->aprev->anext = c->anext;
    else
        g_conns = c->anext;
    if (c->anext)
        c->anext->aprev = c->aprev;
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->head);
    buf_free(&c->body);
    buf_free(&c->trailer);
    buf_free(&c->tls_record);
    SSL_free(c->ssl);
    free(c);
}

static void
conn_reap(void)
{
    while (g_closed) {
        struct conn *c = g_closed;
        g_closed = c->next_closed;
        conn_free(c);
    }
}

static bool
conn_paused(const struct conn *c)
{
    return c->timer != TIMER_NONE || c->gen != GEN_NONE || c->close_after ||
           buf_live(&c->out) > OUT_BACKLOG;
}

/* What a TLS connection polls for, given what it wants to do (`ev`): a read may need the
 * socket writable first (a handshake flight, a KeyUpdate answer), a write may need it readable.
 * And the bytes OpenSSL already took off the socket (read-ahead, the rest of a record) are
 * invisible to epoll, so a connection that wants to read and may have some is queued to be
 * read again before the loop sleeps (tls_again_run). */
static uint32_t
tls_events(struct conn *c, uint32_t ev)
{
    uint32_t tls = 0;
    if (ev & EPOLLIN)
        tls |= c->tls_read_wants_write ? EPOLLOUT : EPOLLIN;
    if (ev & EPOLLOUT)
        tls |= c->tls_write_wants_read ? EPOLLIN : EPOLLOUT;
    if ((ev & EPOLLIN) && c->tls_read_again && !c->tls_read_wants_write && c->state != ST_HANDSHAKE)
        tls_again_add(c);
    return tls;
}

static void
conn_update_events(struct conn *c)
{
    uint32_t ev = 0;
    if (!c->read_eof && (buf_live(&c->in) < IN_MAX || c->state == ST_LINGER))
        ev |= EPOLLIN;
    if (buf_live(&c->out) > 0 || c->gen == GEN_BYTES || c->gen == GEN_CHUNKED)
        ev |= EPOLLOUT;
    if (c->ssl != NULL && c->state != ST_LINGER) /* lingering reads raw bytes: see conn_linger */
        ev = tls_events(c, ev);
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &e) < 0)
        die("epoll_ctl");
    c->events = ev;
}

static const char *
reason_phrase(unsigned status)
{
    static const struct {
        unsigned status;
        const char *text;
    } tbl[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {102, "Processing"},
        {103, "Early Hints"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {418, "I'm a teapot"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof(tbl) / sizeof(tbl[0]); i++)
        if (tbl[i].status == status)
            return tbl[i].text;
    return "Unknown";
}

/* Appends a status line and the headers every answer carries. clen < 0 leaves Content-Length
 * out. The caller adds its own headers, then "\r\n". */
static void
resp_start(struct conn *c, unsigned status, const char *ctype, int64_t clen, bool chunked)
{
    struct buf *o = &c->out;
    buf_adds(o, "HTTP/1.1 ");
    buf_addu(o, status);
    buf_addc(o, ' ');
    buf_adds(o, reason_phrase(status));
    buf_adds(o, "\r\n");
    if (ctype) {
        buf_adds(o, "Content-Type: ");
        buf_adds(o, ctype);
        buf_adds(o, "\r\n");
    }
    if (clen >= 0) {
        buf_adds(o, "Content-Length: ");
        buf_addu(o, (uint64_t)clen);
        buf_adds(o, "\r\n");
    }
    if (chunked)
        buf_adds(o, "Transfer-Encoding: chunked\r\n");
    buf_adds(o, "X-Origin: ");
    buf_add(o, g_name, g_name_len);
    buf_adds(o, "\r\nX-Conn-Id: ");
    buf_addu(o, c->id);
    buf_adds(o, "\r\nX-Req-Seq: ");
    buf_addu(o, c->seq);
    buf_adds(o, "\r\n");
    if (c->ssl != NULL)
        buf_adds(o, c->tls_resumed ? "X-TLS-Resumed: 1\r\n" : "X-TLS-Resumed: 0\r\n");
    if (status == 101)
        return;
    if (!c->req.keep_alive)
        c->close_after = true;
    if (c->close_after)
        buf_adds(o, "Connection: close\r\n");
    else if (c->req.minor == 0)
        buf_adds(o, "Connection: keep-alive\r\n");
}

/* Appends a complete answer with a small body (omitted for HEAD, 204 and 304). */
static void
resp_simple(struct conn *c, unsigned status, const char *ctype, const char *body, size_t n)
{
    bool nobody = status == 204 || status == 304;
    resp_start(c, status, ctype, nobody ? -1 : (int64_t)n, false);
    buf_adds(&c->out, "\r\n");
    if (!nobody && !c->req.is_head)
        buf_add(&c->out, body, n);
}

/* The default answer, the one the benchmark measures: a prebuilt prefix and two numbers. */
static void
resp_default(struct conn *c)
{
    struct buf *o = &c->out;
    buf_reserve(o, g_default_prefix_len + g_name_len + 128);
    buf_add(o, g_default_prefix, g_default_prefix_len);
    buf_addu(o, c->id);
    buf_add(o, "\r\nX-Req-Seq: ", 13);
    buf_addu(o, c->seq);
    if (c->ssl != NULL)
        buf_add(o, c->tls_resumed ? "\r\nX-TLS-Resumed: 1" : "\r\nX-TLS-Resumed: 0", 18);
    if (!c->req.keep_alive) {
        c->close_after = true;
        buf_add(o, "\r\nConnection: close\r\n\r\n", 23);
    } else if (c->req.minor == 0) {
        buf_add(o, "\r\nConnection: keep-alive\r\n\r\n", 28);
    } else {
        buf_add(o, "\r\n\r\n", 4);
    }
    if (!c->req.is_head) {
        buf_add(o, g_name, g_name_len);
        buf_addc(o, '\n');
    }
}

/* Refuses the current request: records it, answers `status` and closes after the answer. */
static void
conn_bad(struct conn *c, unsigned status, const char *why)
{
    record_bad(c, why);
    c->req.keep_alive = false;
    c->req.is_head = false;
    c->req.minor = 1;
    c->close_after = true;
    c->gen = GEN_NONE;
    char body[128];
    int n = snprintf(body, sizeof(body), "%u %s: %s\n", status, reason_phrase(status), why);
    resp_simple(c, status, "text/plain", body, (size_t)n);
    c->in.off = c->in.len; /* nothing after a bad request is read as a request */
    c->state = ST_HEAD;
}

/* Matches path against "/word" followed by '/', '?' or its end; *rest gets what follows. */
static bool
path_is(const struct req *r, const char *word, const char **rest, size_t *rest_len)
{
    size_t n = strlen(word);
    if (r->path_len < n || memcmp(r->path, word, n) != 0)
        return false;
    if (r->path_len > n && r->path[n] != '/' && r->path[n] != '?')
        return false;
    *rest = r->path + n;
    *rest_len = r->path_len - n;
    return true;
}

/* Reads "/N" from a path rest; returns false when there is no number there. */
static bool
path_num(const char **rest, size_t *rest_len, uint64_t max, uint64_t *v)
{
    if (*rest_len < 2 || (*rest)[0] != '/')
        return false;
    size_t d = parse_u64(*rest + 1, *rest_len - 1, max, v);
    if (d == 0)
        return false;
    *rest += 1 + d;
    *rest_len -= 1 + d;
    return *rest_len == 0 || **rest == '/' || **rest == '?';
}

static void
resp_bad_param(struct conn *c)
{
    static const char msg[] = "bad parameter in path\n";
    resp_simple(c, 400, "text/plain", msg, sizeof(msg) - 1);
}

static void
resp_ws(struct conn *c)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    const struct req *r = &c->req;
    if (r->ws_key == NULL || r->ws_key_len == 0 || r->ws_key_len > 256) {
        static const char msg[] = "missing Sec-WebSocket-Key\n";
        resp_simple(c, 400, "text/plain", msg, sizeof(msg) - 1);
        return;
    }
    char key[256 + sizeof(guid)];
    memcpy(key, r->ws_key, r->ws_key_len);
    memcpy(key + r->ws_key_len, guid, sizeof(guid) - 1);
    uint8_t digest[20];
    sha1(key, r->ws_key_len + sizeof(guid) - 1, digest);
    char accept[32];
    base64(digest, sizeof(digest), accept);
    resp_start(c, 101, NULL, -1, false);
    buf_adds(&c->out, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    buf_adds(&c->out, accept);
    buf_adds(&c->out, "\r\n\r\n");
    c->state = ST_WS;
}

/* Answers the complete request in c->req (its body is in c->body when it was kept). */
static void resp_hostile(struct conn *c, const char *rest, size_t rl);

static void
respond(struct conn *c)
{
    const struct req *r = &c->req;
    const char *rest;
    size_t rl;
    uint64_t n, ms;

    if (r->path_len >= 5 && memcmp(r->path, "/echo", 5) == 0) {
        size_t len = buf_live(&c->body);
        resp_start(c, 200, "application/octet-stream", (int64_t)len, false);
        buf_adds(&c->out, "X-Body-Len: ");
        buf_addu(&c->out, len);
        buf_adds(&c->out, "\r\n\r\n");
        if (!r->is_head)
            buf_add(&c->out, c->body.data + c->body.off, len);
        c->body.off = c->body.len = 0;
    } else if (r->path_len >= 8 && memcmp(r->path, "/headers", 8) == 0) {
        resp_simple(c, 200, "text/plain", c->head.data, c->head.len);
    } else if (path_is(r, "/delay", &rest, &rl)) {
        if (!path_num(&rest, &rl, 3600000, &ms)) {
            resp_bad_param(c);
            return;
        }
        timer_set(c, TIMER_DELAY, ms); /* answered by conn_on_timer */
    } else if (path_is(r, "/status", &rest, &rl)) {
        if (!path_num(&rest, &rl, 999, &n) || n < 100 || n > 599 || n == 101) {
            resp_bad_param(c);
            return;
        }
        if (n < 200) {
            /* interim answer, then the final one */
            buf_adds(&c->out, "HTTP/1.1 ");
            buf_addu(&c->out, n);
            buf_addc(&c->out, ' ');
            buf_adds(&c->out, reason_phrase((unsigned)n));
            buf_adds(&c->out, "\r\n\r\n");
            resp_default(c);
            return;
        }
        char body[64];
        int bl = snprintf(body, sizeof(body), "%u %s\n", (unsigned)n, reason_phrase((unsigned)n));
        resp_simple(c, (unsigned)n, "text/plain", body, (size_t)bl);
    } else if (path_is(r, "/bytes", &rest, &rl) || path_is(r, "/noclen", &rest, &rl)) {
        bool noclen = r->path[1] == 'n';
        if (!path_num(&rest, &rl, BIG_N, &n)) {
            resp_bad_param(c);
            return;
        }
        if (noclen)
            c->close_after = true;
        resp_start(c, 200, "application/octet-stream", noclen ? -1 : (int64_t)n, false);
        buf_adds(&c->out, "\r\n");
        if (!r->is_head && n > 0) {
            c->gen = GEN_BYTES;
            c->gen_left = n;
            c->gen_pos = 0;
        }
    } else if (path_is(r, "/chunked", &rest, &rl)) {
        if (!path_num(&rest, &rl, BIG_N, &n)) {
            resp_bad_param(c);
            return;
        }
        bool http10 = r->minor == 0; /* no chunked coding for HTTP/1.0: close-delimited */
        if (http10)
            c->close_after = true;
        resp_start(c, 200, "application/octet-stream", -1, !http10);
        buf_adds(&c->out, "\r\n");
        if (!r->is_head) {
            c->gen = http10 ? GEN_BYTES : GEN_CHUNKED;
            c->gen_left = n;
            c->gen_pos = 0;
            if (http10 && n == 0)
                c->gen = GEN_NONE;
        }
    } else if (path_is(r, "/close", &rest, &rl)) {
        conn_close(c);
    } else if (path_is(r, "/hostile", &rest, &rl)) {
        resp_hostile(c, rest, rl);
    } else if (path_is(r, "/ws", &rest, &rl) && r->upgrade_ws) {
        resp_ws(c);
    } else if (path_is(r, "/slowbody", &rest, &rl)) {
        if (!path_num(&rest, &rl, 1000000000, &n) || !path_num(&rest, &rl, 3600000, &ms)) {
            resp_bad_param(c);
            return;
        }
        resp_start(c, 200, "application/octet-stream", (int64_t)n, false);
        buf_adds(&c->out, "\r\n");
        if (!r->is_head && n > 0) {
            c->gen = GEN_SLOW;
            c->gen_left = n;
            c->gen_pos = 0;
            c->slow_ms = ms ? (uint32_t)ms : 1;
            timer_set(c, TIMER_SLOW, c->slow_ms);
        }
    } else {
        resp_default(c);
    }
}

/* /hostile/CASE: see the top of the file. Built by hand, not with resp_start(), which would
 * get them right. */
static void
resp_hostile(struct conn *c, const char *rest, size_t rl)
{
    struct buf *o = &c->out;
    const char *name = rl > 0 && rest[0] == '/' ? rest + 1 : "";
    size_t nl = rl > 0 ? rl - 1 : 0;
#define IS(s) (nl == sizeof(s) - 1 && memcmp(name, s, nl) == 0)
    if (IS("cl-te")) {
        buf_adds(o, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "5\r\nhello\r\n0\r\n\r\n");
    } else if (IS("two-cl")) {
        buf_adds(o, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello");
    } else if (IS("bare-lf")) {
        buf_adds(o, "HTTP/1.1 200 OK\nContent-Length: 2\n\nok");
    } else if (IS("204-body")) {
        buf_adds(o, "HTTP/1.1 204 No Content\r\n\r\nhello");
    } else if (IS("304-body")) {
        buf_adds(o, "HTTP/1.1 304 Not Modified\r\n\r\nhello");
    } else if (IS("head-body")) {
        buf_adds(o, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    } else if (IS("long-status")) {
        buf_adds(o, "HTTP/1.1 200 ");
        for (int i = 0; i < 70000; i++)
            buf_addc(o, 'x');
        buf_adds(o, "\r\nContent-Length: 2\r\n\r\nok");
    } else if (IS("many-headers")) {
        buf_adds(o, "HTTP/1.1 200 OK\r\n");
        for (unsigned i = 0; i < 1000; i++) {
            buf_adds(o, "X-H-");
            buf_addu(o, i);
            buf_adds(o, ": v\r\n");
        }
        buf_adds(o, "Content-Length: 2\r\n\r\nok");
    } else if (IS("endless-header")) {
        buf_adds(o, "HTTP/1.1 200 OK\r\nX-Endless: ");
        c->gen = GEN_BYTES; /* 'a'..'z' and never a line end */
        c->gen_left = BIG_N;
        c->gen_pos = 0;
        c->close_after = true;
    } else if (IS("truncated")) {
        buf_adds(o, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        c->close_after = true;
    } else {
        resp_bad_param(c);
    }
#undef IS
}

/* Feeds request body bytes from c->in. Returns 1 when the body is complete, 0 when more bytes
 * are needed, or an HTTP status after which the request is refused (with *why set). */
static int
body_feed(struct conn *c, const char **why)
{
    struct buf *in = &c->in;
    if (!c->req.chunked) {
        size_t take = buf_live(in);
        if (take > c->body_left)
            take = (size_t)c->body_left;
        if (c->body_keep)
            buf_add(&c->body, in->data + in->off, take);
        in->off += take;
        c->body_left -= take;
        c->body_len += take;
        return c->body_left == 0;
    }
    while (in->off < in->len) {
        char ch = in->data[in->off];
        switch (c->ch) {
        case CH_SIZE: {
            int v = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (v >= 0) {
                if (++c->ch_digits > 15)
                    return *why = "chunk size too large", 400;
                c->body_left = c->body_left * 16 + (uint64_t)v;
            } else if (c->ch_digits > 0 && (ch == ';' || ch == ' ' || ch == '\t')) {
                c->ch = CH_EXT;
            } else if (c->ch_digits > 0 && ch == '\r') {
                c->ch = CH_SIZE_LF;
            } else {
                return *why = "bad chunk size", 400;
            }
            in->off++;
            break;
        }
        case CH_EXT:
            if (ch == '\n')
                return *why = "bare LF in chunk extension", 400;
            if (ch == '\r')
                c->ch = CH_SIZE_LF;
            in->off++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return *why = "bad chunk size line", 400;
            in->off++;
            c->ch_digits = 0;
            if (c->body_left == 0) {
                c->ch = CH_TRAILER;
                c->trailer.off = c->trailer.len = 0;
            } else {
                if (c->body_keep && c->body_len + c->body_left > ECHO_MAX)
                    return *why = "echo body too large", 413;
                c->ch = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t take = buf_live(in);
            if (take > c->body_left)
                take = (size_t)c->body_left;
            if (c->body_keep)
                buf_add(&c->body, in->data + in->off, take);
            in->off += take;
            c->body_left -= take;
            c->body_len += take;
            if (c->body_left == 0)
                c->ch = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                return *why = "no CRLF after chunk data", 400;
            in->off++;
            c->ch = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return *why = "no CRLF after chunk data", 400;
            in->off++;
            c->ch = CH_SIZE;
            break;
        case CH_TRAILER: {
            struct buf *t = &c->trailer;
            buf_addc(t, ch);
            in->off++;
            if (ch != '\n')
                break;
            size_t tl = buf_live(t);
            const char *td = t->data + t->off;
            if (tl < 2 || td[tl - 2] != '\r')
                return *why = "bare LF in trailer section", 400;
            if (tl == 2 || (tl >= 4 && memcmp(td + tl - 4, "\r\n\r\n", 4) == 0)) {
                const char *s = td, *end = td + tl - 2;
                struct hdr h;
                while (s < end)
                    if ((s = parse_field_line(s, end, &h)) == NULL)
                        return *why = "bad trailer field line", 400;
                return 1;
            }
            if (tl > TRAILER_MAX)
                return *why = "trailer section too large", 431;
            break;
        }
        }
    }
    return 0;
}

/* Takes in the next request head, if a whole one is buffered. Returns 1 when one was taken,
 * 0 when more bytes are needed, -1 when the request was refused. */
static int
head_take(struct conn *c)
{
    struct buf *in = &c->in;
    /* a client may send a CRLF after a body; RFC 9112 2.2 lets us skip it */
    while (buf_live(in) >= 2 && in->data[in->off] == '\r' && in->data[in->off + 1] == '\n')
        in->off += 2;
    size_t avail = buf_live(in);
    if (avail == 0)
        return 0;
    const char *p = in->data + in->off;
    const char *e = memmem(p, avail < HEAD_MAX ? avail : HEAD_MAX, "\r\n\r\n", 4);
    if (e == NULL) {
        if (avail >= HEAD_MAX) {
            c->seq++;
            conn_bad(c, 431, "request head too large");
            return -1;
        }
        return 0;
    }
    size_t hl = (size_t)(e - p) + 4;
    c->head.off = c->head.len = 0;
    buf_add(&c->head, p, hl);
    in->off += hl;
    c->seq++;
    const char *why = NULL;
    int status = req_parse(&c->req, c->head.data, hl, &why);
    if (status != 0) {
        conn_bad(c, (unsigned)status, why);
        return -1;
    }
    struct req *r = &c->req;
    c->body_len = 0;
    c->body_left = r->chunked ? 0 : r->content_length;
    c->ch = CH_SIZE;
    c->ch_digits = 0;
    c->body_keep = r->path_len >= 5 && memcmp(r->path, "/echo", 5) == 0;
    c->body.off = c->body.len = 0;
    if (c->body_keep && !r->chunked && r->content_length > ECHO_MAX) {
        conn_bad(c, 413, "echo body too large");
        return -1;
    }
    if (r->expect_continue && (r->chunked || r->content_length > 0))
        buf_adds(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    c->state = ST_BODY;
    return 1;
}

/* Processes buffered requests until it must wait: for bytes, for a timer, for a streamed answer
 * to go out, or for the socket to take what is queued. */
static void
conn_process(struct conn *c)
{
    while (!c->closing && c->state != ST_WS && !conn_paused(c)) {
        if (c->state == ST_HEAD && head_take(c) <= 0)
            return;
        if (c->state == ST_BODY) {
            const char *why = NULL;
            int r = body_feed(c, &why);
            if (r == 0)
                return;
            if (r > 1) {
                conn_bad(c, (unsigned)r, why);
                return;
            }
            c->state = ST_HEAD;
            record_request(c);
            respond(c);
        }
    }
    if (c->state == ST_WS && !c->closing) {
        /* raw echo; read EOF sets close_after, but what was read still goes back */
        size_t n = buf_live(&c->in);
        if (n > 0 && buf_live(&c->out) <= OUT_BACKLOG) {
            buf_add(&c->out, c->in.data + c->in.off, n);
            c->in.off += n;
        }
    }
}

/* Writes what is queued, then the streamed body as far as the socket takes it. Returns 1 when
 * nothing is left to write now, 0 when the socket is full, -1 when the connection is dead. */
static int
conn_flush(struct conn *c)
{
    for (;;) {
        struct buf *o = &c->out;
        if (c->gen == GEN_CHUNKED && buf_live(o) < 4096) {
            for (int i = 0; i < 64 && c->gen == GEN_CHUNKED; i++) {
                if (c->gen_left == 0) {
                    buf_adds(o, "0\r\n\r\n");
                    c->gen = GEN_NONE;
                    break;
                }
                size_t n = c->gen_left < CHUNK_SIZE ? (size_t)c->gen_left : CHUNK_SIZE;
                buf_addx(o, n);
                buf_adds(o, "\r\n");
                buf_add(o, g_pattern + c->gen_pos % 26, n);
                buf_adds(o, "\r\n");
                c->gen_pos += n;
                c->gen_left -= n;
            }
        }
        struct iovec iov[2];
        int niov = 0;
        size_t queued = buf_live(o);
        if (queued > 0)
            iov[niov++] = (struct iovec){o->data + o->off, queued};
        if (c->gen == GEN_BYTES) {
            size_t n = c->gen_left < STREAM_SLICE ? (size_t)c->gen_left : STREAM_SLICE;
            iov[niov++] = (struct iovec){g_pattern + c->gen_pos % 26, n};
        }
        if (niov == 0)
            return 1;
        ssize_t w = conn_send(c, iov, niov);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return -1;
        }
        size_t done = (size_t)w;
        size_t from_out = done < queued ? done : queued;
        o->off += from_out;
        done -= from_out;
        if (c->gen == GEN_BYTES) {
            c->gen_pos += done;
            c->gen_left -= done;
            if (c->gen_left == 0)
                c->gen = GEN_NONE;
        }
        if (from_out < queued || (c->gen == GEN_BYTES && done < iov[niov - 1].iov_len))
            return 0; /* short write: the socket is full */
    }
}

/* Starts closing after the last answer: no more writes from us, drain what the peer still
 * sends (closing with unread bytes would reset the connection and could destroy the answer on
 * its way), close at EOF or after LINGER_MS. */
static void
conn_linger(struct conn *c)
{
    if (c->read_eof) {
        conn_close(c);
        return;
    }
    tls_close_notify(c); /* from here on only raw bytes are read, and thrown away */
    shutdown(c->fd, SHUT_WR);
    c->state = ST_LINGER;
    c->in.off = c->in.len = 0;
    timer_set(c, TIMER_LINGER, LINGER_MS);
    conn_update_events(c); /* after shutdown() the socket always polls writable */
}

/* Moves a connection forward after anything happened to it: a read, a timer, writability. */
static void
conn_run(struct conn *c)
{
    if (c->state == ST_LINGER)
        return;
    for (;;) {
        conn_process(c);
        if (c->closing)
            return;
        int r = conn_flush(c);
        if (r < 0) {
            conn_close(c);
            return;
        }
        if (r == 0)
            break;
        if (c->timer != TIMER_NONE || c->gen != GEN_NONE)
            break;
        if (c->close_after) {
            conn_linger(c);
            return;
        }
        if (c->read_eof) {
            /* all answered; whatever is left is an incomplete request */
            conn_process(c);
            if (buf_live(&c->out) == 0 && c->gen == GEN_NONE && c->timer == TIMER_NONE &&
                !c->close_after) {
                conn_close(c);
                return;
            }
            continue;
        }
        /* stopped for a full out buffer that is now empty: go on if there is more */
        if (buf_live(&c->in) == 0)
            break;
        if (c->state == ST_HEAD &&
            memmem(c->in.data + c->in.off, buf_live(&c->in), "\r\n\r\n", 4) == NULL)
            break;
        if (c->state == ST_BODY)
            break;
    }
    conn_update_events(c);
}

/* Drives the handshake one step. Returns 1 once it is done (the connection is then in
 * ST_HEAD), 0 while it waits for the socket (events updated), -1 when it failed (closed). */
static int
tls_handshake(struct conn *c)
{
    c->tls_read_wants_write = false;
    int r = SSL_accept(c->ssl);
    if (r == 1) {
        c->state = ST_HEAD;
        c->tls_resumed = SSL_session_reused(c->ssl) == 1;
        return 1;
    }
    int err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        c->tls_read_wants_write = err == SSL_ERROR_WANT_WRITE;
        conn_update_events(c);
        return 0;
    }
    tls_fail(c, err, "handshake");
    conn_close(c);
    return -1;
}

static void
conn_on_read(struct conn *c)
{
    if (c->state == ST_LINGER) {
        char sink[16384];
        ssize_t n = read(c->fd, sink, sizeof(sink));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(c);
        return;
    }
    /* once done, read at once: the first request often comes with the client's Finished */
    if (c->state == ST_HANDSHAKE && tls_handshake(c) <= 0)
        return;
    bool write_waited = c->tls_write_wants_read;
    struct buf *in = &c->in;
    buf_reserve(in, IN_CHUNK);
    ssize_t n = conn_recv(c, in->data + in->len, in->cap - in->len);
    if (n > 0) {
        in->len += (size_t)n;
    } else if (n == 0) {
        c->read_eof = true;
        if (c->state == ST_WS)
            c->close_after = true;
    } else if (errno == EAGAIN || errno == EINTR) {
        /* on TLS what we wait for may have changed, and a write may have waited for this */
        if (write_waited)
            conn_run(c);
        else if (c->ssl != NULL)
            conn_update_events(c);
        return;
    } else {
        conn_close(c);
        return;
    }
    conn_run(c);
}

static void
conn_on_writable(struct conn *c)
{
    if (c->tls_read_wants_write)
        conn_on_read(c); /* a handshake step or a read that waited to write; it runs the rest */
    else
        conn_run(c);
}

/* Reads the TLS connections queued by tls_events(), once each: those that ask again go on the
 * next turn's list, so that a fast sender cannot keep the loop from epoll. */
static void
tls_again_run(void)
{
    struct conn *list = g_tls_again;
    g_tls_again = NULL;
    for (struct conn *c = list; c; c = c->tls_qnext)
        c->tls_queued = false; /* off every list: closing one must not touch this one */
    while (list != NULL) {
        struct conn *c = list;
        list = c->tls_qnext; /* before conn_on_read(), which may queue c again */
        c->tls_qprev = c->tls_qnext = NULL;
        if (!c->closing && c->state != ST_LINGER && (c->events & EPOLLIN))
            conn_on_read(c);
    }
}

static void
conn_on_timer(struct conn *c)
{
    enum timer_kind kind = c->timer;
    timer_clear(c);
    switch (kind) {
    case TIMER_DELAY:
        resp_default(c);
        break;
    case TIMER_SLOW:
        buf_addc(&c->out, g_pattern[c->gen_pos % 26]);
        c->gen_pos++;
        if (--c->gen_left > 0)
            timer_set(c, TIMER_SLOW, c->slow_ms);
        else
            c->gen = GEN_NONE;
        break;
    case TIMER_LINGER:
        conn_close(c);
        return;
    case TIMER_NONE:
        return;
    }
    conn_run(c);
}

static void
timers_run(void)
{
    if (g_timers == NULL)
        return;
    uint64_t now = now_ms();
    struct conn *c = g_timers;
    while (c) {
        struct conn *next = c->tnext;
        if (c->deadline_ms <= now && !c->closing) {
            conn_on_timer(c);
            next = g_timers; /* the list may have changed under us: rescan */
            now = now_ms();
        }
        c = next;
    }
}

static int
timers_timeout(void)
{
    if (g_timers == NULL)
        return -1;
    uint64_t now = now_ms(), first = UINT64_MAX;
    for (struct conn *c = g_timers; c; c = c->tnext)
        if (c->deadline_ms < first)
            first = c->deadline_ms;
    return first <= now ? 0 : (int)(first - now);
}

static void
listener_accept(struct listener *l)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, "origin: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            return;
        }
        if (l->tls) {
            c->ssl = SSL_new(g_tls_ctx);
            if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
                SSL_free(c->ssl);
                ERR_clear_error();
                free(c);
                close(fd);
                return;
            }
            SSL_set_accept_state(c->ssl);
            c->state = ST_HANDSHAKE;
        }
        c->kind = OBJ_CONN;
        c->fd = fd;
        c->id = ++g_conn_counter;
        c->events = EPOLLIN;
        c->anext = g_conns;
        if (g_conns)
            g_conns->aprev = c;
        g_conns = c;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &e) < 0)
            die("epoll_ctl");
    }
}

/* ---- start-up ---------------------------------------------------------------------------- */

static void
listener_open(struct listener *l, const char *spec)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t slen;
    char host[64];
    const char *colon = strrchr(spec, ':');
    const char *hs = spec, *he = colon;
    bool v6 = spec[0] == '[';
    if (v6) {
        hs = spec + 1;
        he = strchr(spec, ']');
        if (he == NULL || he + 1 != colon)
            colon = NULL;
    }
    uint64_t port;
    if (colon == NULL || he == NULL || (size_t)(he - hs) >= sizeof(host) ||
        parse_u64(colon + 1, strlen(colon + 1), 65535, &port) != strlen(colon + 1) ||
        colon[1] == '\0') {
        fprintf(stderr, "origin: bad listen address '%s' (want ADDR:PORT or [ADDR6]:PORT)\n", spec);
        exit(2);
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            goto bad_addr;
        slen = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            goto bad_addr;
        slen = sizeof(*a);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (v6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, slen) < 0) {
        fprintf(stderr, "origin: bind %s: %s\n", spec, strerror(errno));
        exit(1);
    }
    if (listen(fd, 4096) < 0)
        die("listen");
    getsockname(fd, (struct sockaddr *)&ss, &slen);
    unsigned real =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    snprintf(l->text, sizeof(l->text), v6 ? "[%s]:%u" : "%s:%u", host, real);
    l->kind = OBJ_LISTENER;
    l->fd = fd;
    return;
bad_addr:
    fprintf(stderr, "origin: bad address literal '%s'\n", host);
    exit(2);
}

static void
tls_die(const char *what)
{
    char msg[256];
    ERR_error_string_n(ERR_peek_error(), msg, sizeof(msg));
    fprintf(stderr, "origin: %s: %s\n", what, msg);
    exit(1);
}

/* Accepts http/1.1 when the client offers it; a client that offers ALPN without it gets a
 * no_application_protocol alert rather than a protocol it did not ask for. */
static int
tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *out_len,
                const unsigned char *in, unsigned in_len, void *arg)
{
    for (unsigned i = 0; i < in_len; i += 1u + in[i]) {
        if (in[i] == 8 && i + 9 <= in_len && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *out_len = 8;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Accepts every server name. That there is a callback at all is what makes OpenSSL keep the
 * name in the session, without which SSL_get_servername() is NULL when TLS 1.2 resumes. */
static int
tls_servername_accept(SSL *ssl, int *alert, void *arg)
{
    return SSL_TLSEXT_ERR_OK;
}

/* The one context every TLS listener shares. Resumption works both ways a client may ask:
 * stateless tickets (OpenSSL's default) and TLS 1.2 session ids (the server-side cache). The
 * session id context names what a session was verified for: without one, OpenSSL fails every
 * handshake (internal_error) once -A verifies client certificates. */
static SSL_CTX *
tls_ctx_new(const char *cert, const char *key, const char *ca)
{
    static const unsigned char sid_ctx[] = "meridian-test-origin";
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        tls_die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* a client that just closes is an end of stream, as on plain TCP */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1); /* fewer read()s; see tls_events for the price */
    if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1)
        tls_die("SSL_CTX_set_session_id_context");
    SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername_accept);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        tls_die(cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        tls_die(key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        tls_die("the key does not match the certificate");
    if (ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
            tls_die(ca);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names == NULL)
            tls_die(ca);
        SSL_CTX_set_client_CA_list(ctx, names); /* tells clients which certificate to send */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
}

static void
usage(int status)
{
    fprintf(status ? stderr : stdout,
            "usage: origin [-l ADDR:PORT]... [-L ADDR:PORT]... (at least one)\n"
            "              [-c CERT_PEM -k KEY_PEM [-A CA_PEM]] [-n NAME] [-r RECORD_FILE] [-q]\n"
            "  -l  listen address: IPv4 literal or [IPv6 literal], port (0 = any free one)\n"
            "  -L  TLS listen address, same syntax; needs -c and -k\n"
            "  -c  certificate chain (PEM) for the TLS listeners\n"
            "  -k  private key (PEM) for the TLS listeners\n"
            "  -A  CA certificates (PEM): TLS clients must present a certificate they verify\n"
            "  -n  name answered in the body and in X-Origin (default: origin)\n"
            "  -r  append one JSON line per request received to this file\n"
            "  -q  quiet: no record file (benchmark mode)\n");
    exit(status);
}

int
main(int argc, char **argv)
{
    const char *specs[MAX_LISTENERS];
    bool spec_tls[MAX_LISTENERS];
    int nspecs = 0, ntls = 0;
    const char *record = NULL, *cert = NULL, *key = NULL, *ca = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "l:L:c:k:A:n:r:qh")) != -1) {
        switch (opt) {
        case 'l':
        case 'L':
            if (nspecs == MAX_LISTENERS) {
                fprintf(stderr, "origin: at most %d listeners\n", MAX_LISTENERS);
                return 2;
            }
            spec_tls[nspecs] = opt == 'L';
            ntls += opt == 'L';
            specs[nspecs++] = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'A':
            ca = optarg;
            break;
        case 'n':
            g_name = optarg;
            break;
        case 'r':
            record = optarg;
            break;
        case 'q':
            g_quiet = true;
            break;
        case 'h':
            usage(0);
            break;
        default:
            usage(2);
        }
    }
    if (nspecs == 0 || optind != argc)
        usage(2);
    if (ntls > 0 && (cert == NULL || key == NULL)) {
        fprintf(stderr, "origin: -L needs -c CERT_PEM and -k KEY_PEM\n");
        return 2;
    }
    if (ntls == 0 && (cert != NULL || key != NULL || ca != NULL)) {
        fprintf(stderr, "origin: -c, -k and -A only go with -L\n");
        return 2;
    }
    if (ntls > 0)
        g_tls_ctx = tls_ctx_new(cert, key, ca);
    g_name_len = strlen(g_name);
    if (g_name_len == 0 || g_name_len > 100 || strpbrk(g_name, "\r\n") != NULL) {
        fprintf(stderr, "origin: the name must be 1 to 100 characters on one line\n");
        return 2;
    }
    if (record != NULL && !g_quiet) {
        g_record_fd = open(record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (g_record_fd < 0)
            die(record);
    }

    for (size_t i = 0; i < sizeof(g_pattern); i++)
        g_pattern[i] = (char)('a' + i % 26);
    int n = snprintf(g_default_prefix, sizeof(g_default_prefix),
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "X-Origin: %s\r\nX-Conn-Id: ",
                     g_name_len + 1, g_name);
    g_default_prefix_len = (size_t)n;

    /* as many descriptors as we may have: the benchmark opens thousands */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        die("sigprocmask");
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        die("signalfd");

    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_epfd < 0)
        die("epoll_create1");
    static int signal_kind = OBJ_SIGNAL;
    struct epoll_event se = {.events = EPOLLIN, .data.ptr = &signal_kind};
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, sfd, &se) < 0)
        die("epoll_ctl");

    static struct listener listeners[MAX_LISTENERS];
    for (int i = 0; i < nspecs; i++) {
        listener_open(&listeners[i], specs[i]);
        listeners[i].tls = spec_tls[i];
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &listeners[i]};
        if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, listeners[i].fd, &e) < 0)
            die("epoll_ctl");
    }
    for (int i = 0; i < nspecs; i++)
        printf("ready %s %s%s\n", g_name, listeners[i].text, listeners[i].tls ? " tls" : "");
    fflush(stdout);

    struct epoll_event events[256];
    for (;;) {
        int ne = epoll_wait(g_epfd, events, 256, g_tls_again ? 0 : timers_timeout());
        if (ne < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < ne; i++) {
            int kind = *(int *)events[i].data.ptr;
            if (kind == OBJ_SIGNAL)
                goto out;
            if (kind == OBJ_LISTENER) {
                listener_accept(events[i].data.ptr);
                continue;
            }
            struct conn *c = events[i].data.ptr;
            uint32_t ev = events[i].events;
            if (c->closing)
                continue;
            if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_on_read(c);
            /* HUP without our own shutdown, or ERR: the peer is gone, nothing can reach it */
            if ((ev & (EPOLLHUP | EPOLLERR)) && !c->closing && c->state != ST_LINGER) {
                conn_close(c);
                continue;
            }
            if ((ev & EPOLLOUT) && !c->closing && c->state != ST_LINGER)
                conn_on_writable(c);
        }
        timers_run();
        tls_again_run();
        conn_reap();
    }
out:
    /* everything freed, so that a leak checker run over the tests sees real leaks only */
    conn_reap();
    while (g_conns) {
        close(g_conns->fd);
        conn_free(g_conns);
    }
    buf_free(&g_rec);
    SSL_CTX_free(g_tls_ctx);
    return 0;
}
