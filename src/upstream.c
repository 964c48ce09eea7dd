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
#include "worker.h"

static void upstream_read_cb(evutil_socket_t fd, short what, void *arg);
static void upstream_write_cb(evutil_socket_t fd, short what, void *arg);

struct upstream_pool *
upstream_pool_get(struct worker *w, const struct cfg_addr *addr)
{
    for (struct upstream_pool *p = w->pools; p; p = p->next)
        if (strcmp(p->addr.text, addr->text) == 0)
            return p;
    struct upstream_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->addr = *addr;
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
    if (what & EV_TIMEOUT)
        stream_upstream_timeout(uc->stream);
    else
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
    if (uc->connecting) {
        int err = sock_connect_result(uc->fd);
        if (err == 0) {
            uc->connecting = false;
            upstream_pool_succeeded(uc->pool);
        } else {
            metrics_inc(&uc->pool->w->stats.up_connect_failures);
        }
        stream_upstream_connected(s, err);
        return;
    }
    stream_upstream_writable(s);
}
