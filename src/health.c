/* SPDX-License-Identifier: MIT */
/* Backend health (see health.h for the model): the rise/fall state machine, the
 * process-wide registry of targets kept across reloads by address, the active checks each
 * worker runs for the targets it owns, and the passive marks real traffic leaves. */
#include "health.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "clock.h"
#include "log.h"
#include "sock.h"
#include "tls.h"
#include "tls_upstream.h"
#include "worker-t.h"

#define HC_READ_MAX 512 /* the status line must fit in this much of the answer */

/* What a check does, copied from the config under the target's lock. */
struct hc_settings {
    char path[CFG_HC_PATH_MAX + 1];
    char host[CFG_HC_HOST_MAX + 1]; /* "" = the backend's address */
    uint32_t interval_ms, timeout_ms, rise, fall;
    uint16_t expect_lo, expect_hi;
    /* Holds a ref in `settings` and in `cur`: TLS to the backend, or NULL (clear text). */
    struct tls_upstream *tls;
};

enum hc_phase {
    HC_IDLE = 0,
    HC_CONNECTING = 1,
    HC_HANDSHAKING = 2, /* TLS backends */
    HC_SENDING = 3,
    HC_READING = 4,
};

/*
 * A target's life:
 *
 *   health_apply (main) --new--> registry list, refs: registry + each generation
 *        |                               |
 *        |   owner worker adopts it: +1 ref, timer -> check -> result -> timer ...
 *        |                               |
 *   not in a new generation: retired, registry ref dropped; the owner sees `retired` at
 *   its next timer, stops, drops its ref; the last generation naming it drops the last.
 */
struct health_target {
    atomic_int refs;
    _Atomic uint8_t state;               /* enum health_state: the request path reads this */
    atomic_uint passive_streak;          /* real-traffic failures in a row, all workers */
    atomic_uint passive_fall;            /* failures that mark it down; 0: passive off */
    atomic_bool retired;                 /* no generation to come names it */
    atomic_uint_fast64_t last_change_ms; /* wall clock */
    atomic_uint_fast64_t checks, failures, passive_failures, transitions;
    unsigned owner;       /* the worker that checks it, fixed at creation */
    struct cfg_addr addr; /* fixed */
    char *tls_key;        /* owns; fixed: tls_upstream_key() of the TLS it is checked with */

    /* Main thread only. */
    struct health_target *reg_next;
    bool seen;
    bool applied; /* a generation that was applied named it */

    /* Under `lock`: settings (main thread writes, the owner reads) and the last result
     * (the owner writes, admin reads). */
    pthread_mutex_t lock;
    struct hc_settings settings;
    int last_status;
    char last_error[128];
    uint64_t last_check_ms;
    uint32_t check_ms;

    /* The owning worker only. */
    struct worker *w; /* borrows */
    bool running;
    struct health_target *w_next; /* the worker's list of targets it checks */
    struct health_sm sm;
    uint8_t phase; /* enum hc_phase */
    int fd;
    SSL *ssl;                 /* owns, during a check of a TLS backend */
    SSL_SESSION *tls_session; /* owns: the next check resumes it */
    struct event timer; /* the next check, or the running check's deadline */
    struct event io;
    uint64_t started_us;
    struct hc_settings cur; /* the settings of the check under way */
    uint32_t req_len, req_sent, resp_len;
    char req[CFG_HC_PATH_MAX + CFG_HC_HOST_MAX + 128];
    char resp[HC_READ_MAX];
};

struct health_registry {
    unsigned nworkers;
    unsigned next_owner;
    struct health_target *targets; /* holds a ref on each */
};

/* ---- the state machine ---- */

