/* SPDX-License-Identifier: MIT */
/* libFuzzer driver for a server-side HTTP/2 session, in the shape of h2o's fuzz/ drivers:
 * the input, after the client connection preface, is what a client sends on an h2c
 * connection to a real worker. The worker's event loop runs here, on this thread; its one
 * region's backend is a stand-in origin on the same loop, which answers every request, so
 * that our own stream, flow-control, header-limit and reset code runs (h2_conn.c, stream.c,
 * upstream.c), not only nghttp2's.
 *
 * Each input gets a new TCP connection on loopback. Its bytes are sent, the loop runs until
 * nothing moves any more (no byte to the client, no request at the origin, for a few loop
 * turns: no timer is waited for), then the client goes away, and the loop runs until the
 * worker has closed the connection. Invariants: the worker then holds no connection and no
 * stream, and every response frame header it sent was well formed.
 *
 * The origin chooses its answer by the request's path, so that the fuzzer can reach each
 * kind of response: "/N" (digits) a body of N bytes (at most 1 MiB, more than any window),
 * "/chunked" a chunked body with a trailer, "/close" a body ended by closing, "/204" and
 * "/304" no body; anything else 16 bytes. HEAD gets the head only.
 *
 * The process around the worker (server.c) is stood in for by the few server_* functions
 * the worker calls: one published generation, never stopping, no connection limit. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "cfg.h"
#include "cfg_load.h"
#include "h2_conn.h"
#include "health.h"
#include "log.h"
#include "server.h"
#include "worker.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the process, stood in for ---- */

struct server {
    struct cfg *cfg;
};

struct cfg *
server_current_cfg(struct server *srv)
{
    return cfg_ref(srv->cfg);
}

void
server_release_cfg(struct cfg *cfg)
{
    cfg_unref(cfg);
}

bool
server_is_stopping(struct server *srv)
{
    return false;
}

bool
server_is_hurrying(struct server *srv)
{
    return false;
}

bool
server_conn_has_room(struct server *srv)
{
    return true;
}

void
server_conn_added(struct server *srv)
{
}

void
server_conn_release(struct server *srv, struct worker *self)
{
}

unsigned
server_conn_count(struct server *srv, unsigned *max)
{
    *max = 0;
    return 0;
}

unsigned
server_worker_count(const struct server *srv)
{
    return 1;
}

/* ---- the stand-in origin ---- */

#define ORIGIN_IN_MAX (256 * 1024)
#define ORIGIN_BODY_MAX (1024 * 1024)

struct origin_conn {
    int fd;
    struct event *ev;
    char *in;
    size_t inlen;
    char *out; /* what is still to be written */
    size_t outlen, outoff;
    bool close_after; /* "/close": the body ends when the connection does */
};

static struct event_base *base;
static int origin_lfd;
static struct event *origin_accept_ev;
static uint64_t origin_requests; /* progress as seen from the origin */
static char filler[ORIGIN_BODY_MAX];

static void
origin_free(struct origin_conn *oc)
{
    event_free(oc->ev);
    close(oc->fd);
    free(oc->in);
    free(oc->out);
    free(oc);
}

static void
origin_append(struct origin_conn *oc, const char *p, size_t n)
{
    char *out = realloc(oc->out, oc->outlen + n);
    CHECK(out != NULL);
    memcpy(out + oc->outlen, p, n);
    oc->out = out;
    oc->outlen += n;
}

/* The header's value in head [p, end), or NULL. */
static const char *
header_value(const char *p, const char *end, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (const char *line = memchr(p, '\n', (size_t)(end - p)); line && line + 1 < end;
         line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
        const char *s = line + 1;
        if ((size_t)(end - s) > nlen && strncasecmp(s, name, nlen) == 0 && s[nlen] == ':') {
            const char *v = s + nlen + 1, *e = memchr(v, '\r', (size_t)(end - v));
            while (v < end && *v == ' ')
                v++;
            *len = e ? (size_t)(e - v) : 0;
            return v;
        }
    }
    return NULL;
}

