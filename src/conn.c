/* SPDX-License-Identifier: MIT */
/* Client connection plumbing: accept, events, write-out, deferred free. */
#include "conn.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "h1_conn.h"
#include "h2_conn.h"
#include "log.h"
#include "proxy_proto.h"
#include "sock.h"
#include "tls.h"
#include "stream.h"
#include "worker.h"

#define ACCEPT_BATCH 64 /* accepts per wake-up, so one busy listener cannot starve I/O */
#define CONN_FREE_MAX 4096

_Static_assert(sizeof(struct conn) <= 400, "struct conn is the per-idle-connection cost");

static void conn_read_cb(evutil_socket_t fd, short what, void *arg);
static void conn_begin(struct conn *c);
static void conn_write_cb(evutil_socket_t fd, short what, void *arg);

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    w->reap_scheduled = false;
    while (w->reap) {
        struct conn *c = w->reap;
        w->reap = c->next_reap;
        if (w->nfree_conns < CONN_FREE_MAX) {
            c->next = w->conn_free;
            w->conn_free = c;
            w->nfree_conns++;
        } else {
            free(c);
        }
    }
    worker_conn_gone(w);
}

void
conn_worker_init(struct worker *w)
{
    event_assign(&w->reap_ev, w->base, -1, 0, reap_cb, w);
}

void
conn_worker_deinit(struct worker *w)
{
    event_del(&w->reap_ev);
    reap_cb(-1, 0, w);
    while (w->conn_free) {
        struct conn *c = w->conn_free;
        w->conn_free = c->next;
        free(c);
    }
    w->nfree_conns = 0;
}

static struct conn *
conn_alloc(struct worker *w)
{
    struct conn *c = w->conn_free;
    if (c) {
        w->conn_free = c->next;
        w->nfree_conns--;
    } else {
        c = malloc(sizeof(*c));
        if (!c)
            return NULL;
    }
    memset(c, 0, offsetof(struct conn, rev));
    return c;
}

void
conn_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct listener_rt *ls = arg;
    struct worker *w = ls->w;
    for (int i = 0; i < ACCEPT_BATCH && w->accepting; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        if (!worker_conn_admit(w))
            return; /* the process is at limits.max_connections */
        int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                worker_accept_backoff(w, errno);
            }
            return;
        }
        worker_conn_added(w);
        struct conn *c = conn_alloc(w);
        if (!c) {
            log_error("out of memory for a connection");
            close(fd);
            worker_conn_release(w);
            return;
        }
        c->fd = fd;
        c->w = w;
        c->ls = ls;
        c->id = w->next_conn_id++;
        memcpy(&c->peer, &peer, plen < sizeof(c->peer) ? plen : sizeof(c->peer));
        event_assign(&c->rev, w->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->nconns++;
        atomic_fetch_add_explicit(&w->stats.accepted, 1, memory_order_relaxed);
        atomic_store_explicit(&w->stats.active_conns, w->nconns, memory_order_relaxed);
        if (ls->proxy_protocol) {
            /* The header must come within the header timeout, like a request head. */
            c->proxy_pending = true;
            conn_deadline_start(c, w->snap->tv_client_header,
                                w->snap->cfg->timeouts.client_header_ms);
        } else {
            conn_begin(c);
        }
    }
}

/* The connection is ours to talk to: start TLS, or HTTP on a plain listener. */
static void
conn_begin(struct conn *c)
{
    struct worker *w = c->w;
    struct listener_rt *ls = c->ls;
    if (ls->tls) {
        c->ssl = tls_conn_new(ls->tls, c->fd);
        if (!c->ssl) {
            log_error("out of memory for a TLS connection");
            conn_close(c);
            return;
        }
        c->tls_snap = worker_snapshot_use(w);
        c->tls_handshaking = true;
        /* The whole handshake must fit in the header timeout. */
        conn_deadline_start(c, w->snap->tv_client_header, w->snap->cfg->timeouts.client_header_ms);
    } else {
        c->h2c_allowed = ls->h2c;
        h1_conn_start(c);
    }
}