bool
health_sm_feed(struct health_sm *sm, bool ok, uint32_t rise, uint32_t fall)
{
    switch (sm->state) {
    case HEALTH_UNCHECKED:
        /* The first result decides: a new backend should not wait rise x interval. */
        sm->state = ok ? HEALTH_UP : HEALTH_DOWN;
        sm->streak = 0;
        return true;
    case HEALTH_UP:
        if (ok) {
            sm->streak = 0;
            return false;
        }
        if (++sm->streak < fall)
            return false;
        sm->state = HEALTH_DOWN;
        sm->streak = 0;
        return true;
    default:
        if (!ok) {
            sm->streak = 0;
            return false;
        }
        if (++sm->streak < rise)
            return false;
        sm->state = HEALTH_UP;
        sm->streak = 0;
        return true;
    }
}

const char *
health_state_name(enum health_state s)
{
    switch (s) {
    case HEALTH_UP:
        return "up";
    case HEALTH_DOWN:
        return "down";
    default:
        return "unchecked";
    }
}

static uint64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- references ---- */

static struct health_target *
target_ref(struct health_target *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void
health_target_unref(struct health_target *t)
{
    if (t == NULL)
        return;
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        /* The owner dropped its ref only after deleting its events: nothing to stop. */
        pthread_mutex_destroy(&t->lock);
        tls_upstream_unref(t->settings.tls);
        tls_upstream_unref(t->cur.tls);
        SSL_SESSION_free(t->tls_session);
        free(t->tls_key);
        free(t);
    }
}

/* ---- the request path ---- */

enum health_state
health_state_of(const struct health_target *t)
{
    return (enum health_state)atomic_load_explicit(&t->state, memory_order_relaxed);
}

void
health_report_failure(struct health_target *t)
{
    if (t == NULL)
        return;
    unsigned fall = atomic_load_explicit(&t->passive_fall, memory_order_relaxed);
    if (fall == 0)
        return;
    atomic_fetch_add_explicit(&t->passive_failures, 1, memory_order_relaxed);
    unsigned n = atomic_fetch_add_explicit(&t->passive_streak, 1, memory_order_relaxed) + 1;
    if (n < fall)
        return;
    uint8_t cur = atomic_load_explicit(&t->state, memory_order_relaxed);
    if (cur != HEALTH_DOWN &&
        atomic_compare_exchange_strong(&t->state, &cur, (uint8_t)HEALTH_DOWN)) {
        atomic_store_explicit(&t->last_change_ms, wall_ms(), memory_order_relaxed);
        atomic_fetch_add_explicit(&t->transitions, 1, memory_order_relaxed);
        log_warn("backend %s is down: %u failures in a row on real traffic", t->addr.text, n);
    }
}

void
health_report_success(struct health_target *t)
{
    if (t && atomic_load_explicit(&t->passive_streak, memory_order_relaxed) != 0)
        atomic_store_explicit(&t->passive_streak, 0, memory_order_relaxed);
}

/* ---- the registry ---- */

struct health_registry *
health_registry_new(unsigned nworkers)
{
    struct health_registry *reg = calloc(1, sizeof(*reg));
    if (reg)
        reg->nworkers = nworkers ? nworkers : 1;
    return reg;
}

void
health_registry_free(struct health_registry *reg)
{
    if (reg == NULL)
        return;
    while (reg->targets) {
        struct health_target *t = reg->targets;
        reg->targets = t->reg_next;
        health_target_unref(t);
    }
    free(reg);
}

/* The check's Host header: health_check.host, else a named backend's name (with its port
 * unless it is the scheme's), else empty (the address is sent). */
static void
settings_from_cfg(struct hc_settings *s, const struct cfg_health_check *hc,
                  const struct cfg_backend *be, bool tls)
{
    snprintf(s->path, sizeof(s->path), "%s", hc->path ? hc->path : "/");
    if (hc->host != NULL)
        snprintf(s->host, sizeof(s->host), "%s", hc->host);
    else if (be->name != NULL && be->name->port == (tls ? 443 : 80))
        snprintf(s->host, sizeof(s->host), "%s", be->name->host);
    else if (be->name != NULL)
        snprintf(s->host, sizeof(s->host), "%s", be->name->text);
    else
        s->host[0] = '\0';
    s->interval_ms = hc->interval_ms;
    s->timeout_ms = hc->timeout_ms;
    s->rise = hc->rise ? hc->rise : 1;
    s->fall = hc->fall ? hc->fall : 1;
    s->expect_lo = hc->expect_lo;
    s->expect_hi = hc->expect_hi;
}