/* Answers the request whose head is [p, head_end). */
static void
origin_answer(struct origin_conn *oc, const char *p, const char *head_end)
{
    char head[256];
    bool is_head = strncmp(p, "HEAD ", 5) == 0;
    const char *path = memchr(p, ' ', (size_t)(head_end - p));
    size_t n = 16;
    path = path ? path + 1 : head_end;
    origin_requests++;
    if (strncmp(path, "/chunked", 8) == 0) {
        origin_append(oc, head,
                      (size_t)snprintf(head, sizeof(head),
                                       "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
                                       "trailer: x-check\r\n\r\n"));
        if (!is_head)
            origin_append(oc, "5\r\nhello\r\n3\r\nabc\r\n0\r\nx-check: 1\r\n\r\n", 36);
        return;
    }
    if (strncmp(path, "/204", 4) == 0 || strncmp(path, "/304", 4) == 0) {
        origin_append(oc, head,
                      (size_t)snprintf(head, sizeof(head), "HTTP/1.1 %.3s X\r\netag: \"e\"\r\n\r\n",
                                       path + 1));
        return;
    }
    if (strncmp(path, "/close", 6) == 0) {
        origin_append(
            oc, head,
            (size_t)snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"));
        if (!is_head)
            origin_append(oc, filler, 100);
        oc->close_after = true;
        return;
    }
    if (path[0] == '/' && path[1] >= '0' && path[1] <= '9') {
        n = strtoul(path + 1, NULL, 10);
        if (n > ORIGIN_BODY_MAX)
            n = ORIGIN_BODY_MAX;
    }
    origin_append(oc, head,
                  (size_t)snprintf(head, sizeof(head),
                                   "HTTP/1.1 200 OK\r\ncontent-length: %zu\r\n"
                                   "content-type: text/plain\r\n\r\n",
                                   n));
    if (!is_head)
        origin_append(oc, filler, n);
}

/* Takes complete requests off oc->in: a head, then its body by content-length or by
 * chunks (read loosely: up to the last chunk and its trailers; a chunk whose data holds
 * "\r\n0\r\n" misleads it, which only makes an odd origin). Returns false to wait. */
static bool
origin_take_request(struct origin_conn *oc)
{
    char *end = memmem(oc->in, oc->inlen, "\r\n\r\n", 4);
    if (!end)
        return false;
    const char *head_end = end + 4;
    size_t vlen, body = 0;
    const char *v;
    if ((v = header_value(oc->in, head_end, "content-length", &vlen)) != NULL) {
        body = strtoul(v, NULL, 10);
        if (body > ORIGIN_IN_MAX)
            return false; /* more than it can hold: it waits (Meridian caps bodies anyway) */
    } else if ((v = header_value(oc->in, head_end, "transfer-encoding", &vlen)) != NULL) {
        /* The last chunk ("0" at a line's start), then trailers up to an empty line. */
        size_t rest = oc->inlen - (size_t)(head_end - oc->in);
        const char *last = rest >= 3 && memcmp(head_end, "0\r\n", 3) == 0
                               ? head_end
                               : memmem(head_end, rest, "\r\n0\r\n", 5);
        if (!last)
            return false;
        last += last == head_end ? 0 : 2;
        const char *trailers_end =
            memmem(last + 1, rest - (size_t)(last + 1 - head_end), "\r\n\r\n", 4);
        if (!trailers_end)
            return false;
        body = (size_t)(trailers_end + 4 - head_end);
    }
    size_t total = (size_t)(head_end - oc->in) + body;
    if (total > oc->inlen)
        return false;
    origin_answer(oc, oc->in, head_end);
    memmove(oc->in, oc->in + total, oc->inlen - total);
    oc->inlen -= total;
    return true;
}

static void
origin_conn_cb(evutil_socket_t fd, short what, void *arg)
{
    struct origin_conn *oc = arg;
    if (what & EV_READ) {
        for (;;) {
            if (oc->inlen == ORIGIN_IN_MAX)
                oc->inlen = 0; /* a stand-in: it forgets what it cannot frame */
            ssize_t n = read(fd, oc->in + oc->inlen, ORIGIN_IN_MAX - oc->inlen);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                origin_free(oc);
                return;
            }
            if (n < 0)
                break;
            oc->inlen += (size_t)n;
        }
        while (!oc->close_after && origin_take_request(oc))
            ;
    }
    while (oc->outoff < oc->outlen) {
        ssize_t n = write(fd, oc->out + oc->outoff, oc->outlen - oc->outoff);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            origin_free(oc);
            return;
        }
        oc->outoff += (size_t)n;
    }
    if (oc->outoff == oc->outlen) {
        oc->outoff = oc->outlen = 0;
        if (oc->close_after) {
            origin_free(oc);
            return;
        }
    }
    event_del(oc->ev);
    event_assign(oc->ev, base, fd, EV_READ | EV_PERSIST | (oc->outlen ? EV_WRITE : 0),
                 origin_conn_cb, oc);
    event_add(oc->ev, NULL);
}