/* Read the PROXY protocol header, and not a byte more: what follows is TLS or HTTP and
 * belongs to them. What is waiting is peeked; while the parser says the header is not
 * complete, everything received is part of it, so it is read into c->in (a level-
 * triggered event would otherwise fire again at once for bytes we left there); once it
 * is complete, exactly the rest of it is read. A header that is bad, too long, late, or
 * missing (a client speaking HTTP at once) closes the connection without a word: the
 * sender is a balancer that was misconfigured or someone who is not one. */
static void
conn_proxy_continue(struct conn *c)
{
    char head[PROXY_PROTO_MAX_BYTES];
    uint32_t have = buf_len(&c->in);
    if (have)
        memcpy(head, buf_data(&c->in), have); /* have < sizeof(head): see below */
    ssize_t n;
    do
        n = recv(c->fd, head + have, sizeof(head) - have, MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        if (!conn_deadline_rearm(c))
            conn_close(c);
        return;
    }
    if (n <= 0) {
        conn_close(c);
        return;
    }
    struct proxy_proto_result pp;
    int r = proxy_proto_parse(head, have + (size_t)n, &pp);
    if (r == PROXY_PROTO_PARTIAL && have + (size_t)n < sizeof(head)) {
        /* All of it is header: take it off the socket. */
        if ((c->in.mem == NULL && buf_take(&c->w->bufs, &c->in) < 0) ||
            read(c->fd, buf_tail(&c->in), (size_t)n) != n) {
            conn_close(c);
            return;
        }
        c->in.end += (uint32_t)n;
        if (!conn_deadline_rearm(c)) {
            log_debug("client %u: PROXY header not complete within client_header", c->id);
            conn_close(c);
        }
        return;
    }
    if (r < 0) {
        char ip[SOCK_ADDR_TEXT_MAX];
        sock_ip_text(&c->peer.sa, ip, sizeof(ip));
        log_info("client %u from %s: not a valid PROXY protocol header; closing", c->id, ip);
        conn_close(c);
        return;
    }
    /* Take exactly the rest of the header off the socket: the kernel holds what we
     * peeked. */
    size_t rest = (size_t)r - have;
    ssize_t got = 0;
    if (rest) {
        do
            got = read(c->fd, head + have, rest);
        while (got < 0 && errno == EINTR);
    }
    buf_drop(&c->w->bufs, &c->in);
    if ((size_t)got != rest || c->ls == NULL) {
        conn_close(c);
        return;
    }
    c->proxy_pending = false;
    if (pp.has_addr) {
        size_t len =
            pp.src.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        memcpy(&c->peer, &pp.src, len);
    }
    conn_begin(c);
    /* Bytes after the header may be waiting already; the read event will not say so
     * again once they were peeked. */
    if (!c->closing)
        conn_schedule_read(c);
}

void
conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->h1.stream) {
        struct stream *s = c->h1.stream;
        c->h1.stream = NULL;
        stream_abort(s, 499);
    }
    struct worker *w = c->w;
    if (c->h2)
        h2_conn_free(c);
    event_del(&c->rev);
    if (c->wev) {
        event_free(c->wev);
        c->wev = NULL;
    }
    if (c->ssl) {
        if (!c->tls_handshaking)
            (void)SSL_shutdown(c->ssl); /* a close_notify, if the socket takes it */
        SSL_free(c->ssl);
        c->ssl = NULL;
        if (c->tls_snap != NULL) /* still handshaking */
            snapshot_release(c->tls_snap);
        c->tls_snap = NULL;
    }
    close(c->fd);
    c->fd = -1;
    buf_drop(&w->bufs, &c->in);
    buf_drop(&w->bufs, &c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_store_explicit(&w->stats.active_conns, w->nconns, memory_order_relaxed);
    worker_conn_release(w);
    c->next_reap = w->reap;
    w->reap = c;
    if (!w->reap_scheduled) {
        w->reap_scheduled = true;
        event_active(&w->reap_ev, EV_TIMEOUT, 0);
    }
}