static struct health_target *
target_new(struct health_registry *reg, const struct cfg_addr *addr, const char *tls_key)
{
    struct health_target *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if ((t->tls_key = strdup(tls_key)) == NULL) {
        free(t);
        return NULL;
    }
    atomic_init(&t->refs, 1); /* the registry's */
    atomic_init(&t->state, (uint8_t)HEALTH_UNCHECKED);
    t->addr = *addr;
    t->fd = -1;
    t->owner = reg->next_owner++ % reg->nworkers;
    pthread_mutex_init(&t->lock, NULL);
    t->reg_next = reg->targets;
    reg->targets = t;
    return t;
}

/* Take out of the registry the targets made by an apply that failed halfway: no
 * generation that went live names them (the refused one drops its refs itself). */
static void
drop_unused_new(struct health_registry *reg)
{
    for (struct health_target **pp = &reg->targets; *pp;) {
        struct health_target *t = *pp;
        t->seen = false;
        if (!t->applied) {
            *pp = t->reg_next;
            health_target_unref(t);
        } else {
            pp = &t->reg_next;
        }
    }
}

int
health_apply(struct health_registry *reg, struct cfg *next)
{
    /* Pass 1, which may fail: a target for every checked backend, found or made. The
     * running generation's targets are not touched yet. */
    for (size_t i = 0; i < next->nregions; i++) {
        struct cfg_region *r = &next->regions[i];
        if (!r->health_check.enabled)
            continue;
        for (size_t b = 0; b < r->nbackends; b++) {
            struct cfg_backend *be = &r->backends[b];
            const char *key = tls_upstream_key(cfg_backend_tls_of(r, be)->runtime);
            struct health_target *t = reg->targets;
            /* The same address spoken to another way (TLS or not, other settings) is
             * another target: it may well be up one way and down the other. */
            while (t && (strcmp(t->addr.text, be->addr.text) != 0 || strcmp(t->tls_key, key) != 0))
                t = t->reg_next;
            if (t == NULL && (t = target_new(reg, &be->addr, key)) == NULL) {
                drop_unused_new(reg);
                return -1; /* the caller's cfg_unref(next) drops the refs taken */
            }
            t->seen = true;
            if (be->health == NULL)
                be->health = target_ref(t);
        }
    }
    /* Pass 2, which cannot fail: the new settings. */
    for (size_t i = 0; i < next->nregions; i++) {
        struct cfg_region *r = &next->regions[i];
        for (size_t b = 0; r->health_check.enabled && b < r->nbackends; b++) {
            struct health_target *t = r->backends[b].health;
            struct tls_upstream *tls = cfg_backend_tls_of(r, &r->backends[b])->runtime;
            struct tls_upstream *old;
            pthread_mutex_lock(&t->lock);
            settings_from_cfg(&t->settings, &r->health_check, &r->backends[b], tls != NULL);
            old = t->settings.tls;
            t->settings.tls = tls_upstream_ref(tls);
            pthread_mutex_unlock(&t->lock);
            tls_upstream_unref(old);
            t->applied = true;
            atomic_store(&t->passive_fall, r->health_check.passive ? t->settings.fall : 0);
        }
    }
    /* Retire what `next` does not name. */
    for (struct health_target **pp = &reg->targets; *pp;) {
        struct health_target *t = *pp;
        if (t->seen) {
            t->seen = false;
            pp = &t->reg_next;
            continue;
        }
        *pp = t->reg_next;
        atomic_store(&t->retired, true);
        health_target_unref(t);
    }
    return 0;
}

/* ---- active checks (the owning worker's loop) ---- */

static void check_timer_cb(evutil_socket_t fd, short what, void *arg);
static void check_io_cb(evutil_socket_t fd, short what, void *arg);