static void
origin_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    int fd;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        struct origin_conn *oc = calloc(1, sizeof(*oc));
        CHECK(oc != NULL);
        oc->fd = fd;
        oc->in = malloc(ORIGIN_IN_MAX);
        CHECK(oc->in != NULL);
        oc->ev = event_new(base, fd, EV_READ | EV_PERSIST, origin_conn_cb, oc);
        event_add(oc->ev, NULL);
    }
}

/* ---- the worker ---- */

static struct server srv;
/* FUZZ_H2_TRACE=1 in the environment: one line per input on what it led to, to see that
 * requests reach the origin and answers come back (run it on the corpus files). */
static bool trace;
static struct worker worker;
static struct health_registry *health;
static struct sockaddr_in listen_addr;

static int
listen_loopback(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(*addr);
    CHECK(bind(fd, (struct sockaddr *)addr, sizeof(*addr)) == 0);
    CHECK(listen(fd, 64) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)addr, &len) == 0);
    return fd;
}

/* Limits small enough that inputs of a few KB reach them: streams, header list, resets,
 * header count, body size; the window is the default. */
static const char config_fmt[] = "workers: 1\n"
                                 "log_level: error\n"
                                 "listeners:\n"
                                 "  - { name: h2c, address: \"127.0.0.1:1\", h2c: true }\n"
                                 "limits: { max_header_bytes: 4k, max_headers: 20, "
                                 "max_body_bytes: 64k }\n"
                                 "http2: { max_concurrent_streams: 8, max_header_list_size: 2k, "
                                 "max_resets_per_10s: 50 }\n"
                                 "regions:\n"
                                 "  - name: here\n"
                                 "    location: { lat: 50.11, lon: 8.68 }\n"
                                 "    backends: [\"127.0.0.1:%u\"]\n"
                                 "    default: true\n";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char text[sizeof(config_fmt) + 16], *errors = NULL;
    struct sockaddr_in origin_addr;

    signal(SIGPIPE, SIG_IGN);
    trace = getenv("FUZZ_H2_TRACE") != NULL;
    memset(filler, 'x', sizeof(filler));
    log_set_level(CFG_LOG_ERROR);
    origin_lfd = listen_loopback(&origin_addr);
    int n = snprintf(text, sizeof(text), config_fmt, ntohs(origin_addr.sin_port));
    srv.cfg = cfg_load_text("fuzz_h2_session.yaml", text, (size_t)n, &errors);
    if (!srv.cfg) {
        fprintf(stderr, "%s", errors);
        abort();
    }
    /* What server_apply() does for a generation, for the parts a plain h2c listener
     * uses: its socket, the region counters, backend health. */
    struct cfg_listener *l = &srv.cfg->listeners[0];
    l->fds = malloc(sizeof(int));
    CHECK(l->fds != NULL);
    l->fds[0] = listen_loopback(&listen_addr);
    struct cfg_region *r = &srv.cfg->regions[0];
    r->stats = aligned_alloc(64, sizeof(*r->stats) * 1);
    CHECK(r->stats != NULL);
    memset(r->stats, 0, sizeof(*r->stats));
    health = health_registry_new(1);
    CHECK(health != NULL && health_apply(health, srv.cfg) == 0);
    srv.cfg->generation = 1;

    CHECK(worker_init(&worker, &srv, 0) == 0);
    base = worker.base;
    origin_accept_ev = event_new(base, origin_lfd, EV_READ | EV_PERSIST, origin_accept_cb, NULL);
    event_add(origin_accept_ev, NULL);
    worker_wake(&worker); /* its first loop turn adopts the generation */
    event_base_loop(base, EVLOOP_NONBLOCK);
    CHECK(worker.snap != NULL);
    return 0;
}

