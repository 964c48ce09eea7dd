/* SPDX-License-Identifier: MIT */
/* Upstream pools and connections. Callbacks here only dispatch to the stream that holds
 * the connection; a connection with no stream is idle, and any event on it (the backend
 * closed, or sent bytes nobody asked for, or the idle time ran out) closes it. */
#include "upstream.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "sock.h"
#include "stream.h"
#include "tls.h"
#include "tls_upstream.h"
#include "worker.h"

static void upstream_read_cb(evutil_socket_t fd, short what, void *arg);
static void upstream_write_cb(evutil_socket_t fd, short what, void *arg);

struct upstream_pool *
upstream_pool_get(struct worker *w, const struct cfg_addr *addr, struct tls_upstream *tls)
{
    const char *key = tls_upstream_key(tls);
    for (struct upstream_pool *p = w->pools; p; p = p->next) {
        if (strcmp(p->addr.text, addr->text) != 0 || strcmp(tls_upstream_key(p->tls), key) != 0)
            continue;
        if (p->tls != tls) {
            /* The same settings from a newer generation: new connections use its context
             * (a CA file or client certificate renewed in place); pooled ones carry on. */
            tls_upstream_unref(p->tls);
            p->tls = tls_upstream_ref(tls);
        }
        return p;
    }
    struct upstream_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->addr = *addr;
    p->tls = tls_upstream_ref(tls);
    p->w = w;
    p->next = w->pools;
    w->pools = p;
    return p;
}

static void
pool_maybe_free(struct upstream_pool *pool)
{
    if (pool->snap_refs || pool->nidle || pool->nbusy)
        return;
    struct worker *w = pool->w;
    for (struct upstream_pool **pp = &w->pools; *pp; pp = &(*pp)->next) {
        if (*pp == pool) {
            *pp = pool->next;
            break;
        }
    }
    SSL_SESSION_free(pool->tls_session);
    tls_upstream_unref(pool->tls);
    free(pool);
}

static void
idle_unlink(struct upstream_conn *uc)
{
    struct upstream_pool *pool = uc->pool;
    if (uc->prev)
        uc->prev->next = uc->next;
    else
        pool->idle = uc->next;
    if (uc->next)
        uc->next->prev = uc->prev;
    uc->next = uc->prev = NULL;
    pool->nidle--;
}

/* Close and free a connection that is neither idle-listed nor busy-counted. */
static void
conn_destroy(struct upstream_conn *uc)
{
    event_del(&uc->rev);
    event_del(&uc->wev);
    tls_upstream_conn_free(uc->ssl);
    close(uc->fd);
    free(uc);
}

static void
pool_close_idle(struct upstream_pool *pool)
{
    while (pool->idle) {
        struct upstream_conn *uc = pool->idle;
        idle_unlink(uc);
        conn_destroy(uc);
    }
}

void
upstream_pool_unref(struct upstream_pool *pool)
{
    if (--pool->snap_refs == 0) {
        /* No config routes here any more: idle connections have no future. */
        pool_close_idle(pool);
        pool_maybe_free(pool);
    }
}

void
upstream_close_all_idle(struct worker *w)
{
    struct upstream_pool *p = w->pools;
    while (p) {
        struct upstream_pool *next = p->next;
        pool_close_idle(p);
        pool_maybe_free(p);
        p = next;
    }
}

int
upstream_acquire(struct upstream_pool *pool, struct stream *s, struct upstream_conn **out)
{
    struct upstream_conn *uc = pool->idle;
    atomic_fetch_add_explicit(&pool->stat_requests, 1, memory_order_relaxed);
    if (uc) {
        idle_unlink(uc);
        uc->stream = s;
        uc->reused = true;
        pool->nbusy++;
        metrics_inc(&pool->w->stats.up_reuses);
        *out = uc;
        return 0;
    }

    metrics_inc(&pool->w->stats.up_connects); /* an attempt: failures are among them */
    int fd = sock_connect(&pool->addr);
    if (fd < 0) {
        metrics_inc(&pool->w->stats.up_connect_failures);
        return fd;
    }
    uc = calloc(1, sizeof(*uc));
    if (!uc) {
        close(fd);
        return -ENOMEM;
    }
    atomic_fetch_add_explicit(&pool->stat_connects, 1, memory_order_relaxed);
    uc->fd = fd;
    uc->pool = pool;
    uc->stream = s;
    uc->connecting = true;
    uc->connect_deadline_ms = clock_mono_ms() + pool->w->snap->cfg->timeouts.upstream_connect_ms;
    event_assign(&uc->rev, pool->w->base, fd, EV_READ | EV_PERSIST, upstream_read_cb, uc);
    event_assign(&uc->wev, pool->w->base, fd, EV_WRITE | EV_PERSIST, upstream_write_cb, uc);
    pool->nbusy++;
    *out = uc;
    return 0;
}