static void
ms_tv(uint32_t ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static void
check_close(struct health_target *t)
{
    event_del(&t->io);
    tls_upstream_conn_free(t->ssl);
    t->ssl = NULL;
    if (t->fd >= 0) {
        /* Read what is left of the answer that has arrived: closing a socket with unread
         * bytes resets the connection, which the backend would log as an error. */
        char sink[1024];
        while (t->phase == HC_READING && read(t->fd, sink, sizeof(sink)) > 0)
            ;
        close(t->fd);
        t->fd = -1;
    }
    t->phase = HC_IDLE;
}

/* One check ended: feed the state machine, publish, and plan the next check. */
static void
check_done(struct health_target *t, bool ok, int status, const char *why)
{
    check_close(t);
    uint32_t took_ms = (uint32_t)((clock_mono_us() - t->started_us) / 1000);
    uint64_t now = wall_ms();
    atomic_fetch_add_explicit(&t->checks, 1, memory_order_relaxed);
    if (!ok)
        atomic_fetch_add_explicit(&t->failures, 1, memory_order_relaxed);

    /* Passive marks change the shared state behind the machine's back: start from it. */
    uint8_t shared = atomic_load(&t->state);
    if (shared != t->sm.state) {
        t->sm.state = shared;
        t->sm.streak = 0;
    }
    uint8_t before = t->sm.state;
    if (health_sm_feed(&t->sm, ok, t->cur.rise, t->cur.fall) &&
        !atomic_compare_exchange_strong(&t->state, &shared, t->sm.state)) {
        /* A passive mark came in between: it stands, the next check starts from it. */
        t->sm.state = shared;
        t->sm.streak = 0;
    } else if (t->sm.state != before) {
        if (t->sm.state == HEALTH_UP)
            atomic_store_explicit(&t->passive_streak, 0, memory_order_relaxed);
        atomic_store_explicit(&t->last_change_ms, now, memory_order_relaxed);
        atomic_fetch_add_explicit(&t->transitions, 1, memory_order_relaxed);
        if (t->sm.state == HEALTH_UP)
            log_info("backend %s is up (health check: %d in %u ms)", t->addr.text, status, took_ms);
        else
            log_warn("backend %s is down (health check: %s)%s", t->addr.text, why,
                     before == HEALTH_UNCHECKED ? " at its first check" : "");
    }
    pthread_mutex_lock(&t->lock);
    t->last_status = status;
    snprintf(t->last_error, sizeof(t->last_error), "%s", ok ? "" : why);
    t->last_check_ms = now;
    t->check_ms = took_ms;
    pthread_mutex_unlock(&t->lock);

    /* Checks start every interval, however long each took. */
    uint32_t wait = t->cur.interval_ms > took_ms ? t->cur.interval_ms - took_ms : 0;
    struct timeval tv;
    ms_tv(wait, &tv);
    event_add(&t->timer, &tv);
}

static void
check_fail_errno(struct health_target *t, const char *what, int err)
{
    char why[64];
    snprintf(why, sizeof(why), "%s: %s", what, strerror(err));
    check_done(t, false, 0, why);
}

/* Look for a complete status line: "HTTP/1.x NNN ". Returns the status, 0 when more is
 * needed, -1 when the answer is not HTTP/1. */
static int
check_parse_status(const char *p, uint32_t len)
{
    static const char prefix[] = "HTTP/1.";
    uint32_t want = sizeof(prefix) - 1 + 5; /* "HTTP/1.x NNN" */
    for (uint32_t i = 0; i < len && i < sizeof(prefix) - 1; i++)
        if (p[i] != prefix[i])
            return -1;
    if (len < want)
        return 0;
    if ((p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return -1;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        status = status * 10 + (p[i] - '0');
    }
    if (len > 12 && p[12] != ' ' && p[12] != '\r')
        return -1;
    return status >= 100 ? status : -1;
}

/* Wait for the socket to be readable (or writable). */
static void
check_wait(struct health_target *t, bool write)
{
    event_del(&t->io);
    event_assign(&t->io, t->w->base, t->fd, (write ? EV_WRITE : EV_READ) | EV_PERSIST, check_io_cb,
                 t);
    event_add(&t->io, NULL);
}

/* A check's reads and writes, in clear text or through TLS: as read()/write(), with EAGAIN
 * when it must wait, after arming the direction it waits for. */
static ssize_t
check_io(struct health_target *t, void *p, size_t n, bool write)
{
    ssize_t r;
    bool other = false;
    if (t->ssl == NULL) {
        r = write ? send(t->fd, p, n, MSG_NOSIGNAL) : read(t->fd, p, n);
        if (r < 0 && errno == EAGAIN)
            check_wait(t, write);
        return r;
    }
    r = write ? tls_send(t->ssl, p, n, &other) : tls_recv(t->ssl, p, n, &other);
    if (r == TLS_AGAIN) {
        check_wait(t, other ? !write : write);
        errno = EAGAIN;
        return -1;
    }
    if (r < 0)
        errno = EPROTO;
    return r;
}

static void
check_send(struct health_target *t)
{
    while (t->req_sent < t->req_len) {
        ssize_t n = check_io(t, t->req + t->req_sent, t->req_len - t->req_sent, true);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            check_fail_errno(t, "send", errno);
            return;
        }
        t->req_sent += (uint32_t)n;
    }
    t->phase = HC_READING;
    check_wait(t, false);
}

static void
check_read(struct health_target *t)
{
    for (;;) {
        ssize_t n = check_io(t, t->resp + t->resp_len, sizeof(t->resp) - t->resp_len, false);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            check_fail_errno(t, "receive", errno);
            return;
        }
        if (n == 0) {
            check_done(t, false, 0, "closed without an answer");
            return;
        }
        t->resp_len += (uint32_t)n;
        int status = check_parse_status(t->resp, t->resp_len);
        if (status < 0 || (status == 0 && t->resp_len == sizeof(t->resp))) {
            check_done(t, false, 0, "not an HTTP/1 answer");
            return;
        }
        if (status > 0) {
            bool ok = health_status_passes(status, t->cur.expect_lo, t->cur.expect_hi);
            char why[64];
            snprintf(why, sizeof(why), "status %d, expected %u-%u", status, t->cur.expect_lo,
                     t->cur.expect_hi);
            check_done(t, ok, status, why);
            return;
        }
    }
}

