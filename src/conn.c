/* SPDX-License-Identifier: MIT */
/* Client connection plumbing: accept, events, write-out, deferred free. */
#include "conn.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h1_conn.h"
#include "log.h"
#include "stream.h"
#include "worker.h"

#define ACCEPT_BATCH 64  /* accepts per wake-up, so one busy listener cannot starve I/O */
#define CONN_FREE_MAX 4096
#define ACCEPT_PAUSE_MS 100 /* after EMFILE: give the process time to free descriptors */

_Static_assert(sizeof(struct conn) <= 384, "struct conn is the per-idle-connection cost");

static void conn_read_cb(evutil_socket_t fd, short what, void *arg);
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

static void
resume_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct listener_rt *ls = arg;
    if (!ls->w->stopping)
        event_add(&ls->ev, NULL);
}

void
conn_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct listener_rt *ls = arg;
    struct worker *w = ls->w;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_error("accept: %s; pausing accepts for %d ms", strerror(errno),
                          ACCEPT_PAUSE_MS);
                event_del(&ls->ev);
                struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
                event_base_once(w->base, -1, EV_TIMEOUT, resume_accept_cb, ls, &tv);
            }
            return;
        }
        struct conn *c = conn_alloc(w);
        if (!c) {
            log_error("out of memory for a connection");
            close(fd);
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
        h1_conn_start(c);
    }
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
    event_del(&c->rev);
    if (c->wev) {
        event_free(c->wev);
        c->wev = NULL;
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
        if (c->h1.state == H1_IDLE && buf_len(&c->out) == 0)
            conn_close(c);
        c = next;
    }
}

void
conn_close_all(struct worker *w)
{
    while (w->conns)
        conn_close(w->conns);
}

int
conn_flush(struct conn *c)
{
    struct buf *out = &c->out;
    while (buf_len(out) > 0) {
        ssize_t n = write(c->fd, buf_data(out), buf_len(out));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!c->write_pending) {
                    if (!c->wev)
                        c->wev = event_new(c->w->base, c->fd, EV_WRITE | EV_PERSIST,
                                           conn_write_cb, c);
                    if (!c->wev || event_add(c->wev, c->w->snap->tv_client_idle) < 0)
                        return -1;
                    c->write_pending = true;
                }
                return 0;
            }
            return -1;
        }
        buf_consume(out, (uint32_t)n);
    }
    buf_drop(&c->w->bufs, out);
    if (c->write_pending) {
        c->write_pending = false;
        event_del(c->wev);
    }
    return 1;
}

void
conn_read_on(struct conn *c, const struct timeval *tv)
{
    c->read_paused = false;
    event_add(&c->rev, tv);
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
    int r = conn_flush(c);
    if (r < 0) {
        conn_close(c);
        return;
    }
    if (r > 0)
        h1_conn_on_drained(c);
}