void
conn_close_idle(struct worker *w)
{
    struct conn *c = w->conns;
    while (c) {
        struct conn *next = c->next;
        if (c->tls_handshaking)
            conn_close(c);
        else if (c->proto == CONN_PROTO_H2)
            h2_conn_shutdown(c); /* two-step GOAWAY; closes when its streams are done */
        else if (c->h1.state == H1_IDLE && buf_len(&c->out) == 0)
            conn_close(c);
        c = next;
    }
}

void
conn_adopt_generation(struct worker *w)
{
    struct conn *c = w->conns;
    while (c) {
        struct conn *next = c->next;
        bool must_go = c->ls == NULL || c->ls->conns_must_go;
        if (c->closing) {
        } else if (c->tls_handshaking && must_go) {
            conn_close(c); /* under TLS settings that are gone: the client will retry */
        } else if (c->proto == CONN_PROTO_H2) {
            if (must_go)
                h2_conn_shutdown(c);
            else
                h2_conn_adopt(c);
        }
        c = next;
    }
}

void
conn_close_all(struct worker *w)
{
    while (w->conns)
        conn_close(w->conns);
}

/* Wait for the socket to take more bytes. */
static int
conn_arm_write(struct conn *c, const struct timeval *tv)
{
    if (c->write_pending)
        return 0;
    if (!c->wev)
        c->wev = event_new(c->w->base, c->fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
    if (!c->wev || event_add(c->wev, tv) < 0)
        return -1;
    c->write_pending = true;
    return 0;
}

static void
conn_disarm_write(struct conn *c)
{
    if (c->write_pending) {
        c->write_pending = false;
        event_del(c->wev);
    }
}

ssize_t
conn_recv(struct conn *c, void *p, size_t n)
{
    if (!c->ssl) {
        ssize_t r = read(c->fd, p, n);
        if (r < 0)
            return errno == EAGAIN || errno == EINTR ? CONN_AGAIN : -1;
        return r;
    }
    bool want_write;
    ssize_t r = tls_recv(c->ssl, p, n, &want_write);
    if (r == TLS_AGAIN) {
        if (want_write) {
            c->tls_read_blocked = true;
            if (conn_arm_write(c, c->w->snap->tv_client_idle) < 0)
                return -1;
        }
        return CONN_AGAIN;
    }
    return r;
}

bool
conn_has_buffered_input(struct conn *c)
{
    return c->ssl && SSL_pending(c->ssl) > 0;
}

static ssize_t
conn_send(struct conn *c, const void *p, size_t n)
{
    if (!c->ssl) {
        ssize_t r = write(c->fd, p, n);
        if (r < 0)
            return errno == EAGAIN || errno == EINTR ? CONN_AGAIN : -1;
        return r;
    }
    bool want_read;
    ssize_t r = tls_send(c->ssl, p, n, &want_read);
    return r == TLS_AGAIN ? CONN_AGAIN : r;
}

int
conn_flush(struct conn *c)
{
    struct buf *out = &c->out;
    while (buf_len(out) > 0) {
        ssize_t n = conn_send(c, buf_data(out), buf_len(out));
        if (n == CONN_AGAIN)
            return conn_arm_write(c, c->w->snap->tv_client_idle) < 0 ? -1 : 0;
        if (n <= 0)
            return -1;
        buf_consume(out, (uint32_t)n);
    }
    buf_drop(&c->w->bufs, out);
    if (!c->tls_read_blocked)
        conn_disarm_write(c);
    return 1;
}

/* Drive the TLS handshake; when it is done, hand the connection to HTTP/1.1 or HTTP/2 as
 * ALPN decided. */
static void
conn_tls_continue(struct conn *c)
{
    bool want_write;
    int r = tls_handshake(c->ssl, &want_write);
    if (r == TLS_AGAIN) {
        if (!conn_deadline_rearm(c)) {
            log_debug("client %u: TLS handshake not done within client_header", c->id);
            conn_close(c);
        } else if (want_write) {
            if (conn_arm_write(c, c->w->snap->tv_client_header) < 0)
                conn_close(c);
        } else {
            conn_disarm_write(c);
        }
        return;
    }
    if (r < 0) {
        log_debug("client %u: TLS handshake failed", c->id);
        conn_close(c);
        return;
    }
    c->tls_handshaking = false;
    /* The generation was held for the handshake's callbacks (SNI, ALPN); the SSL keeps its
     * own reference on the context it ended with, and renegotiation is off. Holding it for
     * the connection's life would keep one generation (its GeoIP index, tens of MB) per
     * reload a long HTTP/2 connection lives through. */
    snapshot_release(c->tls_snap);
    c->tls_snap = NULL;
    conn_disarm_write(c);
    atomic_fetch_add_explicit(SSL_session_reused(c->ssl) ? &c->w->stats.tls_resumed
                                                         : &c->w->stats.tls_full,
                              1, memory_order_relaxed);
    if (tls_is_h2(c->ssl)) {
        h2_conn_start(c);
    } else {
        h1_conn_start(c);
        /* A request may have come with the last handshake flight. */
        conn_schedule_read(c);
    }
}

void
conn_read_on(struct conn *c, const struct timeval *tv)
{
    c->read_paused = false;
    event_add(&c->rev, tv);
}

void
conn_deadline_start(struct conn *c, const struct timeval *tv, uint32_t ms)
{
    c->deadline_ms = clock_mono_ms() + ms;
    conn_read_on(c, tv);
}

bool
conn_deadline_rearm(struct conn *c)
{
    uint64_t now = clock_mono_ms();
    if (now >= c->deadline_ms)
        return false;
    uint64_t left = c->deadline_ms - now;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    conn_read_on(c, &tv);
    return true;
}

void
conn_read_pause(struct conn *c)
{
    if (!c->read_paused) {
        c->read_paused = true;
        event_del(&c->rev);
    }
}

void
conn_schedule_read(struct conn *c)
{
    event_active(&c->rev, EV_READ, 0);
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (c->proxy_pending) {
        if (what & EV_TIMEOUT)
            conn_close(c);
        else
            conn_proxy_continue(c);
        return;
    }
    if (c->tls_handshaking) {
        if (what & EV_TIMEOUT)
            conn_close(c);
        else
            conn_tls_continue(c);
        return;
    }
    if (c->proto == CONN_PROTO_H2) {
        if (what & EV_TIMEOUT)
            h2_conn_on_timeout(c);
        else
            h2_conn_on_readable(c);
        return;
    }
    if (what & EV_TIMEOUT)
        h1_conn_on_timeout(c);
    else
        h1_conn_on_readable(c);
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (what & EV_TIMEOUT) {
        log_info("client %u stopped reading; closing", c->id);
        conn_close(c);
        return;
    }
    if (c->tls_handshaking) {
        conn_tls_continue(c);
        return;
    }
    if (c->tls_read_blocked) {
        /* SSL_read waited for this: let the read side run again. */
        c->tls_read_blocked = false;
        conn_schedule_read(c);
        if (buf_len(&c->out) == 0) {
            conn_disarm_write(c);
            return;
        }
    }
    int r = conn_flush(c);
    if (r < 0) {
        conn_close(c);
        return;
    }
    if (r > 0) {
        if (c->proto == CONN_PROTO_H2)
            h2_conn_on_drained(c);
        else
            h1_conn_on_drained(c);
    }
}