static void
check_handshake(struct health_target *t)
{
    char why[128];
    bool want_write;
    int r = tls_upstream_handshake(t->ssl, &want_write, why, sizeof(why));
    if (r == TLS_AGAIN) {
        check_wait(t, want_write);
        return;
    }
    if (r < 0) {
        check_done(t, false, 0, why);
        return;
    }
    t->phase = HC_SENDING;
    check_send(t);
}

static void
check_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct health_target *t = arg;
    (void)fd;
    (void)what;
    switch (t->phase) {
    case HC_CONNECTING: {
        int err = sock_connect_result(t->fd);
        if (err != 0) {
            check_fail_errno(t, "connect", err);
            return;
        }
        if (t->cur.tls != NULL) {
            t->ssl = tls_upstream_conn_new(t->cur.tls, t->fd, &t->addr, &t->tls_session);
            if (t->ssl == NULL) {
                check_fail_errno(t, "TLS", ENOMEM);
                return;
            }
            t->phase = HC_HANDSHAKING;
            check_handshake(t);
            return;
        }
        t->phase = HC_SENDING;
        check_send(t);
        return;
    }
    case HC_HANDSHAKING:
        check_handshake(t);
        return;
    case HC_SENDING:
        check_send(t);
        return;
    case HC_READING:
        check_read(t);
        return;
    default:
        return;
    }
}

