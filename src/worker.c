/* SPDX-License-Identifier: MIT */
/* A worker thread: adopting config generations as snapshots, its listeners, and its
 * part of a graceful stop. Connections are conn.c's; upstream pools are upstream.c's. */
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "budget.h"
#include "cfg.h"
#include "clock.h"
#include "conn.h"
#include "h1_parse.h"
#include "h2_conn.h"
#include "health.h"
#include "log.h"
#include "server.h"
#include "stream.h"
#include "tls.h"
#include "upstream.h"

/* Extra room in a buffer beyond max_header_bytes, for the headers we add upstream. */
#define BUF_HEADROOM 4096
#define BUF_MIN_SIZE 16384
#define BUF_POOL_KEEP 4096 /* a hard cap; the trim below keeps the pool near the load */
#define BUF_TRIM_MS 1000   /* blocks unused for this long go back to the kernel */

static void
ms_to_tv(uint32_t ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* A common timeout when the base still has one to give, else the plain value. */
static const struct timeval *
snapshot_timeout(struct worker *w, uint32_t ms, struct timeval *plain)
{
    ms_to_tv(ms, plain);
    const struct timeval *common = event_base_init_common_timeout(w->base, plain);
    return common ? common : plain;
}

static struct snapshot *
snapshot_new(struct worker *w, struct cfg *cfg)
{
    struct snapshot *snap = calloc(1, sizeof(*snap));
    if (!snap)
        return NULL;
    snap->regions = calloc(cfg->nregions, sizeof(*snap->regions));
    if (!snap->regions)
        goto fail_snap;
    snap->w = w;
    snap->uses = 1;
    for (size_t i = 0; i < cfg->nregions; i++) {
        const struct cfg_region *cr = &cfg->regions[i];
        struct snapshot_region *r = &snap->regions[i];
        /* A region whose names are all unresolved has no backend (yet). */
        r->pools = calloc(cr->nbackends ? cr->nbackends : 1, sizeof(*r->pools));
        if (!r->pools)
            goto fail_regions;
        for (size_t b = 0; b < cr->nbackends; b++) {
            const struct cfg_backend *be = &cr->backends[b];
            struct upstream_pool *pool =
                upstream_pool_get(w, &be->addr, cfg_backend_tls_of(cr, be)->runtime);
            if (!pool)
                goto fail_regions;
            pool->snap_refs++;
            r->pools[b] = pool;
            r->npools++;
        }
    }
    const struct cfg_timeouts *t = &cfg->timeouts;
    snap->tv_client_header = snapshot_timeout(w, t->client_header_ms, &snap->tv_plain[0]);
    snap->tv_client_idle = snapshot_timeout(w, t->client_idle_ms, &snap->tv_plain[1]);
    snap->tv_upstream_connect = snapshot_timeout(w, t->upstream_connect_ms, &snap->tv_plain[2]);
    snap->tv_upstream_response = snapshot_timeout(w, t->upstream_response_ms, &snap->tv_plain[3]);
    snap->tv_upstream_idle = snapshot_timeout(w, UPSTREAM_IDLE_MS, &snap->tv_plain[4]);
    snap->tv_tunnel = snapshot_timeout(w, t->tunnel_ms, &snap->tv_plain[5]);
    snap->cfg = cfg_ref(cfg);
    return snap;

fail_regions:
    for (size_t i = 0; i < cfg->nregions; i++) {
        for (size_t b = 0; b < snap->regions[i].npools; b++)
            upstream_pool_unref(snap->regions[i].pools[b]);
        free(snap->regions[i].pools);
    }
    free(snap->regions);
fail_snap:
    free(snap);
    return NULL;
}

struct snapshot *
worker_snapshot_use(struct worker *w)
{
    w->snap->uses++;
    return w->snap;
}

void
snapshot_release(struct snapshot *snap)
{
    if (--snap->uses > 0)
        return;
    for (size_t i = 0; i < snap->cfg->nregions; i++) {
        for (size_t b = 0; b < snap->regions[i].npools; b++)
            upstream_pool_unref(snap->regions[i].pools[b]);
        free(snap->regions[i].pools);
    }
    free(snap->regions);
    cfg_unref(snap->cfg);
    free(snap);
}

/* ---- accepting ---- */

#define FULL_LOG_INTERVAL_MS 60000 /* at most one warning a minute about either */
#define ACCEPT_BACKOFF_MS 100      /* after EMFILE: time for the process to free descriptors */

static void
worker_accept_apply(struct worker *w)
{
    bool want = !w->stopping && !w->accept_full && !w->accept_backoff;
    if (want == w->accepting)
        return;
    w->accepting = want;
    for (struct listener_rt *ls = w->listeners; ls; ls = ls->next) {
        if (want)
            event_add(&ls->ev, NULL);
        else
            event_del(&ls->ev);
    }
}

/* Accept again if the process has room. Called when another worker freed a slot (by a
 * wake) and right after pausing: a slot freed between our failed check and our flag
 * being seen would otherwise wake nobody. */
static void
worker_accept_resume_if_room(struct worker *w)
{
    if (!w->accept_full || !server_conn_has_room(w->srv))
        return;
    w->accept_full = false;
    atomic_store(&w->paused_for_limit, false);
    worker_accept_apply(w);
}

bool
worker_paused_for_limit(struct worker *w)
{
    return atomic_load(&w->paused_for_limit);
}

bool
worker_conn_admit(struct worker *w)
{
    if (server_conn_has_room(w->srv))
        return true;
    if (!w->accept_full) {
        uint64_t now = clock_mono_ms();
        if (!w->full_logged_ms || now - w->full_logged_ms >= FULL_LOG_INTERVAL_MS) {
            unsigned max, n = server_conn_count(w->srv, &max);
            w->full_logged_ms = now;
            log_warn("%u client connections: limits.max_connections (%u) reached; new ones "
                     "wait in the listen backlog until one closes",
                     n, max);
        }
        w->accept_full = true;
        atomic_store(&w->paused_for_limit, true);
        worker_accept_apply(w);
        worker_accept_resume_if_room(w);
    }
    return false;
}

void
worker_conn_added(struct worker *w)
{
    server_conn_added(w->srv);
}

void
worker_conn_release(struct worker *w)
{
    server_conn_release(w->srv, w);
    worker_accept_resume_if_room(w);
    /* Out of descriptors: the one this connection held is free now (conn_close closed
     * it), so a client waiting in the backlog is taken at once, not when the backoff
     * ends. The timer stays the way back for descriptors freed elsewhere (a backend
     * connection, another worker's client). At most one accept() per close: no spin. */
    if (w->accept_backoff) {
        event_del(&w->accept_resume_ev);
        w->accept_backoff = false;
        worker_accept_apply(w);
    }
}

static void
accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    w->accept_backoff = false;
    worker_accept_apply(w);
}