/* The client's end of the connection, and where it is in the worker's frames. */
struct client {
    int fd;
    uint8_t pending[9]; /* a frame header split across reads */
    size_t npending;
    size_t skip; /* payload bytes of the current frame still to come */
    bool preface_seen;
    uint64_t frames, received;
    char types[64]; /* for the trace: D(ATA) H(EADERS) R(ST) S(ETTINGS) P(ING) G(OAWAY) ... */
};

/* Reads what the worker sent and checks its frame headers: SETTINGS first, then only the
 * frame types a server sends (no PUSH_PROMISE: we never push). Returns the bytes read, or
 * -1 once the worker closed. */
static ssize_t
client_drain(struct client *cl)
{
    uint8_t buf[65536];
    ssize_t total = 0;
    for (;;) {
        ssize_t n = read(cl->fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return -1;
        if (n < 0)
            return total;
        total += n;
        for (size_t i = 0; i < (size_t)n;) {
            if (cl->skip) {
                size_t k = cl->skip < (size_t)n - i ? cl->skip : (size_t)n - i;
                cl->skip -= k;
                i += k;
                continue;
            }
            cl->pending[cl->npending++] = buf[i++];
            if (cl->npending < 9)
                continue;
            uint32_t len =
                (uint32_t)cl->pending[0] << 16 | (uint32_t)cl->pending[1] << 8 | cl->pending[2];
            uint8_t type = cl->pending[3];
            CHECK(cl->preface_seen || type == 4);
            CHECK(type <= 9 && type != 2 && type != 5); /* not PRIORITY, not PUSH_PROMISE */
            cl->preface_seen = true;
            if (trace && cl->frames < sizeof(cl->types) - 1)
                cl->types[cl->frames] = "DHPRSUPGWC"[type];
            cl->frames++;
            cl->received += 9 + len;
            cl->skip = len;
            cl->npending = 0;
        }
    }
}

static void
run_turn(void)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    struct client cl = {.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    uint64_t requests_before = origin_requests;
    CHECK(cl.fd >= 0);
    int one = 1;
    setsockopt(cl.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    CHECK(connect(cl.fd, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) == 0 ||
          errno == EINPROGRESS);

    /* The preface, then the input, as fast as the worker takes it. */
    bool closed = false;
    const uint8_t *parts[2] = {(const uint8_t *)preface, data};
    size_t lens[2] = {sizeof(preface) - 1, size};
    for (int k = 0; k < 2 && !closed; k++) {
        size_t off = 0;
        for (int stalls = 0; off < lens[k] && stalls < 1000;) {
            ssize_t n = send(cl.fd, parts[k] + off, lens[k] - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += (size_t)n;
                stalls = 0;
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EINTR && errno != ENOTCONN) {
                closed = true; /* the worker closed on us: the rest is not read anyway */
                break;
            }
            run_turn();
            if (client_drain(&cl) < 0) {
                closed = true;
                break;
            }
            stalls++;
        }
    }

    /* Until nothing moves: no byte to the client and no request at the origin for a few
     * loop turns in a row (everything is on this loop and on loopback, where a write is
     * readable at once at the other end). */
    for (int quiet = 0, turns = 0; !closed && quiet < 4 && turns < 10000; turns++) {
        uint64_t requests = origin_requests;
        run_turn();
        ssize_t n = client_drain(&cl);
        if (n < 0)
            closed = true;
        quiet = (n == 0 && requests == origin_requests) ? quiet + 1 : 0;
    }

    /* The client goes away (with unread data: a reset); the worker must notice, end the
     * connection's streams and free it. */
    close(cl.fd);
    for (int turns = 0; (worker.nconns > 0 || worker.reap != NULL) && turns < 1000; turns++)
        run_turn();
    if (trace)
        fprintf(stderr,
                "fuzz_h2_session: %zu bytes in, %" PRIu64 " requests at the origin, %" PRIu64
                " frames (%" PRIu64 " bytes) out: %s\n",
                size, origin_requests - requests_before, cl.frames, cl.received, cl.types);
    CHECK(worker.nconns == 0);
    CHECK(atomic_load(&worker.stats.streams) == 0);
    return 0;
}