static void
check_start(struct health_target *t)
{
    struct tls_upstream *prev = t->cur.tls;
    pthread_mutex_lock(&t->lock);
    t->cur = t->settings;
    tls_upstream_ref(t->cur.tls);
    pthread_mutex_unlock(&t->lock);
    tls_upstream_unref(prev);
    const struct hc_settings *s = &t->cur;
    int n = snprintf(t->req, sizeof(t->req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: meridian-health-check\r\n"
                     "Connection: close\r\n\r\n",
                     s->path, s->host[0] ? s->host : t->addr.text);
    t->req_len = n > 0 && (size_t)n < sizeof(t->req) ? (uint32_t)n : 0;
    t->req_sent = 0;
    t->resp_len = 0;
    t->started_us = clock_mono_us();

    struct timeval tv;
    ms_tv(s->timeout_ms, &tv);
    event_add(&t->timer, &tv); /* the whole check's deadline */
    int fd = sock_connect(&t->addr);
    if (fd < 0) {
        check_fail_errno(t, "connect", -fd);
        return;
    }
    t->fd = fd;
    t->phase = HC_CONNECTING;
    event_assign(&t->io, t->w->base, fd, EV_WRITE | EV_PERSIST, check_io_cb, t);
    event_add(&t->io, NULL);
}

/* Stop checking `t` (worker thread). The caller lets go of it. */
static void
check_stop(struct health_target *t)
{
    check_close(t);
    event_del(&t->timer);
    t->running = false;
}

static void
unref_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    health_target_unref(arg);
}

static void
check_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct health_target *t = arg;
    (void)fd;
    (void)what;
    if (t->phase != HC_IDLE) {
        char why[64];
        snprintf(why, sizeof(why), "timeout after %u ms", t->cur.timeout_ms);
        check_done(t, false, 0, why);
        return;
    }
    if (atomic_load(&t->retired)) {
        struct worker *w = t->w;
        for (struct health_target **pp = &w->checks; *pp; pp = &(*pp)->w_next) {
            if (*pp == t) {
                *pp = t->w_next;
                break;
            }
        }
        check_stop(t);
        /* Not inside its own callback: the last reference may go with it. */
        struct timeval now = {0, 0};
        if (event_base_once(w->base, -1, EV_TIMEOUT, unref_cb, t, &now) < 0)
            log_warn("backend %s: cannot release its retired health check", t->addr.text);
        return;
    }
    check_start(t);
}

void
health_worker_adopt(struct worker *w, const struct cfg *cfg)
{
    for (size_t i = 0; i < cfg->nregions; i++) {
        const struct cfg_region *r = &cfg->regions[i];
        for (size_t b = 0; b < r->nbackends; b++) {
            struct health_target *t = r->backends[b].health;
            if (t == NULL || t->owner != w->id || t->running)
                continue;
            t->running = true;
            t->w = w;
            t->sm.state = atomic_load(&t->state);
            t->sm.streak = 0;
            t->w_next = w->checks;
            w->checks = target_ref(t);
            event_assign(&t->timer, w->base, -1, 0, check_timer_cb, t);
            /* Checked at once: the first result decides a new backend's state. */
            struct timeval now = {0, 0};
            event_add(&t->timer, &now);
        }
    }
}

void
health_worker_stop(struct worker *w)
{
    while (w->checks) {
        struct health_target *t = w->checks;
        w->checks = t->w_next;
        check_stop(t);
        health_target_unref(t);
    }
}

/* ---- observability ---- */

void
health_target_view(struct health_target *t, struct health_view *out)
{
    memset(out, 0, sizeof(*out));
    out->state = health_state_of(t);
    out->last_change_ms = atomic_load_explicit(&t->last_change_ms, memory_order_relaxed);
    out->checks = atomic_load_explicit(&t->checks, memory_order_relaxed);
    out->failures = atomic_load_explicit(&t->failures, memory_order_relaxed);
    out->passive_failures = atomic_load_explicit(&t->passive_failures, memory_order_relaxed);
    out->transitions = atomic_load_explicit(&t->transitions, memory_order_relaxed);
    pthread_mutex_lock(&t->lock);
    out->last_status = t->last_status;
    snprintf(out->last_error, sizeof(out->last_error), "%s", t->last_error);
    out->last_check_ms = t->last_check_ms;
    out->check_ms = t->check_ms;
    pthread_mutex_unlock(&t->lock);
}