void
worker_accept_backoff(struct worker *w, int err)
{
    uint64_t now = clock_mono_ms();
    w->accept_errors++;
    if (!w->accept_error_logged_ms || now - w->accept_error_logged_ms >= FULL_LOG_INTERVAL_MS) {
        log_error("accept: %s; pausing accepts for %d ms at a time (%u times since the last "
                  "report)",
                  strerror(err), ACCEPT_BACKOFF_MS, w->accept_errors);
        w->accept_error_logged_ms = now;
        w->accept_errors = 0;
    }
    w->accept_backoff = true;
    worker_accept_apply(w);
    struct timeval tv = {0, ACCEPT_BACKOFF_MS * 1000};
    event_add(&w->accept_resume_ev, &tv);
}

/* Close and free every listener on w->listeners. Connections accepted on them forget
 * them (a connection still waiting for its PROXY header then has nowhere to go on). */
static void
worker_free_listeners(struct worker *w)
{
    while (w->listeners) {
        struct listener_rt *ls = w->listeners;
        w->listeners = ls->next;
        for (struct conn *c = w->conns; c; c = c->next)
            if (c->ls == ls)
                c->ls = NULL;
        event_del(&ls->ev);
        close(ls->fd);
        free(ls);
    }
}

/* The listener of generation `cfg` on socket `fd` of this worker, or NULL. */
static const struct cfg_listener *
worker_cfg_listener(const struct worker *w, const struct cfg *cfg, int fd)
{
    for (size_t i = 0; cfg && i < cfg->nlisteners; i++)
        if (cfg->listeners[i].fds[w->id] == fd)
            return &cfg->listeners[i];
    return NULL;
}

/* Make the listeners match `cfg`: keep sockets this worker already has, start accepting
 * on new ones, close the ones the generation dropped. A kept listener whose TLS settings
 * changed from `prev`, or that no longer takes h2c, is marked: the connections accepted
 * under the old settings are to go (see conn_adopt_generation()). */