/* Whether the worker's current generation routes to `pool` only as a draining backend
 * (weight 0 or drain: true wherever its address is listed): no new request will take a
 * connection from it, so keeping one idle would only hold the backend's socket until the
 * idle timeout. A generation without draining backends costs one test. */
static bool
pool_is_drained(const struct worker *w, const struct upstream_pool *pool)
{
    const struct snapshot *snap = w->snap;
    bool found = false;
    if (snap == NULL || !snap->cfg->any_draining)
        return false;
    for (size_t i = 0; i < snap->cfg->nregions; i++)
        for (size_t b = 0; b < snap->regions[i].npools; b++) {
            if (snap->regions[i].pools[b] != pool)
                continue;
            if (cfg_backend_weight(&snap->cfg->regions[i].backends[b]) > 0)
                return false;
            found = true;
        }
    return found;
}

void
upstream_close_drained_idle(struct worker *w)
{
    if (w->snap == NULL || !w->snap->cfg->any_draining)
        return;
    for (struct upstream_pool *p = w->pools; p; p = p->next)
        if (p->idle != NULL && pool_is_drained(w, p))
            pool_close_idle(p); /* the pool itself stays: the generation still lists it */
}

void
upstream_release(struct upstream_conn *uc, bool reusable)
{
    struct upstream_pool *pool = uc->pool;
    struct worker *w = pool->w;
    pool->nbusy--;
    uc->stream = NULL;
    if (!reusable || uc->connecting || pool->snap_refs == 0 || w->stopping) {
        conn_destroy(uc);
        pool_maybe_free(pool);
        return;
    }
    if (pool_is_drained(w, pool)) {
        /* A request that started before the drain has finished: let the backend go,
         * with the idle connections nobody will take again. */
        conn_destroy(uc);
        pool_close_idle(pool);
        pool_maybe_free(pool);
        return;
    }
    uc->nrequests++;
    uc->read_wants_write = uc->write_wants_read = false;
    upstream_write_off(uc);
    /* Idle: any readable event means the backend closed or misbehaved. */
    upstream_read_on(uc, w->snap->tv_upstream_idle);
    uc->next = pool->idle;
    uc->prev = NULL;
    if (pool->idle)
        pool->idle->prev = uc;
    pool->idle = uc;
    pool->nidle++;
}

void
upstream_read_on(struct upstream_conn *uc, const struct timeval *tv)
{
    event_add(&uc->rev, tv);
    uc->read_enabled = true;
}

void
upstream_read_off(struct upstream_conn *uc)
{
    if (uc->read_enabled) {
        event_del(&uc->rev);
        uc->read_enabled = false;
    }
}

void
upstream_write_on(struct upstream_conn *uc, const struct timeval *tv)
{
    event_add(&uc->wev, tv);
}

void
upstream_write_off(struct upstream_conn *uc)
{
    if (event_pending(&uc->wev, EV_WRITE, NULL))
        event_del(&uc->wev);
}

void
upstream_pool_failed(struct upstream_pool *pool)
{
    pool->consecutive_failures++;
    pool->down_until_ms = clock_mono_ms() + UPSTREAM_DOWN_MS;
    atomic_fetch_add_explicit(&pool->stat_failures, 1, memory_order_relaxed);
}

void
upstream_pool_succeeded(struct upstream_pool *pool)
{
    pool->consecutive_failures = 0;
    pool->down_until_ms = 0;
}

/* ---- I/O on a busy connection ---- */

ssize_t
upstream_recv(struct upstream_conn *uc, void *p, size_t n)
{
    if (uc->ssl == NULL) {
        ssize_t r;
        do
            r = read(uc->fd, p, n);
        while (r < 0 && errno == EINTR);
        return r;
    }
    bool want_write;
    ssize_t r = tls_recv(uc->ssl, p, n, &want_write);
    if (r >= 0)
        return r;
    if (r == TLS_AGAIN) {
        if (want_write) {
            /* A TLS 1.3 key update to answer and a full socket: go on when it drains. */
            uc->read_wants_write = true;
            upstream_write_on(uc, uc->pool->w->snap->tv_upstream_response);
        }
        errno = EAGAIN;
        return -1;
    }
    errno = EPROTO;
    return -1;
}