static void
worker_sync_listeners(struct worker *w, const struct cfg *prev, const struct cfg *cfg)
{
    struct listener_rt *keep = NULL;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        int fd = cfg->listeners[i].fds[w->id];
        struct listener_rt **pp = &w->listeners, *ls = NULL;
        for (; *pp; pp = &(*pp)->next) {
            if ((*pp)->fd == fd) {
                ls = *pp;
                *pp = ls->next; /* move it to the keep list */
                break;
            }
        }
        if (!ls) {
            ls = calloc(1, sizeof(*ls));
            if (!ls) {
                log_error("out of memory adding listener %s", cfg->listeners[i].name);
                continue;
            }
            ls->fd = fd;
            ls->w = w;
            event_assign(&ls->ev, w->base, fd, EV_READ | EV_PERSIST, conn_accept_cb, ls);
            if (w->accepting)
                event_add(&ls->ev, NULL);
            log_debug("accepting on %s (fd %d)", cfg->listeners[i].addr.text, fd);
        }
        const struct cfg_listener *was = worker_cfg_listener(w, prev, fd);
        ls->conns_must_go = was && (!tls_settings_equal(was->tls, cfg->listeners[i].tls) ||
                                    (was->h2c && !cfg->listeners[i].h2c));
        /* The generation's TLS contexts: new connections use them from now on. */
        ls->tls = cfg->listeners[i].tls ? cfg->listeners[i].tls->runtime : NULL;
        ls->h2c = cfg->listeners[i].h2c;
        ls->proxy_protocol = cfg->listeners[i].proxy_protocol;
        ls->client_ip = cfg->listeners[i].client_ip;
        ls->next = keep;
        keep = ls;
    }
    /* What is left was dropped by this generation. */
    worker_free_listeners(w);
    w->listeners = keep;
}

static void
worker_close_listeners(struct worker *w)
{
    w->accepting = false;
    event_del(&w->accept_resume_ev);
    worker_free_listeners(w);
}

/* rate_limit's admission: made, moved to the new generation, or dropped with it. */
static void
worker_adopt_budget(struct worker *w, const struct cfg *cfg)
{
    if (!cfg->rate_limit.enabled) {
        budget_free(w->budget);
        w->budget = NULL;
    } else if (w->budget) {
        budget_apply(w->budget, cfg);
    } else if ((w->budget = budget_new(w, cfg)) == NULL) {
        log_error("rate_limit: out of memory: this worker does not limit");
    }
}

static int
worker_adopt(struct worker *w, struct cfg *cfg)
{
    uint32_t max_headers = cfg->limits.max_headers;
    if (max_headers > w->headers_cap) {
        struct h1_header *h = realloc(w->headers, max_headers * sizeof(*h));
        if (!h)
            return -1;
        w->headers = h;
        w->headers_cap = max_headers;
    }
    struct snapshot *snap = snapshot_new(w, cfg);
    if (!snap)
        return -1;
    uint32_t block =
        cfg->limits.max_header_bytes > BUF_MIN_SIZE ? cfg->limits.max_header_bytes : BUF_MIN_SIZE;
    buf_pool_set_block_size(&w->bufs, block + BUF_HEADROOM);
    struct snapshot *old = w->snap;
    if (!w->stopping)
        worker_sync_listeners(w, old ? old->cfg : NULL, cfg);
    w->snap = snap;
    w->seen_cfg = cfg;
    if (old && !w->stopping)
        conn_adopt_generation(w); /* a stop already sent its connections away */
    atomic_store_explicit(&w->stats.generation, cfg->generation, memory_order_release);
    worker_adopt_budget(w, cfg); /* compares with the old generation: before it may go */
    if (old)
        snapshot_release(old);
    upstream_close_drained_idle(w);
    health_worker_adopt(w, cfg);
    return 0;
}

static void
worker_maybe_done(struct worker *w)
{
    /* loopexit, not loopbreak: this can run before the loop starts (a stop signal right
     * after start), and event_base_dispatch() forgets a break requested before it. */
    if (w->stopping && w->nconns == 0)
        event_base_loopexit(w->base, NULL);
}

void
worker_conn_gone(struct worker *w)
{
    worker_maybe_done(w);
}

static void
shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    log_warn("shutdown grace period over with %u connections open: closing them", w->nconns);
    event_base_loopexit(w->base, NULL);
}

static void
worker_begin_stop(struct worker *w)
{
    w->stopping = true;
    worker_close_listeners(w);
    upstream_close_all_idle(w);
    conn_close_idle(w);
    struct timeval tv;
    ms_to_tv(w->snap->cfg->timeouts.shutdown_ms, &tv);
    event_assign(&w->shutdown_ev, w->base, -1, 0, shutdown_timeout_cb, w);
    event_add(&w->shutdown_ev, &tv);
    worker_maybe_done(w);
}