ssize_t
upstream_send(struct upstream_conn *uc, const void *p, size_t n)
{
    if (uc->ssl == NULL) {
        ssize_t r;
        do
            r = write(uc->fd, p, n);
        while (r < 0 && errno == EINTR);
        return r;
    }
    bool want_read;
    ssize_t r = tls_send(uc->ssl, p, n, &want_read);
    if (r >= 0)
        return r;
    if (r == TLS_AGAIN) {
        /* The caller arms writing; a write that waits for a read is resumed by the read
         * event, which stays armed while a request is under way. */
        uc->write_wants_read = want_read;
        errno = EAGAIN;
        return -1;
    }
    errno = EPROTO;
    return -1;
}

bool
upstream_has_buffered_input(const struct upstream_conn *uc)
{
    return uc->ssl != NULL && SSL_has_pending(uc->ssl);
}

/* ---- connecting, and the TLS handshake after it ---- */

/* What is left of the connect deadline, as a timeval for event_add. */
static void
deadline_left(const struct upstream_conn *uc, struct timeval *tv)
{
    uint64_t now = clock_mono_ms();
    uint64_t left = uc->connect_deadline_ms > now ? uc->connect_deadline_ms - now : 0;
    tv->tv_sec = (time_t)(left / 1000);
    tv->tv_usec = (suseconds_t)(left % 1000) * 1000;
}

/* The connection can carry bytes, or never will: tell the stream. */
static void
connect_done(struct upstream_conn *uc, int err, const char *why)
{
    struct worker *w = uc->pool->w;
    if (err == 0) {
        uc->connecting = false;
        uc->handshaking = false;
        upstream_pool_succeeded(uc->pool);
    } else {
        metrics_inc(&w->stats.up_connect_failures);
    }
    stream_upstream_connected(uc->stream, err, why);
}

static void
handshake_continue(struct upstream_conn *uc)
{
    struct worker *w = uc->pool->w;
    char why[160];
    bool want_write;
    int r = tls_upstream_handshake(uc->ssl, &want_write, why, sizeof(why));
    if (r == TLS_AGAIN) {
        struct timeval tv;
        deadline_left(uc, &tv);
        if (want_write) {
            upstream_read_off(uc);
            upstream_write_on(uc, &tv);
        } else {
            upstream_write_off(uc);
            upstream_read_on(uc, &tv);
        }
        return;
    }
    upstream_read_off(uc);
    upstream_write_off(uc);
    if (r < 0) {
        metrics_inc(&w->stats.up_tls_failures);
        connect_done(uc, EPROTO, why);
        return;
    }
    metrics_inc(SSL_session_reused(uc->ssl) ? &w->stats.up_tls_resumed : &w->stats.up_tls_full);
    connect_done(uc, 0, NULL);
}

/* The TCP connect is done: start TLS if the backend wants it. */
static void
connected(struct upstream_conn *uc)
{
    int err = sock_connect_result(uc->fd);
    if (err != 0 || uc->pool->tls == NULL) {
        connect_done(uc, err, NULL);
        return;
    }
    uc->ssl = tls_upstream_conn_new(uc->pool->tls, uc->fd, &uc->pool->addr, &uc->pool->tls_session);
    if (uc->ssl == NULL) {
        connect_done(uc, ENOMEM, NULL);
        return;
    }
    uc->handshaking = true;
    handshake_continue(uc);
}

static void
upstream_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_conn *uc = arg;
    if (!uc->stream) {
        /* Idle: the backend closed it, sent stray bytes, or the idle time is up. */
        struct upstream_pool *pool = uc->pool;
        idle_unlink(uc);
        conn_destroy(uc);
        pool_maybe_free(pool);
        return;
    }
    if (what & EV_TIMEOUT) {
        stream_upstream_timeout(uc->stream);
        return;
    }
    if (uc->handshaking) {
        handshake_continue(uc);
        return;
    }
    if (uc->write_wants_read) {
        uc->write_wants_read = false;
        stream_upstream_writable(uc->stream);
        return; /* a read that is due comes with the next event: the socket stays readable */
    }
    stream_upstream_readable(uc->stream);
    /* uc may be gone now. */
}

static void
upstream_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_conn *uc = arg;
    struct stream *s = uc->stream;
    if (!s) {
        upstream_write_off(uc);
        return;
    }
    if (what & EV_TIMEOUT) {
        stream_upstream_timeout(s);
        return;
    }
    if (uc->handshaking) {
        handshake_continue(uc);
        return;
    }
    if (uc->connecting) {
        connected(uc);
        return;
    }
    if (uc->read_wants_write) {
        uc->read_wants_write = false;
        /* Writing stays armed: with nothing left to send, the next event turns it off. */
        stream_upstream_readable(s);
        return;
    }
    stream_upstream_writable(s);
}