/* The main thread changed something: look at the server's state again. */
static void
worker_sync(struct worker *w)
{
    struct cfg *cfg = server_current_cfg(w->srv);
    if (cfg != w->seen_cfg && worker_adopt(w, cfg) < 0)
        log_error("out of memory adopting configuration generation %u; keeping %u", cfg->generation,
                  w->seen_cfg ? w->seen_cfg->generation : 0);
    server_release_cfg(cfg);
    if (server_is_stopping(w->srv) && !w->stopping)
        worker_begin_stop(w);
    if (w->stopping && server_is_hurrying(w->srv))
        event_base_loopexit(w->base, NULL); /* as shutdown_timeout_cb */
    worker_accept_resume_if_room(w); /* a slot freed elsewhere, or a higher limit */
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    worker_sync(arg);
}

static void
buf_trim_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    buf_pool_trim_unused(&w->bufs);
}

static void
log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    w->log_flush_scheduled = false;
    access_log_flush(&w->alog);
}

void
worker_access_log(struct worker *w, const struct access_log_entry *e)
{
    if (access_log_append(&w->alog, e)) {
        access_log_flush(&w->alog);
        return;
    }
    if (!w->log_flush_scheduled) {
        struct timeval tv = {0, ACCESS_LOG_FLUSH_MS * 1000};
        event_add(&w->log_flush_ev, &tv);
        w->log_flush_scheduled = true;
    }
}

int
worker_init(struct worker *w, struct server *srv, unsigned id)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->srv = srv;
    snprintf(w->name, sizeof(w->name), "w%u", id);
    struct event_config *ec = event_config_new();
    if (!ec)
        return -1;
    /* One thread per base: no locking inside libevent either. */
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!w->base)
        return -1;
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0)
        return -1;
    event_assign(&w->wake_ev, w->base, w->wake_fd, EV_READ | EV_PERSIST, wake_cb, w);
    event_add(&w->wake_ev, NULL);
    event_assign(&w->log_flush_ev, w->base, -1, 0, log_flush_cb, w);
    event_assign(&w->accept_resume_ev, w->base, -1, 0, accept_resume_cb, w);
    w->accepting = true; /* once it has listeners */
    event_assign(&w->buf_trim_ev, w->base, -1, EV_PERSIST, buf_trim_cb, w);
    struct timeval trim_tv = {BUF_TRIM_MS / 1000, (BUF_TRIM_MS % 1000) * 1000};
    event_add(&w->buf_trim_ev, &trim_tv);
    conn_worker_init(w);
    buf_pool_init(&w->bufs, BUF_MIN_SIZE + BUF_HEADROOM, BUF_POOL_KEEP);
    reqid_gen_init(&w->reqids, 0);
    w->rng = 0x9e3779b97f4a7c15ull * (id + 1) ^ clock_mono_us();
    return 0;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    log_set_thread_name(w->name);
    worker_sync(w);
    event_base_dispatch(w->base);

    /* Stopped: whatever is still open goes now. */
    conn_close_all(w);
    health_worker_stop(w);
    budget_free(w->budget); /* its link lives on this thread's loop */
    w->budget = NULL;
    access_log_flush(&w->alog);
    h2_worker_deinit(w); /* thread-local scratch: must be freed on this thread */
    return NULL;
}

int
worker_start(struct worker *w)
{
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}

void
worker_wake(struct worker *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->wake_fd, &one, sizeof(one));
    (void)n; /* a full counter still wakes the worker */
}

void
worker_join(struct worker *w)
{
    if (!w->joined)
        pthread_join(w->thread, NULL);
    w->joined = true;
}

bool
worker_try_join(struct worker *w)
{
    if (!w->joined && pthread_tryjoin_np(w->thread, NULL) == 0)
        w->joined = true;
    return w->joined;
}

void
worker_deinit(struct worker *w)
{
    conn_worker_deinit(w);
    stream_worker_deinit(w);
    worker_close_listeners(w);
    upstream_close_all_idle(w);
    if (w->snap)
        snapshot_release(w->snap);
    w->snap = NULL;
    event_del(&w->wake_ev);
    event_del(&w->log_flush_ev);
    event_del(&w->buf_trim_ev);
    if (event_initialized(&w->shutdown_ev))
        event_del(&w->shutdown_ev);
    close(w->wake_fd);
    free(w->headers);
    geo_cache_deinit(&w->geo_cache);
    buf_pool_deinit(&w->bufs);
    event_base_free(w->base);
}
